"""How large the gradient is at each layer: the quantity behind "vanishing gradients".

For every convolution (in the order the input meets them) the root mean square of the loss
gradient's entries with respect to its weights (so layers of different widths compare),
averaged over a few batches. A network whose early layers get
gradients orders of magnitude smaller than its late ones suffers from vanishing gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from convbook.blocks.validate import check_positive
from convbook.train import normalize


def conv_layers(model: nn.Module) -> list[nn.Conv2d]:
    """The model's 3x3 (and larger) convolutions in registration order (shortcut 1x1s left out)."""
    return [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size[0] > 1]


def layer_gradient_norms(model: nn.Module, data: tuple[torch.Tensor, torch.Tensor],
                         batches: int = 4, batch_size: int = 64) -> list[float]:
    """Per-layer RMS gradient ||dL/dW|| / sqrt(#W) of ``model`` on the first batches of
    ``data`` (uint8 images, labels), in train mode, without changing the weights."""
    check_positive("batches", batches)
    images, labels = data
    device = next(model.parameters()).device
    layers = conv_layers(model)
    totals = torch.zeros(len(layers))
    was_training = model.training
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}  # BN statistics move in train mode
    used = 0
    for i in range(0, min(len(labels), batches * batch_size), batch_size):
        x = normalize(images[i : i + batch_size].to(device))
        loss = F.cross_entropy(model(x), labels[i : i + batch_size].to(device))
        grads = torch.autograd.grad(loss, [layer.weight for layer in layers])
        totals += torch.stack([(g.norm() / g.numel() ** 0.5).cpu() for g in grads])
        used += 1
    model.load_state_dict(state)
    model.train(was_training)
    return (totals / max(used, 1)).tolist()


def first_to_last_ratio(norms: list[float]) -> float:
    """Gradient norm of the first layer over that of the last: << 1 means vanishing."""
    return norms[0] / norms[-1] if norms and norms[-1] > 0 else float("nan")


def at_initialisation(depth: int, width: int, data: tuple[torch.Tensor, torch.Tensor],
                      seed: int = 0, batches: int = 4) -> dict[str, list[float]]:
    """Per-layer gradient RMS of freshly initialised plain and residual CIFAR networks of
    ``depth``, with and without batch norm, on the first batches of ``data``."""
    from convbook.nets import CifarResNet

    device = data[0].device
    series = {}
    for norm in (True, False):
        for skip in (False, True):
            torch.manual_seed(seed)
            model = CifarResNet(depth, width, skip=skip, norm=norm).to(device)
            name = f"{'residual' if skip else 'plain'}, {'with' if norm else 'no'} batch norm"
            series[name] = layer_gradient_norms(model, data, batches=batches)
    return series
