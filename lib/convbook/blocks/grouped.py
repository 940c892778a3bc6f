"""Group convolution as AlexNet used it: two towers that meet only at chosen layers.

AlexNet (Krizhevsky et al., 2012) split its feature maps across two GPUs. Its first layer saw the
whole image in both towers; conv2, conv4 and conv5 saw only their own tower's maps; conv3 and the
fully connected layers crossed between towers. A grouped convolution with ``groups=2`` computes
exactly the two towers' separate convolutions, so the towers here are grouped layers.
"""

from __future__ import annotations

from torch import nn

from convbook.blocks.conv import ConvBNAct
from convbook.blocks.validate import check_positive, expect_input
from convbook.errors import ConfigError


class TwoTowerFeatures(nn.Sequential):
    """AlexNet's five-layer feature extractor, scaled for 32x32 images.

    Channel widths follow AlexNet's ratios (96, 256, 384, 384, 256) as 2, 4, 6, 6, 4 times
    ``width``. Output channel ``i`` of ``conv1`` belongs to tower ``i // (2 * width // towers)``.

    Args:
        width: base width; every layer's width is a multiple of it.
        towers: 2 for AlexNet's split, 1 for a single tower with the same widths.
        kernel_size_first: side of conv1's kernel (5 here, 11 in AlexNet at 224x224).
        first_channels: conv1's filters (default 2 * width); more of them give a test of what
            the towers' filters learn more power at little cost, since conv1 is cheap.
    """

    def __init__(self, width: int = 32, towers: int = 2, kernel_size_first: int = 5,
                 first_channels: int | None = None) -> None:
        check_positive("width", width)
        check_positive("towers", towers)
        check_positive("kernel_size_first", kernel_size_first)
        w = width
        first = 2 * w if first_channels is None else check_positive("first_channels",
                                                                    first_channels)
        if first % towers or (4 * w) % towers:
            raise ConfigError(
                f"towers={towers} must divide conv1's {first} channels and conv2's {4 * w}; "
                f"use towers=1 or 2 with even widths"
            )
        super().__init__(
            ConvBNAct(3, first, kernel_size_first),  # both towers see the whole image
            nn.MaxPool2d(2),
            ConvBNAct(first, 4 * w, 3, groups=towers),  # within each tower
            nn.MaxPool2d(2),
            ConvBNAct(4 * w, 6 * w, 3),  # the towers exchange here
            ConvBNAct(6 * w, 6 * w, 3, groups=towers),
            ConvBNAct(6 * w, 4 * w, 3, groups=towers),
            nn.MaxPool2d(2),
        )
        self.towers = towers
        self.out_channels = 4 * w
        expect_input(self, 3, min_size=8)  # three 2x2 max-pools

    @property
    def first_conv(self) -> nn.Conv2d:
        """conv1, whose filters look at the RGB image directly."""
        return self[0][0]

    def tower_of_first_filters(self) -> list[int]:
        """The tower index of each of conv1's output channels."""
        n = self.first_conv.out_channels
        per_tower = n // self.towers
        return [i // per_tower for i in range(n)]
