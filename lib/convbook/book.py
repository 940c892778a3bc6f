"""Helpers for the chapters' notebooks: start-up, glue, verdicts.

Kept here so every chapter's code cells stay one or two lines long.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from convbook import data as data_module
from convbook import profiles, records, stats
from convbook.explore import static_mode
from convbook.profiles import Profile
from convbook.train import pick_device, seed_everything
from convbook.viz.style import apply_style


@dataclass
class Setup:
    """What a chapter runs under; printed once at its top."""

    profile: Profile
    seed: int
    device: torch.device
    data_root: str | None

    def data(self, train_size: int | None = None,
             test_size: int | None = None) -> data_module.CifarData:
        """CIFAR-10 at this profile's sizes, on this chapter's device; ``train_size`` and
        ``test_size`` lower the number of images (a chapter that trains many networks shrinks
        its task; never above the profile's)."""
        def lowered(size, limit):
            return size if limit is None else (limit if size is None else min(size, limit))

        return data_module.load(lowered(self.profile.train_size, train_size),
                                lowered(self.profile.test_size, test_size),
                                root=self.data_root, device=self.device, seed=self.seed)

    @property
    def seeds(self) -> list[int]:
        """The seeds every deciding comparison trains."""
        return self.profile.seed_list(self.seed)

    def __repr__(self) -> str:
        return f"{self.profile.describe()}; device {self.device.type}; first seed {self.seed}"


def start(profile: str = "auto", seed: int = 0, data_root: str | None = None,
          device: str | None = None, seeds: int | None = None) -> Setup:
    """Pick the profile and device, seed, style the figures; return the chapter's Setup.

    ``seed`` is the first seed of every comparison; ``seeds`` (default: the profile's) how
    many each deciding comparison trains; fewer save time, below 3 nothing can be decided.
    """
    apply_style()
    seed_everything(seed)
    if data_root:
        os.environ["CONVBOOK_DATA"] = str(data_root)
    return Setup(profiles.get(profile, seeds), seed, pick_device(device), data_root)


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


def badge(label: str) -> str:
    """A verdict label as a badge (HTML): the word itself, on the label's colour; the
    website's stylesheet colours it, a notebook shows the word."""
    if label not in stats.LABEL_MEANINGS:
        raise ValueError(f"unknown verdict label {label!r}; labels are "
                         f"{', '.join(stats.LABEL_MEANINGS)}")
    return f'<span class="convbook-verdict convbook-verdict-{label}">{label}</span>'


def render(v: stats.Verdict) -> str:
    """A verdict as Markdown: the claim, its label as a badge, the sentence that explains it."""
    return f"**{v.claim}** {badge(v.label)} {v.text}"


class VerdictList:
    """A chapter's verdicts on one line ("C1.1 confirmed · C1.2 inconclusive"): badges in HTML
    (the intro's table pastes this across pages with ``{glue}``), plain words as text."""

    def __init__(self, verdicts: list[stats.Verdict]) -> None:
        self.pairs = [(v.claim, v.label) for v in verdicts]

    @classmethod
    def of_pairs(cls, pairs: list[tuple[str, str]]) -> VerdictList:
        """The list from (claim, label) pairs, e.g. read back from the verdicts file."""
        listing = cls([])
        listing.pairs = list(pairs)
        return listing

    def __repr__(self) -> str:
        return " · ".join(f"{claim} {label}" for claim, label in self.pairs)

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        printer.text(repr(self))

    def _repr_html_(self) -> str:
        return " ".join(f'<span class="convbook-claim">{html.escape(claim)}&nbsp;{badge(label)}'
                        f"</span>" for claim, label in self.pairs)


def verdict(name: str, v: stats.Verdict, chapter: str, setup: Setup | None = None) -> str:
    """Glue verdict ``v`` as Markdown under ``name``, record it in the build's verdicts file,
    and return its Markdown. In a live notebook the verdict is shown right away; in the book it
    appears where the page pastes ``name``."""
    if not isinstance(v, stats.Verdict):
        raise TypeError(f"verdict needs a stats.Verdict computed by a chapter's rule, got "
                        f"{type(v).__name__}")
    from IPython.display import Markdown, display

    text = render(v)
    glue(name, Markdown(text))
    record_verdict(chapter, v, setup)
    if not static_mode():
        display(Markdown(text))
    return text


def verdicts_path() -> Path | None:
    """The build's machine-readable verdicts file: $CONVBOOK_VERDICTS (the book's build sets
    it to _build/verdicts.json); None outside a build."""
    return records.path_from(records.VERDICTS_ENV)


def record_verdict(chapter: str, v: stats.Verdict, setup: Setup | None = None) -> None:
    """Add (or replace) ``chapter``'s verdict on ``v.claim`` in the verdicts file, atomically."""
    path = verdicts_path()
    if path is None:
        return
    entry = {"chapter": chapter, **v.as_dict()}
    if setup is not None:
        entry.update(profile=setup.profile.name, seeds=setup.seeds, device=setup.device.type)
    records.update(path, f"{chapter}:{v.claim}", entry)


def glue_name(claim: str) -> str:
    """The glue name of a claim's verdict: "C1.1" -> "verdict_c11"."""
    return "verdict_" + claim.lower().replace(".", "")


def publish(setup: Setup, chapter: str, verdicts: list[stats.Verdict], one_minute: str) -> None:
    """Glue every verdict of a chapter (``verdict_c11``, ...), the one-line list the intro's
    table pastes (``verdicts``) and the "In one minute" text (``one_minute``); record each
    verdict in the build's verdicts file."""
    for v in verdicts:
        verdict(glue_name(v.claim), v, chapter, setup)
    listing = VerdictList(verdicts)
    glue("verdicts", listing)
    glue("one_minute", markdown(f"{listing._repr_html_()}<br>\n{one_minute}"))
