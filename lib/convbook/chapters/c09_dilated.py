"""Chapter 9 — can a fixed-size kernel see a wider area? Dilated convolution.

- C9.1 (the review): with the same kernel size and parameters, the area seen becomes larger.
- C9.2 (the book's follow-up): the wider field pays on a task where only context decides a
  pixel's label, and a schedule without gridding beats one with it at the same field.
- C9.3 (Yu & Koltun, 2016): their context module needs identity initialisation; a random one
  "was not effective".

The task (after RESEARCH.md's pilot): 32×32 images of noise with one thin ring; every pixel is
labelled outside, ring or inside. Inside and outside look the same up close, so a pixel far
from the ring can only be labelled by a network that sees far enough to find it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Rectangle
from torch import nn

from convbook import experiments, measure, receptive, segmentation, stats
from convbook.blocks.validate import check_positive
from convbook.errors import ConfigError
from convbook.explore import View, labels
from convbook.nets import context_module
from convbook.receptive import Layer, receptive_fields
from convbook.synthetic import RING_CLASSES
from convbook.tables import Table
from convbook.viz.receptive import image_array, plot_erf
from convbook.viz.style import PALETTE

CHAPTER = "09-dilated"
CLASSES = RING_CLASSES

GRIDDING = {"(2, 2, 2)": (2, 2, 2), "(1, 2, 3)": (1, 2, 3), "(1, 2, 5)": (1, 2, 5),
            "(1, 2, 9)": (1, 2, 9)}
# The explorer's schedules: one cycle of rates, repeated to the chosen depth.
NAMED_SCHEDULES = {"dense": (1,), "constant 2": (2,), "HDC (1, 2, 3)": (1, 2, 3),
                   "HDC (1, 2, 5)": (1, 2, 5), "exponential": (1, 2, 4, 8), "gaps (1, 2, 9)": (1, 2, 9)}

# Yu & Koltun (2016), Table 1: the context module's receptive fields (rates: nets.CONTEXT_RATES).
PUBLISHED_CONTEXT_FIELDS = (3, 5, 9, 17, 33, 65, 67, 67)


def context_table(channels: int = 21) -> tuple[list[int], Table]:
    """The context module's receptive field layer by layer (computed) beside Yu & Koltun's
    Table 1, and its parameters (counted) beside the formula 64C² + 8C."""
    module = context_module(channels)
    fields = [f.size for f in receptive_fields(module)]
    convs = [m for m in module if isinstance(m, nn.Conv2d)]
    rows = [{"layer": i + 1, "dilation": conv.dilation[0],
             "kernel": f"{conv.kernel_size[0]}×{conv.kernel_size[1]}",
             "receptive field (computed)": f"{size}×{size}",
             "receptive field (Yu & Koltun)": f"{published}×{published}"}
            for i, (conv, size, published) in enumerate(zip(convs, fields,
                                                              PUBLISHED_CONTEXT_FIELDS))]
    params = measure.count_params(module)
    matches = sum(a == b for a, b in zip(fields, PUBLISHED_CONTEXT_FIELDS))
    table = Table(rows, caption=f"Yu & Koltun's basic context module at C = {channels} "
                                f"channels (the classes of VOC-2012): {matches} of "
                                f"{len(PUBLISHED_CONTEXT_FIELDS)} computed fields match their "
                                f"Table 1; {params:,} parameters counted on the module, "
                                f"{64 * channels**2 + 8 * channels:,} by the formula 64C² + 8C.")
    return fields, table


# --- the area seen (C9.1) ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Kernel:
    dilation: int
    params: int
    field: int
    coverage: float
    erf_extent: int


def kernels(dilations: tuple[int, ...] = (1, 2, 3, 4), channels: int = 16,
            seed: int = 0) -> list[Kernel]:
    """One 3×3 layer per dilation: parameters counted on the module, analytic field, share of
    the field read, and the extent of the measured gradient (effective receptive field)."""
    out = []
    for d in dilations:
        torch.manual_seed(seed)
        conv = nn.Conv2d(channels, channels, 3, padding=d, dilation=d, bias=False)
        erf = receptive.effective_receptive_field(conv, (channels, 33, 33), samples=2, seed=seed)
        out.append(Kernel(d, measure.count_params(conv), receptive.receptive_field(conv).size,
                          receptive.coverage([Layer(3, dilation=d)]),
                          receptive.support_size(erf, threshold=0.0)))
    return out


def kernel_table(found: list[Kernel]) -> Table:
    rows = [{"dilation": k.dilation, "parameters (counted)": k.params,
             "area spanned (formula d(k−1)+1)": f"{2 * k.dilation + 1}×{2 * k.dilation + 1}",
             "area spanned (receptive field)": f"{k.field}×{k.field}",
             "extent of the measured gradient": f"{k.erf_extent}×{k.erf_extent}",
             "positions read": f"9 of {k.field**2} ({k.coverage:.0%})"}
            for k in found]
    return Table(rows, caption="One 3×3 convolution, 16 → 16 channels, at each dilation: "
                               "parameters counted on the module, the area its taps span, "
                               "the extent of the input gradient of one output unit (random "
                               "weights), and the share of that area it reads.")


def verdict_c91(found: list[Kernel], kernel_size: int = 3) -> stats.Verdict:
    """C9.1 — same kernel size and parameters, larger area. Counted: every dilation keeps the
    parameters and spans d(k−1)+1 positions; measured: the gradient reaches exactly that far.
    Confirmed only if both hold for every dilation and the area grows with it; refuted if any
    count, formula or measurement disagrees."""
    if not found:
        raise ConfigError("verdict_c91 needs the kernels of at least one dilation")
    same_params = len({k.params for k in found}) == 1
    formula = all(k.field == k.dilation * (kernel_size - 1) + 1 for k in found)
    measured = all(k.erf_extent == k.field for k in found)
    ordered = sorted(found, key=lambda k: k.dilation)
    grows = all(a.field < b.field for a, b in itertools.pairwise(ordered))
    parts = {
        "counted": stats.Verdict("C9.1", stats.CONFIRMED if same_params and formula and grows
                                 else stats.REFUTED,
                                 f"{found[0].params:,} parameters at every dilation"
                                 if same_params else "the parameters change with dilation"),
        "measured": stats.Verdict("C9.1", stats.CONFIRMED if measured and grows
                                  else stats.REFUTED,
                                  "the gradient of one output unit reaches exactly the spanned "
                                  "area" if measured else "the measured gradient does not reach "
                                  "the spanned area"),
    }
    largest = ordered[-1]
    reach = ("and its gradient reaches that far" if measured else
             f"but its gradient reaches {largest.erf_extent}×{largest.erf_extent}")
    text = (f"At dilation {largest.dilation} a {kernel_size}×{kernel_size} kernel spans "
            f"{largest.field}×{largest.field} pixels with the {largest.params:,} parameters of "
            f"dilation 1, {reach}; it reads {kernel_size**2} of those {largest.field**2} "
            f"positions ({largest.coverage:.0%}).")
    verdict = stats.combine("C9.1", parts)
    return stats.Verdict("C9.1", verdict.label, text + " " + verdict.text,
                         numbers={"params": [k.params for k in found],
                                  "fields": [k.field for k in found],
                                  "extents": [k.erf_extent for k in found]},
                         parts=parts)


def gridding(schedules: dict[str, tuple[int, ...]] = GRIDDING) -> tuple[dict, dict, Table]:
    """For each schedule of 3×3 layers: the grid of positions one unit reads, the share of its
    field that is, and a table of both."""
    grids, coverages, rows = {}, {}, []
    for name, rates in schedules.items():
        layers = [Layer(3, dilation=r) for r in rates]
        grids[name] = receptive.read_grid(layers)
        coverages[name] = receptive.coverage(layers)
        size = grids[name].shape[0]
        read = len(receptive.sampled_offsets(layers))
        rows.append({"rates": name, "receptive field": f"{size}×{size}",
                     "positions read per axis": f"{read} of {size}",
                     "share of the field read": f"{coverages[name]:.0%}"})
    return grids, coverages, Table(rows, caption="Stacks of three 3×3 layers; positions one "
                                                 "output unit reads, computed from the rates.")


def gridding_erfs(schedules: dict[str, tuple[int, ...]] = GRIDDING, seed: int = 0,
                  size: int = 41) -> dict[str, torch.Tensor]:
    """The measured effective receptive field of each schedule (linear stack, random weights):
    the gradient is zero exactly at the holes."""
    maps = {}
    for name, rates in schedules.items():
        torch.manual_seed(seed)
        maps[name] = receptive.effective_receptive_field(receptive.dilated_stack(rates),
                                                         (3, size, size), samples=2, seed=seed)
    return maps


# --- does the wider field pay? (C9.2, C9.3) -------------------------------------------------------

def field_and_coverage(model: nn.Module) -> tuple[int, float]:
    """The receptive field of ``model``'s convolution stack (side, pixels) and the share of it
    one output pixel reads."""
    layers = [layer for layer in map(receptive.layer_of, model.modules()) if layer is not None]
    return receptive.receptive_field(layers).size, receptive.coverage(layers)


def _ious(variant: experiments.Variant, c: int | None) -> list[float]:
    return [run.result.miou if c is None else run.result.class_iou(c) for run in variant.runs]


def class_iou(variant: experiments.Variant, c: int | None = None) -> float:
    """IoU of class ``c`` (None: the per-image mean IoU), mean over the variant's seeds."""
    values = _ious(variant, c)
    return sum(values) / len(values)


