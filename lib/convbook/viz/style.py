"""One look for every figure of the book: fonts, colours, legends, ticks.

- ``apply_style`` sets matplotlib's defaults (``book.start`` calls it).
- ``family_colour`` gives each model family one colour for a whole chapter ("plain 20" and
  "plain 44" are both "plain"), whichever figure draws it first.
- ``legend_outside`` puts a legend beside the axes, never over the data.
- ``integer_ticks`` and ``log_ticks`` keep epochs and layers whole and log axes legible.
- ``narrow_layout`` redraws a figure for a phone: panels in one column, legends underneath,
  no tiny text, and a width at which its text stays legible (explorers' phone frames).
"""

from __future__ import annotations

import re
import warnings

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter
from matplotlib.transforms import ScaledTranslation

PALETTE = ("#3b6ea5", "#e07b39", "#4c9f70", "#c04e4e", "#8a6bb8", "#a0785a", "#d46aa8", "#7f7f7f")
_FAMILIES: dict[str, str] = {}


def apply_style() -> None:
    """Readable defaults: larger fonts, light grid, no top/right spines, the book's colours.

    Sizes: a figure is drawn at 100 dpi and shown at its own width up to the page's (about
    670 px on a desktop, 340 px on a phone), scaled down beyond; text of ``p`` points in a
    figure ``w`` pixels wide is ``p * 100/72 * min(1, page/w)`` pixels on screen. 10-point
    tick labels and legends are 13.9 px in any figure up to 6.7 inches wide on a desktop; a
    phone shows a figure legibly (9 px) up to about 5.3 inches, and wider ones open full size
    when tapped. Larger sizes crowd the categorical tick labels of the narrower panels."""
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


class LegibleLogLocator(LogLocator):
    """Major ticks of a log axis for its range *as drawn*: 1, 2 and 5 of each decade while they
    fit the axis's length, else powers of ten (every second or third decade if even those
    would crowd). Chosen at draw time, so an axis whose limits change later (explorer frames
    that share a y range) still gets labels that do not overprint. ``space``: how many labels
    fit; by default what the axis says (its length over twice its tick labels' height)."""

    def __init__(self, space: int | None = None):
        super().__init__(base=10, subs=(1.0,), numticks=space if space else "auto")
        self.space = space

    def _room(self) -> int:
        if self.space:
            return self.space
        return int(np.clip(self.axis.get_tick_space(), 2, 9)) if self.axis is not None else 9

    def tick_values(self, vmin, vmax):
        low, high = sorted((vmin, vmax))
        for subs in ((1.0, 2.0, 5.0), (1.0,)):
            self._set_subs(subs)
            ticks = super().tick_values(vmin, vmax)
            shown = [t for t in ticks if low * (1 - 1e-9) <= t <= high * (1 + 1e-9)]
            if len(shown) <= self._room():
                break
        return ticks


def log_ticks(ax, axis: str = "y") -> None:
    """A log axis labelled at 1, 2 and 5 of each decade while they fit (at powers of ten
    otherwise), written compactly (20k, 1M), with unlabelled minor ticks, so that labels never
    overprint, whatever the range the axis ends up showing."""
    target = getattr(ax, f"{axis}axis")
    getattr(ax, f"set_{axis}scale")("log")
    target.set_major_locator(LegibleLogLocator())
    target.set_major_formatter(FuncFormatter(_compact))
    target.set_minor_formatter(NullFormatter())


# ---------------------------------------------------------------- a phone's version of a figure

LEGIBLE_PX = 9.5  # the smallest text height, in screen pixels, the book aims for
SMALLEST_POINTS = 9.0  # no text of a phone version is smaller


def _renderer(figure: Figure):
    return figure._get_renderer()  # the renderer tight_layout itself measures with


def smallest_text_points(figure: Figure) -> float:
    """The size of the smallest visible text in ``figure`` (points)."""
    sizes = [t.get_fontsize() for t in figure.findobj(Text) if t.get_visible() and t.get_text()]
    return min(sizes, default=matplotlib.rcParams["font.size"])


def natural_width(figure: Figure, dpi: float) -> float:
    """The width in pixels of ``figure`` saved at ``dpi`` with the book's tight bounding box."""
    pad = matplotlib.rcParams["savefig.pad_inches"]
    return (figure.get_tightbbox(_renderer(figure)).width + 2 * pad) * dpi


