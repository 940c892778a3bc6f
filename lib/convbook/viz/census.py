"""What real architectures are made of (``convbook.census``), as a figure."""

from __future__ import annotations

import matplotlib.pyplot as plt

from convbook.census import KINDS, Census
from convbook.viz.style import family_colour, legend_outside


def plot_census(censuses: list[Census]):
    """Share of MACs by kind of layer, one bar per model in order of publication."""
    ordered = sorted(censuses, key=lambda c: (c.year or 0))
    kinds = [k for k in KINDS if any(c.macs.get(k, 0) for c in ordered)]
    figure, ax = plt.subplots(figsize=(9.6, 3.8))
    bottom = [0.0] * len(ordered)
    for kind in kinds:
        shares = [100 * c.mac_share(kind) for c in ordered]
        ax.bar(range(len(ordered)), shares, bottom=bottom, label=kind,
               color=family_colour(kind), width=0.75)
        bottom = [b + s for b, s in zip(bottom, shares)]
    for i, c in enumerate(ordered):
        if c.shuffles:
            ax.annotate("shuffles", (i, 101), ha="center", va="bottom", fontsize=9)
    ax.set_xticks(range(len(ordered)), [f"{c.name}\n{c.year}" for c in ordered], rotation=45,
                  ha="right", fontsize=9)
    ax.set_ylabel("share of MACs (%)")
    ax.set_ylim(0, 110)
    legend_outside(ax)
    figure.tight_layout()
    return figure
