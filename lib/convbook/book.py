"""Helpers for the chapters' notebooks: start-up, glue, verdicts.

Kept here so every chapter's code cells stay one or two lines long.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from convbook import data as data_module
from convbook import profiles
from convbook.explore import static_mode
from convbook.profiles import Profile
from convbook.train import pick_device, seed_everything
from convbook.viz.style import apply_style

VERDICTS = ("confirmed", "nuanced", "refuted")


@dataclass
class Setup:
    """What a chapter runs under; printed once at its top."""

    profile: Profile
    seed: int
    device: torch.device
    data_root: str | None

    def data(self) -> data_module.CifarData:
        """CIFAR-10 at this profile's sizes, on this chapter's device."""
        return data_module.load(self.profile.train_size, self.profile.test_size,
                                root=self.data_root, device=self.device, seed=self.seed)

    def __repr__(self) -> str:
        return f"{self.profile.describe()}; device {self.device.type}; seed {self.seed}"


def start(profile: str = "auto", seed: int = 0, data_root: str | None = None,
          device: str | None = None) -> Setup:
    """Pick the profile and device, seed, style the figures; return the chapter's Setup."""
    apply_style()
    seed_everything(seed)
    if data_root:
        os.environ["CONVBOOK_DATA"] = str(data_root)
    return Setup(profiles.get(profile), seed, pick_device(device), data_root)


def glue(name: str, value, display: bool = False) -> None:
    """Store ``value`` under ``name`` for the book's ``{glue:}`` roles (myst-nb).

    Outside a book build (Colab, say) myst-nb may be missing; the value is then only shown
    when ``display`` is true.
    """
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            from IPython.display import display as show

            show(value)
        return
    myst_glue(name, value, display=display)


class PlainText:
    """A string that IPython shows without quotes: what ``{glue:text}`` pastes, also from
    another page (myst-nb pastes only text, HTML and images across pages)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        printer.text(self.text)


def glue_text(name: str, text: str) -> None:
    """Glue ``text`` as plain text under ``name`` (the intro's table pastes these)."""
    glue(name, PlainText(text))


def markdown(text: str):
    """Markdown that the book pastes with ``{glue:md}`` (and a live notebook renders)."""
    from IPython.display import Markdown

    return Markdown(text)


def verdict(name: str, claim: str, status: str, text: str) -> str:
    """Glue a verdict on a claim as Markdown under ``name`` and return its text.

    ``status`` must be computed from the run (confirmed / nuanced / refuted). In a live notebook
    the verdict is shown right away; in the book it appears where the page pastes ``name``.
    """
    if status not in VERDICTS:
        raise ValueError(f"status must be one of {', '.join(VERDICTS)}, got {status!r}")
    from IPython.display import Markdown, display

    markdown = f"**{claim}: {status}.** {text}"
    glue(name, Markdown(markdown))
    if not static_mode():
        display(Markdown(markdown))
    return markdown
