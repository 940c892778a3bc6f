"""Chapter 4 — how to cut a layer's parameters? The 1×1 bottleneck.

- C4.1: the review's worked example: 256·3·3·256 = 589,824 weights for a direct 3×3 layer on
  256 channels against 256·64 + 64·3·3·64 + 64·256 = 69,632 for 1×1 → 3×3 → 1×1 through 64.
- C4.2: 1×1 convolutions will be used everywhere to cut parameters (a forecast).
"""

from __future__ import annotations

from functools import partial

import matplotlib.pyplot as plt
from torch import nn

from convbook import blocks, experiments, measure, nets, stats, zoo
from convbook.blocks import BottleneckConv
from convbook.blocks.validate import check_positive
from convbook.book import Setup
from convbook.data import CifarData
from convbook.errors import ConfigError
from convbook.explore import View, labels
from convbook.tables import Table
from convbook.viz.style import legend_outside, log_ticks

CHAPTER = "04-bottleneck"
REDUCTIONS = (1, 2, 4, 8)
# Architectures that came after the forecast (2015-2018), built with random weights.
LATER_NETS = {"ResNet-50 (2015)": zoo.resnet50, "MobileNetV2 (2018)": zoo.mobilenet_v2,
              "ShuffleNetV2 (2018)": zoo.shufflenet_v2_x1_0}


def claimed_counts(channels: int = 256, mid: int = 64, k: int = 3) -> tuple[int, int]:
    """The review's two numbers, by its own formulas."""
    return channels * k * k * channels, channels * mid + mid * k * k * mid + mid * channels


def worked_example() -> tuple[tuple[int, int], Table]:
    """The direct 3×3 layer and the bottleneck, counted on real modules (56×56 input)."""
    direct = nn.Conv2d(256, 256, 3, padding=1, bias=False)
    bottleneck = blocks.BottleneckConv(256, 64, norm=False)
    table = measure.compare_models({"3x3, 256 -> 256": direct,
                                    "1x1 256 -> 64, 3x3 64 -> 64, 1x1 64 -> 256": bottleneck},
                                   input_size=(256, 56, 56))
    return (measure.count_params(direct), measure.count_params(bottleneck)), table


def census() -> tuple[dict[str, dict[str, int]], Table]:
    """Parameters per kind of convolution in the later architectures."""
    counts = {name: measure.conv_census(build()) for name, build in LATER_NETS.items()}
    rows = []
    for name, c in counts.items():
        total = sum(c.values())
        rows.append({"network": name, **{f"{kind} share": f"{100 * c[kind] / total:.1f}%"
                                         for kind in (*measure.CONV_KINDS, "other")}})
    return counts, Table(rows, caption="Share of all parameters in each kind of layer, counted "
                         "on torchvision-equivalent modules (random weights, nothing downloaded). "
                         "'other': fully connected layers, norms and biases.")


def run_bottlenecks(setup: Setup, data: CifarData) -> experiments.Results:
    """3×3 units against 1×1 → 3×3 → 1×1 units with reduction r; r = 4 runs every seed."""
    width = setup.profile.width
    variants = {"3x3 units": partial(nets.CifarNet, width)}
    variants |= {f"bottleneck r={r}": partial(nets.CifarNet, width, unit=nets.bottleneck_unit(r))
                 for r in REDUCTIONS}
    return experiments.compare(variants, data, setup.profile, seeds=setup.seeds,
                               device=setup.device,
                               secondary=[f"bottleneck r={r}" for r in REDUCTIONS if r != 4])


def verdict_c41(measured: tuple[int, int], claimed: tuple[int, int]) -> stats.Verdict:
    """C4.1 is a count: confirmed when the modules hold exactly the review's numbers, refuted
    otherwise (never inconclusive). The review's "one ninth" is reported as the ratio it is."""
    label = stats.CONFIRMED if tuple(measured) == tuple(claimed) else stats.REFUTED
    direct, bottleneck = measured
    text = (f"Counted on real modules: {direct:,} weights against {bottleneck:,}, a ratio of "
            f"{direct / bottleneck:.2f} (the review's \"about one ninth\" would be 9).")
    return stats.Verdict("C4.1", label, text, numbers={"measured": list(measured),
                                                       "claimed": list(claimed)})


