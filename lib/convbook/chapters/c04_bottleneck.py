"""Chapter 4 — how to cut a layer's parameters? The 1×1 bottleneck.

- C4.1: the review's worked example: 256·3·3·256 = 589,824 weights for a direct 3×3 layer on
  256 channels against 256·64 + 64·3·3·64 + 64·256 = 69,632 for 1×1 → 3×3 → 1×1 through 64.
- C4.2: 1×1 convolutions will be used everywhere to cut parameters (a forecast), judged on the
  architectures that came after it: in each, do 1×1 layers hold the most parameters, and do the
  narrowing ones lead into bottlenecks (the spatial convolution at fewer channels), rather than
  out of inverted bottlenecks (at more channels) or not narrow at all?

The chapter also asks its own question, which the review does not: at equal cost, are
bottleneck blocks as accurate as basic blocks? That comparison is reported with its interval
and what it could have detected, each arm at the learning rate a small sweep on held-out
training images chose for it; it carries no verdict label.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from torch import nn

from convbook import blocks, census, experiments, measure, stats, sweep
from convbook.blocks import BottleneckConv
from convbook.blocks.validate import check_positive
from convbook.errors import ConfigError
from convbook.explore import View, labels
from convbook.tables import Table
from convbook.viz.style import legend_outside, log_ticks

CHAPTER = "04-bottleneck"
BASIC, BOTTLENECK = "basic blocks (ResNet-8)", "bottleneck blocks (ResNet-11)"
SHORT = {BASIC: "basic", BOTTLENECK: "bottleneck"}
# The architectures the forecast can be checked on (torchvision builders, random weights):
# GoogLeNet, where 1×1 reductions were introduced at scale, and what came after.
LATER_NETS = ("googlenet", "resnet50", "resnext50_32x4d", "densenet121", "mobilenet_v2",
              "shufflenet_v2_x1_0", "efficientnet_b0", "regnet_y_400mf", "convnext_tiny")
CONV_KINDS = ("dense k×k", "1×1", "grouped", "depthwise")
FORECAST_FROM = 2015  # architectures after GoogLeNet (2014), which introduced the idea
# How a network's narrowing 1×1 layers are used (census.Census.bottleneck_1x1_macs and
# inverted_1x1_macs: into a bottleneck, or out of an inverted one); below this share of all
# MACs, a network is said not to narrow through 1×1 layers at all.
CUTS, INVERTED, KEEPS_WIDTH = "cut", "inverted", "keep width"
NARROWING_FLOOR = 0.01


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
    """Parameters and MACs per kind of layer in the later architectures (``census``), and how
    each one's narrowing 1×1 layers are used (``one_by_one_role``)."""
    counted = census.torchvision_census(list(LATER_NETS))
    rows = []
    for c in counted:
        row = {"network": f"{c.name} ({c.year})"}
        for kind in ("1×1", "dense k×k", "depthwise", "grouped"):
            row[f"{kind}: parameters"] = f"{100 * c.param_share(kind):.1f}%"
            row[f"{kind}: MACs"] = f"{100 * c.mac_share(kind):.1f}%"
        into, out_of = _macs(c.bottleneck_1x1_macs, c), _macs(c.inverted_1x1_macs, c)
        row["narrowing 1×1 into a bottleneck: MACs"] = f"{100 * into:.1f}%"
        row["out of an inverted bottleneck: MACs"] = f"{100 * out_of:.1f}%"
        row["its 1×1 layers"] = ROLE_WORDS[one_by_one_role(c)]
        rows.append(row)
    return counted, Table(rows, caption="Share of all parameters and of all MACs (224×224, one "
                          "image) in each kind of layer, counted on torchvision's modules with "
                          "random weights (nothing downloaded); 1×1 includes ConvNeXt's "
                          "per-position linear layers. The rest: fully connected layers and "
                          "norms. A narrowing 1×1 layer leads into a bottleneck when a later "
                          "spatial convolution of its block reads its fewer channels, and out "
                          "of an inverted bottleneck when an earlier layer of its block widened "
                          "to the channels it reads (census.block_role).")


