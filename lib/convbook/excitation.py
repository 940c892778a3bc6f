"""What squeeze-and-excitation blocks learn: the channel weights they give each image.

``collect`` runs images through a model and records, for every channel gate (an SE block, or
one of the simpler gates of ``blocks.se`` chapter 8 compares it with), the weight it gives
each channel of each image. ``class_specificity`` measures how much of the weights' spread lies
between classes: the share of variance explained by the class means (0: the same weights for
every class; 1: every image of a class gets its class's weights exactly).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from convbook.blocks.se import CHANNEL_GATES
from convbook.errors import ConfigError
from convbook.train import normalize


@torch.no_grad()
def collect(model: nn.Module, images: torch.Tensor, batch_size: int = 500,
            what: str = "weights") -> list[torch.Tensor]:
    """For each channel gate (SE block or ``blocks.se``'s simpler gates; input side first), an
    N x C tensor of its channel weights
    (``what="weights"``) or of the squeezed features they are computed from, each channel's
    mean over the map (``what="squeeze"``)."""
    if what not in ("weights", "squeeze"):
        raise ConfigError(f"what must be 'weights' or 'squeeze', got {what!r}")
    return _record(model, images, batch_size)[what]


def _record(model: nn.Module, images: torch.Tensor, batch_size: int) -> dict[str, list[torch.Tensor]]:
    """Weights and squeezed features of every channel gate, in one pass over ``images``."""
    blocks = [m for m in model.modules() if isinstance(m, CHANNEL_GATES)]
    if not blocks:
        raise ConfigError(f"the model has no channel gates "
                          f"({', '.join(g.__name__ for g in CHANNEL_GATES)}); build it with "
                          f"one, e.g. nets.CifarResNet(14, 8, se_reduction=2)")
    chunks: dict[str, list[list[torch.Tensor]]] = {"weights": [[] for _ in blocks],
                                                   "squeeze": [[] for _ in blocks]}
    hooks = []
    for k, block in enumerate(blocks):
        for what, module in (("weights", block.scale_activation), ("squeeze", block.avgpool)):
            hooks.append(module.register_forward_hook(
                lambda _m, _i, out, k=k, what=what: chunks[what][k].append(
                    out.flatten(1).float().cpu())))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for i in range(0, len(images), batch_size):
                model(normalize(images[i : i + batch_size].to(device)))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return {what: [torch.cat(c) for c in per_block] for what, per_block in chunks.items()}


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


@dataclass(frozen=True)
class BlockMeasures:
    """What one SE block of one network does over a set of images."""

    specificity: float  # class specificity of its channel weights
    squeeze_specificity: float  # of the squeezed features the weights are computed from
    spread: float  # mean over channels of the weights' standard deviation across images
    level: float  # mean weight over channels and images
    class_shift: float  # mean over classes and channels of |class mean − mean of all images|


def block_measures(model: nn.Module, images: torch.Tensor,
                   labels: torch.Tensor) -> list[BlockMeasures]:
    """``BlockMeasures`` of every SE block of ``model`` (input side first) over ``images``."""
    labels = labels.cpu()
    recorded = _record(model, images, batch_size=500)
    weights, squeezed = recorded["weights"], recorded["squeeze"]
    out = []
    for w, z in zip(weights, squeezed):
        overall = w.mean(dim=0)
        shift = torch.stack([(w[labels == c].mean(dim=0) - overall).abs()
                             for c in labels.unique()]).mean()
        out.append(BlockMeasures(class_specificity(w, labels), class_specificity(z, labels),
                                 float(w.std(dim=0).mean()), float(overall.mean()),
                                 float(shift)))
    return out


@torch.no_grad()
def recalibrate_batch_norm(model: nn.Module, images: torch.Tensor, batch_size: int = 500) -> None:
    """Set every batch norm's running statistics to their average over ``images`` (uint8),
    weights untouched. An untrained network's batch norms hold mean 0 and variance 1, so in
    eval mode they do not normalise; after this they do, as they would on a training step."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    if len(images) == 0:
        raise ConfigError("recalibrate_batch_norm needs at least one image")
    momenta = [m.momentum for m in norms]
    was_training = model.training
    device = next(model.parameters()).device
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches
    model.train()
    try:
        for i in range(0, len(images), batch_size):
            model(normalize(images[i : i + batch_size].to(device)))
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.train(was_training)
