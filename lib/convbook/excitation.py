"""What squeeze-and-excitation blocks learn: the channel weights they give each image.

``collect`` runs images through a model and records, for every SE block, the weight it gives
each channel of each image. ``class_specificity`` measures how much of the weights' spread lies
between classes: the share of variance explained by the class means (0: the same weights for
every class; 1: every image of a class gets its class's weights exactly).
"""

from __future__ import annotations

import torch
from torch import nn

from convbook.blocks.se import SqueezeExcitation
from convbook.errors import ConfigError
from convbook.tables import Table
from convbook.train import normalize


@torch.no_grad()
def collect(model: nn.Module, images: torch.Tensor, batch_size: int = 500) -> list[torch.Tensor]:
    """For each SE block (input side first), an N x C tensor of its channel weights."""
    blocks = [m for m in model.modules() if isinstance(m, SqueezeExcitation)]
    if not blocks:
        raise ConfigError("the model has no SqueezeExcitation blocks")
    outputs: list[list[torch.Tensor]] = [[] for _ in blocks]
    hooks = [block.scale_activation.register_forward_hook(
        lambda _m, _i, out, k=k: outputs[k].append(out.flatten(1).float().cpu()))
        for k, block in enumerate(blocks)]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(images), batch_size):
            model(normalize(images[i : i + batch_size].to(device)))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return [torch.cat(chunks) for chunks in outputs]


def class_specificity(weights: torch.Tensor, labels: torch.Tensor) -> float:
    """Between-class share of the variance of the weights (summed over channels)."""
    labels = labels.cpu()
    total = weights.var(dim=0, unbiased=False).sum()
    if total <= 0:
        return 0.0
    grand = weights.mean(dim=0)
    between = sum((labels == c).float().mean() * (weights[labels == c].mean(dim=0) - grand).pow(2).sum()
                  for c in labels.unique())
    return float(between / total)


def specificity_table(weights: list[torch.Tensor], labels: torch.Tensor, seed: int = 0) -> Table:
    """Class specificity of every SE block beside the same measure with shuffled labels
    (what chance alone gives for this many images)."""
    generator = torch.Generator().manual_seed(seed)
    shuffled = labels.cpu()[torch.randperm(len(labels), generator=generator)]
    rows = []
    for k, w in enumerate(weights):
        real, chance = class_specificity(w, labels), class_specificity(w, shuffled)
        rows.append({"SE block": k + 1, "channels": w.shape[1], "class specificity": round(real, 4),
                     "with shuffled labels": round(chance, 4),
                     "times chance": round(real / chance, 1) if chance > 0 else float("inf")})
    return Table(rows, caption="Share of the variance of each block's channel weights that lies "
                               "between the class means, over the test images.")