ROLE_WORDS = {CUTS: "narrow into bottlenecks, so the spatial work runs at fewer channels",
              INVERTED: "are the ends of inverted bottlenecks, so the spatial work runs at "
                        "more channels",
              KEEPS_WIDTH: "keep the width: none narrows"}


def _macs(part: int, c: census.Census) -> float:
    return part / c.total_macs if c.total_macs else 0.0


def one_by_one_role(c: census.Census) -> str:
    """How a network's narrowing 1×1 layers are used, by their MACs: ``CUTS`` (mostly into
    bottlenecks, where the spatial convolution runs at fewer channels), ``INVERTED`` (mostly
    out of inverted bottlenecks, where it runs at more) or ``KEEPS_WIDTH`` (neither reaches
    ``NARROWING_FLOOR`` of all MACs: its 1×1 layers mix channels at a constant width)."""
    into, out_of = _macs(c.bottleneck_1x1_macs, c), _macs(c.inverted_1x1_macs, c)
    if max(into, out_of) < NARROWING_FLOOR:
        return KEEPS_WIDTH
    return CUTS if into >= out_of else INVERTED


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


def equal_cost_reading(results: experiments.Results, chosen: sweep.Sweep) -> str:
    """The book's own question, with its interval and what the run could have detected (no
    verdict label: the review does not make this claim, and He et al. report no such
    comparison to set a size against)."""
    diff = results.difference(BOTTLENECK, BASIC)
    rates = chosen.best
    at = (f"both at learning rate {rates[BASIC]:g}" if rates[BASIC] == rates[BOTTLENECK] else
          f"the basic network at learning rate {rates[BASIC]:g}, the bottleneck network at "
          f"{rates[BOTTLENECK]:g}")
    text = (f"At equal cost, bottleneck minus basic blocks, {at} (each chosen on held-out "
            f"training images): {diff}. ")
    if diff.seeds < 2:
        return text + "One seed gives no interval, so this says nothing either way."
    power = (f"at {stats.percent(stats.POWER)} power this run could detect a difference of "
             f"{100 * stats.detectable_effect(diff):.1f} points either way")
    if diff.high < 0:
        text += ("The bottleneck network is less accurate, beyond the interval: at this small "
                 "scale and equal cost, two 3×3 layers at the inner width do better than one "
                 f"between wide 1×1 ends ({power}).")
    elif diff.low > 0:
        text += ("The bottleneck network is more accurate, beyond the interval: at equal cost, "
                 f"the wide features it carries between blocks pay ({power}).")
    else:
        text += (f"The interval includes zero, so the two cannot be told apart here: {power}, "
                 f"and no smaller one.")
    return (text + _sweep_note(chosen, diff)
            + " No paper reports this comparison, so no published size is set beside it; He "
              "et al. chose bottlenecks to keep deeper networks affordable, not for accuracy at "
              "equal cost.")


def _sweep_note(chosen: sweep.Sweep, diff: stats.Difference) -> str:
    """What the held-out sweep says about the rates: each network's best held-out accuracy,
    and whether a rate at the sweep's edge could change the comparison's direction."""
    best = {name: 100 * max(sum(a) / len(a) for a in chosen.accuracy[name].values())
            for name in (BASIC, BOTTLENECK)}
    text = (f" On the held-out images the best rate gave the basic network {best[BASIC]:.1f} % "
            f"and the bottleneck network {best[BOTTLENECK]:.1f} %.")
    ahead = BASIC if diff.mean < 0 else BOTTLENECK
    for name in chosen.edge():
        text += (f" The {SHORT[name]} network's best rate is at the edge of the "
                 f"sweep; " + ("a better rate outside it would only widen the gap it leads."
                               if name == ahead else
                               "a rate outside it might narrow the gap."))
    return text


