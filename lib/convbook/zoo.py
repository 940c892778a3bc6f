"""ImageNet reference architectures assembled from convbook's blocks, held against torchvision.

Each function builds the network torchvision builds under the same name; the tests check the
parameter count and, after ``copy_weights``, equal outputs. Random weights only: nothing here
downloads.
"""

from __future__ import annotations

import torch
from torch import nn

from convbook.blocks import BasicBlock, Bottleneck, ConvBNAct, DenseBlock, Inception, Transition
from convbook.blocks.separable import InvertedResidual
from convbook.blocks.shuffle import ShuffleV2Block
from convbook.blocks.validate import check_classes, check_positive
from convbook.errors import ConfigError
from convbook.nets import Classifier


class AlexNet(nn.Module):
    """AlexNet: five conv layers, three fully connected ones.

    ``widths`` and ``groups`` select the variant: torchvision's single-tower network
    (64, 192, 384, 256, 256; no groups), or Krizhevsky et al.'s 2012 two-tower one
    (96, 256, 384, 384, 256; conv2, conv4 and conv5 in two groups).
    """

    def __init__(self, widths: tuple[int, ...] = (64, 192, 384, 256, 256),
                 groups: tuple[int, ...] = (1, 1, 1, 1, 1), num_classes: int = 1000,
                 dropout: float = 0.5) -> None:
        super().__init__()
        check_classes("num_classes", num_classes)
        if len(widths) != 5 or len(groups) != 5:
            raise ConfigError("AlexNet takes five widths and five group counts, one per conv layer")
        c1, c2, c3, c4, c5 = widths
        g1, g2, g3, g4, g5 = groups
        self.features = nn.Sequential(
            ConvBNAct(3, c1, 11, stride=4, padding=2, groups=g1, norm=False),
            nn.MaxPool2d(3, 2),
            ConvBNAct(c1, c2, 5, padding=2, groups=g2, norm=False),
            nn.MaxPool2d(3, 2),
            ConvBNAct(c2, c3, 3, groups=g3, norm=False),
            ConvBNAct(c3, c4, 3, groups=g4, norm=False),
            ConvBNAct(c4, c5, 3, groups=g5, norm=False),
            nn.MaxPool2d(3, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(c5 * 36, 4096), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def alexnet(num_classes: int = 1000) -> AlexNet:
    """torchvision's ``alexnet``: the single-tower variant of Krizhevsky (2014), "One weird trick"."""
    return AlexNet(num_classes=num_classes)


def alexnet_2012(towers: int = 2, num_classes: int = 1000) -> AlexNet:
    """The 2012 paper's AlexNet: its widths, with conv2/4/5 split into ``towers`` groups
    (towers=1 gives the same widths without the split)."""
    if towers not in (1, 2):
        raise ConfigError(f"towers must be 1 (one tower) or 2 (the paper's split), got {towers!r}")
    return AlexNet(widths=(96, 256, 384, 384, 256), groups=(1, towers, 1, towers, towers),
                   num_classes=num_classes)


def copy_weights(source: nn.Module, target: nn.Module) -> None:
    """Copy ``source``'s parameters and buffers into ``target`` in registration order.

    The two must hold the same tensors in the same order under different names (a convbook
    network and its torchvision twin); a shape mismatch stops with the first offending pair.
    """
    src = list(source.state_dict().items())
    dst = list(target.state_dict().items())
    if len(src) != len(dst):
        raise ConfigError(f"source has {len(src)} tensors, target {len(dst)}: not the same network")
    new_state = {}
    for (src_name, tensor), (dst_name, current) in zip(src, dst):
        if tensor.shape != current.shape:
            raise ConfigError(f"{src_name} {tuple(tensor.shape)} does not fit {dst_name} "
                              f"{tuple(current.shape)}")
        new_state[dst_name] = tensor.clone()
    target.load_state_dict(new_state)


class ResNet(nn.Module):
    """ResNet for ImageNet: a 7x7 stem, four stages of residual blocks, average pool, linear.

    ``block`` is ``BasicBlock`` or ``Bottleneck``; ``layers`` the blocks per stage.
    """

    def __init__(self, block: type, layers: tuple[int, int, int, int], num_classes: int = 1000,
                 groups: int = 1, width_per_group: int = 64, se_reduction: int = 0) -> None:
        super().__init__()
        self.stem = nn.Sequential(ConvBNAct(3, 64, 7, stride=2), nn.MaxPool2d(3, 2, 1))
        extra = {"se_reduction": se_reduction}
        if block is not BasicBlock:
            extra |= {"groups": groups, "base_width": width_per_group}
        channels, stages = 64, []
        for i, (n, width) in enumerate(zip(layers, (64, 128, 256, 512))):
            blocks = []
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(block(channels, width, stride, **extra))
                channels = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = Classifier(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


def resnet18(num_classes: int = 1000) -> ResNet:
    """torchvision's ``resnet18``: BasicBlocks, (2, 2, 2, 2)."""
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes)


def resnet50(num_classes: int = 1000) -> ResNet:
    """torchvision's ``resnet50``: Bottlenecks, (3, 4, 6, 3)."""
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes)


def resnext50_32x4d(num_classes: int = 1000) -> ResNet:
    """torchvision's ``resnext50_32x4d``: Bottlenecks with 32 groups of width 4 (chapter 1's
    groups inside ResNet-50)."""
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes, groups=32, width_per_group=4)


