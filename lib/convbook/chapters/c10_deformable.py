"""Chapter 10 — must a kernel be a rectangle? Deformable convolution.

- C10.1: sampling positions adapt to the image content (they spread over large objects and
  gather on small ones).
- C10.2: recognition improves.

The task (after RESEARCH.md's pilot): digits drawn with Pillow's built-in font on 32×32 noisy
canvases, trained at scales 0.9–1.1 and tested at 0.5–1.6, so that geometry varies between
training and test; plain against DCNv1 and DCNv2 in the last two layers, at equal steps.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from convbook import experiments, measure, profiles, stats
from convbook.blocks import ConvBNAct, DeformableConv2d
from convbook.blocks.validate import check_positive
from convbook.data import CifarData
from convbook.errors import ConfigError
from convbook.experiments import Results
from convbook.explore import View, labels
from convbook.nets import CifarNet
from convbook.profiles import Profile
from convbook.tables import Table
from convbook.train import Recipe
from convbook.viz.style import PALETTE, family_colour, legend_outside

CHAPTER = "10-deformable"
SIZE = 32
BASE_HEIGHT = 14  # pixels of a digit's height at scale 1
TRAIN_SCALES = (0.9, 1.1)
TEST_SCALES = (0.5, 0.7, 0.9, 1.0, 1.2, 1.4, 1.6)
DATA_SEED = 1010
VARIANTS = {"plain": None, "DCNv1": False, "DCNv2": True}  # modulated flag of the last layers
TASK = {"smoke": {"train": 256, "test_per_scale": 32, "epochs": 1, "width": 8},
        "book": {"train": 2500, "test_per_scale": 500, "epochs": 3, "width": 16},
        "full": {"train": 30000, "test_per_scale": 2000, "epochs": 10, "width": 32}}


# --- the task -----------------------------------------------------------------------------------

_GLYPHS: dict[int, torch.Tensor] = {}


def glyphs() -> dict[int, torch.Tensor]:
    """The ten digits drawn once, large, with Pillow's built-in font, cropped to their ink:
    {digit: H x W tensor in [0, 1]}."""
    if _GLYPHS:
        return _GLYPHS
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.load_default(size=64)
    except TypeError:  # Pillow < 10.1: a small bitmap font, scaled up below
        font = ImageFont.load_default()
    for digit in range(10):
        canvas = Image.new("L", (96, 96), 0)
        ImageDraw.Draw(canvas).text((12, 4), str(digit), fill=255, font=font)
        array = torch.from_numpy(np.asarray(canvas, dtype=np.float32) / 255.0)
        rows = torch.nonzero(array.amax(1) > 0.1).flatten()
        cols = torch.nonzero(array.amax(0) > 0.1).flatten()
        _GLYPHS[digit] = array[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    return _GLYPHS


def digits(count: int, scales: tuple[float, float], seed: int = DATA_SEED,
           noise: float = 0.15) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``count`` images (N x 1 x 32 x 32): a random digit at a random scale in ``scales``
    (height ``scale`` × 14 pixels), at a random position wholly inside the canvas, plus noise.
    Returns images, labels and the digits' masks (N x 32 x 32, True on ink)."""
    check_positive("count", count)
    low, high = scales
    if not 0.2 <= low <= high <= 2.0:
        raise ConfigError(f"scales must lie between 0.2 and 2.0 with low <= high, got {scales}")
    g = torch.Generator().manual_seed(seed)
    shapes = glyphs()
    labels_ = torch.randint(0, 10, (count,), generator=g)
    scale = low + torch.rand(count, generator=g) * (high - low)
    images = torch.zeros(count, 1, SIZE, SIZE)
    masks = torch.zeros(count, SIZE, SIZE, dtype=torch.bool)
    for n in range(count):
        glyph = shapes[int(labels_[n])]
        h = max(3, round(float(scale[n]) * BASE_HEIGHT))
        w = max(2, round(glyph.shape[1] * h / glyph.shape[0]))
        small = F.interpolate(glyph[None, None], size=(h, w), mode="bilinear",
                              align_corners=False, antialias=True)[0, 0].clamp(0, 1)
        y = int(torch.randint(0, SIZE - h + 1, (1,), generator=g))
        x = int(torch.randint(0, SIZE - w + 1, (1,), generator=g))
        images[n, 0, y:y + h, x:x + w] = small
        masks[n, y:y + h, x:x + w] = small > 0.3
    images += noise * torch.randn(images.shape, generator=g)
    return images, labels_, masks


