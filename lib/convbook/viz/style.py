"""One look for every figure of the book."""

from __future__ import annotations

import matplotlib

PALETTE = ("#3b6ea5", "#e07b39", "#4c9f70", "#c04e4e", "#8a6bb8", "#a0785a", "#d46aa8", "#7f7f7f")


def apply_style() -> None:
    """Readable defaults: larger fonts, light grid, no top/right spines, the book's colours."""
    matplotlib.rcParams.update({
        "figure.dpi": 100,
        "savefig.dpi": 100,
        "savefig.bbox": "tight",
        "font.size": 11,
        "axes.titlesize": 12,
        "axes.labelsize": 11,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
        "legend.frameon": False,
    })
