"""Helpers for the chapters' notebooks: start-up, readings, verdicts, the one-minute box.

Kept here so every chapter's code cells stay one or two lines long. Everything a chapter says
from its numbers is a display output of a code cell (``reading``, ``verdict``, ``publish``), so
it shows the same in JupyterLab, Colab and on the website; no MyST role is left for a live
notebook to show as raw text.
"""

from __future__ import annotations

import datetime
import html
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from convbook import data as data_module
from convbook import experiments, profiles, records, stats, timing
from convbook.errors import ConfigError
from convbook.profiles import Profile
from convbook.train import default_amp, pick_device, precision_text, seed_everything
from convbook.viz.style import apply_style


@dataclass
class Setup:
    """What a chapter runs under; printed once at its top."""

    profile: Profile
    seed: int
    device: torch.device
    data_root: str | None
    amp: bool = False  # mixed precision in training and evaluation (train.default_amp)
    started: float = field(default_factory=time.perf_counter, repr=False)  # for run_time_text

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

    @property
    def precision(self) -> str:
        """How training computes, in words: "bfloat16 autocast on cpu", "float32 on cuda"."""
        return precision_text(self.device, self.amp)

    def pick(self, **by_profile):
        """The value this profile uses, from one keyword per profile:
        ``setup.pick(smoke=(8, 14), book=(8, 20), full=(8, 20, 32, 56))``. A profile without a
        value is an error that names the ones given, never a silent fallback."""
        if self.profile.name not in by_profile:
            raise ConfigError(f"no value for profile {self.profile.name!r} here; this cell "
                              f"gives values for {', '.join(by_profile) or 'no profile'}: add "
                              f"{self.profile.name}=... or choose one of those profiles")
        return by_profile[self.profile.name]

    def compare(self, variants: dict, data, **options) -> experiments.Results:
        """``experiments.compare`` under this chapter's conditions: its profile, seeds, device
        and precision (each can be overridden, e.g. ``seeds=[0]``, ``recipe=...``)."""
        options.setdefault("seeds", self.seeds)
        options.setdefault("device", self.device)
        options.setdefault("amp", self.amp)
        return experiments.compare(variants, data, self.profile, **options)

    def __repr__(self) -> str:
        return (f"{self.profile.describe()}; device {self.device.type}, {self.precision}; "
                f"first seed {self.seed}")


def start(profile: str = "auto", seed: int = 0, data_root: str | None = None,
          device: str | None = None, seeds: int | None = None,
          amp: bool | str | None = None) -> Setup:
    """Pick the profile and device, seed, style the figures; return the chapter's Setup.

    ``seed`` is the first seed of every comparison; ``seeds`` (default: the profile's) how
    many each deciding comparison trains; fewer save time, below 3 nothing can be decided.
    ``device`` is "cuda", "mps", "cpu" or None (the best there is); ``amp`` is True, False or
    None/"auto" (mixed precision on CUDA and on CPUs with native bfloat16).
    """
    apply_style()
    seed_everything(seed)
    if data_root:
        os.environ["CONVBOOK_DATA"] = str(data_root)
    chosen = pick_device(device)
    if amp is None or amp == "auto":
        amp = default_amp(chosen)
    elif not isinstance(amp, bool):
        raise ConfigError(f"amp must be True, False or None (auto), got {amp!r}")
    return Setup(profiles.get(profile, seeds), seed, chosen, data_root, amp)


def glue(name: str, value, display: bool = False) -> None:
    """Store ``value`` under ``name`` for another page's ``{glue:}`` roles (myst-nb): the
    intro's table of verdicts and the recipe page paste values from the chapters. Outside a
    book build (Colab, say) myst-nb may be missing; the value is then only shown when
    ``display`` is true."""
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
    """Glue ``text`` as plain text under ``name`` (the intro's and recipe's pages paste these)."""
    glue(name, PlainText(text))


def markdown(text: str):
    """``text`` as a Markdown display object (rendered by JupyterLab, Colab and the website)."""
    from IPython.display import Markdown

    return Markdown(text)


def reading(text: str) -> None:
    """Show a reading (Markdown computed from the run) as this cell's output: the sentences
    that say what a table or figure means, the same in a live notebook and on the page."""
    if not isinstance(text, str):
        raise TypeError(f"reading needs the text of a reading (a str), got {type(text).__name__}")
    from IPython.display import display

    display(markdown(text))


ONE_MINUTE_ID = "convbook-one-minute"
PENDING = ("*What this run found appears here once the chapter has run to its verdicts "
           "(run every cell, top to bottom).*")


