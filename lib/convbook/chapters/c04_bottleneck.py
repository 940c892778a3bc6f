"""Chapter 4 — how to cut a layer's parameters? The 1×1 bottleneck.

- C4.1: the review's worked example: 256·3·3·256 = 589,824 weights for a direct 3×3 layer on
  256 channels against 256·64 + 64·3·3·64 + 64·256 = 69,632 for 1×1 → 3×3 → 1×1 through 64.
- C4.2: 1×1 convolutions will be used everywhere to cut parameters (a forecast).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from torch import nn

from convbook import blocks, census, experiments, measure, stats
from convbook.blocks import BottleneckConv
from convbook.blocks.validate import check_positive
from convbook.errors import ConfigError
from convbook.explore import View, labels
from convbook.tables import Table
from convbook.viz.style import legend_outside, log_ticks

CHAPTER = "04-bottleneck"
BASIC, BOTTLENECK = "basic blocks (ResNet-8)", "bottleneck blocks (ResNet-11)"
# The architectures the forecast can be checked on (torchvision builders, random weights):
# GoogLeNet, where 1×1 reductions were introduced at scale, and what came after.
LATER_NETS = ("googlenet", "resnet50", "mobilenet_v2", "shufflenet_v2_x1_0", "convnext_tiny")
CONV_KINDS = ("dense k×k", "1×1", "grouped", "depthwise")
FORECAST_FROM = 2015  # architectures after GoogLeNet (2014), which introduced the idea


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


def forecast_census() -> tuple[list[census.Census], Table]:
    """Parameters and MACs per kind of layer in the later architectures (``census``)."""
    counted = census.torchvision_census(list(LATER_NETS))
    rows = []
    for c in counted:
        row = {"network": f"{c.name} ({c.year})"}
        for kind in ("1×1", "dense k×k", "depthwise", "grouped"):
            row[f"{kind}: parameters"] = f"{100 * c.param_share(kind):.1f}%"
            row[f"{kind}: MACs"] = f"{100 * c.mac_share(kind):.1f}%"
        rows.append(row)
    return counted, Table(rows, caption="Share of all parameters and of all MACs (224×224, one "
                          "image) in each kind of layer, counted on torchvision's modules with "
                          "random weights (nothing downloaded); 1×1 includes ConvNeXt's "
                          "per-position linear layers. The rest: fully connected layers and "
                          "norms.")


def blocks_reading(results: experiments.Results) -> str:
    basic, bottle = results[BASIC], results[BOTTLENECK]
    step = (bottle.latency["forward_backward"] / basic.latency["forward_backward"]
            if basic.latency and bottle.latency else float("nan"))
    return (f"With {bottle.params / basic.params:.2f}× the parameters and "
            f"{bottle.macs / basic.macs:.2f}× the MACs of the basic network, the bottleneck "
            f"network carries features four times as wide between its blocks and reaches "
            f"{bottle.accuracy_text()} against {basic.accuracy_text()}. "
            + (f"A training step took {step:.2f}× as long, more than the MACs account for: the "
               f"wide outputs are written to memory, normalised and added at every block."
               if step > 1.1 * bottle.macs / basic.macs else
               f"A training step took {step:.2f}× as long, about what the MACs predict."))


def forecast_reading(counted: list[census.Census]) -> str:
    """A reading of the census table: where the 1×1 layers lead, and against what."""
    later = [c for c in counted if c.year is None or c.year >= FORECAST_FROM]
    leading = [c.name for c in later
               if max(CONV_KINDS, key=lambda kind: c.params[kind]) == "1×1"]
    heavier = [c.name for c in later if c.mac_share("1×1") > c.param_share("1×1")]
    return (f"After GoogLeNet, 1×1 layers hold the largest share of parameters of any kind of "
            f"convolution in {len(leading)} of {len(later)} networks"
            + (f" ({', '.join(leading)})" if leading else "")
            + f", and in {len(heavier)} of them a larger share of the MACs than of the "
            f"parameters: they run at the widest layers and at every pixel."
            + (" In the networks with depthwise layers the 1×1 layers lead partly by default, "
               "since a depthwise k×k layer holds only k² weights per channel, and in inverted "
               "bottlenecks (MobileNetV2, ConvNeXt) half of the 1×1 layers widen rather than "
               "cut; chapter 11 counts the narrowing ones apart."
               if any(c.params["depthwise"] for c in later) else ""))


def plot_forecast(counted: list[census.Census]):
    """Share of parameters and of MACs in 1×1 layers, one pair of bars per network."""
    from convbook.viz import curves

    figure = curves.plot_bars(
        [f"{c.name.replace(' ', chr(10))}\n({c.year})" for c in counted],
        {"parameters": [100 * c.param_share("1×1") for c in counted],
         "MACs": [100 * c.mac_share("1×1") for c in counted]},
        ylabel="share in 1×1 layers (%)")
    figure.axes[0].set_ylim(0, 100)
    figure.axes[0].tick_params(axis="x", labelsize=8)
    figure.set_size_inches(7.4, 3.6)
    figure.tight_layout()
    return figure


def verdict_c41(measured: tuple[int, int], claimed: tuple[int, int]) -> stats.Verdict:
    """C4.1 is a count: confirmed when the modules hold exactly the review's numbers, refuted
    otherwise (never inconclusive). The review's "one ninth" is reported as the ratio it is."""
    label = stats.CONFIRMED if tuple(measured) == tuple(claimed) else stats.REFUTED
    direct, bottleneck = measured
    text = (f"Counted on real modules: {direct:,} weights against {bottleneck:,}, a ratio of "
            f"{direct / bottleneck:.2f} (the review's \"about one ninth\" would be 9).")
    return stats.Verdict("C4.1", label, text, numbers={"measured": list(measured),
                                                       "claimed": list(claimed)})