def class_iou_sd(variant: experiments.Variant, c: int | None = None) -> float | None:
    """The standard deviation of ``class_iou`` over the variant's seeds (None with one seed:
    a spread that was not measured is not drawn as zero)."""
    values = _ious(variant, c)
    return float(torch.tensor(values).std()) if len(values) > 1 else None


def schedule_table(results: experiments.Results, rates: dict[str, float] | None = None) -> Table:
    """A segmentation comparison as the chapter shows it: each network's field and the share
    of it read, its cost, and its IoU overall and per class; with ``rates`` (network -> the
    learning rate it trained at, e.g. a sweep's ``best``), that rate too."""
    rows = []
    seeds = len(results.seeds)
    for v in results:
        size, share = field_and_coverage(v.model)
        row = {"network": v.name, "receptive field": f"{size}×{size}", "share read": f"{share:.0%}",
               "parameters": v.params, "MACs": v.macs,
               "mean IoU (%)": f"{100 * class_iou(v):.1f}"
               + (f" ± {100 * v.accuracy_sd:.1f}" if len(v.runs) > 1 else "")}
        for c, name in enumerate(CLASSES):
            row[f"IoU {name} (%)"] = f"{100 * class_iou(v, c):.1f}"
        if v.latency:
            row["forward + backward (ms)"] = f"{1000 * v.latency['forward_backward']:.1f}"
        if rates is not None:
            row["learning rate"] = f"{rates.get(v.name, results.recipe.lr):g}"
        rows.append(row)
    return Table(rows, caption=(
        f"{results.data}; {segmentation.describe_recipe(results.recipe)}; profile "
        f"'{results.profile.name}', device {results.device}, {results.precision}; IoU is the mean "
        f"over {seeds} seed{'s' if seeds > 1 else ''}"
        f"{' ± its standard deviation' if seeds > 1 else ''} of the per-image mean over the "
        f"classes; latency at batch {results.recipe.batch_size}."
        + (" Each network trained at the learning rate in its row, chosen on held-out training "
           "rings (the sweep above); the recipe's rate is where the schedule starts."
           if rates is not None else "")))


