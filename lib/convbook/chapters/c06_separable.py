"""Chapter 6 — must a convolution mix channels and space at once? Depthwise separable.

- C6.1: depthwise + pointwise cuts parameters a lot compared with a standard convolution.
- C6.2: the paper (Xception) reports better classification with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import matplotlib.pyplot as plt
from torch import nn

from convbook import experiments, measure, nets, stats
from convbook.blocks.validate import check_positive
from convbook.book import Setup
from convbook.explore import View, labels
from convbook.viz.style import log_ticks

CHAPTER = "06-separable"
MUCH_FEWER = 0.5  # "a lot": at most half the parameters


# The three networks C6.2 compares, all with about the standard CifarNet's parameters (26.7 k
# at width 16) and the same depth: a stem and six conv layers after it. The standard one has
# two 3×3 units per stage; the separable ones one unit per stage, each a depthwise and a
# pointwise layer. Every layer has batch norm and ReLU after it, except the depthwise layers
# of Xception's unit, which feed the pointwise layer directly.
STANDARD, MOBILENET, XCEPTION = ("standard, same depth", "separable, MobileNet's unit",
                                 "separable, Xception's unit")
def matched_width(build, target: int, width: int) -> int:
    """The width of ``build`` whose parameter count is closest to ``target``."""
    return nets.width_for_params(build, target, candidates=range(max(width // 2, 2), 4 * width + 1))


def widths(width: int) -> dict[str, int]:
    """Each network's width, matched to the parameters of the standard one-unit-per-stage
    net at base width ``width``."""
    target = measure.count_params(nets.CifarNet(width))
    separable = matched_width(lambda w: nets.CifarNet(w, unit=nets.separable_unit()), target, width)
    return {STANDARD: matched_width(lambda w: nets.CifarNet(w, blocks_per_stage=2), target, width),
            MOBILENET: separable, XCEPTION: separable}


@dataclass(frozen=True)
class SameWidth:
    """The standard network and its separable version at the same width, untrained: counts,
    measured times, and how many batch-norm layers each runs."""

    params: tuple[int, int]
    macs: tuple[int, int]
    forward: tuple[float, float]  # seconds per training batch
    step: tuple[float, float]  # forward + backward
    norms: tuple[int, int]
    device: str


def same_width(setup: Setup) -> SameWidth:
    width, batch = setup.profile.width, setup.profile.batch_size
    pair = (nets.CifarNet(width), nets.CifarNet(width, unit=nets.separable_unit()))
    times = [measure.train_latency(m, batch, device=setup.device) for m in pair]
    norms = [sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) for net in pair]
    return SameWidth(tuple(measure.count_params(m) for m in pair),
                     tuple(measure.count_macs(m) for m in pair),
                     tuple(t["forward"] for t in times), tuple(t["forward_backward"] for t in times),
                     tuple(norms), setup.device.type)


def verdict_c61(pair: SameWidth) -> stats.Verdict:
    """C6.1 is a count: confirmed when the separable network at the same width holds at most
    half the standard one's parameters, refuted otherwise (no noise, never inconclusive).
    Measured times are reported beside it."""
    ratio = pair.params[1] / pair.params[0]
    label = stats.CONFIRMED if ratio <= MUCH_FEWER else stats.REFUTED
    text = (f"Per layer the saving follows 1/C + 1/k² (table above). For the whole network at "
            f"the same width, separable units leave {pair.params[1]:,} of {pair.params[0]:,} "
            f"parameters ({100 * ratio:.0f}%) and {pair.macs[1] / 1e6:.2f} M of "
            f"{pair.macs[0] / 1e6:.2f} M MACs.")
    return stats.Verdict("C6.1", label, text, numbers={"param_ratio": ratio})


def time_reading(pair: SameWidth) -> str:
    """Why fewer MACs did not make training proportionally cheaper: forward against backward,
    and the extra normalisation layers."""
    forward = pair.forward[1] / pair.forward[0]
    backward = (pair.step[1] - pair.forward[1]) / (pair.step[0] - pair.forward[0])
    step = pair.step[1] / pair.step[0]
    macs = pair.macs[1] / pair.macs[0]
    return (f"At the same width the separable network needs {macs:.2f}× the MACs of the "
            f"standard one. Measured on {pair.device} at the training batch size, its forward "
            f"pass takes {forward:.2f}× the time, its backward pass {backward:.2f}× and a whole "
            f"training step {step:.2f}×. "
            + ("The time does not follow the MACs, and the counts suggest why: a depthwise "
               "layer does little arithmetic for each value it reads and writes, in the "
               "backward pass as in the forward one; and each separable unit is two layers, "
               f"so the network runs {pair.norms[1]} batch norms and as many ReLUs against "
               f"{pair.norms[0]}, each a full pass over the activations with no MACs to show "
               f"for it." if step > 1.5 * macs else
               "Here the time follows the MACs roughly."))


def verdict_c62(results: experiments.Results) -> stats.Verdict:
    """C6.2 in two parts sharing the 5 % error rate: test accuracy of the network with
    Xception's unit, and of the one with MobileNet's, minus the standard network of the same
    depth and about the same parameters. Xception's is the unit the claim's paper used."""
    confidence = stats.shared_confidence(2)
    diffs = {label: results.difference(name, STANDARD, confidence)
             for name, label in ((XCEPTION, "Xception's unit"), (MOBILENET, "MobileNet's unit"))}
    published = {"Xception's unit": stats.Published(
        0.008, "Chollet 2017, Tables 1 and 3: Xception 79.0 % against Inception V3's 78.2 % "
               "ImageNet top-1"), "MobileNet's unit": None}
    labels = {label: stats.label_difference(diff, +1) for label, diff in diffs.items()}
    parts = {label: stats.Verdict("C6.2", labels[label],
                                  f"test accuracy minus the standard network's: {diff}."
                                  + stats.detectable_note(labels[label], diff, published[label]),
                                  numbers={"difference": diff,
                                           **stats.detectable_numbers(diff, published[label])})
             for label, diff in diffs.items()}
    v = stats.combine("C6.2", parts)
    std, x, m = results[STANDARD], results[XCEPTION], results[MOBILENET]
    v.text += (f" Parameters: {x.params:,} and {m.params:,} against {std.params:,} for the "
               f"standard network. Xception's gain over Inception V3 on ImageNet was 0.8 points "
               f"at about equal parameters.")
    v.numbers = {"difference": diffs["Xception's unit"], "mobilenet": diffs["MobileNet's unit"]}
    return v


def separable_reading(results: experiments.Results, w: dict[str, int]) -> str:
    std, x, m = results[STANDARD], results[XCEPTION], results[MOBILENET]
    return (f"At about equal parameters and equal depth the standard network reaches "
            f"{std.accuracy_text()}, the separable one with Xception's unit "
            f"{x.accuracy_text()} and with MobileNet's {m.accuracy_text()}. The separable "
            f"networks are "
            f"{w[XCEPTION] / w[STANDARD]:.1f}× as wide as the standard one: the parameters a "
            f"depthwise layer saves are spent on channels."
            + (f" With {x.macs / std.macs:.2f}× the standard network's MACs a training step "
               f"takes "
               f"{x.latency['forward_backward'] / std.latency['forward_backward']:.2f}× the "
               f"standard network's time with Xception's unit and "
               f"{m.latency['forward_backward'] / std.latency['forward_backward']:.2f}× with "
               f"MobileNet's." if std.latency and x.latency and m.latency else ""))


def one_minute(c61: stats.Verdict, c62: stats.Verdict) -> str:
    return (f"Separable layers need 1/C + 1/k² of the weights; the whole network kept "
            f"{100 * c61.numbers['param_ratio']:.0f}% of its parameters (C6.1 {c61.label}). At "
            f"equal parameters and depth, separable (Xception's unit) minus standard: "
            f"{c62.numbers['difference']} (C6.2 {c62.label}).")


# --- explorer -------------------------------------------------------------------------------

@labels(channels="channels (C)", kernel_size="kernel size (k)")
def separable_cost(channels: int = 64, kernel_size: int = 3, size: int = 32) -> View:
    """Chapter 6: a standard k x k convolution (C -> C) against depthwise + pointwise."""
    from convbook.blocks.separable import DepthwiseSeparable

    check_positive("channels", channels)
    check_positive("kernel_size", kernel_size)
    check_positive("size", size)
    standard = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, bias=False)
    depthwise, pointwise = (unit[0] for unit in DepthwiseSeparable(channels, channels, kernel_size))
    counts = [measure.count_params(m) for m in (standard, depthwise, pointwise)]
    figure, ax = plt.subplots(figsize=(5.2, 3.2))
    ax.bar(["standard", "depthwise", "pointwise"], counts, color=["#e07b39", "#3b6ea5", "#3b6ea5"])
    log_ticks(ax, "y")
    ax.set_ylabel("weights (log scale)")
    ax.set_title(f"{kernel_size}x{kernel_size}, {channels} -> {channels} channels")
    figure.tight_layout()
    separable = counts[1] + counts[2]
    numbers = {
        "standard weights": f"{counts[0]:,}",
        "separable weights (depthwise + pointwise)": f"{counts[1]:,} + {counts[2]:,} = {separable:,}",
        "ratio (measured)": f"{separable / counts[0]:.4f}",
        "1/C + 1/k² (formula)": f"{float(Fraction(1, channels) + Fraction(1, kernel_size**2)):.4f}",
        f"MACs on {size}×{size}": f"{separable * size * size:,} against {counts[0] * size * size:,}",
    }
    return View(figure, numbers)
