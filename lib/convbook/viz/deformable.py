"""Figures of chapter 10: digits at several scales, accuracy and effective dilation against
scale, and where a trained deformable network reads."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from convbook.deformation import (
    LAYERS,
    POSITIONS,
    Gallery,
    deformable_layers,
    layer_inputs,
    to_image,
)
from convbook.synthetic import DIGIT_SIZE, DigitData, as_images
from convbook.viz.style import PALETTE, family_colour, legend_outside


def plot_accuracy_by_scale(by_scale: dict[str, dict[float, float]],
                           train_scales: tuple[float, float]):
    """Test accuracy against digit scale, one line per network, the training scales shaded."""
    figure, ax = plt.subplots(figsize=(5.6, 3.4))
    ax.axvspan(*train_scales, color="#999999", alpha=0.18, label="training scales")
    for name, values in by_scale.items():
        ax.plot(list(values), [100 * v for v in values.values()], marker="o", label=name,
                color=family_colour(name))
    ax.set_xlabel("digit scale at test (1 = 14 pixels tall)")
    ax.set_ylabel("test accuracy (%)")
    legend_outside(ax)
    figure.tight_layout()
    return figure


def plot_dilation_by_scale(found: dict):
    """Effective dilation of the first deformable layer against digit scale, on the digit and
    on the background (``c10.adaptation``'s measures, mean over seeds)."""
    seeds = found["per_seed"]
    figure, ax = plt.subplots(figsize=(5.4, 3.3))
    for where, colour in (("object", PALETTE[0]), ("background", PALETTE[7])):
        scales = list(seeds[0][where])
        means = [np.nanmean([s[where][x] for s in seeds]) for x in scales]
        ax.plot(scales, means, marker="o", color=colour,
                label="on the digit" if where == "object" else "background")
    ax.axhline(1, color="#555555", linestyle=":", label="plain kernel")
    ax.set_xlabel("digit scale at test")
    ax.set_ylabel("effective dilation")
    legend_outside(ax)
    figure.tight_layout()
    return figure


@torch.no_grad()
def plot_offsets(model: nn.Module, data: DigitData, scale: float = 1.6):
    """The first deformable layer's mean offset at every position, as arrows on a test digit
    (in image pixels)."""
    x, y, _ = data.tests[scale]
    layer = deformable_layers(model)[0]
    inputs = layer_inputs(model, as_images(x[:1]))[0]
    offset, _ = layer.offsets_and_mask(inputs)
    size = offset.shape[-1]
    stride = DIGIT_SIZE // size
    field = offset[0].view(9, 2, size, size).mean(0).cpu() * stride  # Δy, Δx in pixels
    centres = to_image(torch.arange(size).float(), stride)
    figure, ax = plt.subplots(figsize=(4.2, 4.0))
    ax.imshow(x[0, 0].clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    gy, gx = torch.meshgrid(centres, centres, indexing="ij")
    ax.quiver(gx, gy, field[1], field[0], color=PALETTE[1], angles="xy", scale_units="xy",
              scale=1, width=0.006)
    ax.set_title(f"mean offset per position, a {int(y[0])} at scale {scale:g}")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    figure.tight_layout()
    return figure


def plot_examples(data: DigitData, scales: tuple[float, ...] = (0.5, 0.7, 1.0, 1.4, 1.6)):
    """The first test digit at each of ``scales``, the first two trained-size training digits."""
    figure, axes = plt.subplots(1, len(scales) + 2, figsize=(1.7 * (len(scales) + 2), 2.2))
    shown = [(data.train[0][i, 0], f"training, {int(data.train[1][i])}") for i in range(2)]
    shown += [(data.tests[s][0][0, 0], f"test, scale {s:g}") for s in scales]
    for ax, (image, title) in zip(axes, shown):
        ax.imshow(image.clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    figure.tight_layout()
    return figure


def plot_gallery(gallery: Gallery, layer: str = LAYERS[1]):
    """The gallery: each test digit (columns), on the digit and on the background (rows)."""
    names = list(gallery.images)
    figure, axes = plt.subplots(len(POSITIONS), len(names), figsize=(2.7 * len(names) + 1.8, 5.8),
                                squeeze=False)
    for row, position in enumerate(POSITIONS):
        for col, name in enumerate(names):
            draw_sampling(axes[row][col], gallery, name, position, layer)
    axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.04, 1), borderaxespad=0)
    figure.tight_layout()
    return figure


def draw_sampling(ax, gallery: Gallery, image: str, position: str, layer: str,
                  title: bool = True) -> None:
    """One gallery entry on ``ax``: the digit, the plain kernel's grid, the deformable points
    and the output position."""
    ax.imshow(gallery.images[image].clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1,
              interpolation="nearest")
    grid = gallery.plain[(image, position, layer)]
    ax.scatter(grid[:, 1], grid[:, 0], s=14, marker="s", facecolor="none",
               edgecolor=PALETTE[1], linewidth=0.9, label="plain kernel")
    pts = gallery.points[(image, position, layer)]
    ax.scatter(pts[:, 1], pts[:, 0], s=10, color=PALETTE[0], edgecolor="white", linewidth=0.3,
               label="deformable")
    cy, cx = gallery.centre[(image, position)]
    ax.scatter([cx], [cy], s=70, marker="*", color=PALETTE[3], edgecolor="white",
               linewidth=0.6, label="output position")
    ax.set_xlim(-0.5, DIGIT_SIZE - 0.5)
    ax.set_ylim(DIGIT_SIZE - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    if title:
        full = 9 if layer == LAYERS[0] else 81
        ax.set_title(f"{image}, {position}:\n{len(pts)} of {full} points on the map", fontsize=10)
