"""Errors that tell the reader what went wrong and what would work.

In a notebook, IPython shows an exception through ``_render_traceback_`` when it has one; these
errors use it to print their message alone, so a reader sees one clear sentence rather than a
wall of library frames.
"""

from __future__ import annotations


class ConvbookError(Exception):
    """Base class: the message is the whole story, so notebooks print only the message."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class ConfigError(ConvbookError, ValueError):
    """An argument that cannot work (groups that do not divide the channels, a kernel size < 1...)."""


class DataNotFoundError(ConvbookError, FileNotFoundError):
    """CIFAR-10 is neither on disk nor downloadable from here."""
