"""Feature maps: what each branch of a multi-branch module computes on a real image."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from convbook.blocks.inception import Branches
from convbook.errors import ConfigError
from convbook.train import normalize
from convbook.viz.receptive import image_array


@torch.no_grad()
def first_branch_outputs(features: torch.nn.Sequential, image: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """Run ``image`` (uint8 3 x H x W) through ``features`` up to its first ``Branches`` module
    and return (branch name, output C x H x W) for each branch."""
    was_training = features.training
    features.eval()
    device = next(features.parameters()).device
    x = normalize(image[None].to(device))
    try:
        for layer in features:
            if isinstance(layer, Branches):
                return [(name, branch(x)[0].float().cpu()) for name, branch in layer.named_children()]
            x = layer(x)
    finally:
        features.train(was_training)
    raise ConfigError("features holds no multi-branch (Branches) module")


def plot_branch_maps(image: torch.Tensor, outputs: list[tuple[str, torch.Tensor]]) -> Figure:
    """The image, then each branch's mean absolute activation (each on its own colour scale)."""
    figure, axes = plt.subplots(1, len(outputs) + 1, figsize=(2.4 * (len(outputs) + 1), 2.7))
    axes[0].imshow(image_array(image), interpolation="nearest")
    axes[0].set_title("input")
    for ax, (name, output) in zip(axes[1:], outputs):
        shown = ax.imshow(output.abs().mean(dim=0).numpy(), cmap="viridis",
                          interpolation="nearest")
        bar = figure.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
        bar.ax.tick_params(labelsize=7)
        ax.set_title(name, fontsize=10)
    for ax in axes:
        ax.axis("off")
    figure.tight_layout()
    return figure
