"""Chapter 7 — can grouped channels be mixed? Channel shuffle.

- C7.1: after a shuffle each group's output depends on more input channels, so the network is
  more accurate than the same grouped network without it.
- C7.2: channel shuffle with depthwise grouped convolutions reaches very few parameters with
  accuracy beyond MobileNet and comparable to AlexNet.
"""

from __future__ import annotations

from functools import partial

import matplotlib.pyplot as plt
from torch import nn

from convbook import blocks, experiments, measure, nets, stats
from convbook.blocks.validate import check_groups, check_positive
from convbook.book import Setup
from convbook.data import CifarData
from convbook.explore import View, labels
from convbook.tables import Table
from convbook.viz.connectivity import connectivity, plot_connectivity

CHAPTER = "07-shuffle"
GROUPS = (2, 4, 8)
DECIDING_GROUPS = 4  # g² <= C at the book's width: one shuffle can reach every input


def name(groups: int, shuffle: bool) -> str:
    return f"g={groups}, {'shuffle' if shuffle else 'no shuffle'}"


def run_shuffle(setup: Setup, data: CifarData) -> experiments.Results:
    """Grouped 3×3 units with and without a shuffle after each; only g = 4 (where a shuffle
    can connect every input to every output of two layers) runs every seed."""
    width = setup.profile.width
    variants = {name(g, s): partial(nets.CifarNet, width, unit=nets.grouped_unit(g, shuffle=s))
                for g in GROUPS for s in (False, True)}
    return experiments.compare(
        variants, data, setup.profile, seeds=setup.seeds, device=setup.device,
        secondary=[n for n in variants if not n.startswith(f"g={DECIDING_GROUPS},")])


def unit_costs() -> tuple[dict[str, int], Table]:
    models = {
        "ShuffleNet unit, g=3": blocks.ShuffleUnit(240, groups=3),
        "MobileNet block (depthwise + pointwise)": blocks.DepthwiseSeparable(240, 240),
        "ResNet bottleneck 240 -> 60 -> 240": blocks.Bottleneck(240, 60),
        "ResNet basic block, 240 channels": blocks.BasicBlock(240, 240),
    }
    return ({k: measure.count_params(m) for k, m in models.items()},
            measure.compare_models(models, input_size=(240, 28, 28)))


def verdict_c71(results: experiments.Results) -> stats.Verdict:
    """C7.1: test accuracy with the shuffle minus without, at g = 4 (same parameters and
    MACs). Other group counts ran one seed and are reported, not judged."""
    v = results.verdict("C7.1", name(DECIDING_GROUPS, True), name(DECIDING_GROUPS, False),
                        f"Test accuracy at g = {DECIDING_GROUPS}, with shuffle minus without "
                        "(identical parameters and MACs)")
    others = [g for g in GROUPS if g != DECIDING_GROUPS]
    single = ", ".join(f"{100 * (results[name(g, True)].test_accuracy - results[name(g, False)].test_accuracy):+.1f} "
                       f"points at g = {g}" for g in others)
    v.text += f" One seed each, not judged: {single}."
    return v


def verdict_c72(unit_params: dict[str, int]) -> stats.Verdict:
    """C7.2 has two parts. *Parameters*: confirmed when the ShuffleNet unit holds fewer
    parameters than the MobileNet block of the same width, refuted otherwise. *Accuracy
    against MobileNet and AlexNet*: this chapter trains no ShuffleNet against them, so that part
    is inconclusive here by construction (the paper's ImageNet numbers are quoted in the text).
    The combined label is therefore always nuanced, with the parameter part confirmed or
    refuted: it cannot be confirmed, refuted or inconclusive as a whole until a chapter run
    trains a ShuffleNet against a MobileNet-style network at equal MACs."""
    shuffle = unit_params["ShuffleNet unit, g=3"]
    mobile = unit_params["MobileNet block (depthwise + pointwise)"]
    params = stats.Verdict(
        "C7.2", stats.CONFIRMED if shuffle < mobile else stats.REFUTED,
        f"a ShuffleNet unit on 240 channels holds {shuffle:,} parameters against {mobile:,} for "
        f"a MobileNet block ({mobile / shuffle:.1f}×), mostly thanks to its 1/4 bottleneck")
    accuracy = stats.Verdict(
        "C7.2", stats.INCONCLUSIVE,
        "not trained in this run; ShuffleNet's own ImageNet comparison is quoted above")
    return stats.combine("C7.2", {"parameters": params, "accuracy": accuracy})


def one_minute(c71: stats.Verdict, c72: stats.Verdict) -> str:
    return (f"A shuffle lets every output of two grouped layers see every input when g² ≤ C, "
            f"with no parameters or MACs (it is a memory copy). Accuracy at g = "
            f"{DECIDING_GROUPS}, shuffle minus none: {c71.numbers['difference']} (C7.1 "
            f"{c71.label}). C7.2: {c72.label}.")


# --- explorer -------------------------------------------------------------------------------

@labels(groups="groups (g)", shuffle="shuffle between layers", layers="stacked layers")
def shuffle_connectivity(groups: int = 4, shuffle: bool = True, layers: int = 2,
                         channels: int = 16) -> View:
    """Chapter 7: ``layers`` grouped 1x1 convolutions, with or without a channel shuffle between
    them -> which input channels each final output channel depends on."""
    from convbook.blocks.shuffle import ChannelShuffle

    check_positive("channels", channels)
    check_groups(channels, channels, groups)
    check_positive("layers", layers)
    stack: list[nn.Module] = []
    for i in range(layers):
        stack.append(nn.Conv2d(channels, channels, 1, groups=groups, bias=False))
        if shuffle and i < layers - 1:
            stack.append(ChannelShuffle(groups))
    matrix = connectivity(nn.Sequential(*stack), channels)
    figure, ax = plt.subplots(figsize=(3.8, 3.8))
    plot_connectivity(matrix, ax=ax, title=f"{layers} grouped layers, "
                                           f"{'with' if shuffle else 'no'} shuffle")
    figure.tight_layout()
    seen = matrix.sum(dim=1)
    numbers = {
        "input channels each output sees": f"{int(seen.min())}–{int(seen.max())} of {channels}"
        if seen.min() != seen.max() else f"{int(seen[0])} of {channels}",
        "groups": str(groups),
    }
    return View(figure, numbers)
