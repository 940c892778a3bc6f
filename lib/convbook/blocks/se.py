"""Channel gates: average each channel to one number (squeeze), turn the vector into one weight
per channel in (0, 1), and scale each channel by its weight. Three ways to compute the weights:

- ``SqueezeExcitation`` (Hu et al., 2018, https://arxiv.org/abs/1709.01507): a small bottleneck
  of two fully connected layers and a sigmoid, so every weight depends on every channel;
- ``ChannelGate``: each channel's weight from its own squeezed value only,
  sigmoid(a_c * z_c + b_c), no path between channels (Wang et al.'s "SE-Var2", with a bias);
- ``LocalChannelGate``: ECA (Wang et al., 2020, https://arxiv.org/abs/1910.03151), a 1-D
  convolution of k taps along the channel axis, so each weight depends on its k neighbours.

Chapter 8 trains all three in the same network to ask whether the relations between channels
that SE's fully connected layers can model are what its weights are worth.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from convbook.blocks.validate import check_odd_kernel, check_positive, expect_input
from convbook.errors import ConfigError


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


class ChannelGate(nn.Module):
    """Each channel scaled by sigmoid(a_c * z_c + b_c), where z_c is its own mean over the map:
    2 x ``channels`` parameters and no path from one channel to another's weight. It starts at
    a = 1, b = 0 (the parameter-free gate sigmoid(z_c)) and learns each channel's slope and
    offset; the weights still vary with the image, through z_c."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        check_positive("channels", channels)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.scale = nn.Conv2d(channels, channels, 1, groups=channels)  # a_c and b_c
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.scale.bias)
        self.scale_activation = nn.Sigmoid()
        expect_input(self, channels)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """The per-channel weights (N x C x 1 x 1, in (0, 1)) this block gives input ``x``."""
        return self.scale_activation(self.scale(self.avgpool(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(x)


def eca_kernel_size(channels: int, gamma: int = 2, b: int = 1) -> int:
    """ECA's kernel size for ``channels``: the odd number nearest above |(log2 C + b) / gamma|
    (Wang et al., 2020, with their gamma = 2, b = 1): 1 below 8 channels, 3 for 8 to 127,
    5 for 128 to 2047."""
    check_positive("channels", channels)
    check_positive("gamma", gamma)
    if isinstance(b, bool) or not isinstance(b, int) or b < 0:
        raise ConfigError(f"b must be a whole number >= 0, got {b!r}; Wang et al. use b=1")
    t = int(abs((math.log2(channels) + b) / gamma))
    return t if t % 2 else t + 1


class LocalChannelGate(nn.Module):
    """ECA: the squeezed vector z (one mean per channel) convolved along the channel axis by
    one shared 1-D kernel of ``kernel_size`` taps (zero-padded, no bias), then a sigmoid, so a
    channel's weight depends on itself and its ``kernel_size // 2`` neighbours on each side:
    ``kernel_size`` parameters. ``kernel_size`` None: ``eca_kernel_size(channels)``. The
    kernel starts as PyTorch initialises a Conv1d, as in the authors' code."""

    def __init__(self, channels: int, kernel_size: int | None = None) -> None:
        super().__init__()
        check_positive("channels", channels)
        kernel_size = eca_kernel_size(channels) if kernel_size is None else kernel_size
        check_odd_kernel(kernel_size)
        self.channels, self.kernel_size = channels, kernel_size
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv1d(1, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.scale_activation = nn.Sigmoid()
        expect_input(self, channels)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernel_size={self.kernel_size}"

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """The per-channel weights (N x C x 1 x 1, in (0, 1)) this block gives input ``x``."""
        z = self.avgpool(x).flatten(1)  # N x C
        mixed = self.conv(z.unsqueeze(1)).squeeze(1)  # the channels as a 1-D signal
        return self.scale_activation(mixed)[:, :, None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(x)


CHANNEL_GATES = (SqueezeExcitation, ChannelGate, LocalChannelGate)
