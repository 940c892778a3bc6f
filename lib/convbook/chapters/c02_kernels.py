"""Chapter 2 — is a bigger kernel better? 3×3 kernels.

- C2.1: two stacked 3×3 convolutions cover the receptive field of one 5×5 with fewer
  parameters.
- C2.2: the stack of 3×3 works better than the single 5×5.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from torch import nn

from convbook import experiments, measure, receptive, stats
from convbook.blocks.validate import check_positive
from convbook.errors import ConfigError
from convbook.explore import View, labels
from convbook.receptive import Layer, receptive_fields, sampled_offsets
from convbook.tables import Table
from convbook.viz.receptive import plot_fields_on_image, sqrt_scale

CHAPTER = "02-small-kernels"
STACKS = ((5, 1), (3, 2), (7, 1), (3, 3))  # (kernel size, depth)
ERF_DEPTHS = (1, 2, 4, 8, 16)
FIVE = "one 5x5 per stage"
PAIR = "two 3x3 per stage"
CONTROL = "one 3x3 per stage"


@dataclass(frozen=True)
class Stack:
    kernel_size: int
    depth: int
    field: int
    params: int


def stack(kernel_size: int, depth: int, channels: int = 64) -> Stack:
    """Receptive field and parameters (with biases) of ``depth`` same-padded k×k convolutions
    from ``channels`` to ``channels``, counted on real modules."""
    modules = nn.Sequential(*[nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2)
                              for _ in range(depth)])
    return Stack(kernel_size, depth, receptive.receptive_field(modules).size,
                 measure.count_params(modules))


def stack_table(channels: int = 64) -> tuple[dict[tuple[int, int], Stack], Table]:
    stacks = {(k, d): stack(k, d, channels) for k, d in STACKS}
    rows = [{"stack": f"{s.depth} x {s.kernel_size}x{s.kernel_size}",
             "receptive field": f"{s.field}x{s.field}",
             "weights per channel pair": s.depth * s.kernel_size**2,
             f"parameters, C = {channels} (measured)": s.params,
             f"parameters, C = {channels} (formula)":
                 s.depth * (s.kernel_size**2 * channels**2 + channels)}
            for s in stacks.values()]
    return stacks, Table(rows, caption=f"Stacks of same-padded convolutions from {channels} to "
                                       f"{channels} channels, one bias per output channel per layer.")


@dataclass(frozen=True)
class CentreShares:
    """Share of the gradient in the centre 3×3 of a 5×5 field: measured on random stacks
    (mean over ``samples`` inputs) and expected from path counts with random weights."""

    measured_five: float
    measured_pair: float
    expected_five: float
    expected_pair: float
    samples: int


def centre_shares(five: torch.Tensor, pair: torch.Tensor, samples: int) -> CentreShares:
    return CentreShares(receptive.central_mass(five, 3), receptive.central_mass(pair, 3),
                        receptive.central_mass(receptive.expected_erf(5, 1), 3),
                        receptive.central_mass(receptive.expected_erf(3, 2), 3), samples)


def path_counts(kernel_size: int, depth: int) -> list[int]:
    """Along one axis, through how many paths each input offset reaches the centre output of
    ``depth`` stride-1 k×k layers: the ways of adding one tap offset per layer (the ``depth``-fold
    convolution of a box of ``kernel_size`` ones). A pixel's 2-D count is its row's times its
    column's."""
    check_positive("kernel_size", kernel_size)
    check_positive("depth", depth)
    counts = [1]
    for _ in range(depth):
        counts = [sum(counts[i - t] for t in range(kernel_size) if 0 <= i - t < len(counts))
                  for i in range(len(counts) + kernel_size - 1)]
    return counts


def _power(base: int, exponent: int) -> str:
    return f"{base}" + str(exponent).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))


def _and(items: list) -> str:
    words = [str(i) for i in items]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _root_sum(counts: list[int]) -> str:
    return " + ".join("1" if c == 1 else f"√{c}" for c in counts)