@dataclass(frozen=True)
class DigitData:
    train: tuple[torch.Tensor, torch.Tensor]
    tests: dict[float, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]  # scale -> x, y, mask

    def describe(self) -> str:
        per_scale = len(next(iter(self.tests.values()))[0])
        return (f"{len(self.train[0]):,} training digits at scales {TRAIN_SCALES[0]}–"
                f"{TRAIN_SCALES[1]}, {per_scale:,} test digits at each of the scales "
                f"{', '.join(map(str, self.tests))}")

    def digest(self) -> str:
        h = hashlib.sha256()
        for t in self.train:
            h.update(t.numpy().tobytes())
        for x, y, _ in self.tests.values():
            h.update(x.numpy().tobytes())
            h.update(y.numpy().tobytes())
        return h.hexdigest()[:16]


def digit_data(profile_name: str) -> DigitData:
    task = profiles.choose(TASK, profile_name, "c10.TASK")
    x, y, _ = digits(task["train"], TRAIN_SCALES, seed=DATA_SEED)
    tests = {s: digits(task["test_per_scale"], (s, s), seed=DATA_SEED + 1 + i)
             for i, s in enumerate(TEST_SCALES)}
    return DigitData((x, y), tests)


def as_images(x: torch.Tensor) -> torch.Tensor:
    """Grey digits in [0, 1] (N x 1 x H x W) as the uint8 3-channel images ``train.fit`` takes."""
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()


def cifar_style(data: DigitData) -> CifarData:
    """The digits as training data for ``experiments.compare``: every test scale in one test
    set, scale after scale (``scale_slices`` finds each)."""
    tests = list(data.tests.values())
    test_x = torch.cat([as_images(x) for x, _, _ in tests])
    test_y = torch.cat([y for _, y, _ in tests])
    return CifarData((as_images(data.train[0]), data.train[1]), (test_x, test_y),
                     f"digits ({data.describe()})")


def scale_slices(data: DigitData) -> dict[float, slice]:
    out, start = {}, 0
    for scale, (x, _, _) in data.tests.items():
        out[scale] = slice(start, start + len(x))
        start += len(x)
    return out


# --- the networks ---------------------------------------------------------------------------------

def deformable_tail(net: nn.Module, count: int, modulated: bool) -> nn.Module:
    """Replace the convolution of the last ``count`` conv units of a CifarNet by a deformable
    one of the same shape (He-initialised like the rest; its offsets start at zero)."""
    units = [m for m in net.features if isinstance(m, ConvBNAct)]
    check_positive("count", count)
    if count > len(units):
        raise ConfigError(f"the network has {len(units)} conv units; count must be at most that")
    for unit in units[-count:]:
        conv = unit[0]
        block = DeformableConv2d(conv.in_channels, conv.out_channels, conv.kernel_size[0],
                                 stride=conv.stride[0], padding=conv.padding[0],
                                 dilation=conv.dilation[0], modulated=modulated)
        nn.init.kaiming_normal_(block.weight, mode="fan_out", nonlinearity="relu")
        unit[0] = block
    return net


def digit_net(width: int, modulated: bool | None) -> nn.Module:
    """CifarNet with two units per stage (the last two at 8×8); ``modulated`` None keeps it
    plain, False makes the last two units DCNv1, True DCNv2."""
    net = CifarNet(width, blocks_per_stage=2)
    return net if modulated is None else deformable_tail(net, 2, modulated)


def cifar_net(width: int, modulated: bool | None) -> nn.Module:
    """The book's baseline CifarNet; deformable in its last unit (8×8) unless ``modulated`` is
    None."""
    net = CifarNet(width)
    return net if modulated is None else deformable_tail(net, 1, modulated)


def digits_recipe(profile: Profile) -> Recipe:
    """The book's recipe without crops and flips (a flipped 2 is no digit; a crop would cut
    off the large ones) and without flip test-time augmentation."""
    task = profiles.choose(TASK, profile.name, "c10.TASK")
    return profile.recipe.with_(epochs=task["epochs"], augment=False, flip_tta=False)


