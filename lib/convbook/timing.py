"""Where a chapter's time goes: seconds spent training, loading cached runs, timing latency
and rendering explorer frames, added up per chapter while a book build runs.

The build (``ci/book.py``) names a JSON file in ``CONVBOOK_TIMINGS``; each kernel adds its
chapter's seconds there by kind (through ``records.update``, so kernels in several processes
lose nothing), and the build sets them beside each chapter's wall time, its cells' time and
kernel start-up in ``_build/timings-<profile>.json``. Outside a build nothing is written (the
totals are still kept, for the run time a chapter states: ``seconds``), and ``timed`` costs two
clock reads.
"""

from __future__ import annotations

import contextlib
import time

from convbook import records

ENV = "CONVBOOK_TIMINGS"
TRAINING, CACHE_LOADS, LATENCY, FRAMES = ("training", "cache loads", "latency",
                                          "explorer frames")
KINDS = (TRAINING, CACHE_LOADS, LATENCY, FRAMES)

_totals: dict[str, float] = {}
_runs: list[dict] = []
_depth = [0]  # a latency timed inside an explorer frame counts once, as the frame


@contextlib.contextmanager
def timed(kind: str, **run):
    """Add the block's seconds to ``kind`` for this chapter; ``run`` (e.g. variant=..., seed=...)
    also lists the block on its own. Nested blocks count once, in the outermost."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    start = time.perf_counter()
    _depth[0] += 1
    try:
        yield
    finally:
        _depth[0] -= 1
        seconds = time.perf_counter() - start
        if _depth[0] == 0:
            _add(kind, seconds, run)


def note_run(kind: str, seconds: float, **run) -> None:
    """List one run's seconds without adding them to ``kind``'s total: runs trained side by
    side in worker processes, whose batch the caller timed as a whole."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    _add(kind, 0.0, {**run, "seconds": round(seconds, 2)})


def seconds(kind: str) -> float:
    """Seconds this kernel has spent on ``kind`` so far (in a build or not)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return _totals.get(kind, 0.0)


def _add(kind: str, seconds: float, run: dict) -> None:
    _totals[kind] = _totals.get(kind, 0.0) + seconds  # kept outside a build too: book.publish
    path = records.path_from(ENV)
    if path is None:
        return
    if run:
        _runs.append({"kind": kind, "seconds": round(seconds, 2),
                      **{k: v if k == "seconds" else str(v) for k, v in run.items()}})
    entry = {"seconds": {k: round(v, 2) for k, v in _totals.items()}, "runs": _runs}
    records.update(path, records.chapter(), entry)
