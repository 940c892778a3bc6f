"""Channel shuffle (ShuffleNet, Zhang et al., 2018): after a grouped convolution, interleave
the groups' channels so that each group of the next grouped convolution reads channels from
every group of this one."""

from __future__ import annotations

import torch
from torch import nn

from convbook.blocks.conv import ConvBNAct
from convbook.blocks.validate import check_positive, expect_input
from convbook.errors import ConfigError


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Reshape channels to (groups, C/groups), transpose, flatten: channel i*C/g + j moves to
    j*g + i. The output keeps the input's memory format (one copy, channels_last stays so)."""
    check_positive("groups", groups)
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ConfigError(f"channel_shuffle takes a batch N x C x H x W, got "
                          f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    n, c, h, w = x.shape
    if c % groups:
        raise ConfigError(f"groups={groups} does not divide the {c} channels")
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        nhwc = x.permute(0, 2, 3, 1).view(n, h, w, groups, c // groups).transpose(3, 4)
        return nhwc.reshape(n, h, w, c).permute(0, 3, 1, 2)
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ChannelShuffle(nn.Module):
    """``channel_shuffle`` as a layer."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = check_positive("groups", groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_shuffle(x, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class ShuffleUnit(nn.Module):
    """ShuffleNet (v1) unit, stride 1: grouped 1x1 down to ``channels // 4``, shuffle,
    depthwise 3x3, grouped 1x1 back up, plus the input. ``shuffle=False`` drops the shuffle."""

    def __init__(self, channels: int, groups: int, shuffle: bool = True) -> None:
        super().__init__()
        check_positive("channels", channels)
        check_positive("groups", groups)
        mid = channels // 4
        if mid < 1:
            raise ConfigError(f"channels must be at least 4 (the unit narrows to a quarter), "
                              f"got {channels}")
        if mid % groups or channels % groups:
            raise ConfigError(f"groups={groups} must divide {channels} and its quarter {mid}")
        self.reduce = ConvBNAct(channels, mid, 1, groups=groups)
        self.shuffle = ChannelShuffle(groups) if shuffle else nn.Identity()
        self.depthwise = ConvBNAct(mid, mid, 3, groups=mid, activation=None)
        self.expand = ConvBNAct(mid, channels, 1, groups=groups, activation=None)
        self.relu = nn.ReLU(inplace=True)
        expect_input(self, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.expand(self.depthwise(self.shuffle(self.reduce(x))))
        return self.relu(x + out)


class ShuffleV2Block(nn.Module):
    """ShuffleNet V2's unit as torchvision builds it. Stride 1: split the channels in two, pass
    one half on, transform the other (1x1, depthwise 3x3, 1x1), concatenate, shuffle with 2
    groups. Stride 2: both halves see the whole input, and the width doubles."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        check_positive("in_channels", in_channels)
        check_positive("out_channels", out_channels)
        check_positive("stride", stride)
        if out_channels % 2:
            raise ConfigError(f"out_channels must be even (two branches of equal width), got "
                              f"{out_channels}; use {out_channels - 1} or {out_channels + 1}")
        branch = out_channels // 2
        if stride > 2:
            raise ConfigError(f"stride must be 1 or 2 (ShuffleNet V2's units), got {stride}")
        if stride == 1 and in_channels != out_channels:
            raise ConfigError(f"a stride-1 ShuffleNet V2 unit keeps its width: in_channels "
                              f"({in_channels}) must equal out_channels ({out_channels})")
        self.stride = stride
        if stride > 1:
            self.branch1 = nn.Sequential(
                ConvBNAct(in_channels, in_channels, 3, stride=stride, groups=in_channels,
                          activation=None),
                ConvBNAct(in_channels, branch, 1),
            )
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            ConvBNAct(in_channels if stride > 1 else branch, branch, 1),
            ConvBNAct(branch, branch, 3, stride=stride, groups=branch, activation=None),
            ConvBNAct(branch, branch, 1),
        )
        expect_input(self, in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            kept, changed = x.chunk(2, dim=1)
            out = torch.cat((kept, self.branch2(changed)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)
