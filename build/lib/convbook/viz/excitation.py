"""SE channel weights per class, as heat maps (after the SENet paper's excitation plots)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure


def plot_class_means(weights: list[torch.Tensor], labels: torch.Tensor, classes: tuple[str, ...],
                     blocks: list[int]) -> Figure:
    """For each chosen SE block (1-based), how far each class's mean weight of each channel
    (columns) lies from that channel's mean over all images (rows: classes), on one diverging
    scale shared by the blocks: white is "no different from the average image"."""
    labels = labels.cpu()
    deviations = []
    for block in blocks:
        w = weights[block - 1]
        means = torch.stack([w[labels == c].mean(dim=0) for c in range(len(classes))])
        deviations.append(means - w.mean(dim=0))
    limit = max(float(d.abs().max()) for d in deviations) or 1.0
    figure, axes = plt.subplots(1, len(blocks), figsize=(3.2 * len(blocks) + 1.6, 3.4),
                                squeeze=False, sharey=True, layout="constrained")
    for ax, block, deviation in zip(axes[0], blocks, deviations):
        image = ax.imshow(deviation.numpy(), aspect="auto", cmap="RdBu_r", vmin=-limit,
                          vmax=limit, interpolation="nearest")
        ax.set_title(f"SE block {block}")
        ax.set_xlabel("channel")
        ax.grid(False)
    axes[0][0].set_yticks(range(len(classes)), classes)
    figure.colorbar(image, ax=axes[0].tolist(), shrink=0.85,
                    label="class mean − overall mean")
    return figure
