"""Chapter 2 — is a bigger kernel better? 3×3 kernels.

- C2.1: two stacked 3×3 convolutions cover the receptive field of one 5×5 with fewer
  parameters.
- C2.2: the stack of 3×3 works better than the single 5×5.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import matplotlib.pyplot as plt
import torch
from torch import nn

from convbook import experiments, measure, nets, receptive, stats
from convbook.blocks.validate import check_positive
from convbook.book import Setup
from convbook.data import CifarData
from convbook.errors import ConfigError
from convbook.explore import View, labels
from convbook.receptive import Layer, receptive_fields, sampled_offsets
from convbook.tables import Table
from convbook.viz.receptive import plot_fields_on_image

CHAPTER = "02-small-kernels"
STACKS = ((5, 1), (3, 2), (7, 1), (3, 3))  # (kernel size, depth)
ERF_DEPTHS = (1, 2, 4, 8, 16)
ERF_SAMPLES = {"smoke": 2, "book": 8, "full": 32}


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


def erf_samples(setup: Setup) -> int:
    return ERF_SAMPLES.get(setup.profile.name, 8)


def run_kernels(setup: Setup, data: CifarData) -> experiments.Results:
    """One 5×5 unit per stage against two 3×3 units (the deciding pair), and one 3×3 unit as
    a shallower control (one seed)."""
    width = setup.profile.width
    return experiments.compare(
        {"1 x 5x5 per stage": partial(nets.CifarNet, width, kernel_size=5),
         "2 x 3x3 per stage": partial(nets.CifarNet, width, blocks_per_stage=2),
         "1 x 3x3 per stage": partial(nets.CifarNet, width)},
        data, setup.profile, seeds=setup.seeds, device=setup.device,
        secondary=("1 x 3x3 per stage",))


def verdict_c21(five: Stack, pair: Stack, centre_five: float, centre_pair: float) -> stats.Verdict:
    """C2.1 is arithmetic: confirmed when the 3×3 pair has the 5×5's receptive field with fewer
    parameters, refuted otherwise (no sampling noise, so never inconclusive). The centre share
    of the gradient is reported beside it, not judged."""
    holds = pair.field == five.field and pair.params < five.params
    label = stats.CONFIRMED if holds else stats.REFUTED
    text = (f"Two 3×3 layers see a {pair.field}×{pair.field} field, one 5×5 layer "
            f"{five.field}×{five.field}, with {pair.params:,} parameters against {five.params:,} "
            f"at 64 channels ({100 * pair.params / five.params:.0f}%). Equal analytic fields "
            f"are not equal in use: the stack puts {100 * centre_pair:.0f}% of its gradient in "
            f"the centre 3×3, the single 5×5 layer {100 * centre_five:.0f}%.")
    return stats.Verdict("C2.1", label, text, numbers={
        "fields": [five.field, pair.field], "params": [five.params, pair.params],
        "centre_share": [centre_five, centre_pair]})


def verdict_c22(results: experiments.Results) -> stats.Verdict:
    """C2.2: the 3×3 pair's test accuracy minus the 5×5's, paired over seeds and images."""
    v = results.verdict("C2.2", "2 x 3x3 per stage", "1 x 5x5 per stage",
                        "Test accuracy, two 3×3 units per stage minus one 5×5 unit")
    pair, five = results["2 x 3x3 per stage"], results["1 x 5x5 per stage"]
    v.text += (f" The 5×5 network holds {five.params:,} parameters, the 3×3 pairs "
               f"{pair.params:,}: this comparison is at equal widths, not equal parameters.")
    return v


def one_minute(c21: stats.Verdict, c22: stats.Verdict, results: experiments.Results) -> str:
    five, pair = c21.numbers["params"]
    return (f"Two 3×3 layers see what one 5×5 sees for {100 * pair / five:.0f}% of its "
            f"parameters, but weight the centre more (C2.1 {c21.label}). Trained on CIFAR-10, "
            f"3×3 pairs minus 5×5: {c22.numbers['difference']} (C2.2 {c22.label}).")


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
