"""Named designs of a network's unit, compared in one frame at equal MACs (chapters 7 and 11).

Every design here is a shape-keeping unit that ``nets.StageNet`` stacks (a 3×3 stem, three
stages of units at widths w, 2w, 4w, the same separable downsampling between stages, a linear
head), so that two designs differ only in their units. ``equal_mac_widths`` picks each design's
width w so that its MACs come as close to a reference as its divisibility allows.

- ``dense``: a 3×3 conv unit (conv, batch norm, ReLU): the AlexNet/VGG-era layer;
- ``separable``: depthwise 3×3 then pointwise 1×1, each with batch norm and ReLU (MobileNet);
- ``shuffle``: ShuffleNet's unit: grouped 1×1 down to a quarter (4 groups), channel shuffle,
  depthwise 3×3, grouped 1×1 back up, plus the input;
- ``inverted``: MobileNetV2's inverted residual: 1×1 up to 6×, depthwise 3×3, linear 1×1 back,
  plus the input;
- ``regnet``: RegNet's X block: 1×1, grouped 3×3, 1×1, all at the unit's width, plus the
  input (no bottleneck); 4 channels per group at these small widths (RegNetY-400MF has 8 at
  ImageNet widths of 48 and more);
- ``convnext``: ConvNeXt's block: depthwise 7×7, layer norm, 1×1 up to 4×, GELU, 1×1 back,
  plus the input.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from torch import nn

from convbook import measure, nets, profiles
from convbook.blocks import ConvBNAct, DepthwiseSeparable, InvertedResidual, ShuffleUnit
from convbook.blocks.convnext import ConvNeXtBlock
from convbook.blocks.regnet import XBlock
from convbook.blocks.validate import check_positive
from convbook.errors import ConfigError
from convbook.train import Recipe

REGNET_GROUP_WIDTH = 4
# width step each design needs (ShuffleNet's quarter must split into 4 groups; RegNet's width
# into groups of REGNET_GROUP_WIDTH); the others take any width, so their MACs match closely
WIDTH_STEP = {"dense": 1, "separable": 1, "shuffle": 16, "inverted": 1,
              "regnet": REGNET_GROUP_WIDTH, "convnext": 1}
DESIGNS = tuple(WIDTH_STEP)
# The recipe's learning rate (0.3 at batch 64) made the ShuffleNet-style network diverge in a
# pilot run (first-epoch loss above 4, then chance); every design trains at a third of it.
LR_FACTOR = 1 / 3
# The task every comparison of designs trains on, per profile: (training images, test images,
# epochs), None keeping the profile's. Depthwise and grouped layers are slow per MAC on a CPU,
# so `book` shrinks it (chapter 7's C7.2 networks, an illustration at this size).
TASK = {"book": (1_500, 2_500, 3)}
# The ShuffleNet-style network's base width, which sets the MACs the other designs are matched to.
REFERENCE_WIDTH = {"smoke": 48, "book": 48, "full": 128}


def unit(design: str, channels: int) -> nn.Module:
    """One shape-keeping unit of ``design`` (one of ``DESIGNS``) at ``channels``."""
    if design in WIDTH_STEP:
        check_positive("channels", channels)
    if design == "shuffle" and channels % 16:
        raise ConfigError(f"the 'shuffle' unit needs channels divisible by 16 (4 groups of its "
                          f"quarter), got {channels}; use {max(16, channels // 16 * 16)} or "
                          f"{(channels // 16 + 1) * 16}")
    if design == "dense":
        return ConvBNAct(channels, channels, 3)
    if design == "separable":
        return DepthwiseSeparable(channels, channels)
    if design == "shuffle":
        return ShuffleUnit(channels, groups=4)
    if design == "inverted":
        return InvertedResidual(channels, channels, 1, 6)
    if design == "regnet":
        return XBlock(channels, group_width=REGNET_GROUP_WIDTH)
    if design == "convnext":
        return ConvNeXtBlock(channels)
    raise ConfigError(f"design must be one of {', '.join(DESIGNS)}, got {design!r}")


def network(design: str, width: int) -> nets.StageNet:
    """``design``'s units in the common frame, base width ``width``."""
    if design not in WIDTH_STEP:
        raise ConfigError(f"design must be one of {', '.join(DESIGNS)}, got {design!r}")
    return nets.StageNet(partial(unit, design), width)


def equal_mac_widths(designs: Sequence[str], target_macs: int,
                     max_width: int = 512) -> dict[str, int]:
    """For each design, the width (a multiple of its step, up to ``max_width``) whose
    network's MACs per 32×32 image are closest to ``target_macs``. MACs grow with width, so a
    bisection finds it in a few counts."""
    if target_macs <= 0:
        raise ConfigError(f"target_macs must be positive, got {target_macs}")
    unknown = [d for d in designs if d not in WIDTH_STEP]
    if unknown:
        raise ConfigError(f"unknown design {unknown[0]!r}: designs are {', '.join(DESIGNS)}")
    widths = {}
    for design in designs:
        candidates = list(range(WIDTH_STEP[design], max_width + 1, WIDTH_STEP[design]))
        low, high = 0, len(candidates) - 1
        while low < high:  # the first width whose MACs reach the target
            middle = (low + high) // 2
            if macs(design, candidates[middle]) < target_macs:
                low = middle + 1
            else:
                high = middle
        nearby = candidates[max(low - 1, 0): low + 1]
        widths[design] = min(nearby, key=lambda w: abs(macs(design, w) - target_macs))
    return widths


def macs(design: str, width: int) -> int:
    """MACs per 32×32 image of ``design``'s network at base width ``width``."""
    return measure.count_macs(network(design, width))


def reference_width(profile) -> int:
    """``REFERENCE_WIDTH`` for ``profile`` (a ``profiles.Profile``)."""
    return profiles.choose(REFERENCE_WIDTH, profile.name, "designs.REFERENCE_WIDTH")


def task_data(setup):
    """CIFAR-10 at ``TASK``'s sizes for ``setup``'s profile (a ``book.Setup``)."""
    train, test, _ = TASK.get(setup.profile.name, (None, None, None))
    return setup.data(train_size=train, test_size=test)


def task_recipe(profile) -> Recipe:
    """``profile``'s recipe at ``TASK``'s epochs and the designs' learning rate."""
    return recipe(profile.recipe, TASK.get(profile.name, (None, None, None))[2])


def recipe(base: Recipe, epochs: int | None = None) -> Recipe:
    """The recipe every design trains with: ``base`` at ``LR_FACTOR`` times its learning
    rate (and ``epochs`` if given)."""
    changes = {"lr": base.lr * LR_FACTOR}
    if epochs is not None:
        changes["epochs"] = epochs
    return base.with_(**changes)
