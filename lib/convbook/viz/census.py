"""What real architectures are made of (``convbook.census``), as figures."""

from __future__ import annotations

import matplotlib.pyplot as plt

from convbook.census import KINDS, Census
from convbook.viz.style import family_colour, legend_outside


def _ordered(censuses: list[Census]) -> list[Census]:
    return sorted(censuses, key=lambda c: (c.year or 0))


def _label_models(ax, ordered: list[Census], after: int | None) -> None:
    ax.set_xticks(range(len(ordered)), [f"{c.name} ({c.year})" for c in ordered], rotation=55,
                  ha="right", rotation_mode="anchor", fontsize=8)
    if after is not None:
        later = [i for i, c in enumerate(ordered) if c.year is not None and c.year > after]
        if later and later[0] > 0:
            ax.axvline(later[0] - 0.5, color="0.3", linestyle=":", linewidth=1)


def plot_census(censuses: list[Census], after: int | None = None):
    """Share of MACs by kind of layer, one bar per model in order of publication; a dotted
    line before the first model published after ``after`` (a year), when given."""
    ordered = _ordered(censuses)
    kinds = [k for k in KINDS if any(c.macs.get(k, 0) for c in ordered)]
    figure, ax = plt.subplots(figsize=(10.4, 4.6))
    bottom = [0.0] * len(ordered)
    for kind in kinds:
        shares = [100 * c.mac_share(kind) for c in ordered]
        ax.bar(range(len(ordered)), shares, bottom=bottom, label=kind,
               color=family_colour(kind), width=0.75)
        bottom = [b + s for b, s in zip(bottom, shares)]
    for i, c in enumerate(ordered):
        if c.shuffles:
            ax.annotate("shuffles", (i, 101), ha="center", va="bottom", fontsize=8)
    _label_models(ax, ordered, after)
    ax.set_ylabel("share of MACs (%)")
    ax.set_ylim(0, 110)
    legend_outside(ax)
    figure.tight_layout()
    return figure


def plot_narrowing(censuses: list[Census], after: int | None = None):
    """Share of MACs in narrowing pointwise layers that lead into a bottleneck and out of an
    inverted bottleneck, side by side, one pair of bars per model in order of publication."""
    ordered = _ordered(censuses)
    figure, ax = plt.subplots(figsize=(10.4, 4.2))
    positions = range(len(ordered))
    for offset, (label, field, colour) in zip(
            (-0.2, 0.2), (("into a bottleneck", "bottleneck_1x1_macs", "#4c72b0"),
                          ("out of an inverted bottleneck", "inverted_1x1_macs", "#dd8452"))):
        shares = [100 * getattr(c, field) / c.total_macs if c.total_macs else 0 for c in ordered]
        ax.bar([p + offset for p in positions], shares, width=0.4, label=label, color=colour)
    _label_models(ax, ordered, after)
    ax.set_ylabel("share of MACs in\nnarrowing 1×1 layers (%)")
    legend_outside(ax)
    figure.tight_layout()
    return figure
