"""Depthwise separable convolution (Xception, Chollet 2017; MobileNet, Howard et al. 2017):
one k x k filter per channel (depthwise), then a 1x1 convolution across channels (pointwise).

A standard k x k convolution from C_in to C_out holds k*k*C_in*C_out weights; the separable
pair holds k*k*C_in + C_in*C_out, a fraction 1/C_out + 1/k^2 of it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from convbook.blocks.conv import ConvBNAct
from convbook.blocks.validate import check_odd_kernel, check_positive, expect_input
from convbook.errors import ConfigError


class DepthwiseSeparable(nn.Sequential):
    """Depthwise k x k conv unit (groups = channels), then a pointwise 1x1 conv unit.

    ``between=True`` (MobileNet's unit) puts batch norm and the activation after the depthwise
    layer too; ``between=False`` (Xception's) goes straight from the depthwise to the pointwise
    convolution, which Chollet found to train faster and reach a better accuracy."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, activation: Callable[[], nn.Module] = nn.ReLU,
                 between: bool = True) -> None:
        if between:
            depthwise: nn.Module = ConvBNAct(in_channels, in_channels, kernel_size, stride=stride,
                                             groups=in_channels, activation=activation)
        else:
            check_odd_kernel(kernel_size)
            depthwise = nn.Sequential(nn.Conv2d(in_channels, in_channels, kernel_size, stride,
                                                padding=kernel_size // 2, groups=in_channels,
                                                bias=False))
        super().__init__(depthwise, ConvBNAct(in_channels, out_channels, 1, activation=activation))
        expect_input(self, in_channels)


class InvertedResidual(nn.Module):
    """MobileNetV2's block as torchvision builds it: 1x1 expansion by ``expand_ratio`` (skipped
    at 1), depthwise 3x3, linear 1x1 projection; the input is added when shapes allow."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("stride", stride), ("expand_ratio", expand_ratio)):
            check_positive(name, value)
        if stride > 2:
            raise ConfigError(f"stride must be 1 or 2 (MobileNetV2's blocks), got {stride}")
        hidden = in_channels * expand_ratio
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNAct(in_channels, hidden, 1, activation=nn.ReLU6))
        layers += [
            ConvBNAct(hidden, hidden, 3, stride=stride, groups=hidden, activation=nn.ReLU6),
            ConvBNAct(hidden, out_channels, 1, activation=None),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels
        expect_input(self, in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out