def verdict_c42(counted: list[census.Census], results: experiments.Results) -> stats.Verdict:
    """C4.2 in two parts. *Forecast*: in each architecture from ``FORECAST_FROM`` on, do 1×1
    layers hold more parameters than any other kind of convolution? (per network: confirmed
    or refuted; GoogLeNet, where the idea started, is counted for reference, not judged).
    *At equal cost*: test accuracy of the bottleneck ResNet minus the basic one, paired over
    seeds and images: does spending the parameters through 1×1 layers buy accuracy?"""
    networks = {}
    for c in (c for c in counted if c.year is None or c.year >= FORECAST_FROM):
        largest = max(CONV_KINDS, key=lambda kind: c.params[kind])
        networks[c.name] = stats.Verdict(
            "C4.2", stats.CONFIRMED if largest == "1×1" else stats.REFUTED,
            f"{c.name}: 1×1 layers hold {100 * c.param_share('1×1'):.0f}% of the parameters "
            f"and {100 * c.mac_share('1×1'):.0f}% of the MACs"
            + (", the largest share of any kind of convolution" if largest == "1×1" else
               f", fewer parameters than its {largest} layers"))
    forecast = stats.combine("C4.2", networks, "; ".join(p.text for p in networks.values()))
    basic, bottle = results[BASIC], results[BOTTLENECK]
    equal = results.verdict(
        "C4.2", BOTTLENECK, BASIC,
        f"test accuracy, bottleneck blocks minus basic blocks ({bottle.params:,} and "
        f"{basic.params:,} parameters)")
    v = stats.combine("C4.2", {"forecast": forecast, "at equal cost": equal})
    v.numbers = {"census": {c.name: {"params": c.params, "macs": c.macs} for c in counted},
                 "difference": equal.numbers["difference"],
                 "detectable": equal.numbers["detectable"]}
    return v


def one_minute(c41: stats.Verdict, c42: stats.Verdict) -> str:
    direct, bottleneck = c41.numbers["measured"]
    return (f"The worked example is exact: {direct:,} against {bottleneck:,} weights, "
            f"{direct / bottleneck:.2f}× fewer, not quite nine (C4.1 {c41.label}). As a forecast "
            f"and at equal cost on CIFAR-10 (C4.2 {c42.label}): bottleneck minus basic blocks, "
            f"{c42.numbers['difference']}.")


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
