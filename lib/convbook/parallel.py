"""Independent training runs at the same time: worker processes that share the CPU's cores.

A comparison's runs (variants × seeds) do not depend on each other. On a CPU, the book's small
networks at their batch sizes keep two threads only partly busy, so two processes of one
thread each finish two runs sooner than one process of two threads runs them in turn
(``ci/bench_parallel.py`` measures it). ``jobs_for`` decides how many workers a comparison
uses; ``train_ahead`` trains the runs the cache lacks in those workers, each of which stores
its run in the run cache, and ``experiments.compare`` then loads them as cached runs.

**Same seeds, same numbers.** A run's result can depend on its thread count (a reduction over
two threads adds in another order), so the thread count is part of the run's cache key: a run
trained by a one-thread worker is the run a one-thread process would train in sequence, bit for
bit (``tests/test_parallel.py``), and never stands in for a two-thread one.

**Choosing.** ``CONVBOOK_JOBS`` sets the number of workers (1: everything in this process).
Unset, a CPU machine uses one worker per core, up to the number of runs; a GPU runs in this
process (several small runs could share one device, but the book's runs are short there
already). Factories that cannot be sent to another process (a lambda, a class defined in a
notebook) run in this process, as does everything when the run cache cannot be written.
"""

from __future__ import annotations

import atexit
import os
import pickle
import signal
import time
from concurrent.futures import ProcessPoolExecutor

import torch

from convbook.errors import ConfigError

JOBS_ENV = "CONVBOOK_JOBS"

_pool: ProcessPoolExecutor | None = None
_pool_shape: tuple[int, int] | None = None


def cores() -> int:
    """The CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def jobs_from_environment() -> int | None:
    """``CONVBOOK_JOBS`` as a whole number >= 1; None when unset."""
    value = os.environ.get(JOBS_ENV, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"{JOBS_ENV} must be a whole number >= 1 (1: no worker processes), "
                          f"got {value!r}")
    return int(value)


def jobs_for(runs: int, device: torch.device, jobs: int | None = None) -> tuple[int, int]:
    """(workers, threads per worker) for ``runs`` independent runs on ``device``. ``jobs``
    (or ``CONVBOOK_JOBS``) overrides the choice; threads split the cores between workers."""
    if jobs is None:
        jobs = jobs_from_environment()
    if isinstance(jobs, bool) or (jobs is not None and (not isinstance(jobs, int) or jobs < 1)):
        raise ConfigError(f"jobs must be a whole number >= 1 or None (automatic), got {jobs!r}")
    if jobs is None:
        jobs = cores() if device.type == "cpu" else 1
    jobs = max(1, min(jobs, runs))
    if jobs == 1:
        return 1, torch.get_num_threads()
    return jobs, max(1, cores() // jobs)


def sendable(*objects) -> bool:
    """True when every object survives pickling (what a worker process needs)."""
    try:
        for obj in objects:
            pickle.dumps(obj)
    except Exception:  # noqa: BLE001 -- lambdas, local classes, open handles: run here
        return False
    return True


def _start_worker(threads: int) -> None:
    torch.set_num_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # an interrupt is the parent's to handle
    os.environ.pop("CONVBOOK_TIMINGS", None)  # the parent times the batch as a whole


def pool(jobs: int, threads: int) -> ProcessPoolExecutor:
    """A pool of ``jobs`` worker processes of ``threads`` threads each, kept for the next
    comparison of this session (starting one costs a second or two of imports)."""
    global _pool, _pool_shape
    if _pool is not None and _pool_shape == (jobs, threads):
        return _pool
    shutdown()
    context = torch.multiprocessing.get_context("spawn")  # fork would copy torch's threads
    _pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context,
                                initializer=_start_worker, initargs=(threads,))
    _pool_shape = (jobs, threads)
    return _pool


@atexit.register
def shutdown() -> None:
    global _pool, _pool_shape
    if _pool is not None:
        _pool.shutdown(wait=True, cancel_futures=True)
    _pool, _pool_shape = None, None


def _train_one(arguments: dict, cache: str) -> float:
    """In a worker: train one run into the run cache at ``cache``; its seconds."""
    from convbook.experiments import train_run

    os.environ["CONVBOOK_CACHE"] = cache  # the parent's, now (a pool outlives its first use)
    start = time.perf_counter()
    train_run(**arguments, cache=True)
    return time.perf_counter() - start


def train_ahead(tasks: list[dict], jobs: int, threads: int) -> list[float]:
    """Train ``tasks`` (keyword arguments of ``experiments.train_run``) in ``jobs`` workers of
    ``threads`` threads; each stores its run in this process's run cache. Returns each task's
    seconds."""
    from convbook.data import cache_dir

    workers = pool(jobs, threads)
    folder = str(cache_dir())
    try:
        return list(workers.map(_train_one, tasks, [folder] * len(tasks)))
    except BaseException:  # an interrupt (or a failed run): stop the other runs too
        terminate()
        raise


def terminate() -> None:
    """Stop the workers now (what they were training is lost; the cache holds only finished
    runs, written atomically)."""
    global _pool, _pool_shape
    if _pool is not None:
        for process in list(getattr(_pool, "_processes", {}).values()):
            process.terminate()
        _pool.shutdown(wait=False, cancel_futures=True)
    _pool, _pool_shape = None, None
