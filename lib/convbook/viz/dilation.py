"""Dilated kernels drawn: their taps on an image, the positions a stack reads, and scores
against receptive field."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from convbook.viz.receptive import image_array, plot_erf
from convbook.viz.style import PALETTE, family_colour, legend_outside


def plot_taps(image: torch.Tensor, dilations: list[int], kernel_size: int = 3) -> Figure:
    """One panel per dilation: the k × k taps of one kernel centred on the image, and the
    (d(k−1)+1)² square they span; every position inside the square but off the taps has
    weight 0."""
    picture = image_array(image)
    h, w = picture.shape[:2]
    cy, cx = h // 2, w // 2
    figure, axes = plt.subplots(1, len(dilations), figsize=(2.7 * len(dilations), 3.0),
                                squeeze=False)
    for ax, d in zip(axes[0], dilations):
        ax.imshow(picture, interpolation="nearest")
        half = d * (kernel_size - 1) // 2
        ax.add_patch(Rectangle((cx - half - 0.5, cy - half - 0.5), 2 * half + 1, 2 * half + 1,
                               fill=False, edgecolor=PALETTE[1], linewidth=1.6))
        taps = [(cy + d * (i - kernel_size // 2), cx + d * (j - kernel_size // 2))
                for i in range(kernel_size) for j in range(kernel_size)]
        ax.scatter([t[1] for t in taps], [t[0] for t in taps], s=34, color=PALETTE[0],
                   edgecolor="white", linewidth=1.0, zorder=3)
        span = d * (kernel_size - 1) + 1
        ax.set_title(f"dilation {d}: {kernel_size**2} taps\nover {span}×{span}")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    figure.tight_layout()
    return figure


# plot_read_grids' shades (values on GRID_CMAP), darkest first, as its key names them
GRID_CMAP = "Blues"
SHADES = {"read by the unit": 1.0, "in the field, not read": 0.25, "outside the receptive field": 0.0}


def plot_read_grids(grids: dict[str, torch.Tensor], coverages: dict[str, float],
                    side: int | None = None) -> Figure:
    """One panel per schedule: the input positions one output unit reads (dark) inside its
    receptive field (light), all panels on the same scale (``side``: the largest field; the
    palest shade is outside a smaller field), with a key to the three shades below."""
    side = side or max(g.shape[0] for g in grids.values())
    figure, axes = plt.subplots(1, len(grids), figsize=(2.7 * len(grids), 3.5), squeeze=False)
    for ax, (name, grid) in zip(axes[0], grids.items()):
        canvas = np.full((side, side), SHADES["outside the receptive field"])
        offset = (side - grid.shape[0]) // 2
        field = canvas[offset:offset + grid.shape[0], offset:offset + grid.shape[1]]
        field[...] = SHADES["in the field, not read"]
        field[grid.numpy()] = SHADES["read by the unit"]
        ax.imshow(canvas, cmap=GRID_CMAP, vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"rates {name}\n{grid.shape[0]}×{grid.shape[0]}, "
                     f"{coverages[name]:.0%} read")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    figure.tight_layout(rect=(0, 0.1, 1, 1))
    colours = plt.get_cmap(GRID_CMAP)
    figure.legend(handles=[Patch(facecolor=colours(value), edgecolor="#999999", label=label)
                           for label, value in SHADES.items()],
                  loc="lower center", ncol=len(SHADES), frameon=False)
    return figure


def plot_iou_against_field(rows: list[dict], classes: tuple[str, ...]) -> Figure:
    """Per-class IoU (mean over seeds) against receptive field, one marker per schedule and
    one panel per class; a bar of one standard deviation over seeds where a row gives it
    (``"<class> sd"``; none where it is missing or None, i.e. one seed)."""
    figure, axes = plt.subplots(1, len(classes), figsize=(3.2 * len(classes) + 1.8, 3.2),
                                sharey=True, squeeze=False)
    xs = _dodged([row["field"] for row in rows])
    for ax, name in zip(axes[0], classes):
        for x, row in zip(xs, rows):
            colour = family_colour(row["schedule"])
            ax.scatter(x, 100 * row[name], s=50, label=row["schedule"], color=colour, zorder=3)
            spread = row.get(f"{name} sd")
            if spread is not None:
                ax.errorbar(x, 100 * row[name], yerr=100 * spread, color=colour, capsize=3,
                            linewidth=1.2, zorder=2)
        ax.set_title(f"{name} pixels")
        ax.set_xlabel("receptive field (pixels)")
    axes[0][0].set_ylabel("IoU (%)")
    legend_outside(axes[0][-1])
    figure.tight_layout()
    return figure


def _dodged(fields: list[float], step: float = 0.8) -> list[float]:
    """Each field, moved sideways by ``step`` pixels per other schedule sharing it, so that
    points (and their bars) at one field sit side by side instead of on top of each other."""
    out = []
    for i, field in enumerate(fields):
        same = [j for j, other in enumerate(fields) if other == field]
        out.append(field + step * (same.index(i) - (len(same) - 1) / 2))
    return out


def plot_rings(images: torch.Tensor, targets: torch.Tensor, count: int = 4,
               names: tuple[str, ...] = ("outside", "ring", "inside")) -> Figure:
    """The first ``count`` ring images (top) and their per-pixel labels (bottom)."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    colours = ("#d9d9d9", PALETTE[1], PALETTE[0])
    figure, axes = plt.subplots(2, count, figsize=(2.0 * count + 1.6, 4.2), squeeze=False)
    for i in range(count):
        axes[0][i].imshow(images[i, 0].numpy(), cmap="gray", interpolation="nearest")
        axes[1][i].imshow(targets[i].numpy(), cmap=ListedColormap(colours), vmin=0,
                          vmax=len(colours) - 1, interpolation="nearest")
        for ax in (axes[0][i], axes[1][i]):
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
    axes[0][0].set_ylabel("image")
    axes[1][0].set_ylabel("labels")
    axes[1][-1].legend(handles=[Patch(color=c, label=n) for c, n in zip(colours, names)],
                       loc="upper left", bbox_to_anchor=(1.04, 1), borderaxespad=0)
    figure.tight_layout()
    return figure


def plot_gridding_erfs(maps: dict[str, torch.Tensor], fields: dict[str, int]) -> Figure:
    """Where each schedule's measured gradient is not zero (its holes are the zeros), in its
    receptive field."""
    figure, axes = plt.subplots(1, len(maps), figsize=(2.7 * len(maps), 3.0), squeeze=False)
    for ax, (name, erf) in zip(axes[0], maps.items()):
        plot_erf((erf > 0).float(), fields[name], f"rates {name}", ax=ax)
    figure.tight_layout()
    return figure
