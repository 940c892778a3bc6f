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

import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from functools import partial

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Rectangle
from torch import nn

import convbook
from convbook import experiments, measure, profiles, receptive, segmentation, stats
from convbook.blocks.validate import check_positive
from convbook.cache import load_checked, save_atomic
from convbook.errors import ConfigError
from convbook.explore import View, labels
from convbook.nets import he_init
from convbook.receptive import Layer, receptive_fields
from convbook.segmentation import DenseRecipe, DenseResult, fit_dense, mean_iou
from convbook.tables import Table
from convbook.viz.receptive import image_array, plot_erf
from convbook.viz.style import PALETTE

CHAPTER = "09-dilated"
CLASSES = ("outside", "ring", "inside")
IMAGE_SIZE = 32
DATA_SEED = 909  # the rings are the same for every seed; the seed changes weights and batches

# Six 3×3 layers each: equal parameters, only the dilation rates differ.
SCHEDULES = {
    "dense": (1, 1, 1, 1, 1, 1),
    "constant 2": (2, 2, 2, 2, 2, 2),
    "HDC (1, 2, 3)": (1, 2, 3, 1, 2, 3),
    "exponential": (1, 2, 4, 8, 1, 1),
}
GRIDDING = {"(2, 2, 2)": (2, 2, 2), "(1, 2, 3)": (1, 2, 3), "(1, 2, 5)": (1, 2, 5),
            "(1, 2, 9)": (1, 2, 9)}
# The explorer's schedules: one cycle of rates, repeated to the chosen depth.
NAMED_SCHEDULES = {"dense": (1,), "constant 2": (2,), "HDC (1, 2, 3)": (1, 2, 3),
                   "HDC (1, 2, 5)": (1, 2, 5), "exponential": (1, 2, 4, 8), "gaps (1, 2, 9)": (1, 2, 9)}

# Yu & Koltun (2016), Table 1: the context module's dilations and receptive fields.
CONTEXT_RATES = (1, 1, 2, 4, 8, 16, 1)
PUBLISHED_CONTEXT_FIELDS = (3, 5, 9, 17, 33, 65, 67, 67)

# Images, epochs and width per profile (the smoke profile proves the cells run).
TASK = {"smoke": {"train": 64, "test": 32, "epochs": 1, "width": 8},
        "book": {"train": 2000, "test": 500, "epochs": 10, "width": 16},
        "full": {"train": 10000, "test": 2000, "epochs": 20, "width": 32}}


# --- the task -----------------------------------------------------------------------------------

