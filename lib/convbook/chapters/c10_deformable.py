"""Chapter 10 — must a kernel be a rectangle? Deformable convolution.

- C10.1: sampling positions adapt to the image content (they spread over large objects and
  gather on small ones).
- C10.2: recognition improves.

The task (after RESEARCH.md's pilot): digits drawn with Pillow's built-in font on 32×32 noisy
canvases, trained at scales 0.9–1.1 and tested at 0.5–1.6, so that geometry varies between
training and test; plain against DCNv1 and DCNv2 in the last two layers, at equal steps.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from convbook import measure, stats
from convbook.blocks import DeformableConv2d
from convbook.deformation import LAYERS, POSITIONS, Gallery, dilation_by_scale, slope
from convbook.errors import ConfigError
from convbook.experiments import Results
from convbook.explore import View, labels
from convbook.nets import CifarNet, deformable_cifar_net
from convbook.synthetic import DigitData
from convbook.tables import Table
from convbook.viz.deformable import draw_sampling
from convbook.viz.style import legend_outside

CHAPTER = "10-deformable"


# --- CIFAR-10 ------------------------------------------------------------------------------------

def cifar_cost(setup) -> dict[str, float]:
    """Measured seconds of one training step (forward + backward at the recipe's batch size)
    of the plain and the DCNv1 CifarNet on this device, and the minutes a comparison over the
    profile's seeds would take at the profile's training size and epochs."""
    recipe = setup.profile.recipe
    steps = math.ceil((setup.profile.train_size or 50_000) / recipe.batch_size) * recipe.epochs
    out = {}
    width = setup.profile.width
    for name, net in (("plain", CifarNet), ("DCNv1", deformable_cifar_net)):
        torch.manual_seed(0)
        timing = measure.train_latency(net(width), recipe.batch_size,
                                       device=setup.device, min_run_time=0.3)
        out[name] = timing["forward_backward"]
    out["minutes"] = out["DCNv1"] * steps * len(setup.seeds) / 60  # plain: chapter 1's
    return out


def cifar_reading(results: Results, cost: dict[str, float], shrunk_to: int | None) -> str:
    """The CIFAR-10 comparison in a sentence; ``shrunk_to``: the training images of a task
    shrunk for the CPU (None: the profile's own)."""
    ratio = cost["DCNv1"] / cost["plain"]
    diff = results.difference("DCNv1 (last unit)", "plain")
    return (f"With one deformable unit a training step took {ratio:.1f}× the plain one's on "
            f"this device; DCNv1 minus plain, test accuracy: {diff}."
            + (f" The task is shrunk to {shrunk_to:,} training images and "
               f"{results.recipe.epochs} epochs for the CPU: at the book's full size the "
               f"deformable network alone would take about {cost['minutes']:.0f} minutes here. "
               f"A GPU runs the profile's task." if shrunk_to else ""))


def accuracy_by_scale(results: Results, data: DigitData) -> dict[str, dict[float, float]]:
    """Each variant's test accuracy (mean over seeds) at each test scale."""
    slices = data.scale_slices()
    return {v.name: {s: float(v.correct[:, part].float().mean()) for s, part in slices.items()}
            for v in results}


def scale_table(results: Results, data: DigitData) -> Table:
    by_scale = accuracy_by_scale(results, data)
    rows = []
    for scale in data.tests:
        row = {"test scale": f"{scale:g}" + (" (trained)" if data.train_scales[0] <= scale
                                              <= data.train_scales[1] else "")}
        for name, values in by_scale.items():
            row[f"{name} (%)"] = f"{100 * values[scale]:.1f}"
        rows.append(row)
    return Table(rows, caption=f"Test accuracy at each digit scale (mean over "
                               f"{len(results.seeds)} seed{'s' if len(results.seeds) > 1 else ''});"
                               f" trained at scales {data.train_scales[0]}–{data.train_scales[1]}.")


# --- where the taps go (C10.1) -----------------------------------------------------------------


def adaptation(results: Results, data: DigitData, variant: str = "DCNv1") -> dict:
    """Per seed: the measures of ``dilation_by_scale``, the slope of effective dilation on the
    digit against scale, the mean share of taps on the map and the mean focus."""
    per_seed = [dilation_by_scale(run.model, data) for run in results[variant].runs]
    return {"per_seed": per_seed, "slopes": [slope(d["object"]) for d in per_seed],
            "inside": [float(np.nanmean(list(d["inside"].values()))) for d in per_seed],
            "focus": [float(np.nanmean(list(d["focus"].values()))) for d in per_seed]}


def dilation_table(found: dict) -> Table:
    seeds = found["per_seed"]
    rows = []
    for scale in seeds[0]["object"]:
        rows.append({"test scale": f"{scale:g}",
                     "on the digit": f"{np.nanmean([s['object'][scale] for s in seeds]):.2f}",
                     "background": f"{np.nanmean([s['background'][scale] for s in seeds]):.2f}",
                     "taps on the map (on the digit)":
                         f"{np.nanmean([s['inside'][scale] for s in seeds]):.0%}",
                     "focus (vs plain grid)":
                         f"{100 * np.nanmean([s['focus'][scale] for s in seeds]):+.0f} points"})
    return Table(rows, caption="Effective dilation of the first deformable layer (mean distance "
                               "between adjacent taps that both land on its 8×8 feature map; a "
                               "plain 3×3 kernel has 1); the share of its taps on the digit's "
                               "positions that land on the map rather than in the zero padding; "
                               "and focus: the share of those on-map taps that land on the digit, "
                               "minus the same share for a plain 3×3 grid. Means over test "
                               f"digits and {len(seeds)} seed{'s' if len(seeds) > 1 else ''}.")


# --- verdicts ---------------------------------------------------------------------------------

DECIDE_HINT = ("More seeds (the parameters cell's `seeds`) or the `full` profile (more digits, "
               "width 32) would narrow the interval.")


MIN_ON_MAP = 0.5  # fixed in advance: below it, a "spread" is mostly taps reading padding


def verdict_c101(found: dict) -> stats.Verdict:
    """C10.1 — the taps adapt to the content. Two parts over seeds: *spread follows the digit*
    (slope of on-map effective dilation against scale above 0; judged only when at least half
    the taps land on the map, else inconclusive), and *taps gather on the digit* (focus: share
    of on-map taps on the digit, minus a plain grid's, above 0). Parts combine."""
    confidence = stats.shared_confidence(2)  # the two parts share the 5 % error rate
    slopes = stats.mean_interval(found["slopes"], confidence)
    inside = float(np.mean(found["inside"]))
    spread_text = (f"effective dilation on the digit per unit of scale {slopes.mean:+.2f} "
                   + _interval_text(slopes) + f"; {inside:.0%} of the taps land on the map")
    if inside < MIN_ON_MAP:
        spread = stats.Verdict("C10.1", stats.INCONCLUSIVE, spread_text + (
            f", fewer than {MIN_ON_MAP:.0%}: most offsets throw taps into the zero padding, "
            f"and a growing dilation would measure that, not a kernel fitted to the digit"))
    else:
        label = stats.label_difference(slopes, +1)
        spread = stats.Verdict("C10.1", label, spread_text + {
            stats.CONFIRMED: ": the kernel widens with the digit, beyond the interval",
            stats.REFUTED: ": the kernel narrows as the digit grows",
            stats.INCONCLUSIVE: ": no trend beyond the interval"}[label] + "." + (
            stats.detectable_note(label, slopes, unit=lambda v: f"{v:.2f} per unit of scale")))
    focus = stats.mean_interval([100 * f for f in found["focus"]], confidence)
    label = stats.label_difference(focus, +1)
    gather = stats.Verdict("C10.1", label, (
        f"on-map taps on the digit, minus a plain grid's share, {focus.mean:+.1f} points "
        + _interval_text(focus, scale=1) + {
            stats.CONFIRMED: ": the taps move onto the digit",
            stats.REFUTED: ": the taps move off the digit",
            stats.INCONCLUSIVE: ": no shift beyond the interval"}[label] + "."
        + stats.detectable_note(label, focus, unit=lambda v: f"{v:.1f} points")))
    verdict = stats.combine("C10.1", {"spread follows the digit": spread,
                                      "taps gather on the digit": gather})
    verdict.numbers = {"slope": slopes, "focus": focus, "inside": inside}
    return verdict


def _interval_text(interval: stats.Difference, scale: float = 1.0) -> str:
    if math.isinf(interval.low):
        return "(one seed: interval unbounded)"
    return (f"({stats.percent(interval.confidence)} interval {scale * interval.low:+.2f} to "
            f"{scale * interval.high:+.2f}, {interval.seeds} seeds)")


def verdict_c102(digits_results: Results, cifar_results: Results | None) -> stats.Verdict:
    """C10.2 — recognition improves: DCNv1 and DCNv2 against plain on digits whose scale varies
    (all test scales pooled), and DCNv1 against plain on CIFAR-10 (None: not run, and the
    verdict says so); parts combine."""
    confidence = stats.shared_confidence(2 if cifar_results is None else 3)  # shared 5 %
    v1 = stats.Published(0.037, "Dai et al. 2017: COCO test-dev mAP with ResNet-101, Faster "
                                "R-CNN 29.4 → 33.1 and R-FCN 30.8 → 34.5")
    v2 = stats.Published(0.07, "Zhu et al. 2019: COCO val box AP, ResNet-50 Faster R-CNN "
                               "34.7 → 41.7 with deformable conv3–5 and modulation")
    parts = {
        "digits, DCNv1": stats.verdict_on_difference(
            "C10.2", digits_results.difference("DCNv1", "plain", confidence),
            "DCNv1 minus plain, digits at every test scale", decide_hint=DECIDE_HINT,
            published=v1),
        "digits, DCNv2": stats.verdict_on_difference(
            "C10.2", digits_results.difference("DCNv2", "plain", confidence),
            "DCNv2 minus plain, digits at every test scale", decide_hint=DECIDE_HINT,
            published=v2),
    }
    if cifar_results is not None:
        parts["CIFAR-10, DCNv1"] = stats.verdict_on_difference(
            "C10.2", cifar_results.difference("DCNv1 (last unit)", "plain", confidence),
            "DCNv1 minus plain, CIFAR-10 test accuracy", published=v1)
    verdict = stats.combine("C10.2", parts)
    if cifar_results is None:
        verdict.text += (" CIFAR-10 was not trained on this device, so the verdict rests on "
                         "the digits alone.")
    return verdict


def one_minute(c101: stats.Verdict, c102: stats.Verdict, digits_results: Results,
               data: DigitData, cost: Table) -> str:
    by_scale = accuracy_by_scale(digits_results, data)
    plain, dcn = by_scale["plain"], by_scale["DCNv1"]
    gains = {s: 100 * (dcn[s] - plain[s]) for s in plain}
    best, worst = max(gains, key=gains.get), min(gains, key=gains.get)
    pooled = digits_results.difference("DCNv1", "plain")
    step = (digits_results["DCNv1"].latency.get("forward_backward", math.nan)
            / digits_results["plain"].latency.get("forward_backward", math.nan))
    return (f"Learned offsets let a kernel's taps move. On digits tested at sizes never seen in "
            f"training, DCNv1 against a plain network: {gains[best]:+.0f} points at its best "
            f"scale ({best:g}), {gains[worst]:+.0f} at its worst ({worst:g}), "
            f"{100 * pooled.mean:+.1f} pooled over every scale (C10.2 {c102.label}). Whether the taps adapt to the digit: C10.1 "
            f"{c101.label}. On this CPU one deformable layer's training step cost "
            f"{cost.rows[1]['forward + backward vs plain']} a plain one's, the whole network's "
            f"{step:.1f}×.")


# --- cost ----------------------------------------------------------------------------------------

def latency_table(channels: int = 64, size: int = 8, batch: int = 64,
                  device: str | torch.device | None = None) -> Table:
    layers = {"plain 3×3": nn.Conv2d(channels, channels, 3, padding=1, bias=False),
              "DCNv1 3×3": DeformableConv2d(channels, channels, 3),
              "DCNv2 3×3": DeformableConv2d(channels, channels, 3, modulated=True)}
    sizes = {name: (batch, channels, size, size) for name in layers}
    table = measure.add_ratios(measure.latency_table(layers, sizes, device=device), "plain",
                               decimals=1)
    table.caption += (f" {channels} → {channels} channels, batch of {batch}, {size}×{size}; MACs "
                      f"are per batch, and for the deformable layers include the offset "
                      f"convolution and the bilinear sampling.")
    return table


# --- sampling points drawn -------------------------------------------------------------------------


@labels(image="test digit", position="output position", layer="layers followed")
def sampling_view(image: str = "", position: str = POSITIONS[0], layer: str = LAYERS[0],
                  gallery: Gallery | None = None) -> View:
    """Chapter 10: where a trained deformable network reads, for one test digit, one output
    position (on the digit or on the background) and one or both deformable layers."""
    if gallery is None:
        raise ConfigError("sampling_view needs the gallery computed from a trained network "
                          "(c10.gallery(model, data))")
    for name, value, allowed in (("image", image, list(gallery.images)),
                                 ("position", position, POSITIONS), ("layer", layer, LAYERS)):
        if value not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    figure, ax = plt.subplots(figsize=(4.6, 3.6))
    draw_sampling(ax, gallery, image, position, layer, title=False)
    legend_outside(ax)
    figure.tight_layout()
    pts = gallery.points[(image, position, layer)]
    numbers = {"points on the map": f"{len(pts)} of {9 if layer == LAYERS[0] else 81} "
                                    f"(the rest read the zero padding)",
               "effective dilation of the first layer here":
                   f"{gallery.dilation[(image, position)]:.2f} (plain: 1)",
               "spread of those points (pixels, s.d.)":
                   (f"{float(pts.std(0).mean()):.1f}" if len(pts) > 1 else "–")
                   + f" (plain: {float(gallery.plain[(image, position, layer)].std(0).mean()):.1f})"}
    return View(figure, numbers)


def digits_reading(results: Results, data: DigitData) -> str:
    """The scale table in a sentence: where the deformable networks gained or lost."""
    by_scale = accuracy_by_scale(results, data)
    plain = by_scale["plain"]
    parts = []
    for name in ("DCNv1", "DCNv2"):
        gains = {s: 100 * (by_scale[name][s] - plain[s]) for s in plain}
        best = max(gains, key=gains.get)
        worst = min(gains, key=gains.get)
        parts.append(f"{name}'s best scale was {best:g} ({gains[best]:+.1f} points), its worst "
                     f"{worst:g} ({gains[worst]:+.1f})")
    return ("Against the plain network, " + "; ".join(parts) + " (means over seeds; the "
            "verdict below pools every scale).")


def adaptation_reading(found: dict) -> str:
    """DCNv1's Table 2 trend (background between the objects' values) against this run."""
    seeds = found["per_seed"]
    scales = list(seeds[0]["object"])
    obj = {x: np.nanmean([s["object"][x] for s in seeds]) for x in scales}
    back = {x: np.nanmean([s["background"][x] for s in seeds]) for x in scales}
    between = min(obj.values()) <= np.nanmean(list(back.values())) <= max(obj.values())
    return (f"On background positions the effective dilation averaged "
            f"{np.nanmean(list(back.values())):.1f}, "
            + ("between" if between else "outside")
            + f" the values on digits ({min(obj.values()):.1f} to {max(obj.values()):.1f}): "
            + ("DCNv1's pattern, background between small and large objects, holds here."
               if between else "DCNv1's pattern, background between small and large objects, "
               "does not hold here.")
            + " DCNv1 measured on feature maps dozens of pixels wide; here the map is 8×8, and "
              "background positions of large digits lie near the canvas's edge.")


def latency_reading(table: Table) -> str:
    v1, v2 = table.rows[1], table.rows[2]
    return (f"On this device a DCNv1 layer took {v1['forward vs plain']} the time of the plain "
            f"one forward and {v1['forward + backward vs plain']} forward and backward; DCNv2 "
            f"{v2['forward vs plain']} and {v2['forward + backward vs plain']}.")
