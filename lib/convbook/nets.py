"""Small CIFAR-scale networks assembled from ``convbook.blocks``, each set by a few arguments."""

from __future__ import annotations

from torch import Tensor, nn

from convbook.blocks import ConvBNAct, TwoTowerFeatures
from convbook.blocks.validate import check_groups, check_positive


class Classifier(nn.Sequential):
    """Global average pooling and one linear layer: the head every small net shares."""

    def __init__(self, in_channels: int, num_classes: int = 10) -> None:
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_channels, num_classes))


class CifarNet(nn.Module):
    """A plain VGG-style network: a 3x3 stem, then stages of conv units, halving the size between.

    Stage ``i`` outputs ``width * 2**i`` channels from ``blocks_per_stage`` units of
    ``kernel_size``; a 2x2 max-pool sits between stages. A stage widens at its last unit, so
    two stacked units replace one with the same input and output widths (VGG's two 3x3 for
    one 5x5, chapter 2). ``groups`` applies to every unit after the stem (the stem
    sees 3 input channels and stays dense), so group count is the only thing that changes between
    chapter 1's variants.
    """

    def __init__(
        self,
        width: int = 32,
        stages: int = 3,
        blocks_per_stage: int = 1,
        kernel_size: int = 3,
        groups: int = 1,
        dilation: int = 1,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        check_positive("width", width)
        check_positive("stages", stages)
        check_positive("blocks_per_stage", blocks_per_stage)
        check_groups(width, width, groups)
        layers: list[nn.Module] = [ConvBNAct(3, width, 3)]
        channels = width
        for stage in range(stages):
            for block in range(blocks_per_stage):
                out = width * 2**stage if block == blocks_per_stage - 1 else channels
                layers.append(ConvBNAct(channels, out, kernel_size, groups=groups, dilation=dilation))
                channels = out
            if stage < stages - 1:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = Classifier(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class TwoTowerNet(nn.Module):
    """AlexNet's two-tower layout at CIFAR scale (see ``blocks.grouped``) with a linear head."""

    def __init__(self, width: int = 32, towers: int = 2, num_classes: int = 10) -> None:
        super().__init__()
        self.features = TwoTowerFeatures(width, towers)
        self.head = Classifier(self.features.out_channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))