def run_digits(setup, data: DigitData) -> Results:
    width = profiles.choose(TASK, setup.profile.name, "c10.TASK")["width"]
    variants = {name: partial(digit_net, width, flag) for name, flag in VARIANTS.items()}
    return experiments.compare(variants, cifar_style(data), setup.profile, seeds=setup.seeds,
                               device=setup.device, recipe=digits_recipe(setup.profile))


CIFAR_ON_CPU = {"train": 1000, "epochs": 5}  # the shrunk task a CPU can afford


def cifar_task(setup) -> tuple[int | None, Recipe]:
    """Training images and recipe of the CIFAR-10 comparison: the profile's on a CUDA device;
    on a CPU, where torchvision's deformable kernel makes a step several times dearer, a
    shrunk task (CIFAR_ON_CPU) unless the profile is smaller still."""
    recipe = setup.profile.recipe
    if setup.device.type == "cuda" or setup.profile.name == "smoke":
        return setup.profile.train_size, recipe
    return CIFAR_ON_CPU["train"], recipe.with_(epochs=CIFAR_ON_CPU["epochs"])


def run_cifar(setup) -> Results:
    """Plain CifarNet against the same network with a DCNv1 last unit (8×8), same data,
    recipe and seeds, at the size ``cifar_task`` affords on this device."""
    train_size, recipe = cifar_task(setup)
    data = setup.data(train_size=train_size)
    variants = {"plain": partial(cifar_net, setup.profile.width, None),
                "DCNv1 (last unit)": partial(cifar_net, setup.profile.width, False)}
    return experiments.compare(variants, data, setup.profile, seeds=setup.seeds,
                               device=setup.device, recipe=recipe)


def cifar_cost(setup) -> dict[str, float]:
    """Measured seconds of one training step (forward + backward at the recipe's batch size)
    of the plain and the DCNv1 CifarNet on this device, and the minutes a comparison over the
    profile's seeds would take at the profile's training size and epochs."""
    recipe = setup.profile.recipe
    steps = math.ceil((setup.profile.train_size or 50_000) / recipe.batch_size) * recipe.epochs
    out = {}
    for name, flag in (("plain", None), ("DCNv1", False)):
        torch.manual_seed(0)
        timing = measure.train_latency(cifar_net(setup.profile.width, flag), recipe.batch_size,
                                       device=setup.device, min_run_time=0.3)
        out[name] = timing["forward_backward"]
    out["minutes"] = out["DCNv1"] * steps * len(setup.seeds) / 60  # plain: chapter 1's
    return out


def cifar_reading(setup, results: Results, cost: dict[str, float]) -> str:
    ratio = cost["DCNv1"] / cost["plain"]
    diff = results.difference("DCNv1 (last unit)", "plain")
    train_size, recipe = cifar_task(setup)
    shrunk = setup.device.type != "cuda" and setup.profile.name != "smoke"
    return (f"With one deformable unit a training step took {ratio:.1f}× the plain one's on "
            f"this device; DCNv1 minus plain, test accuracy: {diff}."
            + (f" The task is shrunk to {train_size:,} training images and {recipe.epochs} "
               f"epochs for the CPU: at the book's full size the deformable network alone "
               f"would take about {cost['minutes']:.0f} minutes here. A GPU runs the profile's "
               f"task." if shrunk else ""))


def accuracy_by_scale(results: Results, data: DigitData) -> dict[str, dict[float, float]]:
    """Each variant's test accuracy (mean over seeds) at each test scale."""
    slices = scale_slices(data)
    return {v.name: {s: float(v.correct[:, part].float().mean()) for s, part in slices.items()}
            for v in results}


def scale_table(results: Results, data: DigitData) -> Table:
    by_scale = accuracy_by_scale(results, data)
    rows = []
    for scale in data.tests:
        row = {"test scale": f"{scale:g}" + (" (trained)" if TRAIN_SCALES[0] <= scale
                                              <= TRAIN_SCALES[1] else "")}
        for name, values in by_scale.items():
            row[f"{name} (%)"] = f"{100 * values[scale]:.1f}"
        rows.append(row)
    return Table(rows, caption=f"Test accuracy at each digit scale (mean over "
                               f"{len(results.seeds)} seed{'s' if len(results.seeds) > 1 else ''});"
                               f" trained at scales {TRAIN_SCALES[0]}–{TRAIN_SCALES[1]}.")


