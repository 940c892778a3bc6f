"""Crash-safe cache files: written atomically, read with a check, rebuilt when broken.

Both caches of the book (decoded CIFAR-10 tensors in ``data``, finished runs in
``experiments``) go through here, so a kill or a full disk mid-write never leaves a file that
stops later runs, and an unwritable cache costs time, never a result.

Cache files hold plain data only (tensors, dicts, lists, tuples, str, int, float, bool, None)
and are read with ``torch.load(weights_only=True)``: reading a cache never runs code, so a file
planted in the cache folder is refused (reported, deleted, rebuilt) instead of executed.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

_warned: set[str] = set()
_NDARRAY = "__convbook_ndarray__"  # marks a numpy array stored as a tensor (see to_plain)
_SCALARS = (str, bytes, int, float, complex, bool, type(None))
_TORCH_PLAIN = (torch.Tensor, torch.Size, torch.dtype, torch.device)  # weights_only reads them
STALE_TMP_SECONDS = 600  # a writer still busy on a younger temporary file is left alone


def warn_once(message: str) -> None:
    """A RuntimeWarning shown once per process (a misconfigured cache is said once)."""
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def to_plain(obj):
    """``obj`` as data ``torch.load(weights_only=True)`` reads back: numpy arrays become tagged
    tensors and numpy scalars Python numbers (``from_plain`` undoes the first); anything else
    that is not plain (an object, a dataclass) raises TypeError, since reading it back would
    mean running its class's code."""
    if isinstance(obj, _TORCH_PLAIN) or type(obj) in _SCALARS:
        return obj
    if isinstance(obj, np.ndarray):
        return {_NDARRAY: torch.from_numpy(np.ascontiguousarray(obj))}
    if isinstance(obj, np.generic):
        return obj.item()
    if type(obj) in (list, tuple):
        return type(obj)(to_plain(item) for item in obj)
    if isinstance(obj, dict):  # an OrderedDict (a state dict) is stored as a dict
        return {to_plain(key): to_plain(value) for key, value in obj.items()}
    raise TypeError(f"a {type(obj).__module__}.{type(obj).__qualname__} is not plain data "
                    f"(tensors, dicts, lists, tuples, numbers, strings)")


def from_plain(obj):
    """What ``to_plain`` stored, with numpy arrays restored."""
    if type(obj) in (list, tuple):
        return type(obj)(from_plain(item) for item in obj)
    if isinstance(obj, dict):
        if set(obj) == {_NDARRAY} and isinstance(obj[_NDARRAY], torch.Tensor):
            return obj[_NDARRAY].numpy()
        return {key: from_plain(value) for key, value in obj.items()}
    return obj


def _reason(exc: Exception) -> str:
    """Why a file was refused, in one line. torch's refusal of a file that names code to run
    suggests loading it unsafely; that advice is left out (the file is rebuilt instead)."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        detail = text.split("WeightsUnpickler error:")[1].strip().splitlines()[0]
        return f"it names code to run on loading; refused, not run: {detail.split('. ')[0]}"
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"{type(exc).__name__}: {first[:300]}"


def _discard(path: Path, exc: Exception) -> None:
    warnings.warn(f"the cache file {path} cannot be read ({_reason(exc)}); deleting it and "
                  f"computing again", RuntimeWarning, stacklevel=4)
    try:
        path.unlink()
    except OSError:
        pass


def load_checked(path: Path, keys: set[str] | None = None, check: Callable | None = None):
    """What ``save_atomic`` stored under ``path``, or None when there is no such file. The file
    is read as plain data (``weights_only``), never by running code it names. ``check`` turns
    what was read into what the caller uses, raising when the content is wrong for it. A file
    that cannot be read (truncated by a kill, written by something else, holding code, a dict
    missing ``keys``, or content ``check`` refuses) is reported by path, deleted, and treated
    as absent, so its caller rebuilds it instead of failing on it at every run."""
    if not path.exists():
        return None
    try:
        with warnings.catch_warnings():  # torch's notes on odd files: ours names the file
            warnings.simplefilter("ignore", UserWarning)
            stored = from_plain(torch.load(path, map_location="cpu", weights_only=True))
        if keys is not None and (not isinstance(stored, dict) or keys - set(stored)):
            raise ValueError(f"not a convbook cache file (expected keys {sorted(keys)})")
        return stored if check is None else check(stored)
    except Exception as exc:  # noqa: BLE001 -- whatever broke the file, rebuild it
        _discard(path, exc)
        return None


def save_atomic(obj, path: Path) -> bool:
    """``torch.save`` the plain form of ``obj`` (``to_plain``) to a temporary file in the same
    folder, then move it into place, so that a kill or a full disk never leaves a partial file
    under ``path``. Returns False (after one warning) when the folder cannot be written or
    ``obj`` is not plain data; the caller goes on without caching."""
    tmp = None
    try:
        plain = to_plain(obj)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            torch.save(plain, handle)
        os.replace(tmp, path)
        return True
    except (OSError, RuntimeError, TypeError) as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        warn_once(f"cannot write the cache file {path} ({type(exc).__name__}: {exc}); "
                  f"results are kept in memory only")
        return False


def remove_stale_temporaries(folder: Path, age: float = STALE_TMP_SECONDS) -> None:
    """Delete the ``*.tmp`` files ``save_atomic`` left in ``folder`` when killed mid-write,
    quietly. Only those older than ``age`` seconds go: a younger one may be another process's
    write in progress."""
    cutoff = time.time() - age
    for tmp in folder.glob("*.tmp"):
        try:
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()
        except OSError:
            pass  # gone already, or not ours to delete: never worth a warning
