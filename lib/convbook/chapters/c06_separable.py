"""Chapter 6 — must a convolution mix channels and space at once? Depthwise separable.

- C6.1: depthwise + pointwise cuts parameters a lot compared with a standard convolution.
- C6.2: the paper (Xception) reports better classification with it: the network with
  Xception's unit against a standard one of equal depth and parameters, each trained at the
  learning rate a small sweep on held-out training images chose for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Polygon
from torch import nn

from convbook import experiments, measure, nets, stats
from convbook.blocks.validate import check_positive
from convbook.book import Setup
from convbook.explore import View, labels
from convbook.viz.style import PALETTE, log_ticks

CHAPTER = "06-separable"
MUCH_FEWER = 0.5  # "a lot": at most half the parameters


# The three networks C6.2 compares, all with about the standard CifarNet's parameters (26.7 k
# at width 16) and the same depth: a stem and six conv layers after it. The standard one has
# two 3×3 units per stage; the separable ones one unit per stage, each a depthwise and a
# pointwise layer. Every layer has batch norm and ReLU after it, except the depthwise layers
# of Xception's unit, which feed the pointwise layer directly. Xception's and the standard
# network decide C6.2; MobileNet's unit is reported beside them.
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


XCEPTION_GAIN = stats.Published(0.008, "Chollet 2017, Tables 1 and 3: Xception 79.0 % against "
                                        "Inception V3's 78.2 % ImageNet top-1")

# each network as prose names it
PROSE = {STANDARD: "the standard network", MOBILENET: "the network with MobileNet's unit",
         XCEPTION: "the network with Xception's unit"}


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _rates_text(rates: dict[str, float]) -> str:
    return _and([f"{rate:g} for {PROSE.get(name, name)}" for name, rate in rates.items()])


def verdict_c62(results: experiments.Results, rates: dict[str, float] | None = None
                ) -> stats.Verdict:
    """C6.2: test accuracy of the network with Xception's unit, the unit the claim's paper
    used, minus the standard network of the same depth and about the same parameters (paired
    over seeds and images). The network with MobileNet's unit is reported beside it, not
    judged (it trains from one seed). ``rates``: each network's learning rate, stated."""
    v = stats.verdict_on_difference(
        "C6.2", results.difference(XCEPTION, STANDARD),
        "Test accuracy, separable network with Xception's unit minus the standard network of "
        "the same depth and about the same parameters", published=XCEPTION_GAIN)
    std, x, m = results[STANDARD], results[XCEPTION], results[MOBILENET]
    v.text += (f" MobileNet's unit, not judged ({len(m.runs)} seed"
               f"{'s' if len(m.runs) != 1 else ''}): "
               f"{100 * (m.test_accuracy - std.test_accuracy):+.1f} points against the standard "
               f"network's mean. Parameters: {x.params:,} and {m.params:,} against "
               f"{std.params:,} for the standard network. Xception's gain over Inception V3 on "
               f"ImageNet was 0.8 points at about equal parameters.")
    if rates:
        v.text += (f" Learning rates, each chosen on held-out training images: "
                   f"{_rates_text(rates)}.")
    return v


def separable_reading(results: experiments.Results, w: dict[str, int]) -> str:
    std, x, m = results[STANDARD], results[XCEPTION], results[MOBILENET]
    diff = results.difference(XCEPTION, STANDARD)
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
               f"MobileNet's." if std.latency and x.latency and m.latency else "")
            + f" Xception's unit minus the standard network: {diff}. "
            + stats.detectable_text(diff, XCEPTION_GAIN))


def one_minute(c61: stats.Verdict, c62: stats.Verdict) -> str:
    return (f"Separable layers need 1/C + 1/k² of the weights; the whole network kept "
            f"{100 * c61.numbers['param_ratio']:.0f}% of its parameters (C6.1 {c61.label}). At "
            f"equal parameters and depth, separable (Xception's unit) minus standard: "
            f"{c62.numbers['difference']} (C6.2 {c62.label})"
            + (f"; this run could not have detected less than "
               f"{100 * c62.numbers['detectable']:.1f} points, and Xception's reported gain "
               f"was {XCEPTION_GAIN.points()}." if c62.label == stats.INCONCLUSIVE
               and math.isfinite(c62.numbers.get("detectable", math.inf)) else "."))


# --- the unit drawn ----------------------------------------------------------------------------

@dataclass(frozen=True)
class UnitShapes:
    """The tensor shapes (C, H, W) through a standard k×k convolution and through the separable
    unit that replaces it, and the convolution weights of each layer, from real modules."""

    kernel_size: int
    input: tuple[int, int, int]
    standard: tuple[int, int, int]
    depthwise: tuple[int, int, int]
    pointwise: tuple[int, int, int]
    weights: dict[str, int]


