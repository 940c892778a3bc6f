"""Small CIFAR-scale networks assembled from ``convbook.blocks``, each set by a few arguments."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import Tensor, nn

from convbook.blocks import (
    BasicBlock,
    Bottleneck,
    BottleneckConv,
    ChannelShuffle,
    ConvBNAct,
    DeformableConv2d,
    NaiveInception,
    TwoTowerFeatures,
)
from convbook.blocks.validate import check_classes, check_groups, check_positive, expect_input
from convbook.errors import ConfigError

Unit = Callable[[int, int], nn.Module]


def he_init(model: nn.Module) -> nn.Module:
    """Initialise as torchvision's ResNets do: convolutions He-normal (fan-out, ReLU gain),
    batch norm to the identity (weight 1, bias 0), linear layers as PyTorch makes them.

    Without it PyTorch's default (uniform, variance 1/(3 fan_in)) shrinks the signal by about
    a third per layer in a deep net without batch norm. Returns ``model``.
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(f"he_init takes an nn.Module instance, got {type(model).__name__}")
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return model


class Classifier(nn.Sequential):
    """Global average pooling and one linear layer (after dropout, if asked): the head of every
    network in ``nets`` and ``zoo``."""

    def __init__(self, in_channels: int, num_classes: int = 10, dropout: float = 0.0) -> None:
        check_positive("in_channels", in_channels)
        check_classes("num_classes", num_classes)
        if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ConfigError(f"dropout is a probability in [0, 1), got {dropout!r}")
        layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        super().__init__(*layers, nn.Linear(in_channels, num_classes))