def _one_minute_markdown(body: str) -> str:
    return (f'<div class="convbook-one-minute">\n\n**In one minute: what this run found.** '
            f"{body}\n\n</div>")


def one_minute_box() -> None:
    """Show the chapter's "In one minute" box near its top. It says what it waits for until
    ``publish`` fills it in place (a display that is updated: JupyterLab, Colab and the
    book's executed pages all show the filled box)."""
    from IPython.display import display

    display(markdown(_one_minute_markdown(PENDING)), display_id=ONE_MINUTE_ID)


BADGE_COLOURS = {"confirmed": "#1d6b3a", "refuted": "#a32323", "inconclusive": "#5b5b66",
                 "nuanced": "#7a4a00"}


def badge(label: str) -> str:
    """A verdict label as a badge (HTML): the word itself, on the label's colour (inline, so
    JupyterLab and Colab colour it too; the website's stylesheet sets both themes' colours)."""
    if label not in stats.LABEL_MEANINGS:
        raise ValueError(f"unknown verdict label {label!r}; labels are "
                         f"{', '.join(stats.LABEL_MEANINGS)}")
    style = (f"background:{BADGE_COLOURS[label]};color:#fff;padding:0 0.5em;"
             f"border-radius:0.8em;font-weight:700")
    return (f'<span class="convbook-verdict convbook-verdict-{label}" style="{style}">'
            f"{label}</span>")


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


def verdict(v: stats.Verdict, chapter: str, setup: Setup | None = None) -> str:
    """Show verdict ``v`` as this cell's output (claim, badge, sentence), record it in the
    build's verdicts file, and return its Markdown."""
    if not isinstance(v, stats.Verdict):
        raise TypeError(f"verdict needs a stats.Verdict computed by a chapter's rule, got "
                        f"{type(v).__name__}")
    text = render(v)
    record_verdict(chapter, v, setup)
    reading(text)
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
        # a verdict that trained its own list of seeds (chapter 1's towers) says so itself
        seeds = v.numbers.get("seeds") if isinstance(v.numbers, dict) else None
        seeds = seeds if isinstance(seeds, list) else setup.seeds
        entry.update(profile=setup.profile.name, seeds=seeds, device=setup.device.type,
                     precision=setup.precision, versions=records.versions())
    records.update(path, f"{chapter}:{v.claim}", entry)


def publish(setup: Setup, chapter: str, verdicts: list[stats.Verdict], one_minute: str) -> None:
    """Show every verdict of a chapter here, in order, and record each in the build's verdicts
    file; fill the "In one minute" box at the top of the chapter (``one_minute_box``) with the
    labels and ``one_minute``; glue the one-line list the intro's table pastes (``verdicts``)."""
    from IPython.display import update_display

    for v in verdicts:
        verdict(v, chapter, setup)
    listing = VerdictList(verdicts)
    glue("verdicts", listing)
    body = f"{listing._repr_html_()}<br>\n{one_minute}<br>\n{run_time_text(setup)}"
    update_display(markdown(_one_minute_markdown(body)), display_id=ONE_MINUTE_ID)


def machine_text(device: torch.device) -> str:
    """The machine a run used, in words: the GPU's name, or the CPU cores this process may use."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores} CPU core{'s' if cores != 1 else ''}" + (" (Apple GPU)" if device.type == "mps"
                                                             else "")


def run_time_text(setup: Setup, now: float | None = None) -> str:
    """How long this run took from ``book.start`` to here, measured, with the machine, profile
    and date: the chapter's run time as this run saw it (a page never types a time). Training
    that was loaded from the cache instead is said, so a fast rerun is not read as a fast run."""
    elapsed = (time.perf_counter() if now is None else now) - setup.started
    minutes, secs = divmod(round(elapsed), 60)
    took = f"{minutes} min {secs} s" if minutes else f"{secs} s"
    trained = timing.seconds(timing.TRAINING)
    loaded = timing.seconds(timing.CACHE_LOADS)
    parts = [f"{round(trained)} s of it training"] if trained >= 0.5 else []
    if loaded >= 0.5:
        parts.append(f"{round(loaded)} s loading runs an earlier run had cached")
    inside = f" ({'; '.join(parts)})" if parts else ""
    return (f"*This run reached its verdicts in {took}{inside}: profile `{setup.profile.name}`, "
            f"{setup.profile.seeds} seed{'s' if setup.profile.seeds != 1 else ''}, "
            f"{machine_text(setup.device)}, {datetime.date.today().isoformat()}.*")
