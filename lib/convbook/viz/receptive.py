"""Receptive fields drawn on images, and effective receptive fields as heat maps."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from convbook.errors import ConfigError
from convbook.viz.style import PALETTE, legend_outside


def image_array(image: torch.Tensor) -> np.ndarray:
    """uint8 or float C x H x W (or H x W) tensor -> H x W x 3 array in [0, 1] for imshow."""
    array = image.detach().cpu().float()
    if array.dim() == 2:
        array = array[None]
    if array.shape[0] == 1:
        array = array.expand(3, -1, -1)
    if array.max() > 1.0:
        array = array / 255.0
    return array.permute(1, 2, 0).clamp(0, 1).numpy()


def plot_fields_on_image(
    image: torch.Tensor, fields: list[tuple[str, int]], centre: tuple[int, int] | None = None,
    taps: list[tuple[int, int]] | None = None, ax=None,
) -> Figure:
    """Squares of the given sizes (label, size in pixels) centred on one pixel of ``image``.

    ``taps`` (optional) marks the input positions one unit actually reads, offsets from the centre
    (for a dilated kernel, the holes between them show).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    array = image_array(image)
    h, w = array.shape[:2]
    cy, cx = centre if centre is not None else (h // 2, w // 2)
    ax.imshow(array, interpolation="nearest", extent=(-0.5, w - 0.5, h - 0.5, -0.5))
    for n, (label, size) in enumerate(fields):
        half = size / 2
        color = PALETTE[n % len(PALETTE)]
        ax.add_patch(Rectangle((cx - half, cy - half), size, size, fill=False, linewidth=2,
                               edgecolor=color, label=f"{label}: {size}x{size}"))
    if taps:
        ys, xs = zip(*[(cy + dy, cx + dx) for dy, dx in taps])
        ax.scatter(xs, ys, s=12, color="white", edgecolors="black", linewidths=0.5, zorder=3)
    margin = max([s for _, s in fields] + [1]) / 2 + 1
    ax.set_xlim(min(-0.5, cx - margin), max(w - 0.5, cx + margin))
    ax.set_ylim(max(h - 0.5, cy + margin), min(-0.5, cy - margin))
    ax.grid(False)
    ax.set_xticks([])
    ax.set_yticks([])
    if fields:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=min(len(fields), 3),
                  fontsize=9)
    return ax.figure


def plot_erf(erf: torch.Tensor, analytic_size: int | None = None, title: str = "", ax=None) -> Figure:
    """Heat map of an effective receptive field, with the analytic square drawn over it. The
    colour scale runs from 0 to 1: maps from ``receptive.effective_receptive_field`` are
    divided by their own peak."""
    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 3.2))
    h, w = erf.shape
    ax.imshow(erf.numpy(), cmap="magma", interpolation="nearest", vmin=0.0,
              vmax=max(1.0, float(erf.max())))
    if analytic_size is not None:
        c = (w - 1) / 2, (h - 1) / 2
        half = analytic_size / 2
        ax.add_patch(Rectangle((c[0] - half, c[1] - half), analytic_size, analytic_size,
                               fill=False, edgecolor="#4fc3f7", linewidth=1.5, linestyle="--"))
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    return ax.figure


def sqrt_scale(depths: list[int], sizes: list[float]) -> float:
    """The ``c`` of ``size ≈ c·√depth`` that fits the measured sizes best (least squares over
    every point): Luo et al.'s growth law, placed where the data are rather than at one point."""
    if len(depths) != len(sizes) or not depths:
        raise ConfigError(f"sqrt_scale needs as many sizes as depths (at least one), got "
                          f"{len(depths)} depths and {len(sizes)} sizes")
    if any(d <= 0 for d in depths):
        raise ConfigError(f"depths must be positive, got {list(depths)}")
    return sum(s * d ** 0.5 for d, s in zip(depths, sizes)) / sum(depths)


def plot_growth(depths: list[int], series: dict[str, list[float]], ylabel: str, ax=None) -> Figure:
    """Lines of several quantities against depth (e.g. analytic and effective RF size). A series
    named "effective ..." also gets Luo et al.'s c·√layers, ``c`` fitted to all its points."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.2))
    for label, values in series.items():
        ax.plot(depths, values, marker="o", label=label)
    if "effective" in " ".join(series) and len(depths) > 1:
        name = next(n for n in series if "effective" in n)
        scale = sqrt_scale(depths, series[name])
        ax.plot(depths, [scale * d ** 0.5 for d in depths], color="#777777", linestyle=":",
                label=f"{scale:.1f}·√layers, fitted (Luo et al.)")
    ax.set_xlabel("layers")
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    legend_outside(ax)
    return ax.figure


PEAK_LABEL = "|gradient| ÷ this map's peak"


def plot_erf_row(maps: list[torch.Tensor], analytic_sizes: list[int], titles: list[str],
                 crop: int | None = None, colorbar: str | None = PEAK_LABEL) -> Figure:
    """Several effective receptive fields side by side, each with its analytic square, and one
    colour bar (``colorbar``: its label; None for none) for the 0-to-1 scale they share.

    ``crop`` shows only the centred square of that side, so small fields stay visible.
    """
    if crop is not None:
        maps = [_centre_crop(m, crop) for m in maps]
    figure, axes = plt.subplots(1, len(maps), figsize=(2.6 * len(maps) + 0.6, 2.9),
                                squeeze=False)
    for ax, erf, size, title in zip(axes[0], maps, analytic_sizes, titles):
        plot_erf(erf, size, title, ax=ax)
    figure.tight_layout()
    if colorbar:
        bar = figure.colorbar(axes[0][-1].images[0], ax=list(axes[0]), fraction=0.03, pad=0.02)
        bar.set_label(colorbar)
    return figure


def _centre_crop(erf: torch.Tensor, side: int) -> torch.Tensor:
    h, w = erf.shape
    top, left = max((h - side) // 2, 0), max((w - side) // 2, 0)
    return erf[top : top + side, left : left + side]
