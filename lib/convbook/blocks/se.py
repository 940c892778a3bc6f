"""Squeeze-and-excitation (Hu et al., 2018, https://arxiv.org/abs/1709.01507): average each
channel to one number (squeeze), pass the vector through a small bottleneck of two layers and
a sigmoid (excitation), and scale each channel by its weight."""

from __future__ import annotations

import torch
from torch import nn

from convbook.blocks.validate import check_positive, expect_input


class SqueezeExcitation(nn.Module):
    """SE block with ``channels // reduction`` hidden units; the same layers, in the same order,
    as ``torchvision.ops.SqueezeExcitation`` (1x1 convolutions as the two dense layers)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        check_positive("channels", channels)
        check_positive("reduction", reduction)
        squeezed = max(channels // reduction, 1)  # at least one hidden unit, as torchvision's
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Sigmoid()
        expect_input(self, channels)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """The per-channel weights (N x C x 1 x 1, in (0, 1)) this block gives input ``x``."""
        return self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(x)