def _rates_note(rates: dict[str, float] | None, names: tuple[str, ...]) -> str:
    """The learning rates a verdict's networks trained at, for its text."""
    if not rates:
        return ""
    return (" Learning rates, each chosen on held-out training rings: "
            + "; ".join(f"{name} {rates[name]:g}" for name in names if name in rates) + ".")


def field_rows(results: experiments.Results) -> list[dict]:
    """Each network's field and per-class IoU (mean over seeds, and its standard deviation
    under "<class> sd", None with one seed), for ``viz.dilation.plot_iou_against_field``."""
    return [{"schedule": v.name, "field": field_and_coverage(v.model)[0],
             **{name: class_iou(v, c) for c, name in enumerate(CLASSES)},
             **{f"{name} sd": class_iou_sd(v, c) for c, name in enumerate(CLASSES)}}
            for v in results]


DECIDE_HINT = ("More seeds (the parameters cell's `seeds`) or the `full` profile (10,000 "
               "training rings, width 32) would narrow the interval.")


def verdict_c92(results: experiments.Results,
                rates: dict[str, float] | None = None) -> stats.Verdict:
    """C9.2 — the wider field pays where context decides: exponential against dense (fields 35
    and 13), and HDC against constant rate 2 (both 25, holes only in the second). Each part is
    a paired difference in per-image mean IoU; the parts combine (nuanced if they differ)."""
    confidence = stats.shared_confidence(2)  # the two parts share the 5 % error rate
    parts = {
        "wider field": stats.verdict_on_difference(
            "C9.2", results.difference("exponential", "dense", confidence),
            "exponential minus dense, per-image mean IoU", decide_hint=DECIDE_HINT,
            published=stats.Published(0.015, "Yu and Koltun 2016: their dilated context module "
                                             "on VOC 2012 validation, mean IoU", upto=0.023)),
        "no gridding": stats.verdict_on_difference(
            "C9.2", results.difference("HDC (1, 2, 3)", "constant 2", confidence),
            "HDC (1, 2, 3) minus constant rate 2 at the same 25-pixel field, per-image mean IoU",
            decide_hint=DECIDE_HINT),
    }
    verdict = stats.combine("C9.2", parts)
    verdict.text += _rates_note(rates, ("exponential", "dense", "HDC (1, 2, 3)", "constant 2"))
    return verdict