def rings(count: int, size: int = IMAGE_SIZE, seed: int = DATA_SEED, noise: float = 0.6,
          thickness: float = 0.8) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` images (N x 1 x size x size) of Gaussian noise with one ring of brighter pixels,
    and their labels (N x size x size): 0 outside, 1 ring, 2 inside. Radii run from 4 pixels to
    a third of the image, every ring lies wholly inside its image."""
    check_positive("count", count)
    if size < 16:
        raise ConfigError(f"size must be at least 16 pixels for rings to fit, got {size}")
    g = torch.Generator().manual_seed(seed)
    radius = 4 + torch.rand(count, generator=g) * (size / 3 - 4)
    low, high = radius + 2, size - radius - 3
    cy = low + torch.rand(count, generator=g) * (high - low)
    cx = low + torch.rand(count, generator=g) * (high - low)
    grid = torch.arange(size, dtype=torch.float32)
    distance = ((grid[None, :, None] - cy[:, None, None]) ** 2
                + (grid[None, None, :] - cx[:, None, None]) ** 2).sqrt()
    on_ring = (distance - radius[:, None, None]).abs() <= thickness
    labels_ = torch.zeros(count, size, size, dtype=torch.long)
    labels_[distance < radius[:, None, None] - thickness] = 2
    labels_[on_ring] = 1
    images = noise * torch.randn(count, 1, size, size, generator=g) + on_ring[:, None].float()
    return images, labels_


@dataclass(frozen=True)
class RingData:
    """Training and test rings (test images drawn after the training ones, never the same)."""

    train: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]

    def digest(self) -> str:
        h = hashlib.sha256()
        for t in (*self.train, *self.test):
            h.update(t.numpy().tobytes())
        return h.hexdigest()[:16]

    def describe(self) -> str:
        return (f"{len(self.train[0]):,} training and {len(self.test[0]):,} test ring images "
                f"({IMAGE_SIZE}×{IMAGE_SIZE})")


def ring_data(profile_name: str) -> RingData:
    task = profiles.choose(TASK, profile_name, "c09.TASK")
    images, targets = rings(task["train"] + task["test"])
    n = task["train"]
    return RingData((images[:n], targets[:n]), (images[n:], targets[n:]))


# --- the networks ---------------------------------------------------------------------------------

class DilatedNet(nn.Module):
    """3×3 convolutions with the given dilation rates (batch norm and ReLU after each), then a
    1×1 classifier per pixel. Padding keeps the image size; dilation changes no parameter."""

    def __init__(self, rates: tuple[int, ...], width: int = 16, in_channels: int = 1,
                 classes: int = 3) -> None:
        super().__init__()
        if not rates:
            raise ConfigError("DilatedNet needs at least one dilation rate")
        for r in rates:
            check_positive("dilation rate", r)
        self.rates = tuple(rates)
        layers: list[nn.Module] = []
        channels = in_channels
        for r in rates:
            layers += [nn.Conv2d(channels, width, 3, padding=r, dilation=r, bias=False),
                       nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            channels = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(width, classes, 1)
        he_init(self)

    def extra_repr(self) -> str:
        return f"rates={self.rates}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def identity_(conv: nn.Conv2d) -> None:
    """Yu & Koltun's identity initialisation: the layer passes its input through unchanged
    (weight 1 at the centre tap from channel i to channel i, 0 elsewhere; bias 0)."""
    if conv.in_channels != conv.out_channels or conv.groups != 1:
        raise ConfigError("identity initialisation needs a layer with as many inputs as "
                          f"outputs and no groups, got {conv}")
    with torch.no_grad():
        conv.weight.zero_()
        centre = conv.kernel_size[0] // 2, conv.kernel_size[1] // 2
        for i in range(conv.out_channels):
            conv.weight[i, i, centre[0], centre[1]] = 1.0
        if conv.bias is not None:
            conv.bias.zero_()


class ContextNet(nn.Module):
    """A small front end (two dense 3×3 layers with batch norm) followed by Yu & Koltun's basic
    context module: seven 3×3 layers at dilations 1, 1, 2, 4, 8, 16, 1 and a 1×1 layer, all
    ``width`` channels wide, with ReLU and no normalisation, then a 1×1 classifier.
    ``init`` is "identity" (theirs), "random" (He-normal), or "none": no context module, the
    front end alone (the baseline the module must improve on)."""

    def __init__(self, width: int = 16, init: str = "identity", in_channels: int = 1,
                 classes: int = 3, rates: tuple[int, ...] = CONTEXT_RATES) -> None:
        super().__init__()
        if init not in ("identity", "random", "none"):
            raise ConfigError(f"init must be 'identity', 'random' or 'none' (no module), got "
                              f"{init!r}")
        self.init = init
        self.front = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
            nn.ReLU(inplace=True))
        layers: list[nn.Module] = []
        if init != "none":
            for r in rates:
                layers += [nn.Conv2d(width, width, 3, padding=r, dilation=r),
                           nn.ReLU(inplace=True)]
            layers += [nn.Conv2d(width, width, 1), nn.ReLU(inplace=True)]
        self.context = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(width, classes, 1)
        he_init(self)
        if init == "identity":
            for module in self.context:
                if isinstance(module, nn.Conv2d):
                    identity_(module)

    def extra_repr(self) -> str:
        return f"init={self.init!r}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.context(self.front(x)))


def context_module(channels: int, rates: tuple[int, ...] = CONTEXT_RATES) -> nn.Sequential:
    """Yu & Koltun's basic context module alone (``channels`` in and out), for counting."""
    layers: list[nn.Module] = []
    for r in rates:
        layers += [nn.Conv2d(channels, channels, 3, padding=r, dilation=r), nn.ReLU()]
    layers += [nn.Conv2d(channels, channels, 1), nn.ReLU()]
    return nn.Sequential(*layers)


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


def plot_gridding_erfs(maps: dict[str, torch.Tensor], fields: dict[str, int]):
    figure, axes = plt.subplots(1, len(maps), figsize=(2.7 * len(maps), 3.0), squeeze=False)
    for ax, (name, erf) in zip(axes[0], maps.items()):
        plot_erf((erf > 0).float(), fields[name], f"rates {name}", ax=ax)
    figure.tight_layout()
    return figure


# --- does the wider field pay? (C9.2, C9.3) -------------------------------------------------------

@dataclass
class DenseRun:
    seed: int
    result: DenseResult
    model: nn.Module


@dataclass
class DenseVariant:
    name: str
    params: int
    macs: int
    field: int
    coverage: float
    runs: list[DenseRun] = field(default_factory=list)
    latency: dict[str, float] = field(default_factory=dict)

    def per_image(self) -> torch.Tensor:
        """Seeds x test images of per-image mean IoU (rows in seed order, so they pair)."""
        return torch.stack([mean_iou(r.result.ious) for r in sorted(self.runs, key=lambda r: r.seed)])

    def mean(self, c: int | None = None) -> float:
        values = [r.result.miou if c is None else r.result.class_iou(c) for r in self.runs]
        return sum(values) / len(values)

    def sd(self) -> float:
        values = [r.result.miou for r in self.runs]
        if len(values) < 2:
            return math.nan
        m = sum(values) / len(values)
        return (sum((v - m) ** 2 for v in values) / (len(values) - 1)) ** 0.5


@dataclass
class DenseResults:
    variants: dict[str, DenseVariant]
    data: RingData
    recipe: DenseRecipe
    profile: str
    device: str

    def __getitem__(self, name: str) -> DenseVariant:
        if name not in self.variants:
            raise ConfigError(f"no variant {name!r}; variants are {', '.join(self.variants)}")
        return self.variants[name]

    def difference(self, a: str, b: str) -> stats.Difference:
        """Per-image mean IoU of ``a`` minus ``b``, paired by seed and test image."""
        return stats.paired_difference(self[a].per_image(), self[b].per_image())

    def rows(self) -> list[dict]:
        rows = []
        for v in self.variants.values():
            seeds = len(v.runs)
            row = {"network": v.name, "receptive field": f"{v.field}×{v.field}",
                   "share read": f"{v.coverage:.0%}", "parameters": v.params, "MACs": v.macs,
                   "mean IoU (%)": f"{100 * v.mean():.1f}" + (f" ± {100 * v.sd():.1f}"
                                                              if seeds > 1 else "")}
            for c, name in enumerate(CLASSES):
                row[f"IoU {name} (%)"] = f"{100 * v.mean(c):.1f}"
            if v.latency:
                row["forward + backward (ms)"] = f"{1000 * v.latency['forward_backward']:.1f}"
            rows.append(row)
        return rows

    def table(self) -> Table:
        seeds = len(next(iter(self.variants.values())).runs)
        return Table(self.rows(), caption=(
            f"{self.data.describe()}; {self.recipe.describe()}; profile '{self.profile}', "
            f"device {self.device}; IoU is the mean over {seeds} seed"
            f"{'s' if seeds > 1 else ''}{' ± its standard deviation' if seeds > 1 else ''} "
            f"of the per-image mean over the classes; latency at batch {self.recipe.batch_size}."))

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()

    def __repr__(self) -> str:
        return repr(self.table())

    def field_rows(self) -> list[dict]:
        return [{"schedule": v.name, "field": v.field,
                 **{name: v.mean(c) for c, name in enumerate(CLASSES)}}
                for v in self.variants.values()]


def _run_key(model: nn.Module, data: RingData, recipe: DenseRecipe, seed: int,
             device: torch.device) -> str:
    """The cache key of one dense run: what ``experiments.run_key`` digests for a CIFAR run
    (structure, initial weights, module code, versions), with the rings and the dense recipe."""
    from convbook import train as train_module

    described = {"model": experiments.model_digest(model), "data": data.digest(),
                 "recipe": sorted(recipe.__dict__.items()), "seed": seed, "device": device.type,
                 "training code": experiments.source_digest([segmentation, train_module]),
                 "versions": [torch.__version__, convbook.__version__]}
    return hashlib.sha256(json.dumps(described, default=str).encode()).hexdigest()[:24]


def train_dense(build, data: RingData, recipe: DenseRecipe, seed: int,
                device: torch.device, cache: bool = True) -> DenseRun:
    """Build from ``seed``, train and score, or load the finished run from the cache."""
    torch.manual_seed(seed)
    model = build()
    folder = experiments.runs_dir() if cache else None
    path = folder / f"dense-{_run_key(model, data, recipe, seed, device)}.pt" if folder else None
    stored = load_checked(path, {"result", "state_dict"}) if path is not None else None
    if stored is not None:
        model.load_state_dict(stored["state_dict"])
        result = DenseResult(**stored["result"])
    else:
        result = fit_dense(model, data.train, data.test, len(CLASSES), recipe, seed=seed,
                           device=device)
        if path is not None:
            save_atomic({"result": result.__dict__,
                         "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}},
                        path)
    model.to(device).eval()
    return DenseRun(seed, result, model)


def compare_dense(builds: dict[str, callable], data: RingData, recipe: DenseRecipe,
                  seeds: list[int], device: torch.device, profile: str,
                  latency: bool = True) -> DenseResults:
    variants = {}
    size = (1, IMAGE_SIZE, IMAGE_SIZE)
    for name, build in builds.items():
        torch.manual_seed(seeds[0])
        probe = build()
        layers = [receptive.layer_of(m) for m in probe.modules()]
        layers = [layer for layer in layers if layer is not None]
        variant = DenseVariant(name, measure.count_params(probe), measure.count_macs(probe, size),
                               receptive.receptive_field(layers).size, receptive.coverage(layers))
        variant.runs = [train_dense(build, data, recipe, s, device) for s in seeds]
        if latency:
            model = variant.runs[0].model
            batch = (recipe.batch_size, *size)
            variant.latency = {
                "forward": measure.latency(model, batch, device=device),
                "forward_backward": measure.latency(model, batch, device=device, backward=True)}
        variants[name] = variant
    return DenseResults(variants, data, recipe, profile, device.type)


def recipe_for(profile_name: str) -> DenseRecipe:
    return DenseRecipe(epochs=profiles.choose(TASK, profile_name, "c09.TASK")["epochs"])


def run_schedules(setup, data: RingData) -> DenseResults:
    """The four six-layer networks of SCHEDULES, from every seed of the profile."""
    width = profiles.choose(TASK, setup.profile.name, "c09.TASK")["width"]
    builds = {name: partial(DilatedNet, rates, width) for name, rates in SCHEDULES.items()}
    return compare_dense(builds, data, recipe_for(setup.profile.name), setup.seeds,
                         setup.device, setup.profile.name)


CONTEXT_VARIANTS = {"front end alone": "none", "context module, identity init": "identity",
                    "context module, random init": "random"}


def run_context(setup, data: RingData) -> DenseResults:
    """The front end alone, and with the context module from identity and random
    initialisation."""
    width = profiles.choose(TASK, setup.profile.name, "c09.TASK")["width"]
    builds = {name: partial(ContextNet, width, init) for name, init in CONTEXT_VARIANTS.items()}
    return compare_dense(builds, data, recipe_for(setup.profile.name), setup.seeds,
                         setup.device, setup.profile.name, latency=False)


DECIDE_HINT = ("More seeds (the parameters cell's `seeds`) or the `full` profile (10,000 "
               "training rings, width 32) would narrow the interval.")


def verdict_c92(results: DenseResults) -> stats.Verdict:
    """C9.2 — the wider field pays where context decides: exponential against dense (fields 35
    and 13), and HDC against constant rate 2 (both 25, holes only in the second). Each part is
    a paired difference in per-image mean IoU; the parts combine (nuanced if they differ)."""
    parts = {
        "wider field": stats.verdict_on_difference(
            "C9.2", results.difference("exponential", "dense"),
            "exponential minus dense, per-image mean IoU", decide_hint=DECIDE_HINT),
        "no gridding": stats.verdict_on_difference(
            "C9.2", results.difference("HDC (1, 2, 3)", "constant 2"),
            "HDC (1, 2, 3) minus constant rate 2 at the same 25-pixel field, per-image mean IoU",
            decide_hint=DECIDE_HINT),
    }
    return stats.combine("C9.2", parts)


def verdict_c93(results: DenseResults) -> stats.Verdict:
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
                     f"{100 * front.mean():.1f} % to {100 * random.mean():.1f} % mean IoU, in a "
                     f"setting unlike theirs (trained jointly from scratch, batch norm in the "
                     f"front end).")
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


def schedule_reading(results: DenseResults) -> str:
    """The results table in sentences, from its numbers: the ranking on inside pixels, what
    the holes cost at equal field, and what dilation did to the ring itself."""
    inside = CLASSES.index("inside")
    ranked = sorted(results.variants.values(), key=lambda v: -v.mean(inside))
    ranking = ", ".join(f"{v.name} {100 * v.mean(inside):.0f} %" for v in ranked)
    holes = results["constant 2"]
    hdc = results["HDC (1, 2, 3)"]
    dense, wide = results["dense"], results["exponential"]
    ring = CLASSES.index("ring")
    gap = 100 * (hdc.mean() - holes.mean())
    others = [v.mean(ring) for v in results.variants.values() if v is not holes]
    return (f"On *inside* pixels, the class only context decides, the networks rank {ranking} "
            f"(IoU, mean over seeds). The constant-rate-2 network has the HDC network's "
            f"{holes.field}-pixel field but reads {holes.coverage:.0%} of it; its mean IoU is "
            f"{abs(gap):.1f} points {'below' if gap > 0 else 'above'} HDC's. It also scored "
            f"{100 * holes.mean(ring):.0f} % on *ring* pixels against "
            f"{100 * min(others):.0f}–{100 * max(others):.0f} % for the others: with every rate "
            f"even, each output reads only pixels whose coordinates share its own parity, so "
            f"gridding costs local detail as well as context. HDC (field {hdc.field}) and "
            f"exponential (field {wide.field}) differ by "
            f"{abs(100 * (hdc.mean() - wide.mean())):.1f} points of mean IoU: once the field "
            f"covers the largest rings, more field buys little; the dense network (field "
            f"{dense.field}) is the one that cannot see far enough.")


def context_reading(results: DenseResults) -> str:
    front = results["front end alone"]
    identity = results["context module, identity init"]
    random = results["context module, random init"]
    return (f"The front end alone (field {front.field}) reached {100 * front.mean():.1f} % mean "
            f"IoU; with the context module, {100 * identity.mean():.1f} % from the identity and "
            f"{100 * random.mean():.1f} % from a random start (means over seeds). The verdict "
            f"C9.3 below puts intervals on both comparisons.")


def latency_reading(table: Table) -> str:
    last = table.rows[-1]
    return (f"On this device, {last['layer']} took {last['forward vs dilation 1']} the time of dilation 1 "
            f"forward and {last['forward + backward vs dilation 1']} forward and backward.")


def one_minute(c91: stats.Verdict, c92: stats.Verdict, c93: stats.Verdict,
               schedules: DenseResults) -> str:
    dense, wide = schedules["dense"], schedules["exponential"]
    return (f"Dilation spreads a kernel's taps: at the same parameters the area grows (C9.1 "
            f"{c91.label}), but it is read through holes. On rings where only context tells "
            f"inside from outside, six dilated layers (field {wide.field}) scored "
            f"{100 * wide.mean(2):.0f} % IoU on inside pixels against {100 * dense.mean(2):.0f} % "
            f"for six dense ones (field {dense.field}) (C9.2 {c92.label}); Yu & Koltun's identity "
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
