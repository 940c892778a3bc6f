"""One look for every figure of the book: fonts, colours, legends, ticks.

- ``apply_style`` sets matplotlib's defaults (``book.start`` calls it).
- ``family_colour`` gives each model family one colour for a whole chapter ("plain 20" and
  "plain 44" are both "plain"), whichever figure draws it first.
- ``legend_outside`` puts a legend beside the axes, never over the data.
- ``integer_ticks`` and ``log_ticks`` keep epochs and layers whole and log axes legible.
"""

from __future__ import annotations

import math
import re

import matplotlib
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

PALETTE = ("#3b6ea5", "#e07b39", "#4c9f70", "#c04e4e", "#8a6bb8", "#a0785a", "#d46aa8", "#7f7f7f")
_FAMILIES: dict[str, str] = {}


def apply_style() -> None:
    """Readable defaults: larger fonts, light grid, no top/right spines, the book's colours."""
    matplotlib.rcParams.update({
        "figure.dpi": 100,
        "savefig.dpi": 100,
        "savefig.bbox": "tight",
        "font.size": 11,
        "axes.titlesize": 12,
        "axes.labelsize": 11,
        "legend.fontsize": 10,
        "xtick.labelsize": 10,
        "ytick.labelsize": 10,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
        "legend.frameon": False,
    })


def family(name: str) -> str:
    """A variant's family: its name without a trailing depth or size ("plain 20" -> "plain",
    "ResNet-56" -> "ResNet")."""
    return re.sub(r"[\s-]*\d+$", "", name.strip()) or name


def family_colour(name: str) -> str:
    """The colour of ``name``'s family: the same in every figure of a session (a chapter)."""
    key = family(name)
    if key not in _FAMILIES:
        _FAMILIES[key] = PALETTE[len(_FAMILIES) % len(PALETTE)]
    return _FAMILIES[key]


def legend_outside(ax, **options) -> None:
    """The legend to the right of the axes, outside the data."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0,
                  **options)


def integer_ticks(ax, axis: str = "x") -> None:
    """Whole-number ticks only (epochs, layers, depths)."""
    getattr(ax, f"{axis}axis").set_major_locator(MaxNLocator(integer=True))


def _compact(value: float, _position=None) -> str:
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def log_ticks(ax, axis: str = "y") -> None:
    """A log axis with labels at 1, 2 and 5 of each decade (only at powers of ten when the data
    span more than two decades), written compactly (20k, 1M), and unlabelled minor ticks, so
    that labels never overprint. Call it after plotting: it reads the data's range."""
    target = getattr(ax, f"{axis}axis")
    getattr(ax, f"set_{axis}scale")("log")
    low, high = (ax.dataLim.intervalx if axis == "x" else ax.dataLim.intervaly)
    decades = math.log10(high / low) if low > 0 and high > low else 0.0
    subs = (1.0,) if decades > 2 else (1.0, 2.0, 5.0)
    target.set_major_locator(LogLocator(base=10, subs=subs, numticks=12))
    target.set_major_formatter(FuncFormatter(_compact))
    target.set_minor_formatter(NullFormatter())