def verdict_c42(counts: dict[str, dict[str, int]], accuracy: stats.Difference) -> stats.Verdict:
    """C4.2, the forecast: in each later architecture, do 1×1 convolutions hold more weights
    than any other kind of convolution? Confirmed when they do in every one, refuted when in
    none, nuanced (per network) otherwise. The CIFAR runs' accuracy cost is reported."""
    parts = {}
    for name, c in counts.items():
        convs = {k: c[k] for k in measure.CONV_KINDS}
        largest = max(convs, key=convs.get)
        share = 100 * c["1x1"] / sum(c.values())
        parts[name] = stats.Verdict(
            "C4.2", stats.CONFIRMED if largest == "1x1" else stats.REFUTED,
            f"1×1 layers hold {share:.0f}% of the parameters"
            + ("" if largest == "1x1" else f", fewer than {largest} layers"))
    v = stats.combine("C4.2", parts)
    v.text = ("; ".join(f"{name}: {p.text}" for name, p in parts.items()) + ". On CIFAR-10, "
              f"bottleneck units (r = 4) minus 3×3 units, test accuracy: {accuracy}.")
    v.numbers = {"census": counts, "accuracy_r4_minus_plain": accuracy}
    return v


def one_minute(c41: stats.Verdict, c42: stats.Verdict) -> str:
    direct, bottleneck = c41.numbers["measured"]
    return (f"The worked example is exact: {direct:,} against {bottleneck:,} weights, "
            f"{direct / bottleneck:.2f}× fewer, not quite nine (C4.1 {c41.label}). As a forecast "
            f"(C4.2 {c42.label}): see how much of ResNet-50, MobileNetV2 and ShuffleNetV2 sits in "
            f"1×1 layers.")


# --- explorer -------------------------------------------------------------------------------

@labels(reduction="reduction (channels ÷ bottleneck width)", kernel_size="kernel size (k)")
def bottleneck_cost(reduction: int = 4, kernel_size: int = 3, channels: int = 256,
                    size: int = 56) -> View:
    """Chapter 4: a 1x1 -> k x k -> 1x1 bottleneck at ``channels / reduction`` inside against
    one k x k convolution -> weights per layer, totals and MACs."""
    check_positive("reduction", reduction)
    check_positive("kernel_size", kernel_size)
    check_positive("channels", channels)
    check_positive("size", size)
    mid = channels // reduction
    if mid < 1:
        raise ConfigError(f"reduction={reduction} leaves no channels of {channels}; "
                          f"use at most {channels}")
    direct = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, bias=False)
    stack = BottleneckConv(channels, mid, channels, kernel_size, norm=False)
    per_layer = [measure.count_params(layer) for layer in stack]
    figure, ax = plt.subplots(figsize=(5.2, 3.2))
    ax.bar([f"1×1\n{channels}→{mid}", f"{kernel_size}×{kernel_size}\n{mid}→{mid}",
            f"1×1\n{mid}→{channels}"], per_layer, color="#3b6ea5", label="bottleneck layers")
    ax.bar(["sum"], [sum(per_layer)], color="#1f3f66", label="bottleneck, all three")
    ax.axhline(measure.count_params(direct), color="#e07b39", linestyle="--",
               label=f"one {kernel_size}×{kernel_size}, {channels}→{channels}")
    log_ticks(ax, "y")
    ax.set_ylabel("weights (log scale)")
    legend_outside(ax)
    figure.tight_layout()
    total, full = sum(per_layer), measure.count_params(direct)
    numbers = {
        "bottleneck weights": f"{total:,}",
        f"one {kernel_size}×{kernel_size} layer": f"{full:,}",
        "ratio": f"{full / total:.2f}× fewer" if total < full else f"{total / full:.2f}× more",
        f"MACs on a {size}×{size} map": f"{measure.count_macs(stack, (channels, size, size)):,} "
                                      f"against {measure.count_macs(direct, (channels, size, size)):,}",
    }
    return View(figure, numbers)
