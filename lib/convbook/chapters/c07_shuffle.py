"""Chapter 7 — can grouped channels be mixed? Channel shuffle.

- C7.1: after a shuffle each group's output depends on more input channels, so the network is
  more accurate than the same grouped network without it.
- C7.2: channel shuffle with depthwise grouped convolutions reaches very few parameters with
  accuracy beyond MobileNet and comparable to AlexNet. The book counts the parameters against
  both reference nets; the accuracy parts would need more training than a CPU build can give
  three such networks, so their accuracies are shown as an illustration, not judged.
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
from convbook.train import batch_count
from convbook.viz import curves
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


def plot_shuffle_bars(results: experiments.Results) -> plt.Figure:
    """Test accuracy with and without the shuffle at each g, bars of one standard deviation
    over seeds where a g trained several; a g with one seed gets no bar (a spread that was
    not measured is not drawn as zero) and says so under its label."""
    found = groups_of(results)
    kinds = {"no shuffle": False, "shuffle": True}
    variants = {(g, kind): results[name(g, shuffle)] for g in found
                for kind, shuffle in kinds.items()}
    one_seed = {g: min(len(variants[g, kind].runs) for kind in kinds) < 2 for g in found}
    labels = [f"g={g}" + ("\n(one seed)" if one_seed[g] else "") for g in found]
    series = {kind: [100 * variants[g, kind].test_accuracy for g in found] for kind in kinds}
    errors = {kind: [float("nan") if len(variants[g, kind].runs) < 2 else
                     100 * variants[g, kind].accuracy_sd for g in found] for kind in kinds}
    return curves.plot_bars(labels, series, ylabel="test accuracy (%)", errors=errors)


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


def c72_widths(reference: int) -> dict[str, int]:
    """Each C7.2 network's width: the ShuffleNet-style one at ``reference``, the MobileNet-style
    one at its MACs, the AlexNet-style one at ``ALEXNET_MAC_FACTOR`` times them."""
    target = designs.macs("shuffle", reference)
    widths = designs.equal_mac_widths(["separable"], target)
    widths.update(designs.equal_mac_widths(["dense"], ALEXNET_MAC_FACTOR * target))
    widths["shuffle"] = reference
    return {name: widths[design] for name, design in C72_DESIGNS.items()}


def parameters_part(shuffle: experiments.Variant, other: experiments.Variant,
                    other_name: str) -> stats.Verdict:
    """"Very few parameters" against one reference net: a count, confirmed when the
    ShuffleNet-style net holds fewer than ``other``, refuted otherwise."""
    fewer = shuffle.params < other.params
    return stats.Verdict(
        "C7.2", stats.CONFIRMED if fewer else stats.REFUTED,
        f"{shuffle.params:,} parameters against {other.params:,} for the {other_name} net "
        f"({other.macs / shuffle.macs:.1f}× the MACs): "
        f"{'fewer' if fewer else 'more'}",
        numbers={"params": [shuffle.params, other.params]})


def steps(results: experiments.Results, train_images: int) -> int:
    """Optimiser steps each run of ``results`` took on ``train_images`` images."""
    return results.recipe.epochs * batch_count(train_images, results.recipe.batch_size)


def verdict_c72(results: experiments.Results, train_images: int) -> stats.Verdict:
    """C7.2, judged on its one part this book can decide on a CPU: *very few parameters*, a
    count against both reference nets (the MobileNet-style one at equal MACs, the
    AlexNet-style one at ``ALEXNET_MAC_FACTOR``× them), combined: confirmed or refuted when
    both agree, nuanced when the answer depends on the reference. The accuracy parts ("beyond
    MobileNet", "comparable to AlexNet") are not judged: the networks train on
    ``train_images`` images for too few steps to measure them (``networks_reading`` shows
    them as an illustration)."""
    shuffle, mobile, alex = results[SHUFFLENET], results[MOBILENET], results[ALEXNET]
    parts = {"against the MobileNet-style net": parameters_part(shuffle, mobile,
                                                                 "MobileNet-style"),
             "against the AlexNet-style net": parameters_part(shuffle, alex, "AlexNet-style")}
    verdict = stats.combine("C7.2", parts)
    verdict.text = ("Very few parameters: " + verdict.text
                    + f" The accuracy parts (beyond MobileNet, comparable to AlexNet) are not "
                      f"judged: {steps(results, train_images)} training steps on "
                      f"{train_images:,} images are too few to measure them, so the accuracies "
                      f"above are an illustration.")
    verdict.numbers = {"params": {"ShuffleNet-style": shuffle.params,
                                  "MobileNet-style": mobile.params,
                                  "AlexNet-style": alex.params},
                       "steps": steps(results, train_images)}
    return verdict


def networks_reading(results: experiments.Results, train_images: int) -> str:
    """The C7.2 networks in sentences: parameters against both references (what the verdict
    judges), then the accuracies and times, named an illustration."""
    shuffle, mobile, alex = results[SHUFFLENET], results[MOBILENET], results[ALEXNET]
    fewer = [name for name, other in (("MobileNet-style", mobile), ("AlexNet-style", alex))
             if shuffle.params < other.params]
    seeds = min(len(v.runs) for v in (shuffle, mobile, alex))
    return (f"At {shuffle.macs / 1e6:.1f} M MACs the ShuffleNet-style network holds "
            f"{shuffle.params:,} parameters, against {mobile.params:,} for the MobileNet-style "
            f"one at {mobile.macs / 1e6:.1f} M MACs and {alex.params:,} for the AlexNet-style "
            f"one at {alex.macs / 1e6:.1f} M: "
            + {2: "fewer than both.", 0: "more than both."}.get(
                len(fewer), f"fewer than the {fewer[0]} one only, so whether it has "
                            f"\"very few\" depends on the reference.")
            + f" As an illustration only ({steps(results, train_images)} training steps on "
            f"{train_images:,} images, {seeds} seed{'s' if seeds != 1 else ''}: too little "
            f"training to measure accuracy, so no verdict rests on it), they reached "
            f"{100 * shuffle.test_accuracy:.1f} %, {100 * mobile.test_accuracy:.1f} % and "
            f"{100 * alex.test_accuracy:.1f} %. On this CPU the ShuffleNet-style network's "
            f"forward pass takes {1000 * shuffle.latency.get('forward', float('nan')):.1f} ms per "
            f"batch against {1000 * mobile.latency.get('forward', float('nan')):.1f} ms for the "
            f"MobileNet-style one: equal MACs, unequal time (see G2 below).")


def one_minute(c71: stats.Verdict, c72: stats.Verdict) -> str:
    return (f"A shuffle lets every output of two grouped layers see every input when g² ≤ C, "
            f"with no parameters or MACs (it is a memory copy). Accuracy at g = "
            f"{c71.numbers['groups']}, shuffle minus none: {c71.numbers['difference']} (C7.1 "
            f"{c71.label}). ShuffleNet's \"very few parameters\", counted against a "
            f"MobileNet-style and an AlexNet-style net: C7.2 {c72.label} (its accuracy parts "
            f"need more training than this build gives them, and are not judged).")


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