def plot_accuracy_by_scale(results: Results, data: DigitData):
    by_scale = accuracy_by_scale(results, data)
    figure, ax = plt.subplots(figsize=(5.6, 3.4))
    ax.axvspan(*TRAIN_SCALES, color="#999999", alpha=0.18, label="training scales")
    for name, values in by_scale.items():
        ax.plot(list(values), [100 * v for v in values.values()], marker="o", label=name,
                color=family_colour(name))
    ax.set_xlabel("digit scale at test (1 = 14 pixels tall)")
    ax.set_ylabel("test accuracy (%)")
    legend_outside(ax)
    figure.tight_layout()
    return figure


# --- where the taps go (C10.1) -----------------------------------------------------------------

def deformable_layers(model: nn.Module) -> list[DeformableConv2d]:
    return [m for m in model.modules() if isinstance(m, DeformableConv2d)]


@torch.no_grad()
def layer_inputs(model: nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    """The input each deformable layer of ``model`` receives for ``images`` (uint8, N x 3)."""
    from convbook.train import normalize

    captured = []
    hooks = [layer.register_forward_hook(lambda m, args, out: captured.append(args[0].float()))
             for layer in deformable_layers(model)]
    try:
        model.eval()
        device = next(model.parameters()).device
        model(normalize(images.to(device)))
    finally:
        for hook in hooks:
            hook.remove()
    return captured


_HORIZONTAL = ((0, 1), (1, 2), (3, 4), (4, 5), (6, 7), (7, 8))
_VERTICAL = ((0, 3), (3, 6), (1, 4), (4, 7), (2, 5), (5, 8))


def effective_dilation(points: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """DCNv1's "effective dilation": the mean distance between adjacent taps of each output
    position (N x H x W from N x H x W x 9 x 2); a plain 3×3 kernel gives 1. With ``size``
    (the map's side), only pairs whose two taps both land on the map count (a tap in the zero
    padding reads nothing); NaN where no pair does."""
    pairs = _HORIZONTAL + _VERTICAL
    a = points[..., [i for i, _ in pairs], :]
    b = points[..., [j for _, j in pairs], :]
    distance = (a - b).norm(dim=-1)
    if size is None:
        return distance.mean(dim=-1)
    on_a, on_b = on_map(a, size), on_map(b, size)
    keep = (on_a & on_b).float()
    return (distance * keep).sum(-1) / keep.sum(-1)  # 0/0 = NaN where no pair is on the map


def on_map(points: torch.Tensor, size: int) -> torch.Tensor:
    """True where a (y, x) point lies where bilinear sampling reads at least one pixel of a
    ``size`` × ``size`` map."""
    return ((points > -1) & (points < size)).all(-1)


def cell_masks(masks: torch.Tensor, stride: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Which positions of a ``size`` × ``size`` feature map (``stride`` image pixels each) lie
    on the object (a quarter or more of its pixels are ink) and which on background (no ink
    within one cell around it)."""
    ink = F.avg_pool2d(masks[:, None].float(), stride)[:, 0]
    near = F.max_pool2d(ink[:, None], 3, 1, 1)[:, 0]
    return ink >= 0.25, near == 0


def dilation_by_scale(model: nn.Module, data: DigitData) -> dict[str, dict[float, float]]:
    """For the first deformable layer and each test scale: mean effective dilation (pairs on
    the map only) at object and at background positions; the share of the taps at object
    positions that land on the map; and "focus", the share of the on-map taps at object
    positions that land on the object, minus that share for a plain 3×3 grid there."""
    out = {"object": {}, "background": {}, "inside": {}, "focus": {}}
    layer = deformable_layers(model)[0]
    for scale, (x, _, masks) in data.tests.items():
        inputs = layer_inputs(model, as_images(x))[0]
        points = layer.sampling_points(inputs).cpu()
        size = inputs.shape[-1]
        stride = SIZE // size
        dilation = effective_dilation(points, size)
        obj, background = cell_masks(masks, stride, size)
        inside = on_map(points, size)
        out["object"][scale] = float(dilation[obj].nanmean()) if obj.any() else math.nan
        out["background"][scale] = (float(dilation[background].nanmean()) if background.any()
                                    else math.nan)
        out["inside"][scale] = float(inside.float().mean(-1)[obj].mean()) if obj.any() else math.nan
        out["focus"][scale] = _focus(points, inside, obj, size) if obj.any() else math.nan
    return out


def _focus(points: torch.Tensor, inside: torch.Tensor, obj: torch.Tensor, size: int) -> float:
    """Share of on-map taps (at object positions) whose nearest cell is an object cell, minus
    the same share for the plain grid at those positions."""
    n, h, w = obj.shape
    cells = points.round().clamp(0, size - 1).long()
    batch = torch.arange(n)[:, None, None, None].expand(-1, h, w, 9)
    hit = obj[batch, cells[..., 0], cells[..., 1]] & inside
    deformable = hit.float().sum(-1)[obj].sum() / inside.float().sum(-1)[obj].sum().clamp(min=1)
    ys = torch.arange(h)[None, :, None, None] + torch.tensor([-1, -1, -1, 0, 0, 0, 1, 1, 1])
    xs = torch.arange(w)[None, None, :, None] + torch.tensor([-1, 0, 1, -1, 0, 1, -1, 0, 1])
    ys, xs = ys.expand(n, h, w, 9), xs.expand(n, h, w, 9)
    plain_inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    plain_hit = obj[batch, ys.clamp(0, h - 1), xs.clamp(0, w - 1)] & plain_inside
    plain = plain_hit.float().sum(-1)[obj].sum() / plain_inside.float().sum(-1)[obj].sum()
    return float(deformable - plain)


def slope(values: dict[float, float]) -> float:
    """Least-squares slope of values against scale."""
    xs = torch.tensor(list(values), dtype=torch.float64)
    ys = torch.tensor(list(values.values()), dtype=torch.float64)
    keep = ~torch.isnan(ys)
    xs, ys = xs[keep], ys[keep]
    return float(((xs - xs.mean()) * (ys - ys.mean())).sum() / ((xs - xs.mean()) ** 2).sum())


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


def plot_dilation_by_scale(found: dict):
    seeds = found["per_seed"]
    figure, ax = plt.subplots(figsize=(5.4, 3.3))
    for where, colour in (("object", PALETTE[0]), ("background", PALETTE[7])):
        scales = list(seeds[0][where])
        means = [np.nanmean([s[where][x] for s in seeds]) for x in scales]
        ax.plot(scales, means, marker="o", color=colour,
                label="on the digit" if where == "object" else "background")
    ax.axhline(1, color="#555555", linestyle=":", label="plain kernel")
    ax.set_xlabel("digit scale at test")
    ax.set_ylabel("effective dilation")
    legend_outside(ax)
    figure.tight_layout()
    return figure


# --- verdicts ---------------------------------------------------------------------------------

DECIDE_HINT = ("More seeds (the parameters cell's `seeds`) or the `full` profile (more digits, "
               "width 32) would narrow the interval.")


MIN_ON_MAP = 0.5  # fixed in advance: below it, a "spread" is mostly taps reading padding


def verdict_c101(found: dict) -> stats.Verdict:
    """C10.1 — the taps adapt to the content. Two parts over seeds: *spread follows the digit*
    (slope of on-map effective dilation against scale above 0; judged only when at least half
    the taps land on the map, else inconclusive), and *taps gather on the digit* (focus: share
    of on-map taps on the digit, minus a plain grid's, above 0). Parts combine."""
    slopes = stats.mean_interval(found["slopes"])
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
            stats.INCONCLUSIVE: ": no trend beyond the interval"}[label])
    focus = stats.mean_interval([100 * f for f in found["focus"]])
    label = stats.label_difference(focus, +1)
    gather = stats.Verdict("C10.1", label, (
        f"on-map taps on the digit, minus a plain grid's share, {focus.mean:+.1f} points "
        + _interval_text(focus, scale=1) + {
            stats.CONFIRMED: ": the taps move onto the digit",
            stats.REFUTED: ": the taps move off the digit",
            stats.INCONCLUSIVE: ": no shift beyond the interval"}[label]))
    verdict = stats.combine("C10.1", {"spread follows the digit": spread,
                                      "taps gather on the digit": gather})
    verdict.numbers = {"slope": slopes, "focus": focus, "inside": inside}
    return verdict


def _interval_text(interval: stats.Difference, scale: float = 1.0) -> str:
    if math.isinf(interval.low):
        return "(one seed: interval unbounded)"
    return (f"(95% interval {scale * interval.low:+.2f} to {scale * interval.high:+.2f}, "
            f"{interval.seeds} seeds)")


def verdict_c102(digits_results: Results, cifar_results: Results | None) -> stats.Verdict:
    """C10.2 — recognition improves: DCNv1 and DCNv2 against plain on digits whose scale varies
    (all test scales pooled), and DCNv1 against plain on CIFAR-10 (None: not run, and the
    verdict says so); parts combine."""
    parts = {
        "digits, DCNv1": digits_results.verdict(
            "C10.2", "DCNv1", "plain", "DCNv1 minus plain, digits at every test scale",
            decide_hint=DECIDE_HINT),
        "digits, DCNv2": digits_results.verdict(
            "C10.2", "DCNv2", "plain", "DCNv2 minus plain, digits at every test scale",
            decide_hint=DECIDE_HINT),
    }
    if cifar_results is not None:
        parts["CIFAR-10, DCNv1"] = cifar_results.verdict(
            "C10.2", "DCNv1 (last unit)", "plain", "DCNv1 minus plain, CIFAR-10 test accuracy")
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

GALLERY_SCALES = (0.7, 1.0, 1.6)
POSITIONS = ("on the digit", "background")
LAYERS = ("first deformable layer (9 taps)", "both layers (81 points)")


@dataclass
class Gallery:
    """Sampling points of a trained network on a few test digits, in image pixels:
    ``points[(image, position, layer)]`` is a P x 2 tensor of (y, x); ``plain`` the same for a
    plain kernel; ``centre`` the output position's centre."""

    images: dict[str, torch.Tensor]
    points: dict[tuple[str, str, str], torch.Tensor]
    plain: dict[tuple[str, str, str], torch.Tensor]
    centre: dict[tuple[str, str], tuple[float, float]]
    dilation: dict[tuple[str, str], float]


def _to_image(points: torch.Tensor, stride: int) -> torch.Tensor:
    """Feature-map coordinates to image pixels (the centre of each stride × stride cell)."""
    return points * stride + (stride - 1) / 2


def _grid(y: int, x: int, reach: int) -> torch.Tensor:
    steps = torch.arange(-reach, reach + 1, dtype=torch.float32)
    return torch.stack(torch.meshgrid(y + steps, x + steps, indexing="ij"), -1).view(-1, 2)


@torch.no_grad()
def gallery(model: nn.Module, data: DigitData, scales: tuple[float, ...] = GALLERY_SCALES) -> Gallery:
    """The first test digit at each of ``scales``; for a position on the digit and one on the
    background, where the first deformable layer's 9 taps read, and the up to 81 points the two
    deformable layers read together (each of the second layer's taps, rounded to the nearest
    position, followed into the first layer), as in DCNv1's figure. Taps that land in the zero
    padding around the 8×8 map read nothing and are left out (so are the points behind them)."""
    first, second = deformable_layers(model)[:2]
    images, points, plain, centre, dilation = {}, {}, {}, {}, {}
    for scale in scales:
        if scale not in data.tests:
            raise ConfigError(f"no test digits at scale {scale}; scales are {list(data.tests)}")
        x, y, masks = data.tests[scale]
        name = f"a {int(y[0])} at scale {scale:g}"
        images[name] = x[0, 0]
        inputs = layer_inputs(model, as_images(x[:1]))
        one = first.sampling_points(inputs[0])[0].cpu()  # H x W x 9 x 2
        two = second.sampling_points(inputs[1])[0].cpu()
        size = one.shape[0]
        stride = SIZE // size
        _, background = cell_masks(masks[:1], stride, size)
        ys, xs = torch.nonzero(masks[0], as_tuple=True)
        cy = int(min(size - 1, float(ys.float().mean()) // stride))
        cx = int(min(size - 1, float(xs.float().mean()) // stride))
        far = torch.nonzero(background[0])
        if len(far):
            by, bx = far[((far - torch.tensor([cy, cx])) ** 2).sum(1).argmax()].tolist()
        else:
            by, bx = (0, 0)
        for position, (py, px) in zip(POSITIONS, ((cy, cx), (by, bx))):
            taps = one[py, px]
            points[(name, position, LAYERS[0])] = _to_image(taps[on_map(taps, size)], stride)
            behind = []
            for ty, tx in two[py, px]:
                if not on_map(torch.stack([ty, tx]), size):
                    continue  # a tap in the zero padding reads nothing: nothing behind it
                qy = round(float(ty.clamp(0, size - 1)))
                qx = round(float(tx.clamp(0, size - 1)))
                behind.append(one[qy, qx][on_map(one[qy, qx], size)])
            behind_points = torch.cat(behind) if behind else torch.zeros(0, 2)
            points[(name, position, LAYERS[1])] = _to_image(behind_points, stride)
            plain[(name, position, LAYERS[0])] = _to_image(_grid(py, px, 1), stride)
            plain[(name, position, LAYERS[1])] = _to_image(_grid(py, px, 2), stride)
            centre[(name, position)] = tuple(_to_image(torch.tensor([py, px]).float(), stride).tolist())
            dilation[(name, position)] = float(effective_dilation(taps[None, None, None], size)[0, 0, 0])
    return Gallery(images, points, plain, centre, dilation)


def _draw(ax, gallery: Gallery, image: str, position: str, layer: str, title: bool = True) -> None:
    ax.imshow(gallery.images[image].clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1,
              interpolation="nearest")
    grid = gallery.plain[(image, position, layer)]
    ax.scatter(grid[:, 1], grid[:, 0], s=14, marker="s", facecolor="none",
               edgecolor=PALETTE[1], linewidth=0.9, label="plain kernel")
    pts = gallery.points[(image, position, layer)]
    ax.scatter(pts[:, 1], pts[:, 0], s=10, color=PALETTE[0], edgecolor="white", linewidth=0.3,
               label="deformable")
    cy, cx = gallery.centre[(image, position)]
    ax.scatter([cx], [cy], s=70, marker="*", color=PALETTE[3], edgecolor="white",
               linewidth=0.6, label="output position")
    ax.set_xlim(-0.5, SIZE - 0.5)
    ax.set_ylim(SIZE - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    if title:
        full = 9 if layer == LAYERS[0] else 81
        ax.set_title(f"{image}, {position}:\n{len(pts)} of {full} points on the map", fontsize=10)


def plot_gallery(gallery: Gallery, layer: str = LAYERS[1]):
    names = list(gallery.images)
    figure, axes = plt.subplots(len(POSITIONS), len(names), figsize=(2.7 * len(names) + 1.8, 5.8),
                                squeeze=False)
    for row, position in enumerate(POSITIONS):
        for col, name in enumerate(names):
            _draw(axes[row][col], gallery, name, position, layer)
    axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.04, 1), borderaxespad=0)
    figure.tight_layout()
    return figure


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
    _draw(ax, gallery, image, position, layer, title=False)
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


@torch.no_grad()
def plot_offsets(model: nn.Module, data: DigitData, scale: float = 1.6):
    """The first deformable layer's mean offset at every position, as arrows on a test digit
    (in image pixels)."""
    x, y, _ = data.tests[scale]
    layer = deformable_layers(model)[0]
    inputs = layer_inputs(model, as_images(x[:1]))[0]
    offset, _ = layer.offsets_and_mask(inputs)
    size = offset.shape[-1]
    stride = SIZE // size
    field = offset[0].view(9, 2, size, size).mean(0).cpu() * stride  # Δy, Δx in pixels
    centres = _to_image(torch.arange(size).float(), stride)
    figure, ax = plt.subplots(figsize=(4.2, 4.0))
    ax.imshow(x[0, 0].clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    gy, gx = torch.meshgrid(centres, centres, indexing="ij")
    ax.quiver(gx, gy, field[1], field[0], color=PALETTE[1], angles="xy", scale_units="xy",
              scale=1, width=0.006)
    ax.set_title(f"mean offset per position, a {int(y[0])} at scale {scale:g}")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    figure.tight_layout()
    return figure


def plot_examples(data: DigitData, scales: tuple[float, ...] = (0.5, 0.7, 1.0, 1.4, 1.6)):
    """The first test digit at each of ``scales``, the first two trained-size training digits."""
    figure, axes = plt.subplots(1, len(scales) + 2, figsize=(1.7 * (len(scales) + 2), 2.2))
    shown = [(data.train[0][i, 0], f"training, {int(data.train[1][i])}") for i in range(2)]
    shown += [(data.tests[s][0][0, 0], f"test, scale {s:g}") for s in scales]
    for ax, (image, title) in zip(axes, shown):
        ax.imshow(image.clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    figure.tight_layout()
    return figure


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
