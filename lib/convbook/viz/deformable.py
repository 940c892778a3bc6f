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
    cell_masks,
    deformable_layers,
    effective_dilation,
    layer_inputs,
    to_image,
)
from convbook.errors import ConfigError
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


def _spread_out(cells: torch.Tensor, count: int) -> list[tuple[int, int]]:
    """Up to ``count`` of ``cells`` (K x 2), each the farthest from those already picked."""
    if not len(cells):
        return []
    picked = [cells[0]]
    while len(picked) < min(count, len(cells)):
        gaps = torch.stack([((cells - p) ** 2).sum(1) for p in picked]).min(0).values
        picked.append(cells[int(gaps.argmax())])
    return [tuple(int(v) for v in c) for c in picked]


@torch.no_grad()
def plot_offsets(model: nn.Module, data: DigitData, scales: tuple[float, ...] = (0.7, 1.6),
                 positions: int = 3):
    """Each tap's own offset, not their mean (a symmetric spread has zero mean): for a test
    digit at each of ``scales`` (rows), the first deformable layer's nine taps at ``positions``
    output positions on the digit and one on the background, each drawn as an arrow from where
    a plain 3×3 kernel reads to where the deformable one reads (left); and that layer's
    effective dilation at every position (pairs of taps on the map only, as
    ``deformation.dilation_by_scale`` measures it; grey where no pair is), over the digit's
    outline (right). Image pixels; the dashed frame is the feature map's edge (taps outside it
    read zero padding)."""
    layer = deformable_layers(model, least=1)[0]
    figure, axes = plt.subplots(len(scales), 2, figsize=(8.4, 3.9 * len(scales)), squeeze=False)
    maps = []
    for row, scale in enumerate(scales):
        if scale not in data.tests:
            raise ConfigError(f"no test digits at scale {scale}; scales are {list(data.tests)}")
        x, y, masks = data.tests[scale]
        inputs = layer_inputs(model, as_images(x[:1]))[0]
        points = layer.sampling_points(inputs)[0].cpu()  # H x W x 9 x 2, map coordinates
        offset, _ = layer.offsets_and_mask(inputs)
        size = points.shape[0]
        stride = DIGIT_SIZE // size
        shifts = offset[0, :18].cpu().view(9, 2, size, size).permute(2, 3, 0, 1)
        grid = points - shifts  # where a plain kernel's taps read
        obj, background = cell_masks(masks[:1], stride, size)
        on_digit = _spread_out(torch.nonzero(obj[0]), positions)
        chosen = on_digit + _spread_out(torch.nonzero(background[0]), 1)
        arrows, dilation = axes[row]
        image = x[0, 0].clamp(0, 1).numpy()
        arrows.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        for k, (py, px) in enumerate(chosen):
            start, end = to_image(grid[py, px], stride), to_image(points[py, px], stride)
            colour = PALETTE[k % len(PALETTE)]
            arrows.quiver(start[:, 1], start[:, 0], end[:, 1] - start[:, 1],
                          end[:, 0] - start[:, 0], color=colour, angles="xy",
                          scale_units="xy", scale=1, width=0.005)
            arrows.scatter(end[:, 1], end[:, 0], s=12, color=colour, edgecolor="white",
                           linewidth=0.3)
            centre = to_image(torch.tensor([py, px]).float(), stride)
            arrows.scatter([centre[1]], [centre[0]], s=60, marker="*", color=colour,
                           edgecolor="white", linewidth=0.6,
                           label=f"on the digit {k + 1}" if k < len(on_digit) else "background")
        edge = to_image(torch.tensor([-0.5, size - 0.5]), stride)
        arrows.plot([edge[0], edge[1], edge[1], edge[0], edge[0]],
                    [edge[0], edge[0], edge[1], edge[1], edge[0]], color="#777777",
                    linestyle="--", linewidth=0.8)
        reach = torch.stack([to_image(points[py, px], stride) for py, px in chosen]).view(-1, 2)
        # as far as the taps reach, but at most three quarters of a map past its edge
        low = max(-0.75 * DIGIT_SIZE, min(-2.0, float(reach.min()) - 2))
        high = min(1.75 * DIGIT_SIZE, max(DIGIT_SIZE + 1.0, float(reach.max()) + 2))
        arrows.set_xlim(low, high)
        arrows.set_ylim(high, low)
        arrows.set_title(f"each tap's offset, a {int(y[0])} at scale {scale:g}", fontsize=10)
        arrows.legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=len(chosen),
                      fontsize=8, handletextpad=0.2, columnspacing=0.8, frameon=False)
        spread = effective_dilation(points[None], size)[0]  # pairs on the map, as measured
        colours = plt.get_cmap("viridis").with_extremes(bad="#c8c8c8")  # no pair on the map
        shown = dilation.imshow(spread.numpy(), cmap=colours, interpolation="nearest",
                                extent=(-0.5, DIGIT_SIZE - 0.5, DIGIT_SIZE - 0.5, -0.5))
        dilation.contour(masks[0].float().numpy(), levels=[0.5], colors="white",
                         linewidths=1.0)
        maps.append((shown, spread))
        figure.colorbar(shown, ax=dilation, fraction=0.046, pad=0.04,
                        label="effective dilation (plain: 1)")
        dilation.set_title(f"effective dilation per position, scale {scale:g}", fontsize=10)
        for ax in (arrows, dilation):
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
    values = torch.cat([spread.flatten() for _, spread in maps])
    values = values[~values.isnan()]
    low = float(values.min()) if len(values) else 1.0
    high = float(values.max()) if len(values) else 1.0
    for shown, _ in maps:  # one colour scale for every row, so scales compare
        shown.set_clim(min(low, 1.0), max(high, 1.0 + 1e-6))
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