def path_count_line(kernel_size: int = 3, depth: int = 2) -> str:
    """The path count worked through for one stack: the 1-D counts, the centre and corner
    pixels, the total, and the share of the expected gradient in the centre 3×3 (each pixel's
    expected |gradient| ∝ √paths with random weights; ``receptive.expected_erf``)."""
    counts = path_counts(kernel_size, depth)
    side, mid = len(counts), len(counts) // 2
    if side < 3:
        raise ConfigError(f"a {kernel_size}x{kernel_size} stack of {depth} layers has a "
                          f"{side}x{side} field, smaller than the centre 3x3; use a larger "
                          f"kernel or more layers")
    centre = counts[mid - 1:mid + 2]
    inner = sum(c ** 0.5 for c in centre)
    outer = sum(c ** 0.5 for c in counts)
    return (f"Worked through for {depth} layers of {kernel_size}×{kernel_size}: along one axis "
            f"the offsets −{mid} to {mid} are reached through {', '.join(map(str, counts))} "
            f"paths (the ways of picking one tap per layer whose offsets add up to it). A "
            f"pixel's count is its row's times its column's: {counts[mid]} × {counts[mid]} = "
            f"{counts[mid] ** 2} at the centre, {counts[0]} × {counts[0]} = {counts[0] ** 2} at "
            f"a corner, and {sum(counts) ** 2} = {_power(kernel_size ** 2, depth)} over the whole "
            f"{side}×{side} field. With the expected gradient at √(count), the centre 3×3 holds "
            f"({_root_sum(centre)})² / ({_root_sum(counts)})² = {inner:.2f}² / {outer:.2f}² = "
            f"{100 * (inner / outer) ** 2:.0f} % of it.")


def growth_reading(growth: dict, start: int = 4) -> str:
    """A reading of the growth plot: from the first depth >= ``start`` to the last, how much the
    analytic and the 90 % sides grew, against what √layers and layers predict, and the ``c`` of
    the fitted c·√layers curve (``viz.receptive.sqrt_scale``)."""
    depths, analytic, effective = growth["depth"], growth["analytic"], growth["effective"]
    later = [i for i, d in enumerate(depths) if d >= start]
    if len(depths) < 2 or not later or later[0] == len(depths) - 1:
        raise ConfigError(f"growth_reading needs two depths from {start} up, got depths "
                          f"{list(depths)}; lower start or measure deeper stacks")
    a, b = later[0], len(depths) - 1
    whole = [d for d, x, y in zip(depths, analytic, effective) if x == y]
    return (f"From {depths[a]} to {depths[b]} layers the analytic field grows from "
            f"{analytic[a]} to {analytic[b]} pixels (×{analytic[b] / analytic[a]:.1f}) and the "
            f"square holding 90 % of the gradient from {effective[a]} to {effective[b]} "
            f"(×{effective[b] / effective[a]:.1f}); growth like √layers predicts "
            f"×{(depths[b] / depths[a]) ** 0.5:.1f}, growth like the layers "
            f"×{depths[b] / depths[a]:.1f}. The dotted curve is "
            f"{sqrt_scale(depths, effective):.1f}·√layers, fitted by least squares to all "
            f"{len(depths)} measured sides."
            + (f" At {_and(whole)} layer{'s' if whole != [1] else ''} the 90 % "
               f"square is the whole analytic field: too few layers for the gradient to take "
               f"the Gaussian shape the √ law describes." if whole else ""))


def verdict_c21(five: Stack, pair: Stack, centre: CentreShares) -> stats.Verdict:
    """C2.1 is arithmetic: confirmed when the 3×3 pair has the 5×5's receptive field with fewer
    parameters, refuted otherwise (no sampling noise, so never inconclusive). The centre share
    of the gradient is reported beside it, not judged."""
    holds = pair.field == five.field and pair.params < five.params
    label = stats.CONFIRMED if holds else stats.REFUTED
    text = (f"Two 3×3 layers see a {pair.field}×{pair.field} field, one 5×5 layer "
            f"{five.field}×{five.field}, with {pair.params:,} parameters against {five.params:,} "
            f"at 64 channels ({100 * pair.params / five.params:.0f}%). "
            + ("Equal analytic fields are not equal in use: " if centre.measured_pair >
               centre.measured_five else "In use the two fields are alike here: ")
            + f"the stack puts {100 * centre.measured_pair:.0f}% of its "
            f"gradient in the centre 3×3 (path counting expects "
            f"{100 * centre.expected_pair:.0f}%), the single 5×5 layer "
            f"{100 * centre.measured_five:.0f}% (expected {100 * centre.expected_five:.0f}%).")
    return stats.Verdict("C2.1", label, text, numbers={
        "fields": [five.field, pair.field], "params": [five.params, pair.params],
        "centre_share": [centre.measured_five, centre.measured_pair],
        "centre_expected": [centre.expected_five, centre.expected_pair]})