def _relayout(figure: Figure) -> None:
    """tight_layout again, unless the figure lays itself out at each draw (constrained)."""
    if not isinstance(figure.get_layout_engine(), ConstrainedLayoutEngine):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "not compatible with tight_layout": keep as is
            figure.tight_layout(h_pad=2.0)  # room between stacked panels' labels and titles


def _stack_panels(figure: Figure) -> None:
    """Panels side by side in one row (``plt.subplots(1, n)``) go into one column, each as tall
    as before. Any other arrangement (colour bars, insets, grids) stays as it is."""
    axes = figure.axes
    specs = [ax.get_subplotspec() for ax in axes]
    if len(axes) < 2 or any(spec is None for spec in specs):
        return
    grid = specs[0].get_gridspec()
    columns = sorted(spec.colspan.start for spec in specs)
    if (grid.nrows != 1 or any(spec.get_gridspec() is not grid for spec in specs)
            or any(len(spec.colspan) != 1 for spec in specs) or columns != list(range(len(axes)))):
        return
    column = GridSpec(len(axes), 1, figure=figure)
    for ax, spec in zip(axes, specs):
        ax.set_subplotspec(column[spec.colspan.start, 0])
        if len(ax.get_shared_y_axes().get_siblings(ax)) > 1:
            ax.tick_params(axis="y", labelleft=True)  # a shared axis hid the inner labels
    width, height = figure.get_size_inches()
    figure.set_size_inches(width, height * len(axes))


def _raise_small_text(figure: Figure, points: float) -> None:
    """No text under ``points``: tick labels through their axis, the rest one by one."""
    for ax in figure.axes:
        for name in ("x", "y"):
            labels = [t for t in getattr(ax, f"get_{name}ticklabels")() if t.get_text()]
            if labels and min(t.get_fontsize() for t in labels) < points:
                ax.tick_params(axis=name, which="both", labelsize=points)
    for text in figure.findobj(Text):
        if text.get_fontsize() < points:
            text.set_fontsize(points)


def _legend_below(ax, width_px: float) -> bool:
    """A legend placed to the right of its axes (``legend_outside``) goes under them, below the
    x axis's labels, in as many columns as fit ``width_px``. True if it moved."""
    legend = ax.get_legend()
    if legend is None:
        return False
    anchor = legend.get_bbox_to_anchor().transformed(ax.transAxes.inverted())
    if anchor.x0 < 1:
        return False  # inside the axes or already elsewhere: its author placed it
    figure = ax.figure
    renderer = _renderer(figure)
    handles, labels = legend.legend_handles, [t.get_text() for t in legend.get_texts()]
    size = legend.get_texts()[0].get_fontsize() if labels else None
    axis_box = ax.xaxis.get_tightbbox(renderer)
    bottom = ax.get_window_extent(renderer).y0
    drop = (bottom - axis_box.y0 if axis_box is not None else 0) * 72 / figure.dpi + 4  # points
    under = ax.transAxes + ScaledTranslation(0, -drop / 72, figure.dpi_scale_trans)
    for columns in range(len(labels), 0, -1):
        placed = ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0),
                           bbox_transform=under, ncol=columns, borderaxespad=0, fontsize=size)
        if placed.get_window_extent(renderer).width <= width_px:
            break
    return True


def narrow_layout(figure: Figure, width_px: float, dpi: float,
                  points: float = SMALLEST_POINTS) -> None:
    """Redraw ``figure`` in place for a screen ``width_px`` pixels wide (a phone), to be saved
    at ``dpi``: panels side by side go into one column, legends beside their axes go under
    them, no text stays under ``points``, and the figure narrows until its smallest text is
    ``LEGIBLE_PX`` tall when the whole figure is shown ``width_px`` wide."""
    _stack_panels(figure)
    _raise_small_text(figure, points)
    target = width_px * smallest_text_points(figure) * dpi / 72 / LEGIBLE_PX  # pixels
    width, height = figure.get_size_inches()
    figure.set_size_inches(min(width, target / dpi), height)
    _relayout(figure)
    moved = [_legend_below(ax, 0.95 * target * figure.dpi / dpi) for ax in figure.axes]
    for attempt in range(3):  # labels and legends stick out of the axes: shrink until it fits
        if attempt or any(moved):
            _relayout(figure)
        actual = natural_width(figure, dpi)
        if actual <= target * 1.01:
            break
        width = figure.get_size_inches()[0]
        figure.set_size_inches(max(width - (actual - target) / dpi, 1.0), height)
