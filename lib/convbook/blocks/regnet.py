"""RegNet's X block (Radosavovic et al., 2020, "Designing Network Design Spaces",
https://arxiv.org/abs/2003.13678): a ResNeXt block whose best settings had no bottleneck —
1×1, grouped 3×3 with a fixed group width, 1×1, all at the block's width, plus the input."""

from __future__ import annotations

import torch
from torch import nn

from convbook.blocks.conv import ConvBNAct
from convbook.blocks.validate import check_positive, expect_input
from convbook.errors import ConfigError


class XBlock(nn.Module):
    """relu(x + 1×1(grouped 3×3(1×1(x)))) at ``channels`` throughout; the 3×3 has
    ``channels // group_width`` groups of ``group_width`` channels."""

    def __init__(self, channels: int, group_width: int = 8) -> None:
        super().__init__()
        check_positive("channels", channels)
        check_positive("group_width", group_width)
        if channels % group_width:
            raise ConfigError(f"group_width={group_width} must divide channels={channels}; use "
                              f"a width that is a multiple of {group_width}")
        self.pointwise_in = ConvBNAct(channels, channels, 1)
        self.grouped = ConvBNAct(channels, channels, 3, groups=channels // group_width)
        self.pointwise_out = ConvBNAct(channels, channels, 1, activation=None)
        self.relu = nn.ReLU(inplace=True)
        expect_input(self, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x + self.pointwise_out(self.grouped(self.pointwise_in(x))))