class CifarNet(nn.Module):
    """A plain VGG-style network: a 3x3 stem, then stages of conv units, halving the size between.

    Stage ``i`` outputs ``width * 2**i`` channels from ``blocks_per_stage`` units of
    ``kernel_size``; a 2x2 max-pool sits between stages. A stage widens at its last unit, or
    at its first with ``widen_first=True`` (VGG's order: chapter 2 replaces each such pair of
    3x3 units by one 5x5 unit at the same widths, as VGG did). ``groups`` applies to every unit after the stem (the stem
    sees 3 input channels and stays dense), so group count is the only thing that changes between
    chapter 1's variants. ``unit`` replaces the conv unit by another block built from
    (in_channels, out_channels), e.g. ``mixed_unit`` or ``bottleneck_unit``.
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
        unit: Unit | None = None,
        widen_first: bool = False,
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
                widens = block == (0 if widen_first else blocks_per_stage - 1)
                out = width * 2**stage if widens else channels
                if unit is None:
                    layers.append(ConvBNAct(channels, out, kernel_size, groups=groups,
                                            dilation=dilation))
                else:
                    layers.append(unit(channels, out))
                channels = out
            if stage < stages - 1:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = Classifier(channels, num_classes)
        he_init(self)
        expect_input(self, 3, min_size=2 ** (stages - 1))  # a 2x2 max-pool between stages

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class TwoTowerNet(nn.Module):
    """AlexNet's two-tower layout at CIFAR scale (see ``blocks.grouped``) with a linear head."""

    def __init__(self, width: int = 32, towers: int = 2, num_classes: int = 10,
                 first_channels: int | None = None) -> None:
        super().__init__()
        self.features = TwoTowerFeatures(width, towers, first_channels=first_channels)
        self.head = Classifier(self.features.out_channels, num_classes)
        he_init(self)
        expect_input(self, 3, min_size=8)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class MixedUnit(NaiveInception):
    """Parallel branches of several kernel sizes sharing ``out_channels`` in the given
    proportions (an Inception module without its pool branch)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_sizes: Sequence[int],
                 shares: Sequence[int]) -> None:
        total = sum(shares)
        if out_channels % total:
            raise ConfigError(f"out_channels={out_channels} cannot be split in the proportions "
                              f"{tuple(shares)}; use a multiple of {total}")
        widths = [out_channels * share // total for share in shares]
        super().__init__(in_channels, widths, kernel_sizes, pool=False)


def mixed_unit(kernel_sizes: Sequence[int] = (1, 3, 5), shares: Sequence[int] = (2, 5, 1)) -> Unit:
    """A unit factory for ``CifarNet``: ``MixedUnit`` with these kernel sizes and shares.

    The default split (1x1 : 3x3 : 5x5 = 2 : 5 : 1) holds exactly as many weights as one 3x3
    convolution of the same widths: 2*1 + 5*9 + 1*25 = 72 = 8*9.
    """
    if len(kernel_sizes) != len(shares) or not shares:
        raise ConfigError(f"give one share per kernel size: kernel_sizes={tuple(kernel_sizes)}, "
                          f"shares={tuple(shares)}")
    return partial(MixedUnit, kernel_sizes=tuple(kernel_sizes), shares=tuple(shares))


def bottleneck_unit(reduction: int, kernel_size: int = 3) -> Unit:
    """A unit factory for ``CifarNet``: 1x1 down to ``out_channels // reduction``, k x k,
    1x1 up to ``out_channels`` (chapter 4)."""
    check_positive("reduction", reduction)
    return partial(_bottleneck, reduction=reduction, kernel_size=kernel_size)


def _bottleneck(in_channels: int, out_channels: int, reduction: int,
                kernel_size: int) -> nn.Module:
    mid = max(out_channels // reduction, 1)
    return nn.Sequential(BottleneckConv(in_channels, mid, out_channels, kernel_size), nn.ReLU())


class CifarResNet(nn.Module):
    """He et al.'s CIFAR networks: depth = 6n + 2 (a 3x3 stem, three stages of n two-layer
    blocks at widths w, 2w, 4w, a linear head), with their parameter-free option A shortcuts
    (``shortcut="B"``: 1x1 convolutions). ``skip=False`` gives the plain network of the same
    depth; ``norm=False`` removes every batch norm (chapter 5's gradient study);
    ``se_reduction`` puts a squeeze-and-excitation block in every block (chapter 8).

    ``block="bottleneck"``: depth = 9n + 2, each block 1x1 → 3x3 → 1x1 with its 3x3 at w, 2w,
    4w and its output four times wider (He et al.'s Fig. 5 pairing: a bottleneck block costs
    about what a basic block of its inner width costs, chapter 4)."""

    def __init__(self, depth: int = 20, width: int = 16, skip: bool = True, norm: bool = True,
                 num_classes: int = 10, se_reduction: int = 0, shortcut: str = "A",
                 block: str = "basic") -> None:
        super().__init__()
        if block not in ("basic", "bottleneck"):
            raise ConfigError(f"block must be 'basic' or 'bottleneck', got {block!r}")
        per_block = 2 if block == "basic" else 3
        if depth < 3 * per_block + 2 or (depth - 2) % (3 * per_block):
            form = "6n + 2 (8, 14, 20, 32, 44, 56...)" if block == "basic" else \
                "9n + 2 (11, 20, 29, 56...)"
            raise ConfigError(f"depth must be {form} for {block} blocks, got {depth}")
        check_positive("width", width)
        if block == "bottleneck" and not norm:
            raise ConfigError("bottleneck blocks always use batch norm; use block='basic' "
                              "for norm=False")
        n = (depth - 2) // (3 * per_block)
        layers: list[nn.Module] = [ConvBNAct(3, width, 3, norm=norm)]
        channels = width
        for stage in range(3):
            inner = width * 2**stage
            for index in range(n):
                stride = 2 if stage > 0 and index == 0 else 1
                if block == "basic":
                    layers.append(BasicBlock(channels, inner, stride, skip=skip, norm=norm,
                                             se_reduction=se_reduction, shortcut=shortcut))
                    channels = inner
                else:
                    layers.append(Bottleneck(channels, inner, stride, skip=skip,
                                             se_reduction=se_reduction, shortcut=shortcut))
                    channels = inner * Bottleneck.expansion
        self.features = nn.Sequential(*layers)
        self.head = Classifier(channels, num_classes)
        self.depth = depth
        he_init(self)
        expect_input(self, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def separable_unit(kernel_size: int = 3, between: bool = True) -> Unit:
    """A unit factory for ``CifarNet``: depthwise k x k then pointwise 1x1 (chapter 6); with
    ``between=False`` nothing between them (Xception's unit, not MobileNet's)."""
    from convbook.blocks.separable import DepthwiseSeparable

    return partial(DepthwiseSeparable, kernel_size=kernel_size, between=between)


def grouped_unit(groups: int, shuffle: bool) -> Unit:
    """A unit factory for ``CifarNet``: a grouped 3x3 conv unit, followed by a channel shuffle
    when ``shuffle`` (chapter 7)."""
    return partial(_grouped, groups=groups, shuffle=shuffle)


def _grouped(in_channels: int, out_channels: int, groups: int, shuffle: bool) -> nn.Module:
    from convbook.blocks.shuffle import ChannelShuffle

    unit = ConvBNAct(in_channels, out_channels, 3, groups=groups)
    return nn.Sequential(unit, ChannelShuffle(groups)) if shuffle else unit


def grouped_cifar_net(width: int, groups: int, shuffle: bool) -> CifarNet:
    """The CifarNet with every unit after the stem grouped (chapters 1 and 7), a channel shuffle after
    each grouped unit when ``shuffle`` except the last: a shuffle right before the head only
    permutes what global pooling and the linear layer see, which they can learn anyway."""
    model = CifarNet(width, unit=grouped_unit(groups, shuffle=shuffle))
    if shuffle:
        units = [m for m in model.features if isinstance(m, nn.Sequential)
                 and any(isinstance(layer, ChannelShuffle) for layer in m)]
        units[-1][-1] = nn.Identity()
    return model


def width_for_params(build: Callable[[int], nn.Module], target: int, candidates: Sequence[int]) -> int:
    """The candidate width whose network's parameter count is closest to ``target``."""
    from convbook.measure import count_params

    if not candidates:
        raise ConfigError("width_for_params needs candidates: the widths to choose from, e.g. "
                          "range(8, 65, 8)")
    return min(candidates, key=lambda width: abs(count_params(build(width)) - target))


class WeightedResNet(nn.Module):
    """``CifarResNet`` (depth 6n + 2, option A shortcuts) whose cross-layer connections carry
    learned weights: ``connection`` is one of ``blocks.weighted.CONNECTIONS`` (chapter 11's
    question Q1). ``"identity"`` is the CIFAR ResNet itself; ``norm=False`` removes every batch
    norm. The connections' own starting values are set after He initialisation."""

    def __init__(self, depth: int = 14, width: int = 16, connection: str = "identity",
                 norm: bool = True, num_classes: int = 10) -> None:
        from convbook.blocks.weighted import DenseWeightedStage, WeightedBlock, check_connection

        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ConfigError(f"depth must be 6n + 2 with n >= 1 (8, 14, 20, 32...), got {depth}")
        check_positive("width", width)
        check_connection(connection, norm)
        n = (depth - 2) // 6
        block_connection = "identity" if connection == "dense" else connection
        layers: list[nn.Module] = [ConvBNAct(3, width, 3, norm=norm)]
        channels = width
        for stage in range(3):
            out = width * 2**stage
            stage_blocks = []
            for block in range(n):
                stride = 2 if stage > 0 and block == 0 else 1
                stage_blocks.append(WeightedBlock(channels, out, stride, block_connection, norm))
                channels = out
            if connection == "dense":
                layers.append(DenseWeightedStage(stage_blocks, include_input=stage == 0))
            else:
                layers.extend(stage_blocks)
        self.features = nn.Sequential(*layers)
        self.head = Classifier(channels, num_classes)
        self.connection, self.depth = connection, depth
        he_init(self)
        for module in self.modules():
            if hasattr(module, "reset_connection"):
                module.reset_connection()
        expect_input(self, 3)

    def extra_repr(self) -> str:
        return f"connection={self.connection}"

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class StageNet(nn.Module):
    """A stem (3×3 conv unit to ``width``), three stages of ``blocks_per_stage`` shape-keeping
    units built by ``unit(channels)``, widths ``width``, 2·``width``, 4·``width``, and a linear
    head. Between stages every design gets the same separable downsampling: a depthwise 3×3
    with stride 2, then a 1×1 conv unit doubling the width. Chapter 11 compares designs of
    blocks at equal MACs in this frame, so that only the units differ."""

    def __init__(self, unit: Callable[[int], nn.Module], width: int = 32,
                 blocks_per_stage: int = 2, num_classes: int = 10) -> None:
        super().__init__()
        check_positive("width", width)
        check_positive("blocks_per_stage", blocks_per_stage)
        layers: list[nn.Module] = [ConvBNAct(3, width, 3)]
        channels = width
        for stage in range(3):
            if stage:
                layers += [ConvBNAct(channels, channels, 3, stride=2, groups=channels,
                                     activation=None),
                           ConvBNAct(channels, 2 * channels, 1)]
                channels *= 2
            layers += [unit(channels) for _ in range(blocks_per_stage)]
        self.features = nn.Sequential(*layers)
        self.head = Classifier(channels, num_classes)
        self.width = width
        he_init(self)
        expect_input(self, 3)

    def extra_repr(self) -> str:
        return f"width={self.width}"

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


# --- dense prediction (chapter 9): a label for every pixel --------------------------------------

# Yu & Koltun (2016), Table 1: the basic context module's dilation rates.
CONTEXT_RATES = (1, 1, 2, 4, 8, 16, 1)


class DilatedNet(nn.Module):
    """3×3 convolutions with the given dilation rates (batch norm and ReLU after each), then a
    1×1 classifier per pixel. Padding keeps the image size; dilation changes no parameter."""

    def __init__(self, rates: tuple[int, ...], width: int = 16, in_channels: int = 1,
                 classes: int = 3) -> None:
        super().__init__()
        if not rates:
            raise ConfigError("DilatedNet needs at least one dilation rate: rates=(1, 2, 3), say")
        for r in rates:
            check_positive("rates (each a dilation rate)", r)
        check_positive("width", width)
        check_positive("in_channels", in_channels)
        check_classes("classes", classes)
        self.rates = tuple(rates)
        layers: list[nn.Module] = []
        channels = in_channels
        for r in rates:
            layers += [nn.Conv2d(channels, width, 3, padding=r, dilation=r, bias=False),
                       nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            channels = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(width, classes, 1)
        he_init(self)
        expect_input(self, in_channels)

    def extra_repr(self) -> str:
        return f"rates={self.rates}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def identity_(conv: nn.Conv2d) -> None:
    """Yu & Koltun's identity initialisation: the layer passes its input through unchanged
    (weight 1 at the centre tap from channel i to channel i, 0 elsewhere; bias 0)."""
    if conv.in_channels != conv.out_channels or conv.groups != 1:
        raise ConfigError("identity initialisation needs a layer with as many inputs as "
                          f"outputs and no groups, got {conv}")
    with torch.no_grad():
        conv.weight.zero_()
        centre = conv.kernel_size[0] // 2, conv.kernel_size[1] // 2
        for i in range(conv.out_channels):
            conv.weight[i, i, centre[0], centre[1]] = 1.0
        if conv.bias is not None:
            conv.bias.zero_()


class ContextNet(nn.Module):
    """A small front end (two dense 3×3 layers with batch norm) followed by Yu & Koltun's basic
    context module: seven 3×3 layers at dilations 1, 1, 2, 4, 8, 16, 1 and a 1×1 layer, all
    ``width`` channels wide, with ReLU and no normalisation, then a 1×1 classifier.
    ``init`` is "identity" (theirs), "random" (He-normal), or "none": no context module, the
    front end alone (the baseline the module must improve on)."""

    def __init__(self, width: int = 16, init: str = "identity", in_channels: int = 1,
                 classes: int = 3, rates: tuple[int, ...] = CONTEXT_RATES) -> None:
        super().__init__()
        if init not in ("identity", "random", "none"):
            raise ConfigError(f"init must be 'identity', 'random' or 'none' (no module), got "
                              f"{init!r}")
        check_positive("width", width)
        check_positive("in_channels", in_channels)
        check_classes("classes", classes)
        self.init = init
        self.front = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
            nn.ReLU(inplace=True))
        layers: list[nn.Module] = []
        if init != "none":
            for r in rates:
                layers += [nn.Conv2d(width, width, 3, padding=r, dilation=r),
                           nn.ReLU(inplace=True)]
            layers += [nn.Conv2d(width, width, 1), nn.ReLU(inplace=True)]
        self.context = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(width, classes, 1)
        he_init(self)
        if init == "identity":
            for module in self.context:
                if isinstance(module, nn.Conv2d):
                    identity_(module)
        expect_input(self, in_channels)

    def extra_repr(self) -> str:
        return f"init={self.init!r}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.context(self.front(x)))


def context_module(channels: int, rates: tuple[int, ...] = CONTEXT_RATES) -> nn.Sequential:
    """Yu & Koltun's basic context module alone (``channels`` in and out), for counting."""
    layers: list[nn.Module] = []
    for r in rates:
        layers += [nn.Conv2d(channels, channels, 3, padding=r, dilation=r), nn.ReLU()]
    layers += [nn.Conv2d(channels, channels, 1), nn.ReLU()]
    return nn.Sequential(*layers)


# --- deformable convolution (chapter 10) -------------------------------------------------------

def deformable_tail(net: nn.Module, count: int, modulated: bool) -> nn.Module:
    """Replace the convolution of the last ``count`` conv units of a CifarNet by a deformable
    one of the same shape (He-initialised like the rest; its offsets start at zero)."""
    units = [m for m in net.features if isinstance(m, ConvBNAct)]
    check_positive("count", count)
    if count > len(units):
        raise ConfigError(f"asked for {count} deformable layers (deformable/count) but the "
                          f"network has {len(units)} conv units; use at most {len(units)}")
    for unit in units[-count:]:
        conv = unit[0]
        block = DeformableConv2d(conv.in_channels, conv.out_channels, conv.kernel_size[0],
                                 stride=conv.stride[0], padding=conv.padding[0],
                                 dilation=conv.dilation[0], modulated=modulated)
        nn.init.kaiming_normal_(block.weight, mode="fan_out", nonlinearity="relu")
        unit[0] = block
    return net


def deformable_cifar_net(width: int, blocks_per_stage: int = 1, deformable: int = 1,
                         modulated: bool = False) -> CifarNet:
    """A CifarNet whose last ``deformable`` conv units are deformable: DCNv1, or DCNv2 when
    ``modulated`` (chapter 10)."""
    return deformable_tail(CifarNet(width, blocks_per_stage=blocks_per_stage), deformable,
                           modulated)
