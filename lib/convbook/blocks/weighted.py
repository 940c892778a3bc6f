"""Cross-layer connections that carry learned weights (the review's open question Q1, chapter 11).

A residual block adds its branch F(x) to its shortcut s(x). Each ``connection`` below lets the
network learn how much of each to keep:

- ``"identity"``: relu(F(x) + s(x)), He et al.'s block, nothing learned;
- ``"scalar"``: relu(F(x) + λ s(x)), one learned λ per block, starting at 1 (He et al. 2016b,
  "constant scaling", made learnable);
- ``"rezero"``: relu(α F(x) + s(x)), one learned α per block, starting at 0 (Bachlechner et al.
  2020, ReZero), so every block starts as the identity;
- ``"zero_gamma"``: the branch's last batch norm starts with γ = 0 (Goyal et al. 2017;
  torchvision's ``zero_init_residual``): the same start as ReZero, one γ per channel;
- ``"gate"``: relu(g ⊙ F(x) + (1 − g) ⊙ s(x)), g = σ(1×1 conv of s(x)) per channel and
  position (highway networks, Srivastava et al. 2015; He et al. 2016b's "exclusive gating"),
  starting mostly on the shortcut (bias ``GATE_BIAS``);
- ``"dense"``: identity blocks, and after each block a learned weighted sum of the outputs of
  every earlier block of the stage (and of the stage's input when its shape matches) becomes
  the next block's input (DenseFormer's depth-weighted average, Pagliardini et al. 2024; the
  same idea as EfficientDet's weighted feature fusion). The weights start one-hot on the newest
  output, so the network starts as the plain ResNet.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from convbook.blocks.conv import ConvBNAct
from convbook.blocks.residual import PadShortcut
from convbook.errors import ConfigError

CONNECTIONS = ("identity", "scalar", "rezero", "zero_gamma", "gate", "dense")
NEEDS_NORM = ("zero_gamma",)
GATE_BIAS = -2.0  # σ(−2) ≈ 0.12: the gate starts with 88 % of the shortcut and 12 % of F(x)


def check_connection(connection: str, norm: bool) -> str:
    if connection not in CONNECTIONS:
        raise ConfigError(f"connection must be one of {', '.join(CONNECTIONS)}, got "
                          f"{connection!r}")
    if connection in NEEDS_NORM and not norm:
        raise ConfigError(f"connection {connection!r} zero-initialises a batch norm's γ, so it "
                          f"needs norm=True; without batch norm use 'rezero' (the same start)")
    return connection


class WeightedBlock(nn.Module):
    """A CIFAR ResNet basic block (two 3×3 conv units, option A shortcut where the shape
    changes) whose connection is one of ``CONNECTIONS`` except ``"dense"`` (a stage-level
    connection: see ``DenseWeightedStage``; its blocks are ``"identity"``)."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 connection: str = "identity", norm: bool = True) -> None:
        super().__init__()
        check_connection(connection, norm)
        if connection == "dense":
            raise ConfigError("'dense' weights whole stages: build a DenseWeightedStage of "
                              "'identity' blocks (nets.WeightedResNet does)")
        self.connection = connection
        self.conv1 = ConvBNAct(in_channels, channels, 3, stride=stride, norm=norm)
        self.conv2 = ConvBNAct(channels, channels, 3, activation=None, norm=norm)
        self.shortcut = (PadShortcut(in_channels, channels, stride)
                         if stride != 1 or in_channels != channels else nn.Identity())
        self.weight = None
        if connection == "scalar":
            self.weight = nn.Parameter(torch.ones(()))
        elif connection == "rezero":
            self.weight = nn.Parameter(torch.zeros(()))
        self.gate = nn.Conv2d(channels, channels, 1) if connection == "gate" else None
        self.relu = nn.ReLU(inplace=True)
        self.reset_connection()

    def reset_connection(self) -> None:
        """Set the connection's own starting values (called again after a network-wide
        initialisation such as ``nets.he_init``, which would overwrite them)."""
        if self.connection == "zero_gamma":
            nn.init.zeros_(self.conv2[1].weight)
        elif self.connection == "gate":
            nn.init.zeros_(self.gate.weight)
            nn.init.constant_(self.gate.bias, GATE_BIAS)
        elif self.weight is not None:
            nn.init.constant_(self.weight, 1.0 if self.connection == "scalar" else 0.0)

    def extra_repr(self) -> str:
        return f"connection={self.connection}"

    def gate_values(self, x: torch.Tensor) -> torch.Tensor:
        """g for input ``x`` (the share of F(x) the gate lets through), per channel and
        position; only for ``connection="gate"``."""
        if self.gate is None:
            raise ConfigError(f"gate_values needs connection='gate', this block is "
                              f"{self.connection!r}")
        return torch.sigmoid(self.gate(self.shortcut(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.conv2(self.conv1(x))
        short = self.shortcut(x)
        if self.connection == "scalar":
            out = branch + self.weight * short
        elif self.connection == "rezero":
            out = self.weight * branch + short
        elif self.connection == "gate":
            g = torch.sigmoid(self.gate(short))
            out = g * branch + (1 - g) * short
        else:
            out = branch + short
        return self.relu(out)


class DenseWeightedStage(nn.Module):
    """Blocks in sequence where block k+1 reads Σ_j α_kj y_j: a learned weighted sum of the
    outputs y_j of every earlier block of the stage (and of the stage's input x when
    ``include_input``, i.e. when it has the blocks' shape). Row k of α starts one-hot on the
    newest output, so an untrained stage computes exactly what its blocks in sequence do."""

    def __init__(self, blocks: list[nn.Module], include_input: bool) -> None:
        super().__init__()
        if not blocks:
            raise ConfigError("a DenseWeightedStage needs at least one block")
        self.blocks = nn.ModuleList(blocks)
        self.include_input = include_input
        offset = 1 if include_input else 0
        self.alphas = nn.ParameterList(
            [nn.Parameter(torch.zeros(k + 1 + offset)) for k in range(len(blocks))])
        self.reset_connection()

    def reset_connection(self) -> None:
        for alpha in self.alphas:
            with torch.no_grad():
                alpha.zero_()
                alpha[-1] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [x] if self.include_input else []
        z = x
        for block, alpha in zip(self.blocks, self.alphas):
            outputs.append(block(z))
            z = sum(a * y for a, y in zip(alpha, outputs))
        return z

    def weight_matrix(self) -> torch.Tensor:
        """α as a (blocks × sources) lower-triangular matrix; sources are the stage input (if
        included) then each block's output. Row k: what block k + 1 (or the stage) reads."""
        n, offset = len(self.blocks), 1 if self.include_input else 0
        matrix = torch.full((n, n + offset), float("nan"))
        for k, alpha in enumerate(self.alphas):
            matrix[k, : k + 1 + offset] = alpha.detach().float().cpu()
        return matrix


# Where each learned connection starts (its value in an untrained network).
STARTS = {"scalar": 1.0, "rezero": 0.0, "zero_gamma": 0.0, "gate": 1 / (1 + math.exp(2.0)),
         "dense": 1.0}


def weighted_blocks(model: nn.Module) -> list[WeightedBlock]:
    """The weighted residual blocks of ``model``, input side first."""
    return [m for m in model.modules() if isinstance(m, WeightedBlock)]


def learned_values(model: nn.Module, connection: str, images: torch.Tensor) -> list[float]:
    """What each block's learned ``connection`` is now, block by block: λ or α as they are,
    zero-init γ as the mean |γ| of the branch's last norm, the gate as its mean over
    ``images`` (uint8, as the model's training saw them), a weighted sum as the weight on the
    newest output; empty for identity. ``STARTS`` gives where each began."""
    blocks = weighted_blocks(model)
    if connection in ("scalar", "rezero"):
        return [b.weight.item() for b in blocks]
    if connection == "zero_gamma":
        return [b.conv2[1].weight.abs().mean().item() for b in blocks]
    if connection == "gate":
        from convbook.train import normalize

        inputs: dict[int, torch.Tensor] = {}
        hooks = [b.register_forward_pre_hook(
            lambda module, args, i=i: inputs.__setitem__(i, args[0])) for i, b in
            enumerate(blocks)]
        device = next(model.parameters()).device
        try:
            with torch.no_grad():
                model.eval()(normalize(images.to(device)))
                return [b.gate_values(inputs[i]).mean().item() for i, b in enumerate(blocks)]
        finally:
            for hook in hooks:
                hook.remove()
    if connection == "dense":
        stages = [m for m in model.modules() if isinstance(m, DenseWeightedStage)]
        return [alpha[-1].item() for stage in stages for alpha in stage.alphas]
    return []