def unit_shapes(channels_in: int = 32, channels_out: int = 64, size: int = 16,
                kernel_size: int = 3) -> UnitShapes:
    """Run a ``channels_in`` × ``size`` × ``size`` input through a standard convolution and
    through ``DepthwiseSeparable`` (its depthwise and pointwise convolutions), recording each
    output's shape and each convolution's weights (batch norm left out)."""
    from convbook.blocks.separable import DepthwiseSeparable

    for name, value in (("channels_in", channels_in), ("channels_out", channels_out),
                        ("size", size), ("kernel_size", kernel_size)):
        check_positive(name, value)
    standard = nn.Conv2d(channels_in, channels_out, kernel_size, padding=kernel_size // 2,
                         bias=False)
    depthwise, pointwise = (part[0] for part in DepthwiseSeparable(channels_in, channels_out,
                                                                     kernel_size))
    x = torch.zeros(1, channels_in, size, size)
    with torch.no_grad():
        middle = depthwise(x)
        shapes = [tuple(t.shape[1:]) for t in (x, standard(x), middle, pointwise(middle))]
    return UnitShapes(kernel_size, *shapes,
                      weights={name: m.weight.numel() for name, m in
                               (("standard", standard), ("depthwise", depthwise),
                                ("pointwise", pointwise))})


def _tensor(ax, x: float, y: float, shape: tuple[int, int, int], colours: list[str]) -> None:
    """A C × H × W tensor as a stack of channel slices (one per colour, front slice first),
    its shape written underneath."""
    depth = 0.12
    for i, colour in reversed(list(enumerate(colours))):
        ax.add_patch(Polygon([(x + i * depth, y + i * depth),
                              (x + 0.9 + i * depth, y + i * depth),
                              (x + 0.9 + i * depth, y + 0.9 + i * depth),
                              (x + i * depth, y + 0.9 + i * depth)],
                             closed=True, facecolor=colour, edgecolor="white", linewidth=0.8))
    channels, height, width = shape
    ax.text(x + 0.45 + len(colours) * depth / 2, y - 0.25, f"{channels} × {height} × {width}",
            ha="center", va="top", fontsize=9)


def _step(ax, start: float, end: float, y: float, text: str) -> None:
    ax.annotate("", xy=(end, y), xytext=(start, y),
                arrowprops={"arrowstyle": "-|>", "color": "#444444", "linewidth": 1.3})
    ax.text((start + end) / 2, y + 0.18, text, ha="center", va="bottom", fontsize=8.5)


def plot_separable_unit(shapes: UnitShapes, shown: int = 6) -> plt.Figure:
    """The standard convolution (top) and the separable unit (bottom) as tensors and steps:
    the depthwise step keeps every channel apart (each slice keeps its colour), the pointwise
    step mixes them (grey). ``shown`` channel slices are drawn per tensor; the shapes and weights
    written beside them are the real ones (``unit_shapes``)."""
    k, w = shapes.kernel_size, shapes.weights
    apart = [PALETTE[i % len(PALETTE)] for i in range(min(shown, shapes.input[0]))]
    mixed = ["#7f7f7f" if i % 2 else "#9a9a9a" for i in range(min(shown, shapes.pointwise[0]))]
    figure, ax = plt.subplots(figsize=(10.0, 4.4))
    rows = {"standard": 3.2, "separable": 0.6}
    c_in, c_out = shapes.input[0], shapes.pointwise[0]
    ax.text(0.0, rows["standard"] + 1.75, f"standard {k}×{k} convolution", fontsize=10,
            fontweight="bold")
    _tensor(ax, 0.1, rows["standard"], shapes.input, apart)
    _step(ax, 2.0, 8.7, rows["standard"] + 0.5,
          f"{shapes.standard[0]} filters, each {k}×{k}×{c_in}: every output channel reads "
          f"every input channel\n{w['standard']:,} weights")
    _tensor(ax, 9.0, rows["standard"], shapes.standard, mixed)
    ax.text(0.0, rows["separable"] + 1.75, "depthwise separable unit", fontsize=10,
            fontweight="bold")
    _tensor(ax, 0.1, rows["separable"], shapes.input, apart)
    _step(ax, 1.9, 4.2, rows["separable"] + 0.5,
          f"depthwise {k}×{k}: {c_in} filters,\neach {k}×{k} on one channel\n"
          f"{w['depthwise']:,} weights")
    _tensor(ax, 4.4, rows["separable"], shapes.depthwise, apart)
    _step(ax, 6.1, 8.8, rows["separable"] + 0.5,
          f"pointwise 1×1: {c_out} filters,\neach 1×1×{c_in} (mixes channels)\n"
          f"{w['pointwise']:,} weights")
    _tensor(ax, 9.0, rows["separable"], shapes.pointwise, mixed)
    ax.set_xlim(-0.1, 10.9)
    ax.set_ylim(-0.2, 5.2)
    ax.set_aspect("equal")
    ax.axis("off")
    return figure


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