class GoogLeNet(nn.Module):
    """GoogLeNet (Inception v1) without auxiliary classifiers, as torchvision builds it
    (batch norm after every convolution, eps 0.001)."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()

        def unit(c_in: int, c_out: int, k: int, stride: int = 1) -> ConvBNAct:
            return ConvBNAct(c_in, c_out, k, stride=stride, bn_eps=1e-3)

        def pool() -> nn.MaxPool2d:
            return nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.features = nn.Sequential(
            unit(3, 64, 7, stride=2), pool(),
            unit(64, 64, 1), unit(64, 192, 3), pool(),
            Inception(192, 64, 96, 128, 16, 32, 32),  # 3a
            Inception(256, 128, 128, 192, 32, 96, 64),  # 3b
            pool(),
            Inception(480, 192, 96, 208, 16, 48, 64),  # 4a
            Inception(512, 160, 112, 224, 24, 64, 64),  # 4b
            Inception(512, 128, 128, 256, 24, 64, 64),  # 4c
            Inception(512, 112, 144, 288, 32, 64, 64),  # 4d
            Inception(528, 256, 160, 320, 32, 128, 128),  # 4e
            nn.MaxPool2d(2, stride=2, ceil_mode=True),
            Inception(832, 256, 160, 320, 32, 128, 128),  # 5a
            Inception(832, 384, 192, 384, 48, 128, 128),  # 5b
        )
        self.head = Classifier(1024, num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def googlenet(num_classes: int = 1000) -> GoogLeNet:
    """torchvision's ``googlenet(aux_logits=False)``."""
    return GoogLeNet(num_classes)


class DenseNet(nn.Module):
    """DenseNet-BC for ImageNet: stem, dense blocks joined by transitions that halve the
    channels, final batch norm, ReLU, average pool, linear."""

    def __init__(self, growth_rate: int = 32, block_config: tuple[int, ...] = (6, 12, 24, 16),
                 num_init_features: int = 64, bn_size: int = 4, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBNAct(3, num_init_features, 7, stride=2),
                                   nn.MaxPool2d(3, 2, 1)]
        channels = num_init_features
        for i, n in enumerate(block_config):
            block = DenseBlock(n, channels, growth_rate, bn_size)
            layers.append(block)
            channels = block.out_channels
            if i < len(block_config) - 1:
                layers.append(Transition(channels, channels // 2))
                channels //= 2
        layers += [nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.head = Classifier(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def densenet121(num_classes: int = 1000) -> DenseNet:
    """torchvision's ``densenet121``: growth 32, blocks (6, 12, 24, 16)."""
    return DenseNet(32, (6, 12, 24, 16), 64, num_classes=num_classes)


def imagenet_top1(name: str, weights: str = "IMAGENET1K_V1") -> float:
    """ImageNet-1K top-1 accuracy (%) that torchvision publishes for the weights ``weights`` of
    ``name`` (read from the weights' metadata; nothing is downloaded). The V1 weights of every
    model come from comparable, original training recipes; later versions used newer ones."""
    import torchvision

    weights = getattr(torchvision.models.get_model_weights(name), weights)
    return float(weights.meta["_metrics"]["ImageNet-1K"]["acc@1"])


def se_resnet50(num_classes: int = 1000, reduction: int = 16) -> ResNet:
    """ResNet-50 with a squeeze-and-excitation block in every bottleneck (Hu et al., 2018)."""
    check_positive("reduction", reduction)  # 0 would build a plain ResNet-50 under this name
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes, se_reduction=reduction)


class MobileNetV2(nn.Module):
    """MobileNetV2 (Sandler et al., 2018) at width 1.0, as torchvision builds it."""

    # expansion t, output channels c, repeats n, first stride s
    SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
               (6, 160, 3, 2), (6, 320, 1, 1))

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBNAct(3, 32, 3, stride=2, activation=nn.ReLU6)]
        channels = 32
        for t, c, n, s in self.SETTING:
            for i in range(n):
                layers.append(InvertedResidual(channels, c, s if i == 0 else 1, t))
                channels = c
        layers.append(ConvBNAct(channels, 1280, 1, activation=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.head = Classifier(1280, num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def mobilenet_v2(num_classes: int = 1000) -> MobileNetV2:
    """torchvision's ``mobilenet_v2``."""
    return MobileNetV2(num_classes)


class ShuffleNetV2(nn.Module):
    """ShuffleNet V2 (Ma et al., 2018), as torchvision builds it."""

    def __init__(self, repeats: tuple[int, int, int] = (4, 8, 4),
                 widths: tuple[int, ...] = (24, 116, 232, 464, 1024), num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBNAct(3, widths[0], 3, stride=2), nn.MaxPool2d(3, 2, 1)]
        channels = widths[0]
        for n, out in zip(repeats, widths[1:4]):
            layers.append(nn.Sequential(*[ShuffleV2Block(channels if i == 0 else out, out,
                                                         2 if i == 0 else 1) for i in range(n)]))
            channels = out
        layers.append(ConvBNAct(channels, widths[-1], 1))
        self.features = nn.Sequential(*layers)
        self.head = Classifier(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def shufflenet_v2_x1_0(num_classes: int = 1000) -> ShuffleNetV2:
    """torchvision's ``shufflenet_v2_x1_0``."""
    return ShuffleNetV2(num_classes=num_classes)
