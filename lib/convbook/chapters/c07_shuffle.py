"""Chapter 7 — can grouped channels be mixed? Channel shuffle.

- C7.1: after a shuffle each group's output depends on more input channels, so the network is
  more accurate than the same grouped network without it.
- C7.2: channel shuffle with depthwise grouped convolutions reaches very few parameters with
  accuracy beyond MobileNet and comparable to AlexNet.
"""

from __future__ import annotations

import re

import matplotlib.pyplot as plt
from torch import nn

from convbook import blocks, designs, experiments, measure, stats
from convbook.blocks.validate import check_groups, check_positive
from convbook.book import Setup
from convbook.explore import View, labels
from convbook.tables import Table
from convbook.viz.connectivity import connectivity, plot_connectivity

CHAPTER = "07-shuffle"


def name(groups: int, shuffle: bool) -> str:
    return f"g={groups}, {'shuffle' if shuffle else 'no shuffle'}"


GROUPS_G2 = (1, 2, 4, 8)


def group_speed(setup: Setup) -> Table:
    """ShuffleNet V2's G2 on this device: grouped 1×1 layers at (nearly) equal MACs."""
    return measure.grouped_latency_at_equal_macs(base_channels=64, groups=list(GROUPS_G2),
                                                 device=setup.device)


def groups_of(results: experiments.Results) -> list[int]:
    """The group counts a shuffle comparison trained (its variants are named by ``name``)."""
    found = sorted({int(m.group(1)) for v in results
                    if (m := re.fullmatch(r"g=(\d+), (?:no )?shuffle", v.name))})
    for g in found:
        for shuffle in (False, True):
            results[name(g, shuffle)]  # raises, naming the variants there, if one is missing
    return found


def shuffle_reading(results: experiments.Results, g_deciding: int) -> str:
    """A reading of the shuffle table: the gain at each g, and the seed spread at the deciding g."""
    gains = {g: results[name(g, True)].test_accuracy - results[name(g, False)].test_accuracy
             for g in groups_of(results)}
    deciding = [results[name(g_deciding, s)] for s in (False, True)]
    spread = max(v.accuracy_sd for v in deciding)
    listed = ", ".join(f"{100 * gain:+.1f} points at g = {g}" for g, gain in gains.items())
    text = f"Shuffled minus unshuffled test accuracy: {listed}."
    if min(len(v.runs) for v in deciding) < 2:
        return text + " With one seed the seed-to-seed spread is not measured."
    return (text + f" At g = {g_deciding} the networks' accuracy varies by "
            f"{100 * spread:.1f} points (sd) from seed to seed, "
            + ("at least as much as the gain: the verdict weighs the two." if
               spread >= abs(gains[g_deciding]) else
               "less than the gain; the verdict also counts the test images' sampling."))


def group_speed_reading(table: Table) -> str:
    """A reading of the G2 table: time at the most groups against one group, at equal MACs."""
    times = table.column("latency (ms)")
    macs = table.column("MACs")
    return (f"From one group to {GROUPS_G2[-1]} the MACs stay within "
            f"{100 * (max(macs) / min(macs) - 1):.0f} % of each other while the forward time "
            f"changes {times[-1] / times[0]:.2f}-fold on this device"
            + (": more groups, more time, as G2 says." if times[-1] > times[0] else
               ": here more groups did not cost time, which G2 measured on GPUs and ARM cores."))


def unit_costs() -> Table:
    models = {
        "ShuffleNet unit, g=3": blocks.ShuffleUnit(240, groups=3),
        "MobileNet block (depthwise + pointwise)": blocks.DepthwiseSeparable(240, 240),
        "ResNet bottleneck 240 -> 60 -> 240": blocks.Bottleneck(240, 60),
        "ResNet basic block, 240 channels": blocks.BasicBlock(240, 240),
    }
    return measure.compare_models(models, input_size=(240, 28, 28))


def verdict_c71(results: experiments.Results, g_deciding: int) -> stats.Verdict:
    """C7.1: test accuracy with the shuffle minus without, at g = ``g_deciding`` (same
    parameters and MACs). Other group counts ran one seed and are reported, not judged."""
    v = results.verdict("C7.1", name(g_deciding, True), name(g_deciding, False),
                        f"Test accuracy at g = {g_deciding}, with shuffle minus without "
                        "(identical parameters and MACs)",
                        published=stats.Published(0.013, "Zhang et al. 2018, Table 3: ImageNet "
                                                  "top-1 error without against with the "
                                                  "shuffle, six networks", upto=0.058))
    others = [g for g in groups_of(results) if g != g_deciding]
    single = ", ".join(f"{100 * (results[name(g, True)].test_accuracy - results[name(g, False)].test_accuracy):+.1f} "
                       f"points at g = {g}" for g in others)
    if others:
        v.text += f" One seed each, not judged: {single}."
    v.numbers["groups"] = g_deciding
    return v


# --- C7.2: whole networks at equal MACs ------------------------------------------------------

# name in tables -> design (convbook.designs); each in the same frame, widths matched in MACs
C72_DESIGNS = {"ShuffleNet-style": "shuffle", "MobileNet-style": "separable",
               "AlexNet-style (dense 3×3)": "dense"}
