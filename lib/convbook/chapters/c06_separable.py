"""Chapter 6 — must a convolution mix channels and space at once? Depthwise separable.

- C6.1: depthwise + pointwise cuts parameters a lot compared with a standard convolution.
- C6.2: the paper (Xception) reports better classification with it.
"""

from __future__ import annotations

from fractions import Fraction
from functools import partial

import matplotlib.pyplot as plt
from torch import nn

from convbook import experiments, measure, nets, stats
from convbook.blocks.validate import check_positive
from convbook.book import Setup
from convbook.data import CifarData
from convbook.explore import View, labels
from convbook.viz.style import log_ticks

CHAPTER = "06-separable"
MUCH_FEWER = 0.5  # "a lot": at most half the parameters


def matched_width(width: int) -> int:
    """The separable network's width whose parameter count is closest to the standard one's."""
    target = measure.count_params(nets.CifarNet(width))
    return nets.width_for_params(lambda w: nets.CifarNet(w, unit=nets.separable_unit()),
                                 target, candidates=range(width, 4 * width + 1, 4))


def run_separable(setup: Setup, data: CifarData) -> experiments.Results:
    """Standard 3×3 units; separable units at the same width (one seed); separable units at
    equal parameters (the deciding pair with the standard net)."""
    width = setup.profile.width
    wide = matched_width(width)
    return experiments.compare(
        {"standard 3x3": partial(nets.CifarNet, width),
         "separable, same width": partial(nets.CifarNet, width, unit=nets.separable_unit()),
         "separable, equal parameters": partial(nets.CifarNet, wide, unit=nets.separable_unit())},
        data, setup.profile, seeds=setup.seeds, device=setup.device,
        secondary=("separable, same width",))


def verdict_c61(results: experiments.Results, device: str) -> stats.Verdict:
    """C6.1 is a count: confirmed when the separable network at the same width holds at most
    half the standard one's parameters, refuted otherwise (no noise, never inconclusive).
    Measured step time is reported beside it."""
    std, same = results["standard 3x3"], results["separable, same width"]
    ratio = same.params / std.params
    label = stats.CONFIRMED if ratio <= MUCH_FEWER else stats.REFUTED
    text = (f"Per layer the saving follows 1/C + 1/k² (table above). For the whole network at "
            f"the same width, separable units leave {same.params:,} of {std.params:,} parameters "
            f"({100 * ratio:.0f}%) and {same.macs / 1e6:.2f} M of {std.macs / 1e6:.2f} M MACs.")
    if std.latency and same.latency:
        t = same.latency["forward_backward"] / std.latency["forward_backward"]
        text += (f" One training step (forward and backward, measured on {device}) took "
                 f"{t:.2f}× the standard network's time.")
    return stats.Verdict("C6.1", label, text, numbers={"param_ratio": ratio})


def verdict_c62(results: experiments.Results) -> stats.Verdict:
    """C6.2: test accuracy of the separable network at equal parameters minus the standard one."""
    v = results.verdict("C6.2", "separable, equal parameters", "standard 3x3",
                        "Test accuracy, separable minus standard at equal parameters")
    matched, std = results["separable, equal parameters"], results["standard 3x3"]
    v.text += (f" ({matched.params:,} against {std.params:,} parameters.) Xception's gain over "
               f"Inception V3 on ImageNet was 0.8 points at about equal parameters.")
    return v


def one_minute(c61: stats.Verdict, c62: stats.Verdict) -> str:
    return (f"Separable layers need 1/C + 1/k² of the weights; the whole network kept "
            f"{100 * c61.numbers['param_ratio']:.0f}% of its parameters (C6.1 {c61.label}). At "
            f"equal parameters, separable minus standard: {c62.numbers['difference']} "
            f"(C6.2 {c62.label}).")


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
