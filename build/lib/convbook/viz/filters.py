"""First-layer filters as small colour images, grouped by tower."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure


def filter_grid(weight: torch.Tensor, columns: int = 16, gap: int = 1) -> np.ndarray:
    """N x 3 x k x k weights -> one RGB mosaic; each filter scaled to [0, 1] on its own."""
    w = weight.detach().float().cpu()
    n, _, k, _ = w.shape
    lo = w.amin(dim=(1, 2, 3), keepdim=True)
    hi = w.amax(dim=(1, 2, 3), keepdim=True)
    w = (w - lo) / (hi - lo).clamp_min(1e-12)
    rows = -(-n // columns)
    mosaic = np.ones((rows * (k + gap) + gap, columns * (k + gap) + gap, 3))
    for i in range(n):
        r, c = divmod(i, columns)
        y, x = gap + r * (k + gap), gap + c * (k + gap)
        mosaic[y : y + k, x : x + k] = w[i].permute(1, 2, 0).numpy()
    return mosaic


def plot_towers(weight: torch.Tensor, towers: list[int], shares: torch.Tensor | None = None,
                title: str = "") -> Figure:
    """One mosaic per tower, each filter ordered by colour share when ``shares`` is given."""
    towers_t = torch.as_tensor(towers)
    labels = sorted(set(towers))
    figure, axes = plt.subplots(1, len(labels), figsize=(3.6 * len(labels), 2.6), squeeze=False)
    for ax, t in zip(axes[0], labels):
        idx = torch.nonzero(towers_t == t).flatten()
        if shares is not None:
            idx = idx[torch.argsort(shares[idx])]
        ax.imshow(filter_grid(weight[idx], columns=8), interpolation="nearest")
        mean = f", mean colour share {float(shares[idx].mean()):.2f}" if shares is not None else ""
        ax.set_title(f"tower {t}{mean}", fontsize=10)
        ax.axis("off")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_tower_shares(shares: list[tuple[list[float], list[float]]], seeds: list[int],
                      initial: float | None = None) -> Figure:
    """Each conv1 filter's colour share, one column per tower and seed (``shares[i]`` holds
    seed ``seeds[i]``'s two towers), with each column's mean as a bar and, dashed, the mean
    share at initialisation."""
    from convbook.viz.style import PALETTE, legend_outside

    figure, ax = plt.subplots(figsize=(max(5.2, 2.8 + 1.5 * len(seeds)), 3.0))
    rng = np.random.default_rng(0)  # jitter only, so the points do not overlap
    for i, towers in enumerate(shares):
        for t, values in enumerate(towers):
            x = 3 * i + t
            ax.scatter(x + rng.uniform(-0.25, 0.25, len(values)), values, s=10,
                       color=PALETTE[t], alpha=0.75, label=f"tower {t}" if i == 0 else None)
            ax.hlines(float(np.mean(values)), x - 0.35, x + 0.35, color="black", linewidth=1.5)
    if initial is not None:
        ax.axhline(initial, color="#555555", linestyle="--", linewidth=1,
                   label="mean at initialisation")
    ax.set_xticks([3 * i + 0.5 for i in range(len(seeds))], [f"seed {s}" for s in seeds])
    ax.set_ylim(0, 1)
    ax.set_ylabel("colour share of a filter")
    legend_outside(ax)
    figure.tight_layout()
    return figure