def verdict_c93(results: experiments.Results,
                rates: dict[str, float] | None = None) -> stats.Verdict:
    """C9.3 — Yu & Koltun: the context module trains better from the identity than from a
    random start (paired difference in per-image mean IoU). Their stronger words, that random
    schemes "were not effective", concern a module on a pretrained front end's class scores;
    the book trains everything together from scratch, so it reports the random start's gain
    over the front end as a number beside the verdict, not as a test of those words."""
    verdict = stats.verdict_on_difference(
        "C9.3", results.difference("context module, identity init",
                                   "context module, random init"),
        "identity minus random initialisation of the context module, per-image mean IoU",
        decide_hint=DECIDE_HINT)
    random, front = results["context module, random init"], results["front end alone"]
    verdict.text += (f" From a random start the module still lifted the front end from "
                     f"{100 * class_iou(front):.1f} % to {100 * class_iou(random):.1f} % mean IoU, in a "
                     f"setting unlike theirs (trained jointly from scratch, batch norm in the "
                     f"front end).")
    verdict.text += _rates_note(rates, ("context module, identity init",
                                        "context module, random init", "front end alone"))
    return verdict


def latency_table(channels: int = 64, size: int = 128, batch: int = 8,
                  dilations: tuple[int, ...] = (1, 2, 4, 8),
                  device: str | torch.device | None = None) -> Table:
    """Measured latency of one 3×3 convolution (C → C) at each dilation: same MACs, same
    parameters, different memory access. On a map much larger than the rate, so that few
    taps fall in the zero padding (on a 32×32 map a rate-8 kernel reads padding for a third
    of its taps, and a fast implementation can skip them)."""
    layers = {f"3×3, dilation {d}": nn.Conv2d(channels, channels, 3, padding=d, dilation=d,
                                                bias=False) for d in dilations}
    sizes = {name: (batch, channels, size, size) for name in layers}
    table = measure.add_ratios(measure.latency_table(layers, sizes, device=device), "dilation 1")
    table.caption += f" {channels} → {channels} channels, batch of {batch}, {size}×{size}."
    return table


def schedule_reading(results: experiments.Results) -> str:
    """The results table in sentences, from its numbers: the ranking on inside pixels, what
    the holes cost at equal field, and what dilation did to the ring itself."""
    inside = CLASSES.index("inside")
    ranked = sorted(results, key=lambda v: -class_iou(v, inside))
    ranking = ", ".join(f"{v.name} {100 * class_iou(v, inside):.0f} %" for v in ranked)
    holes = results["constant 2"]
    hdc = results["HDC (1, 2, 3)"]
    dense, wide = results["dense"], results["exponential"]
    ring = CLASSES.index("ring")
    gap = 100 * (class_iou(hdc) - class_iou(holes))
    others = [class_iou(v, ring) for v in results if v is not holes]
    holes_field, holes_share = field_and_coverage(holes.model)
    return (f"On *inside* pixels, the class only context decides, the networks rank {ranking} "
            f"(IoU, mean over seeds). The constant-rate-2 network has the HDC network's "
            f"{holes_field}-pixel field but reads {holes_share:.0%} of it; its mean IoU is "
            f"{abs(gap):.1f} points {'below' if gap > 0 else 'above'} HDC's. It also scored "
            f"{100 * class_iou(holes, ring):.0f} % on *ring* pixels against "
            f"{100 * min(others):.0f}–{100 * max(others):.0f} % for the others: with every rate "
            f"even, each output reads only pixels whose coordinates share its own parity, so "
            f"gridding costs local detail as well as context. HDC (field "
            f"{field_and_coverage(hdc.model)[0]}) and exponential (field "
            f"{field_and_coverage(wide.model)[0]}) differ by "
            f"{abs(100 * (class_iou(hdc) - class_iou(wide))):.1f} points of mean IoU: once the "
            f"field covers the largest rings, more field buys little; the dense network (field "
            f"{field_and_coverage(dense.model)[0]}) is the one that cannot see far enough.")