def forecast_reading(counted: list[census.Census]) -> str:
    """A reading of the census table: where the 1×1 layers lead, and what they are used for."""
    later = [c for c in counted if c.year is None or c.year >= FORECAST_FROM]
    leading = [c.name for c in later
               if max(CONV_KINDS, key=lambda kind: c.params[kind]) == "1×1"]
    roles = {role: [c.name for c in later if one_by_one_role(c) == role]
             for role in (CUTS, INVERTED, KEEPS_WIDTH)}

    def listed(names: list[str]) -> str:
        return f"{len(names)} ({', '.join(names)})" if names else "none"
    return (f"After GoogLeNet, 1×1 layers hold the largest share of parameters of any kind of "
            f"convolution in {len(leading)} of {len(later)} networks. What they do there "
            f"differs. They cut, narrowing the channels so that the spatial convolution runs "
            f"at fewer, in {listed(roles[CUTS])}; they are the two ends of inverted "
            f"bottlenecks, widening into a depthwise convolution or a wide per-position layer "
            f"and narrowing out of it, in {listed(roles[INVERTED])}; and they mix channels at "
            f"a constant width in {listed(roles[KEEPS_WIDTH])}. Where depthwise layers do the "
            f"spatial work, 1×1 layers lead partly by default, since a depthwise k×k layer "
            f"holds only k² weights per channel.")


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


def verdict_c42(counted: list[census.Census]) -> stats.Verdict:
    """C4.2, the forecast: in each architecture from ``FORECAST_FROM`` on, are 1×1 layers used
    everywhere to cut parameters? Confirmed for a network when its 1×1 layers hold more
    parameters than any other kind of convolution *and* its narrowing 1×1 layers lead into
    bottlenecks (``one_by_one_role`` is ``CUTS``); refuted when 1×1 layers do not lead, or lead
    as the ends of inverted bottlenecks or at a constant width, which is not cutting. Each
    network is a named part; GoogLeNet, where the idea started, is counted for reference, not
    judged. The verdict is confirmed or refuted when every network agrees, else nuanced."""
    networks = {}
    for c in (c for c in counted if c.year is None or c.year >= FORECAST_FROM):
        largest = max(CONV_KINDS, key=lambda kind: c.params[kind])
        role = one_by_one_role(c)
        label = stats.CONFIRMED if largest == "1×1" and role == CUTS else stats.REFUTED
        text = (f"{c.name}: 1×1 layers hold {100 * c.param_share('1×1'):.0f}% of the parameters "
                f"and {100 * c.mac_share('1×1'):.0f}% of the MACs"
                + (", the largest share of any kind of convolution" if largest == "1×1" else
                   f", fewer parameters than its {largest} layers")
                + f"; its 1×1 layers {ROLE_WORDS[role]}")
        networks[c.name] = stats.Verdict("C4.2", label, text)
    if not networks:
        raise ConfigError(f"verdict_c42 needs at least one network from {FORECAST_FROM} on")
    cut = [name for name, part in networks.items() if part.label == stats.CONFIRMED]
    summary = (f"1×1 layers are used to cut parameters, narrowing into bottlenecks where they "
               f"hold the most parameters, in {len(cut)} of the {len(networks)} networks "
               f"after GoogLeNet counted here. ")
    v = stats.combine("C4.2", networks,
                      summary + "; ".join(p.text for p in networks.values()) + ".")
    v.numbers = {"census": {c.name: {"params": c.params, "macs": c.macs,
                                     "bottleneck_1x1_macs": c.bottleneck_1x1_macs,
                                     "inverted_1x1_macs": c.inverted_1x1_macs,
                                     "role": one_by_one_role(c)} for c in counted}}
    return v


def one_minute(c41: stats.Verdict, c42: stats.Verdict, results: experiments.Results) -> str:
    direct, bottleneck = c41.numbers["measured"]
    cut = [name for name, part in c42.parts.items() if part.label == stats.CONFIRMED]
    return (f"The worked example is exact: {direct:,} against {bottleneck:,} weights, "
            f"{direct / bottleneck:.2f}× fewer, not quite nine (C4.1 {c41.label}). As a "
            f"forecast (C4.2 {c42.label}): 1×1 layers cut parameters, narrowing into "
            f"bottlenecks, in {len(cut)} of the {len(c42.parts)} later networks counted"
            + (f" ({', '.join(cut)})" if cut else "")
            + f". Not a claim of the review: at equal cost on CIFAR-10, bottleneck minus basic "
            f"blocks, {results.difference(BOTTLENECK, BASIC)}.")


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
