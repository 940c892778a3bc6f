"""Errors that tell the reader what went wrong and what would work.

In a notebook, IPython shows an exception through ``_render_traceback_`` when it has one; these
errors use it to print their message alone, so a reader sees one clear sentence rather than a
wall of library frames. Developers who want the frames set ``CONVBOOK_DEBUG=1``: IPython then
shows the whole traceback as for any other error.
"""

from __future__ import annotations

import os

DEBUG_ENV = "CONVBOOK_DEBUG"


def debugging() -> bool:
    """True when ``CONVBOOK_DEBUG`` asks for whole tracebacks (1, true, yes or on)."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


class ConvbookError(Exception):
    """Base class: the message is the whole story, so notebooks print only the message."""

    def __getattribute__(self, name):
        # IPython looks for _render_traceback_ with getattr: hiding it shows the frames
        if name == "_render_traceback_" and debugging():
            raise AttributeError(name)
        return super().__getattribute__(name)

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class ConfigError(ConvbookError, ValueError):
    """An argument that cannot work (groups that do not divide the channels, a kernel size < 1...)."""


class DataNotFoundError(ConvbookError, FileNotFoundError):
    """CIFAR-10 is neither on disk nor downloadable from here."""


class NonFiniteError(ConvbookError, FloatingPointError):
    """A tensor holds NaN or infinity where the computation cannot go on (a deformable layer's
    offsets, an input image). The training loops turn it into ``train.DivergedError``."""
