"""Residual blocks (He et al., 2016, "Deep Residual Learning for Image Recognition",
https://arxiv.org/abs/1512.03385): the block learns F(x) and outputs relu(F(x) + x).

``skip=False`` removes the shortcut and leaves the same layers as a plain block, which is how
chapter 5 compares plain and residual networks of equal depth. ``se_reduction`` adds a
squeeze-and-excitation block before the addition (SE-ResNet, chapter 8). When a block changes the
shape, the shortcut is either a 1x1 convolution (with batch norm when ``norm``; the paper's option
B, as torchvision does) or, with ``shortcut="A"``, the identity on every other pixel with the new
channels filled with zeros (option A, parameter-free, used for the paper's CIFAR networks).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from convbook.blocks.conv import ConvBNAct
from convbook.blocks.se import SqueezeExcitation
from convbook.blocks.validate import check_groups, check_positive, expect_input
from convbook.errors import ConfigError

SHORTCUTS = ("A", "B")


class PadShortcut(nn.Module):
    """He et al.'s option A: keep every ``stride``-th pixel, fill the extra channels with zeros."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ConfigError(f"option A shortcuts can only add channels, got {in_channels} -> "
                              f"{out_channels}; use shortcut='B' (a 1x1 convolution)")
        self.extra, self.stride = out_channels - in_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra)) if self.extra else x

    def extra_repr(self) -> str:
        return f"extra_channels={self.extra}, stride={self.stride}"


def _shortcut(in_channels: int, out_channels: int, stride: int, norm: bool = True,
              kind: str = "B", norm_layer=None) -> nn.Module | None:
    if kind not in SHORTCUTS:
        raise ConfigError(f"shortcut must be 'A' (zero-padded identity) or 'B' (1x1 "
                          f"convolution), got {kind!r}")
    if stride == 1 and in_channels == out_channels:
        return None
    if kind == "A":
        return PadShortcut(in_channels, out_channels, stride)
    return ConvBNAct(in_channels, out_channels, 1, stride=stride, activation=None, padding=0,
                     norm=norm, norm_layer=norm_layer)


class BasicBlock(nn.Module):
    """Two 3x3 conv units; ResNet-18/34 and the CIFAR ResNets are made of these.

    ``norm_layer`` (a factory of the channel count; None: batch norm) and ``act_layer`` (an
    activation factory) are passed to every unit, as torchvision's blocks take them."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1, skip: bool = True,
                 norm: bool = True, se_reduction: int = 0, shortcut: str = "B",
                 norm_layer: Callable[[int], nn.Module] | None = None,
                 act_layer: Callable[[], nn.Module] = nn.ReLU) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("channels", channels),
                            ("stride", stride)):
            check_positive(name, value)
        self.conv1 = ConvBNAct(in_channels, channels, 3, stride=stride, norm=norm,
                               norm_layer=norm_layer, activation=act_layer)
        self.conv2 = ConvBNAct(channels, channels, 3, activation=None, norm=norm,
                               norm_layer=norm_layer)
        self.se = SqueezeExcitation(channels, se_reduction) if se_reduction else None
        self.downsample = (_shortcut(in_channels, channels, stride, norm, shortcut, norm_layer)
                           if skip else None)
        self.skip = skip
        self.relu = act_layer()
        expect_input(self, in_channels)

    def extra_repr(self) -> str:
        return f"skip={self.skip}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        if self.se is not None:
            out = self.se(out)
        if self.skip:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand to ``channels * 4``: ResNet-50's block.

    ``groups`` and ``base_width`` give ResNeXt's grouped variant (width of the 3x3 is
    ``channels * base_width / 64 * groups``), as torchvision defines it.
    """

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1, skip: bool = True,
                 groups: int = 1, base_width: int = 64, se_reduction: int = 0,
                 shortcut: str = "B", norm_layer: Callable[[int], nn.Module] | None = None,
                 act_layer: Callable[[], nn.Module] = nn.ReLU) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("channels", channels),
                            ("stride", stride), ("groups", groups), ("base_width", base_width)):
            check_positive(name, value)
        width = int(channels * (base_width / 64.0)) * groups
        if width < 1:
            raise ConfigError(f"channels={channels} at base_width={base_width} gives a 3x3 of "
                              f"{width} channels (channels * base_width / 64 * groups); raise "
                              f"base_width (64 is ResNet's) or channels")
        check_groups(width, width, groups)
        out_channels = channels * self.expansion
        self.conv1 = ConvBNAct(in_channels, width, 1, norm_layer=norm_layer, activation=act_layer)
        self.conv2 = ConvBNAct(width, width, 3, stride=stride, groups=groups,
                               norm_layer=norm_layer, activation=act_layer)
        self.conv3 = ConvBNAct(width, out_channels, 1, activation=None, norm_layer=norm_layer)
        self.se = SqueezeExcitation(out_channels, se_reduction) if se_reduction else None
        self.downsample = (_shortcut(in_channels, out_channels, stride, kind=shortcut,
                                     norm_layer=norm_layer) if skip else None)
        self.skip = skip
        self.relu = act_layer()
        expect_input(self, in_channels)

    def extra_repr(self) -> str:
        return f"skip={self.skip}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv3(self.conv2(self.conv1(x)))
        if self.se is not None:
            out = self.se(out)
        if self.skip:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)
