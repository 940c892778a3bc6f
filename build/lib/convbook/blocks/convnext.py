"""ConvNeXt's block (Liu et al., 2022, "A ConvNet for the 2020s", https://arxiv.org/abs/2201.03545)
at CIFAR scale: a 7×7 depthwise convolution, one layer norm, a 1×1 expansion to four times the
width, one GELU, a 1×1 projection back, and the input added. One norm and one activation per
block, where a ResNet block has three of each. The branch ends in the paper's layer scale: a
learned factor per channel starting at ``LAYER_SCALE_INIT`` (10⁻⁶), so that every block starts
close to the identity. Without it, a stack of these blocks (no norm after the addition) grew its
activations until training at the book's learning rate diverged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from convbook.blocks.validate import check_odd_kernel, check_positive

LAYER_SCALE_INIT = 1e-6


class LayerNorm2d(nn.Module):
    """Layer norm over the channels at each position of an (N, C, H, W) map, as ConvNeXt uses
    it (one mean and variance per pixel, learned scale and shift per channel)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(check_positive("channels", channels)))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """x + γ ⊙ pw2(GELU(pw1(LN(dw7×7(x))))), widths C -> 4C -> C, γ per channel starting at
    ``LAYER_SCALE_INIT``; keeps shape."""

    def __init__(self, channels: int, kernel_size: int = 7, expansion: int = 4) -> None:
        super().__init__()
        check_positive("channels", channels)
        check_positive("expansion", expansion)
        check_odd_kernel(kernel_size)
        self.depthwise = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2,
                                   groups=channels)
        self.norm = LayerNorm2d(channels)
        self.expand = nn.Conv2d(channels, expansion * channels, 1)
        self.act = nn.GELU()
        self.project = nn.Conv2d(expansion * channels, channels, 1)
        self.scale = nn.Parameter(torch.full((channels,), LAYER_SCALE_INIT))  # 1-D: no decay

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.scale[:, None, None] * self.project(self.act(self.expand(self.norm(self.depthwise(x)))))