def context_reading(results: experiments.Results) -> str:
    front = results["front end alone"]
    identity = results["context module, identity init"]
    random = results["context module, random init"]
    return (f"The front end alone (field {field_and_coverage(front.model)[0]}) reached "
            f"{100 * class_iou(front):.1f} % mean IoU; with the context module, "
            f"{100 * class_iou(identity):.1f} % from the identity and "
            f"{100 * class_iou(random):.1f} % from a random start (means over seeds). The verdict "
            f"C9.3 below puts intervals on both comparisons.")


def latency_reading(table: Table) -> str:
    last = table.rows[-1]
    return (f"On this device, {last['layer']} took {last['forward vs dilation 1']} the time of dilation 1 "
            f"forward and {last['forward + backward vs dilation 1']} forward and backward.")


def one_minute(c91: stats.Verdict, c92: stats.Verdict, c93: stats.Verdict,
               schedules: experiments.Results) -> str:
    dense, wide = schedules["dense"], schedules["exponential"]
    return (f"Dilation spreads a kernel's taps: at the same parameters the area grows (C9.1 "
            f"{c91.label}), but it is read through holes. On rings where only context tells "
            f"inside from outside, six dilated layers (field {field_and_coverage(wide.model)[0]}) "
            f"scored {100 * class_iou(wide, 2):.0f} % IoU on inside pixels against "
            f"{100 * class_iou(dense, 2):.0f} % for six dense ones (field "
            f"{field_and_coverage(dense.model)[0]}) (C9.2 {c92.label}); Yu & Koltun's identity "
            f"initialisation: C9.3 {c93.label}.")


# --- explorer ---------------------------------------------------------------------------------

def schedule_rates(schedule: str, depth: int) -> tuple[int, ...]:
    """The named schedule's cycle of rates, repeated to ``depth`` layers."""
    if schedule not in NAMED_SCHEDULES:
        raise ConfigError(f"schedule must be one of {', '.join(NAMED_SCHEDULES)}, got {schedule!r}")
    check_positive("depth", depth)
    cycle = NAMED_SCHEDULES[schedule]
    return tuple(cycle[i % len(cycle)] for i in range(depth))


@labels(schedule="dilation schedule", depth="layers (3×3 each)")
def dilation_view(schedule: str = "HDC (1, 2, 3)", depth: int = 3,
                  image: torch.Tensor | None = None, seed: int = 0) -> View:
    """Chapter 9: a stack of 3×3 layers with a named dilation schedule -> the input positions
    one unit at the centre reads (dots, on ``image`` when given) inside its receptive field
    (square), and the measured effective receptive field (where the gradient is not 0)."""
    rates = schedule_rates(schedule, depth)
    layers = [Layer(3, dilation=r) for r in rates]
    grid = receptive.read_grid(layers)
    size = grid.shape[0]
    side = 75  # room around the largest field the explorer offers (49: gaps (1, 2, 9), 6 layers)
    torch.manual_seed(seed)
    erf = receptive.effective_receptive_field(receptive.dilated_stack(rates), (3, side, side),
                                              samples=1, seed=seed)
    figure, axes = plt.subplots(1, 2, figsize=(6.4, 3.5))
    picture = image_array(image) if image is not None else torch.full((32, 32, 3), 0.92).numpy()
    h = picture.shape[0]
    axes[0].imshow(picture, interpolation="nearest")
    centre, half = h // 2, size // 2
    ys, xs = torch.nonzero(grid, as_tuple=True)
    ys, xs = ys - half + centre, xs - half + centre
    inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < h)
    axes[0].scatter(xs[inside], ys[inside], s=7, color=PALETTE[0], edgecolor="white",
                    linewidth=0.4)
    axes[0].add_patch(Rectangle((centre - half - 0.5, centre - half - 0.5), size, size,
                                fill=False, edgecolor=PALETTE[1], linewidth=1.5))
    axes[0].set_xlim(-0.5, h - 0.5)
    axes[0].set_ylim(h - 0.5, -0.5)
    axes[0].set_title("positions read, on a 32×32 image")
    plot_erf((erf > 0).float(), size, "gradient ≠ 0 (75×75 shown)", ax=axes[1])
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    figure.tight_layout()
    params = measure.count_params(nn.Sequential(*[
        nn.Conv2d(16, 16, 3, padding=r, dilation=r, bias=False) for r in rates]))
    numbers = {"rates": ", ".join(map(str, rates)), "receptive field": f"{size}×{size} pixels",
               "positions read": f"{int(grid.sum())} of {size * size} "
                                 f"({receptive.coverage(layers):.0%})",
               "weights of such a stack, 16 → 16 channels (counted)":
                   f"{params:,}, whatever the rates"}
    return View(figure, numbers)
