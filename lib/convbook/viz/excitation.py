"""SE channel weights per class, as heat maps (after the SENet paper's excitation plots)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure


def plot_class_means(weights: list[torch.Tensor], labels: torch.Tensor, classes: tuple[str, ...],
                     blocks: list[int]) -> Figure:
    """For each chosen SE block (1-based), the mean weight of each channel (columns) for each
    class (rows)."""
    labels = labels.cpu()
    figure, axes = plt.subplots(1, len(blocks), figsize=(3.4 * len(blocks), 3.3), squeeze=False)
    for ax, block in zip(axes[0], blocks):
        w = weights[block - 1]
        means = torch.stack([w[labels == c].mean(dim=0) for c in range(len(classes))])
        image = ax.imshow(means.numpy(), aspect="auto", cmap="viridis", vmin=0, vmax=1,
                          interpolation="nearest")
        ax.set_title(f"SE block {block}", fontsize=10)
        ax.set_xlabel("channel")
        ax.set_yticks(range(len(classes)), classes, fontsize=8)
        ax.grid(False)
    figure.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="mean weight")
    return figure
