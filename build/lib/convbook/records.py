"""The build's machine-readable records, read by the reflections chapter (11).

``ci/book.py`` sets three variables for every chapter it runs:

- ``CONVBOOK_VERDICTS``: a JSON file of every verdict (``book.verdict`` adds them);
- ``CONVBOOK_RESULTS``: a JSON file of every network trained through ``experiments.compare``
  (its accuracy over seeds, parameters, MACs, latency, data, profile and device);
- ``CONVBOOK_CHAPTER``: the notebook being run, which tags each entry.

Outside a build (a reader's notebook, Colab) the variables are unset and nothing is written.
Entries are keyed, so running a chapter twice replaces its entries instead of adding more.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

VERDICTS_ENV, RESULTS_ENV, CHAPTER_ENV = "CONVBOOK_VERDICTS", "CONVBOOK_RESULTS", "CONVBOOK_CHAPTER"


def path_from(variable: str) -> Path | None:
    """The file named by the environment variable ``variable``; None when it is unset."""
    value = os.environ.get(variable)
    return Path(value) if value else None


def chapter() -> str:
    """The chapter a build is running ("" outside a build)."""
    return os.environ.get(CHAPTER_ENV, "")


def load(path: Path | None) -> dict:
    """The entries stored in ``path`` ({} when there is no such file or it cannot be read)."""
    if path is None or not path.exists():
        return {}
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return entries if isinstance(entries, dict) else {}


def versions() -> dict[str, str]:
    """The versions that shape a run's numbers, for every record."""
    import torch
    import torchvision

    import convbook

    return {"torch": torch.__version__, "torchvision": torchvision.__version__,
            "convbook": convbook.__version__}


def update(path: Path, key: str, entry: dict) -> None:
    """Add (or replace) ``entry`` under ``key`` in ``path``, written atomically. Writers in
    several processes take turns (an exclusive lock on a file beside it), so none loses
    another's entries."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        try:
            import fcntl
        except ImportError:  # Windows: no lock; a single build writes alone there
            fcntl = None
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        entries = load(path)
        entries[key] = entry
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(entries, handle, indent=1, ensure_ascii=False)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def record_results(results, label: str = "") -> None:
    """Add every variant of ``results`` (an ``experiments.Results``) to the results file,
    named "variant · ``label``" when a label is given."""
    path = path_from(RESULTS_ENV)
    if path is None:
        return
    for variant in results:
        name = f"{variant.name} · {label}" if label else variant.name
        entry = {
            "chapter": chapter(), "variant": name, "data": results.data,
            "profile": results.profile.name, "device": results.device,
            "precision": results.precision, "versions": versions(),
            "seeds": len(variant.runs), "test_accuracy": variant.test_accuracy,
            "accuracy_sd": variant.accuracy_sd, "params": variant.params, "macs": variant.macs,
            "epochs": results.recipe.epochs, "batch_size": results.recipe.batch_size,
            "forward_ms": 1000 * variant.latency["forward"] if variant.latency else None,
        }
        update(path, f"{entry['chapter']}|{results.data}|{name}", entry)
