"""Dense connections (Huang et al., 2017, "Densely Connected Convolutional Networks",
https://arxiv.org/abs/1608.06993): each layer receives the concatenated outputs of all the
layers before it in its block and adds ``growth_rate`` new channels."""

from __future__ import annotations

import torch
from torch import nn

from convbook.blocks.conv import BNActConv
from convbook.blocks.validate import check_positive, expect_input


class DenseLayer(nn.Sequential):
    """BN-ReLU-1x1 conv to ``bn_size * growth_rate`` channels, then BN-ReLU-3x3 conv to
    ``growth_rate`` (DenseNet-B)."""

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int = 4) -> None:
        check_positive("in_channels", in_channels)
        check_positive("growth_rate", growth_rate)
        check_positive("bn_size", bn_size)
        super().__init__(BNActConv(in_channels, bn_size * growth_rate, 1),
                         BNActConv(bn_size * growth_rate, growth_rate, 3))
        expect_input(self, in_channels)


class DenseBlock(nn.Module):
    """``num_layers`` dense layers; the output holds the input and every layer's new channels."""

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int, bn_size: int = 4) -> None:
        super().__init__()
        check_positive("num_layers", num_layers)
        check_positive("in_channels", in_channels)
        check_positive("growth_rate", growth_rate)
        check_positive("bn_size", bn_size)
        self.layers = nn.ModuleList(
            DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size)
            for i in range(num_layers)
        )
        self.out_channels = in_channels + num_layers * growth_rate
        expect_input(self, in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return torch.cat(features, dim=1)


class Transition(nn.Sequential):
    """Between dense blocks: BN-ReLU-1x1 conv to ``out_channels``, then 2x2 average pooling."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(BNActConv(in_channels, out_channels, 1), nn.AvgPool2d(2, 2))
        expect_input(self, in_channels, min_size=2)
