"""The Inception module: several kernel sizes side by side on the same input, concatenated.

``NaiveInception`` is the first version of Szegedy et al. (2015, "Going deeper with
convolutions", https://arxiv.org/abs/1409.4842): 1x1, 3x3 and 5x5 convolutions and a 3x3
max-pool, all on the full input. ``Inception`` is the module GoogLeNet used, with 1x1
convolutions that shrink the channels before the 3x3 and 5x5 branches and after the pool.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from convbook.blocks.conv import ConvBNAct
from convbook.blocks.validate import check_positive, expect_input
from convbook.errors import ConfigError


class Branches(nn.Module):
    """Run every branch on the same input and concatenate their outputs along channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.children()], dim=1)


class NaiveInception(Branches):
    """Parallel k x k convolutions (one per entry of ``kernel_sizes``) and a 3x3 max-pool.

    Args:
        in_channels: input channels; the pool branch passes all of them through.
        widths: output channels of each convolution branch.
        kernel_sizes: the branches' kernel sizes (odd), 1, 3 and 5 in GoogLeNet.
        pool: add the 3x3 max-pool branch.
    """

    def __init__(self, in_channels: int, widths: Sequence[int] = (64, 128, 32),
                 kernel_sizes: Sequence[int] = (1, 3, 5), pool: bool = True) -> None:
        super().__init__()
        check_positive("in_channels", in_channels)
        if len(widths) != len(kernel_sizes) or not widths:
            raise ConfigError(f"give one width per kernel size: widths={tuple(widths)}, "
                              f"kernel_sizes={tuple(kernel_sizes)}")
        for i, (width, k) in enumerate(zip(widths, kernel_sizes)):
            check_positive(f"widths[{i}]", width)
            check_positive(f"kernel_sizes[{i}]", k)
            if k % 2 == 0:
                raise ConfigError(f"kernel_sizes[{i}]={k} is even; use odd sizes (1, 3, 5, 7) so "
                                  f"every branch keeps the input's height and width")
            name = f"conv{k}x{k}" if f"conv{k}x{k}" not in self._modules else f"conv{k}x{k}_{i}"
            self.add_module(name, ConvBNAct(in_channels, width, k))
        if pool:
            self.add_module("pool", nn.MaxPool2d(3, stride=1, padding=1))
        self.out_channels = sum(widths) + (in_channels if pool else 0)
        expect_input(self, in_channels)


class Inception(Branches):
    """GoogLeNet's Inception module, as torchvision builds it.

    Branches: 1x1 (``ch1x1``); 1x1 to ``ch3x3red`` then 3x3 to ``ch3x3``; 1x1 to
    ``ch5x5red`` then the "5x5" branch to ``ch5x5``; 3x3 max-pool then 1x1 to ``pool_proj``.
    ``kernel_size_5x5`` defaults to 3 because torchvision's GoogLeNet uses a 3x3 kernel in that
    branch (a known quirk its pretrained weights depend on); the paper's module uses 5.
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int,
                 ch5x5: int, pool_proj: int, kernel_size_5x5: int = 3, bn_eps: float = 1e-3) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("ch1x1", ch1x1),
                            ("ch3x3red", ch3x3red), ("ch3x3", ch3x3), ("ch5x5red", ch5x5red),
                            ("ch5x5", ch5x5), ("pool_proj", pool_proj)):
            check_positive(name, value)

        def unit(c_in: int, c_out: int, k: int) -> ConvBNAct:
            return ConvBNAct(c_in, c_out, k, bn_eps=bn_eps)

        self.branch1 = unit(in_channels, ch1x1, 1)
        self.branch2 = nn.Sequential(unit(in_channels, ch3x3red, 1), unit(ch3x3red, ch3x3, 3))
        self.branch3 = nn.Sequential(unit(in_channels, ch5x5red, 1),
                                     unit(ch5x5red, ch5x5, kernel_size_5x5))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                     unit(in_channels, pool_proj, 1))
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj
        expect_input(self, in_channels)
