"""Crash-safe cache files: written atomically, read with a check, rebuilt when broken.

Both caches of the book (decoded CIFAR-10 tensors in ``data``, finished runs in
``experiments``) go through here, so a kill or a full disk mid-write never leaves a file that
stops later runs, and an unwritable cache costs time, never a result.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import torch

_warned: set[str] = set()


def warn_once(message: str) -> None:
    """A RuntimeWarning shown once per process (a misconfigured cache is said once)."""
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def load_checked(path: Path, keys: set[str] | None = None):
    """What ``torch.save`` stored under ``path``, or None when there is no such file. A file
    that cannot be read (truncated by a kill, written by something else, or a dict missing
    ``keys``) is reported by path, deleted, and treated as absent, so its caller rebuilds it."""
    if not path.exists():
        return None
    try:
        stored = torch.load(path, map_location="cpu", weights_only=False)
        if keys is not None and (not isinstance(stored, dict) or keys - set(stored)):
            raise ValueError(f"not a convbook cache file (expected keys {sorted(keys)})")
        return stored
    except Exception as exc:  # noqa: BLE001 -- whatever broke the file, rebuild it
        warnings.warn(f"the cache file {path} cannot be read ({type(exc).__name__}: {exc}); "
                      f"deleting it and computing again", RuntimeWarning, stacklevel=3)
        try:
            path.unlink()
        except OSError:
            pass
        return None


def save_atomic(obj, path: Path) -> bool:
    """``torch.save`` to a temporary file in the same folder, then move it into place, so that
    a kill or a full disk never leaves a partial file under ``path``. Returns False (after one
    warning) when the folder cannot be written; the caller goes on without caching."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
        os.replace(tmp, path)
        return True
    except (OSError, RuntimeError) as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        warn_once(f"cannot write the cache file {path} ({type(exc).__name__}: {exc}); "
                  f"results are kept in memory only")
        return False