SHUFFLENET, MOBILENET, ALEXNET = C72_DESIGNS
# ShuffleNet matched AlexNet's accuracy at a small fraction of its computation; the book gives
# the AlexNet-style net this many times the ShuffleNet-style net's MACs.
ALEXNET_MAC_FACTOR = 8
COMPARABLE = 0.02  # "comparable": not more than 2 points less accurate


def c72_widths(reference: int) -> dict[str, int]:
    """Each C7.2 network's width: the ShuffleNet-style one at ``reference``, the MobileNet-style
    one at its MACs, the AlexNet-style one at ``ALEXNET_MAC_FACTOR`` times them."""
    target = designs.macs("shuffle", reference)
    widths = designs.equal_mac_widths(["separable"], target)
    widths.update(designs.equal_mac_widths(["dense"], ALEXNET_MAC_FACTOR * target))
    widths["shuffle"] = reference
    return {name: widths[design] for name, design in C72_DESIGNS.items()}


def comparable_label(diff: stats.Difference, margin: float = COMPARABLE) -> str:
    """"A is comparable to B": confirmed when A − B is above −``margin`` beyond the interval,
    refuted when it is below −``margin`` beyond it, inconclusive otherwise."""
    if diff.low > -margin:
        return stats.CONFIRMED
    if diff.high < -margin:
        return stats.REFUTED
    return stats.INCONCLUSIVE


def verdict_c72(results: experiments.Results) -> stats.Verdict:
    """C7.2 in three named parts. *Parameters*: the ShuffleNet-style net holds fewer than the
    MobileNet-style one at equal MACs (a count: confirmed or refuted). *Beyond MobileNet*: its
    test accuracy minus the MobileNet-style net's (the usual paired interval). *Comparable to
    AlexNet*: its accuracy minus the AlexNet-style net's, which has ``ALEXNET_MAC_FACTOR``×
    the MACs, is above −2 points beyond the interval (``comparable_label``). The two accuracy
    intervals share the 5 % error rate."""
    shuffle, mobile, alex = results[SHUFFLENET], results[MOBILENET], results[ALEXNET]
    params = stats.Verdict(
        "C7.2", stats.CONFIRMED if shuffle.params < mobile.params else stats.REFUTED,
        f"{shuffle.params:,} parameters against {mobile.params:,} for the MobileNet-style net "
        f"at nearly equal MACs ({shuffle.macs / 1e6:.1f} M and {mobile.macs / 1e6:.1f} M)")
    confidence = stats.shared_confidence(2)  # the two accuracy parts
    vs_mobile = results.difference(SHUFFLENET, MOBILENET, confidence)
    paper = stats.Published(0.078, "Zhang et al. 2018, abstract: ImageNet top-1 error against "
                                   "MobileNet's at 40 MFLOPs")
    label = stats.label_difference(vs_mobile, +1)
    beyond = stats.Verdict("C7.2", label,
                           f"test accuracy minus the MobileNet-style net's: {vs_mobile}."
                           + stats.detectable_note(label, vs_mobile, paper),
                           numbers={"difference": vs_mobile,
                                    **stats.detectable_numbers(vs_mobile, paper)})
    vs_alex = results.difference(SHUFFLENET, ALEXNET, confidence)
    label = comparable_label(vs_alex)
    comparable = stats.Verdict(
        "C7.2", label,
        f"test accuracy minus the AlexNet-style net's ({alex.macs / shuffle.macs:.0f}× the "
        f"MACs): {vs_alex}; comparable means not more than {100 * COMPARABLE:.0f} points below."
        + stats.detectable_note(label, vs_alex),
        numbers={"difference": vs_alex, **stats.detectable_numbers(vs_alex)})
    return stats.combine("C7.2", {"parameters": params, "beyond MobileNet": beyond,
                                  "comparable to AlexNet": comparable})


def networks_reading(results: experiments.Results) -> str:
    shuffle, mobile, alex = results[SHUFFLENET], results[MOBILENET], results[ALEXNET]
    return (f"At {shuffle.macs / 1e6:.1f} M MACs the ShuffleNet-style network reaches "
            f"{100 * shuffle.test_accuracy:.1f} % against {100 * mobile.test_accuracy:.1f} % for "
            f"the MobileNet-style one ({mobile.macs / 1e6:.1f} M MACs); the AlexNet-style "
            f"network, with {alex.macs / 1e6:.1f} M MACs, reaches "
            f"{100 * alex.test_accuracy:.1f} %. On this CPU the ShuffleNet-style network's "
            f"forward pass takes {1000 * shuffle.latency.get('forward', float('nan')):.1f} ms per "
            f"batch against {1000 * mobile.latency.get('forward', float('nan')):.1f} ms for the "
            f"MobileNet-style one: equal MACs, unequal time (see G2 below).")


def one_minute(c71: stats.Verdict, c72: stats.Verdict) -> str:
    return (f"A shuffle lets every output of two grouped layers see every input when g² ≤ C, "
            f"with no parameters or MACs (it is a memory copy). Accuracy at g = "
            f"{c71.numbers['groups']}, shuffle minus none: {c71.numbers['difference']} (C7.1 "
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