def verdict_c22(results: experiments.Results) -> stats.Verdict:
    """C2.2: the 3×3 pair's test accuracy minus the 5×5's, paired over seeds and images; the
    parameter and MAC counts of both are stated, since the claim is read at equal widths."""
    v = results.verdict("C2.2", PAIR, FIVE,
                        "Test accuracy, two 3×3 units per stage minus one 5×5 unit at the same "
                        "widths (VGG's substitution)",
                        published=stats.Published(
                            0.02, "Simonyan and Zisserman 2015, section 4.1: ImageNet top-1 "
                            "error \"7% higher\" with 5×5 layers in net B, about 2 points if "
                            "relative to B's 28.7 %, 7 if absolute", upto=0.07))
    pair, five = results[PAIR], results[FIVE]
    v.text += (f" The pairs hold {pair.params:,} parameters and {pair.macs / 1e6:.1f} M MACs, "
               f"the 5×5 units {five.params:,} and {five.macs / 1e6:.1f} M. On ImageNet VGG's "
               f"net B with a 5×5 layer in place of each 3×3 pair had a top-1 error 7% higher "
               f"(Simonyan and Zisserman 2015, section 4.1).")
    return v


def kernels_reading(results: experiments.Results) -> str:
    """A reading of the training table: accuracies, costs and what the control adds."""
    five, pair, control = results[FIVE], results[PAIR], results[CONTROL]
    return (f"The 5×5 network reaches {five.accuracy_text()} and the 3×3 pairs "
            f"{pair.accuracy_text()}, with "
            f"{pair.params / five.params:.2f}× the parameters and "
            f"{pair.macs / five.macs:.2f}× the MACs of the 5×5 network. The shallower control, one "
            f"3×3 unit per stage (one seed), reaches {100 * control.test_accuracy:.1f} % with "
            f"{control.params / five.params:.2f}× the 5×5 network's parameters (one seed, so a "
            f"rough guide): "
            + ("the extra depth and field of both larger networks pay here."
               if control.test_accuracy < min(five.test_accuracy, pair.test_accuracy) else
               "at this scale, a larger field or more depth does not clearly pay."))


def one_minute(c21: stats.Verdict, c22: stats.Verdict) -> str:
    five, pair = c21.numbers["params"]
    centre_five, centre_pair = c21.numbers["centre_share"]
    return (f"Two 3×3 layers see what one 5×5 sees for {100 * pair / five:.0f}% of its "
            f"parameters{', but weight the centre more' if centre_pair > centre_five else ''} "
            f"(C2.1 {c21.label}). Trained on CIFAR-10 at "
            f"the same widths, 3×3 pairs minus 5×5: {c22.numbers['difference']} (C2.2 "
            f"{c22.label}).")


# --- explorer -------------------------------------------------------------------------------

@labels(kernel_size="kernel size", depth="layers in the stack", dilation="dilation")
def receptive_stack(kernel_size: int = 3, depth: int = 2, dilation: int = 1, stride: int = 1,
                    image: torch.Tensor | None = None) -> View:
    """Chapter 2: ``depth`` conv layers of one kernel size -> their receptive field on an image."""
    check_positive("depth", depth)
    if image is not None and (image.dim() != 3 or image.shape[0] != 3):
        raise ConfigError(f"image must be 3 x H x W (channels first), got shape "
                          f"{tuple(image.shape)}; for H x W x 3 use image.permute(2, 0, 1)")
    layer = Layer(kernel_size, stride=stride, dilation=dilation)
    fields = receptive_fields([layer] * depth)
    final = fields[-1]
    offsets = sampled_offsets([layer] * depth)
    if image is None:
        image = torch.full((3, 32, 32), 200, dtype=torch.uint8)
    centre = offsets[-1] // 2
    taps = [(dy - centre, dx - centre) for dy in offsets for dx in offsets]
    figure, ax = plt.subplots(figsize=(4.2, 4.4))
    shown = [("layer 1", fields[0].size)] + ([(f"layer {depth}", final.size)] if depth > 1 else [])
    plot_fields_on_image(image, shown, taps=taps, ax=ax)
    read = len(offsets) ** 2
    numbers = {
        "receptive field": f"{final.size}×{final.size} pixels",
        "pixels actually read": f"{read:,} of {final.size**2:,} ({100 * read / final.size**2:.0f}%)",
        "step between output units (jump)": f"{final.jump} px",
        "weights per input-output channel pair": f"{depth}·{kernel_size}² = {depth * kernel_size**2}",
    }
    return View(figure, numbers)
