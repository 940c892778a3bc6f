"""The 1x1 bottleneck: shrink the channels with a 1x1 convolution, do the expensive k x k
work on fewer channels, and widen again with another 1x1 (Network in Network, Lin et al., 2014;
GoogLeNet; ResNet)."""

from __future__ import annotations

from torch import nn

from convbook.blocks.conv import ConvBNAct
from convbook.blocks.validate import check_odd_kernel, check_positive, expect_input


class BottleneckConv(nn.Sequential):
    """1x1 (channels -> mid), k x k (mid -> mid), 1x1 (mid -> out_channels).

    With ``norm=False`` and ``bias=False`` it holds exactly the weights of the textbook count:
    C*m + k*k*m*m + m*C_out.
    """

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int | None = None,
                 kernel_size: int = 3, norm: bool = True, bias: bool = False) -> None:
        check_positive("in_channels", in_channels)
        check_positive("mid_channels", mid_channels)
        check_odd_kernel(kernel_size)
        out_channels = in_channels if out_channels is None else out_channels
        check_positive("out_channels", out_channels)
        if norm:
            super().__init__(
                ConvBNAct(in_channels, mid_channels, 1),
                ConvBNAct(mid_channels, mid_channels, kernel_size),
                ConvBNAct(mid_channels, out_channels, 1, activation=None),
            )
        else:
            super().__init__(
                nn.Conv2d(in_channels, mid_channels, 1, bias=bias),
                nn.Conv2d(mid_channels, mid_channels, kernel_size, padding=kernel_size // 2,
                          bias=bias),
                nn.Conv2d(mid_channels, out_channels, 1, bias=bias),
            )
        expect_input(self, in_channels)
