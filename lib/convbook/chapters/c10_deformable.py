"""Chapter 10 — must a kernel be a rectangle? Deformable convolution.

- C10.1: sampling positions adapt to the image content (they spread over large objects and
  gather on small ones).
- C10.2: recognition improves.

The task (after RESEARCH.md's pilot): digits drawn with Pillow's built-in font on 32×32 noisy
canvases, trained at scales 0.9–1.1 and tested at 0.5–1.6, so that geometry varies between
training and test; plain against DCNv1 in the last two layers, at equal steps (DCNv2 and a
shrunk CIFAR-10 run are one-seed illustrations). C10.2's primary endpoint, fixed before the
run: accuracy on the test digits at scales 1.3–1.6 (``ENDPOINT_SCALES``). Every verdict is
judged only on networks that keep at least half their taps on the feature map
(``MIN_ON_MAP``); below it the offsets are mis-trained and the verdict says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from convbook import measure, stats
from convbook.blocks import DeformableConv2d
from convbook.deformation import (
    LAYERS,
    POSITIONS,
    Gallery,
    dilation_by_scale,
    slope,
    taps_on_map,
)
from convbook.errors import ConfigError
from convbook.experiments import Results, Variant
from convbook.explore import View, labels
from convbook.nets import CifarNet, deformable_cifar_net
from convbook.synthetic import DigitData, digits_for_training
from convbook.tables import Table
from convbook.viz.deformable import draw_sampling
from convbook.viz.style import legend_outside

CHAPTER = "10-deformable"

# Fixed before the run. C10.2 is judged on the digits larger than any seen in training: at
# scales 0.5-0.7 both networks sit near chance and at 1.0 near 100 %, so pooling them would
# dilute the question with scales where neither can gain.
ENDPOINT_SCALES = (1.3, 1.4, 1.5, 1.6)
TEST_SCALES = (0.5, 0.7, 1.0) + ENDPOINT_SCALES
MIN_ON_MAP = 0.5  # below it, most taps read the zero padding: no verdict on such a network
TRAINED = 0.9  # accuracy at a training scale above which a reading calls a network trained


def percent_text(fraction: float) -> str:
    """A share as the book writes it: 79 %."""
    return f"{100 * fraction:.0f} %"


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


def cifar_reading(results: Results, cost: dict[str, float], shrunk_to: int | None,
                  on_map: float) -> str:
    """The CIFAR-10 illustration in a sentence (one seed, no verdict); ``shrunk_to``: the
    training images of a task shrunk for the CPU (None: the profile's own); ``on_map``: the
    share of the deformable unit's taps on the map over test images."""
    ratio = cost["DCNv1"] / cost["plain"]
    plain, dcn = results["plain"], results["DCNv1 (last unit)"]
    seeds = len(dcn.runs)
    text = (f"With one deformable unit a training step took {ratio:.1f}× the plain one's on "
            f"this device. Test accuracy: plain {100 * plain.test_accuracy:.1f} %, DCNv1 "
            f"{100 * dcn.test_accuracy:.1f} % ({seeds} seed{'s' if seeds > 1 else ''}); "
            f"{percent_text(on_map)} of the deformable unit's taps land on its map. This part "
            f"is an illustration of the cost, not a test of C10.2, and carries no verdict")
    if on_map < MIN_ON_MAP:
        text += f" (and its offsets are mis-trained: {percent_text(on_map)} on the map)"
    text += "."
    if shrunk_to:
        text += (f" The task is shrunk to {shrunk_to:,} training images and "
                 f"{results.recipe.epochs} epochs for the CPU, too little to train either "
                 f"network well: at the book's full size the deformable network alone would "
                 f"take about {cost['minutes']:.0f} minutes here.")
    return text


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
    seeds = ", ".join(f"{v.name} {len(v.runs)}" for v in results)
    return Table(rows, caption=f"Test accuracy at each digit scale, mean over seeds ({seeds}); "
                               f"trained at scales {data.train_scales[0]}–"
                               f"{data.train_scales[1]}; C10.2 is judged on scales "
                               f"{ENDPOINT_SCALES[0]}–{ENDPOINT_SCALES[-1]}.")


def endpoint_difference(results: Results, data: DigitData, a: str = "DCNv1", b: str = "plain",
                        scales: Sequence[float] = ENDPOINT_SCALES,
                        confidence: float = 0.95) -> stats.Difference:
    """Test accuracy of ``a`` minus ``b`` on the test digits at ``scales`` only, paired over
    the seeds both ran and those digits (``stats.paired_difference``)."""
    slices = data.scale_slices()
    missing = [s for s in scales if s not in slices]
    if missing or not scales:
        raise ConfigError(f"the endpoint's scales {list(scales)} must be test scales of the "
                          f"data; its scales are {list(slices)}")
    columns = torch.cat([torch.arange(slices[s].start, slices[s].stop) for s in scales])
    shared = sorted({r.seed for r in results[a].runs} & {r.seed for r in results[b].runs})
    if not shared:
        raise ConfigError(f"{a!r} and {b!r} share no seed, so they cannot be paired")

    def pick(variant: Variant) -> torch.Tensor:
        runs = sorted((r for r in variant.runs if r.seed in shared), key=lambda r: r.seed)
        return torch.stack([r.correct[columns] for r in runs]).float()

    return stats.paired_difference(pick(results[a]), pick(results[b]), confidence)


# --- where the taps go (C10.1) -----------------------------------------------------------------


def adaptation(results: Results, data: DigitData, variant: str = "DCNv1") -> dict:
    """Per seed: the measures of ``dilation_by_scale``, the slope of effective dilation on the
    digit against scale, the mean share of the first layer's taps at digit positions on the
    map ("inside"), the share of every deformable layer's taps on the map over all test digits
    ("on_map": the gate of every verdict) and the mean focus."""
    per_seed = [dilation_by_scale(run.model, data) for run in results[variant].runs]
    return {"per_seed": per_seed, "slopes": [slope(d["object"]) for d in per_seed],
            "inside": [float(np.nanmean(list(d["inside"].values()))) for d in per_seed],
            "on_map": [float(np.mean(list(d["on_map"].values()))) for d in per_seed],
            "focus": [float(np.nanmean(list(d["focus"].values()))) for d in per_seed]}


def taps_by_seed(variant: Variant, data: DigitData) -> list[float]:
    """``taps_on_map`` of each of ``variant``'s trained networks over every test digit."""
    images = digits_for_training(data).test[0]
    return [taps_on_map(run.model, images) for run in variant.runs]


def offsets_gate(on_map: Sequence[float], network: str = "DCNv1") -> str:
    """"" when every network of ``on_map`` (one share per seed) keeps at least ``MIN_ON_MAP``
    of its taps on the map; else the sentence an inconclusive verdict gives instead."""
    if not on_map:
        raise ConfigError("offsets_gate needs the share of taps on the map of each network")
    lowest = min(on_map)
    if lowest >= MIN_ON_MAP:
        return ""
    return (f"Inconclusive — offsets mis-trained ({percent_text(lowest)} on map): in "
            f"{sum(x < MIN_ON_MAP for x in on_map)} of the {len(on_map)} {network} networks "
            f"fewer than {percent_text(MIN_ON_MAP)} of the deformable layers' taps land on the "
            f"feature map, so most read the zero padding around it and the run would judge "
            f"that, not a kernel fitted to the digit. Train the offsets at a smaller share of "
            f"the learning rate (`DeformableConv2d(offset_lr=...)`) and run again.")


def on_map_table(on_map: Mapping[str, Sequence[float]]) -> Table:
    """For each trained deformable network (name -> one share per seed): the share of its
    deformable layers' taps on the map, and whether a verdict may rest on it."""
    rows = []
    for name, shares in on_map.items():
        rows.append({"network": name, "seeds": len(shares),
                     "taps on the map (each seed)": ", ".join(percent_text(x) for x in shares),
                     "lowest": percent_text(min(shares)),
                     f"at least {percent_text(MIN_ON_MAP)}": "yes" if min(shares) >= MIN_ON_MAP
                     else "no: offsets mis-trained"})
    return Table(rows, caption="Share of the deformable layers' taps, at every output position "
                               "of every test digit, that land on the 8×8 feature map rather "
                               "than in the zero padding around it (a plain 3×3 kernel keeps "
                               "84 %: the outer taps of the border positions fall off). No "
                               "verdict rests on a network below "
                               f"{percent_text(MIN_ON_MAP)}.")


def taps_reading(on_map: Mapping[str, Sequence[float]]) -> str:
    """The on-map table in a sentence: does every network pass the gate?"""
    parts = [f"{name} {percent_text(min(x))}" + (f" to {percent_text(max(x))}" if len(x) > 1
                                                  else "")
             for name, x in on_map.items()]
    failed = [name for name, x in on_map.items() if min(x) < MIN_ON_MAP]
    return ("Taps on the map: " + ", ".join(parts) + ". " + (
        f"Every network keeps at least {percent_text(MIN_ON_MAP)}, so the offsets moved taps "
        f"across the map rather than off it, and the verdicts below may rest on them."
        if not failed else
        f"{' and '.join(failed)} fall below {percent_text(MIN_ON_MAP)}: their offsets throw "
        f"most taps into the zero padding, and no verdict rests on them."))


def dilation_table(found: dict) -> Table:
    seeds = found["per_seed"]
    rows = []
    for scale in seeds[0]["object"]:
        rows.append({"test scale": f"{scale:g}",
                     "on the digit": f"{np.nanmean([s['object'][scale] for s in seeds]):.2f}",
                     "background": f"{np.nanmean([s['background'][scale] for s in seeds]):.2f}",
                     "first layer's taps on the map (on the digit)":
                         percent_text(np.nanmean([s['inside'][scale] for s in seeds])),
                     "all taps on the map":
                         percent_text(np.nanmean([s['on_map'][scale] for s in seeds])),
                     "focus (vs plain grid)":
                         f"{100 * np.nanmean([s['focus'][scale] for s in seeds]):+.0f} points"})
    return Table(rows, caption="Effective dilation of the first deformable layer (mean distance "
                               "between adjacent taps that both land on its 8×8 feature map; a "
                               "plain 3×3 kernel has 1); the share of its taps on the digit's "
                               "positions that land on the map rather than in the zero padding, "
                               "and of both layers' taps at every position; "
                               "and focus: the share of those on-map taps that land on the digit, "
                               "minus the same share for a plain 3×3 grid. Means over test "
                               f"digits and {len(seeds)} seed{'s' if len(seeds) > 1 else ''}.")


# --- verdicts ---------------------------------------------------------------------------------

V1_PUBLISHED = stats.Published(0.037, "Dai et al. 2017: COCO test-dev mAP with ResNet-101, "
                                      "Faster R-CNN 29.4 → 33.1 and R-FCN 30.8 → 34.5 — a "
                                      "different task and metric")


def decide_hint(diff: stats.Difference) -> str:
    """What would narrow ``diff``'s interval, read from its own terms: seeds or test digits."""
    if not (math.isfinite(diff.se_seeds) and math.isfinite(diff.se_images)):
        return ("One seed leaves the seed term unmeasured: three or more seeds (the parameters "
                "cell's `seeds`) are needed for any interval.")
    terms = (f"standard error from seeds {100 * diff.se_seeds:.1f} points, from test digits "
             f"{100 * diff.se_images:.1f}")
    if diff.se_seeds >= diff.se_images:
        return (f"Seeds, not test digits, set this interval's width ({terms}): more seeds (the "
                f"parameters cell's `seeds`) would narrow it; more test digits would not.")
    return (f"Test digits, more than seeds, set this interval's width ({terms}): more test "
            f"digits per scale (`test_per_scale` in `sizes`) would narrow it.")


def verdict_c101(found: dict) -> stats.Verdict:
    """C10.1 — the taps adapt to the content. Two parts over seeds: *spread follows the digit*
    (slope of on-map effective dilation against scale above 0) and *taps gather on the digit*
    (focus: share of on-map taps on the digit, minus a plain grid's, above 0). Parts combine.
    Judged only when every network keeps ``MIN_ON_MAP`` of its taps on the map (``on_map``,
    one share per seed); else inconclusive, saying the offsets are mis-trained."""
    confidence = stats.shared_confidence(2)  # the two parts share the 5 % error rate
    slopes = stats.mean_interval(found["slopes"], confidence)
    focus = stats.mean_interval([100 * f for f in found["focus"]], confidence)
    on_map = min(found["on_map"])
    numbers = {"slope": slopes, "focus": focus, "on_map": on_map}
    spread_text = (f"effective dilation on the digit per unit of scale {slopes.mean:+.2f} "
                   + _interval_text(slopes))
    focus_text = (f"on-map taps on the digit, minus a plain grid's share, {focus.mean:+.1f} "
                  f"points " + _interval_text(focus))
    gate = offsets_gate(found["on_map"])
    if gate:
        return stats.Verdict("C10.1", stats.INCONCLUSIVE,
                             f"{gate} (Measured on them: {spread_text}; {focus_text}.)",
                             numbers=numbers)
    label = stats.label_difference(slopes, +1)
    spread = stats.Verdict("C10.1", label, spread_text + {
        stats.CONFIRMED: ": the kernel widens with the digit, beyond the interval",
        stats.REFUTED: ": the kernel narrows as the digit grows",
        stats.INCONCLUSIVE: ": no trend beyond the interval"}[label] + "." + (
        stats.detectable_note(label, slopes, unit=lambda v: f"{v:.2f} per unit of scale")))
    label = stats.label_difference(focus, +1)
    gather = stats.Verdict("C10.1", label, focus_text + {
        stats.CONFIRMED: ": the taps move onto the digit",
        stats.REFUTED: ": the taps move off the digit",
        stats.INCONCLUSIVE: ": no shift beyond the interval"}[label] + "."
        + stats.detectable_note(label, focus, unit=lambda v: f"{v:.1f} points"))
    verdict = stats.combine("C10.1", {"spread follows the digit": spread,
                                      "taps gather on the digit": gather})
    verdict.text += (f" Every network keeps at least {percent_text(on_map)} of its taps on "
                     f"the map.")
    verdict.numbers = numbers
    return verdict


def _interval_text(interval: stats.Difference, scale: float = 1.0) -> str:
    if math.isinf(interval.low):
        return "(one seed: interval unbounded)"
    return (f"({stats.percent(interval.confidence)} interval {scale * interval.low:+.2f} to "
            f"{scale * interval.high:+.2f}, {interval.seeds} seeds)")


def verdict_c102(results: Results, data: DigitData, found: dict) -> stats.Verdict:
    """C10.2 — recognition improves: DCNv1 minus plain, test accuracy on the digits at
    ``ENDPOINT_SCALES`` (the primary endpoint, fixed before the run), paired by seed and digit.
    Judged only when every DCNv1 network keeps ``MIN_ON_MAP`` of its taps on the map
    (``found["on_map"]``, from ``adaptation``); else inconclusive, saying so."""
    diff = endpoint_difference(results, data)
    what = (f"DCNv1 minus plain, test accuracy on digits at scales {ENDPOINT_SCALES[0]:g}–"
            f"{ENDPOINT_SCALES[-1]:g} (larger than any in training; the endpoint fixed before "
            f"the run)")
    gate = offsets_gate(found["on_map"])
    if gate:
        return stats.Verdict("C10.2", stats.INCONCLUSIVE, f"{what}: {diff}. {gate}",
                             numbers={"difference": diff, "on_map": min(found["on_map"])})
    verdict = stats.verdict_on_difference("C10.2", diff, what, decide_hint=decide_hint(diff),
                                          published=V1_PUBLISHED)
    verdict.numbers["on_map"] = min(found["on_map"])
    return verdict


def one_minute(c101: stats.Verdict, c102: stats.Verdict, digits_results: Results,
               data: DigitData, cost: Table, found: dict) -> str:
    by_scale = accuracy_by_scale(digits_results, data)
    plain, dcn = by_scale["plain"], by_scale["DCNv1"]
    gains = {s: 100 * (dcn[s] - plain[s]) for s in ENDPOINT_SCALES}
    best, worst = max(gains, key=gains.get), min(gains, key=gains.get)
    endpoint = endpoint_difference(digits_results, data)
    step = (digits_results["DCNv1"].latency.get("forward_backward", math.nan)
            / digits_results["plain"].latency.get("forward_backward", math.nan))
    return (f"Learned offsets let a kernel's taps move. On digits larger than any seen in "
            f"training (scales {ENDPOINT_SCALES[0]:g}–{ENDPOINT_SCALES[-1]:g}, the endpoint "
            f"fixed before the run), DCNv1 minus a plain network: {100 * endpoint.mean:+.1f} "
            f"points (C10.2 {c102.label}); {gains[best]:+.0f} at scale {best:g}, "
            f"{gains[worst]:+.0f} at {worst:g}. Whether the taps adapt to the digit: C10.1 "
            f"{c101.label}. The DCNv1 networks keep at least {percent_text(min(found['on_map']))}"
            f" of their taps on the feature map (no verdict is judged below "
            f"{percent_text(MIN_ON_MAP)}). On this device one deformable layer's training "
            f"step cost {cost.rows[1]['forward + backward vs plain']} a plain one's, the whole "
            f"network's "
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
    """The scale table in a sentence: where DCNv1 gained or lost against plain (means over
    seeds), and DCNv2's one seed on the endpoint's digits."""
    by_scale = accuracy_by_scale(results, data)
    plain, dcn = by_scale["plain"], by_scale["DCNv1"]
    gains = {s: 100 * (dcn[s] - plain[s]) for s in plain}
    best, worst = max(gains, key=gains.get), min(gains, key=gains.get)
    trained = [s for s in plain if data.train_scales[0] <= s <= data.train_scales[1]]
    text = (f"Against the plain network (means over seeds), DCNv1's best scale was {best:g} "
            f"({gains[best]:+.1f} points), its worst {worst:g} ({gains[worst]:+.1f}).")
    if trained:
        s = trained[0]
        both = min(plain[s], dcn[s]) >= TRAINED
        text += (f" At scale {s:g}, inside the training range, plain reached "
                 f"{100 * plain[s]:.1f} % and DCNv1 {100 * dcn[s]:.1f} %: " + (
                     "the shared recipe trains both." if both else
                     f"below {percent_text(TRAINED)}, so this run's recipe did not train both "
                     f"networks, and what they do on other scales says little."))
    if "DCNv2" in by_scale:
        seed = results["DCNv2"].runs[0].seed
        v2 = endpoint_difference(results, data, "DCNv2", "plain")
        text += (f" DCNv2, trained on seed {seed} only as an illustration (no verdict), minus "
                 f"plain on that seed at scales {ENDPOINT_SCALES[0]:g}–{ENDPOINT_SCALES[-1]:g}: "
                 f"{100 * v2.mean:+.1f} points.")
    return text + " The verdict below judges scales " \
        f"{ENDPOINT_SCALES[0]:g}–{ENDPOINT_SCALES[-1]:g} only."


def adaptation_reading(found: dict) -> str:
    """DCNv1's Table 2 trend (background between the objects' values) against this run, and
    how many taps the measure rests on."""
    seeds = found["per_seed"]
    scales = list(seeds[0]["object"])
    obj = {x: np.nanmean([s["object"][x] for s in seeds]) for x in scales}
    back = float(np.nanmean([np.nanmean([s["background"][x] for s in seeds]) for x in scales]))
    low, high = min(obj.values()), max(obj.values())
    if low <= back <= high:
        where = ("between the values on digits: DCNv1's pattern, background between small and "
                 "large objects, holds here")
    elif back > high:
        where = ("above every value on digits: the background positions spread their taps "
                 "wider than any digit position, so DCNv1's pattern (background between small "
                 "and large objects) does not hold here")
    else:
        where = ("below every value on digits: the background positions keep their taps "
                 "closer than any digit position, so DCNv1's pattern (background between small "
                 "and large objects) does not hold here")
    focus = 100 * float(np.mean(found["focus"]))
    gather = (f"{abs(focus):.0f} points {'more' if focus >= 0 else 'fewer'} of the on-map taps "
              f"at digit positions land on the digit than a plain grid's (mean over seeds; the "
              f"verdict says whether beyond the interval): " + (
                  "as the kernel spreads, its taps stay on the digit." if focus >= 0 else
                  "as the kernel spreads, more of its taps reach past the digit's edge."))
    return (f"On background positions the first deformable layer's effective dilation "
            f"averaged {back:.1f}; on digits it ran from {low:.1f} to {high:.1f} across the "
            f"test scales. The background value lies {where}. {gather} These are dilations "
            f"of taps on the map: the networks keep at least "
            f"{percent_text(min(found['on_map']))} of them there.")


def latency_reading(table: Table) -> str:
    v1, v2 = table.rows[1], table.rows[2]
    return (f"On this device a DCNv1 layer took {v1['forward vs plain']} the time of the plain "
            f"one forward and {v1['forward + backward vs plain']} forward and backward; DCNv2 "
            f"{v2['forward vs plain']} and {v2['forward + backward vs plain']}.")
