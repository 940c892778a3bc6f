"""Chapter 11 — reflections: the review's two open questions put to experiment, and the book's
results in one place.

- Q1: should cross-layer connections carry learned weights (as channels do in SENet)? Asked of
  one network where the answer can matter: a 20-layer CIFAR ResNet without batch norm, whose
  shortcuts are plain identities, carry a learned scalar, or scale the branch by ReZero's α.
  Training loss decides (ReZero's claim is about optimisation); each connection trains at the
  learning rate a sweep chose for it.
- Q2: did "bottleneck + group convolution + channel shuffle + depthwise" become the standard
  recipe for cutting a network's cost? Decided by a census of the convolutional families that
  torchvision holds, counted family by family after 2018.

The whole-book figure and table read the build's records (``convbook.summary``): nothing is
retrained for them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from convbook import census, experiments, guidelines, nets, stats
from convbook.blocks.weighted import STARTS, learned_values
from convbook.data import CifarData
from convbook.errors import ConfigError
from convbook.explore import View, labels
from convbook.tables import Table
from convbook.train import DivergedError
from convbook.viz.style import family_colour, integer_ticks, legend_outside

CHAPTER = "11-reflections"

# --- Q1: weighted cross-layer connections ---------------------------------------------------

# name in tables -> connection (blocks.weighted.CONNECTIONS)
CONNECTIONS = {"identity": "identity", "shortcut scalar": "scalar", "ReZero": "rezero"}
REFERENCE = "identity"
# The smallest gain worth the name: a learned connection whose mean training loss over the run
# is at least 10 % below identity's. ReZero reports convergence 32 % faster (PUBLISHED); an
# effect a third that size would still matter to anyone training such a network.
SMALLEST_EFFECT = 0.10
PUBLISHED = stats.Published(0.32, "Bachlechner et al. 2020: a CIFAR-10 ResNet-56 converges "
                                  "32 % faster with ReZero")
MEANING = {"scalar": "λ on the shortcut", "rezero": "α on the branch"}
FITTED = 0.1  # a run has fitted its images when its last-epoch loss is below this share of
# its first epoch's (2.3 nats at the start of a 10-class problem: below about 0.23)


class AtLearningRate(nn.Module):
    """The network ``build()`` makes, every parameter of which trains at ``multiplier`` times
    the recipe's learning rate (``train.sgd_schedule`` reads each parameter's
    ``lr_multiplier``): the same as training it with ``lr = recipe.lr × multiplier``, so that
    variants at different rates share one comparison. The multiplier is part of the module's
    repr, so of the run cache's key."""

    def __init__(self, build: Callable[[], nn.Module], multiplier: float) -> None:
        super().__init__()
        if (isinstance(multiplier, bool) or not isinstance(multiplier, (int, float))
                or not math.isfinite(multiplier) or multiplier <= 0):
            raise ConfigError(f"multiplier must be a finite number > 0 (the learning rate "
                              f"divided by the recipe's), got {multiplier!r}")
        self.net = build()
        self.multiplier = float(multiplier)
        for p in self.net.parameters():
            p.lr_multiplier = self.multiplier

    def extra_repr(self) -> str:
        return f"lr_multiplier={self.multiplier:g}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def downsampled(data: CifarData, size: int) -> CifarData:
    """``data`` with every image resized to ``size`` × ``size`` (antialiased bilinear, still
    uint8): a smaller task that trains in fewer MACs. ``size`` 32 returns ``data`` itself."""
    if isinstance(size, bool) or not isinstance(size, int) or not 4 <= size <= 32:
        raise ConfigError(f"size must be a whole number of pixels from 4 to 32, got {size!r}")
    if size == data.train[0].shape[-1]:
        return data

    def shrink(images: torch.Tensor) -> torch.Tensor:
        small = F.interpolate(images.float(), size=(size, size), mode="bilinear",
                              antialias=True, align_corners=False)
        return small.round().clamp(0, 255).to(torch.uint8)

    return CifarData((shrink(data.train[0]), data.train[1]), (shrink(data.test[0]), data.test[1]),
                     f"{data.source}, downsampled to {size}×{size}")


def _check_rate(name: str, lr) -> float:
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ConfigError(f"the learning rate of {name!r} must be a finite number > 0, got {lr!r}")
    return float(lr)


def q1_variants(depth: int, width: int, rates: dict[str, float], base_lr: float) -> dict:
    """name -> factory of the 20-layer (``depth``) ResNet without batch norm at base ``width``
    with that connection, training at ``rates[name]`` (a recipe at ``base_lr``)."""
    unknown = set(rates) - set(CONNECTIONS)
    if unknown or not rates:
        raise ConfigError(f"rates must give a learning rate for some of {', '.join(CONNECTIONS)}"
                          f"; got {sorted(rates)}")
    return {name: partial(AtLearningRate,
                          partial(nets.WeightedResNet, depth, width, CONNECTIONS[name], False),
                          _check_rate(name, lr) / base_lr)
            for name, lr in rates.items()}


def sweep_name(name: str, lr: float) -> str:
    return f"{name}, lr {lr:g}"


def sweep_variants(depth: int, width: int, grid: Sequence[float], base_lr: float) -> dict:
    """Every connection at every learning rate of ``grid``: "ReZero, lr 0.1" -> factory."""
    if not grid:
        raise ConfigError("the learning-rate grid is empty; give e.g. (0.01, 0.03, 0.1)")
    out = {}
    for name in CONNECTIONS:
        for lr in grid:
            out.update({sweep_name(name, lr): q1_variants(depth, width, {name: lr},
                                                           base_lr)[name]})
    return out


def sweep_seed(seeds: Sequence[int]) -> int:
    """The sweep's seed: the first after the deciding ones, so that choosing the rates leaves
    the deciding runs untouched (the choice is not fitted to their noise)."""
    return max(seeds) + 1


def sweep(compare: Callable, variants: dict, data, recipe, seed: int,
          ) -> dict[str, experiments.Variant | None]:
    """Train every sweep variant on ``seed`` by ``compare`` (``setup.compare``): name -> its
    Variant, or None where training diverged (a loss that is not a number). A divergence stops
    the comparison it happens in, so the runs are then trained (or loaded) one by one."""
    # record=False: sweep runs only choose a rate, they are not results of the book
    options = {"recipe": recipe, "seeds": [seed], "latency": False, "record": False}
    try:
        return {v.name: v for v in compare(variants, data, **options)}
    except DivergedError:
        out = {}
        for name, build in variants.items():
            try:
                out[name] = next(iter(compare({name: build}, data, **options)))
            except DivergedError:
                out[name] = None
        return out


def loss_area(run: experiments.Run) -> float:
    """The mean training loss over the whole run (the area under its training-loss curve, per
    epoch): how fast the loss came down, not only where it ended."""
    if not run.history:
        raise ConfigError("the run has no training history to average")
    return sum(h["train_loss"] for h in run.history) / len(run.history)


def variant_area(variant: experiments.Variant | None) -> float:
    """The mean of ``loss_area`` over the variant's seeds; infinite for a diverged variant."""
    if variant is None:
        return math.inf
    return sum(loss_area(r) for r in variant.runs) / len(variant.runs)


def best_rates(swept: dict[str, experiments.Variant | None], grid: Sequence[float]) -> dict:
    """name -> the learning rate of ``grid`` with the lowest mean training loss in the sweep
    (the first of equal ones); a connection that diverged at every rate is an error."""
    rates = {}
    for name in CONNECTIONS:
        areas = {lr: variant_area(swept.get(sweep_name(name, lr))) for lr in grid}
        lr = min(areas, key=areas.get)
        if math.isinf(areas[lr]):
            raise ConfigError(f"{name} diverged at every learning rate of the grid "
                              f"{list(grid)}; add smaller ones")
        rates[name] = lr
    return rates


def relative_gains(results: experiments.Results, name: str) -> list[float]:
    """Per seed both ran: 1 − (``name``'s mean training loss) / (identity's). 0.1 means a
    tenth less loss over the run than identity with the same seed (the same initial weights
    and the same batches)."""
    reference = {r.seed: loss_area(r) for r in results[REFERENCE].runs}
    runs = sorted((r for r in results[name].runs if r.seed in reference), key=lambda r: r.seed)
    if not runs:
        raise ConfigError(f"{name!r} and {REFERENCE!r} share no seed, so they cannot be paired")
    return [1 - loss_area(r) / reference[r.seed] for r in runs]


def label_gain(diff: stats.Difference, smallest: float = SMALLEST_EFFECT) -> str:
    """The symmetric rule on one learned connection's gain over identity: *confirmed* when the
    gain exceeds ``smallest`` and its interval excludes zero; *refuted* when the interval rules
    out a gain of ``smallest`` (it lies within ± ``smallest``, or below); otherwise
    *inconclusive*."""
    if diff.mean > smallest and diff.low > 0:
        return stats.CONFIRMED
    if diff.high < smallest:
        return stats.REFUTED
    return stats.INCONCLUSIVE


def _percent(value: float) -> str:
    return "∞" if math.isinf(value) else f"{100 * value:+.1f} %"


def _gain_text(d: stats.Difference) -> str:
    if math.isinf(d.low):
        return f"{_percent(d.mean)} (one seed)"
    return f"{_percent(d.mean)} [{_percent(d.low)}, {_percent(d.high)}]"


def verdict_q1(results: experiments.Results, rates: dict[str, float] | None = None,
               smallest: float = SMALLEST_EFFECT) -> stats.Verdict:
    """Q1: does a learned weight on the shortcuts train the network faster than identity?
    For each learned connection, its relative gain in mean training loss (``relative_gains``)
    with a t-interval over seeds, the two intervals sharing a 5 % error rate (Bonferroni), so
    that a wrong *confirmed* and a wrong *refuted* are held to the same rate. *Confirmed* when
    the better connection's gain passes ``label_gain``; *refuted* when every connection's
    interval rules out a gain of ``smallest``; otherwise *inconclusive*, with the smallest gain
    each comparison could have detected."""
    others = [v.name for v in results if v.name != REFERENCE]
    if not others:
        raise ConfigError("Q1 needs at least one learned connection beside identity")
    confidence = stats.shared_confidence(len(others))
    diffs = {name: stats.mean_interval(relative_gains(results, name), confidence)
             for name in others}
    labels = {name: label_gain(d, smallest) for name, d in diffs.items()}
    if any(label == stats.CONFIRMED for label in labels.values()):
        label = stats.CONFIRMED
    elif all(label == stats.REFUTED for label in labels.values()):
        label = stats.REFUTED
    else:
        label = stats.INCONCLUSIVE
    at = (", each at the learning rate the sweep chose ("
          + ", ".join(f"{n} {lr:g}" for n, lr in rates.items()) + ")") if rates else ""
    text = (f"Mean training loss over the run, how much lower than identity's (paired by seed, "
            f"{stats.percent(confidence)} intervals so that the {len(others)} comparisons share "
            f"a 5 % error rate){at}: "
            + "; ".join(f"{n} {_gain_text(d)}" for n, d in diffs.items())
            + f". The smallest gain of interest is {100 * smallest:.0f} %.")
    if label == stats.CONFIRMED:
        passed = [n for n, lab in labels.items() if lab == stats.CONFIRMED]
        text += (f" {' and '.join(passed)}: the gain exceeds it and the interval excludes zero; "
                 f"this learned weight trains this network faster than identity shortcuts.")
    elif label == stats.REFUTED:
        text += (" Every interval rules out a gain that large: here no learned weight trains "
                 "the network faster than identity shortcuts by as much as that.")
    else:
        text += (" No gain exceeds it with an interval that excludes zero, and not every "
                 "interval rules it out. " + detectable_sentence(diffs))
    return stats.Verdict("Q1", label, text, numbers={
        "differences": diffs, "unit": "%", "smallest_effect": smallest,
        "detectable": {n: stats.detectable_effect(d) for n, d in diffs.items()},
        "published": PUBLISHED.as_dict(), "rates": dict(rates or {})})


def detectable_sentence(diffs: dict[str, stats.Difference]) -> str:
    """What each comparison could have seen (``stats.detectable_effect`` at 80 % power),
    beside the published effect."""
    effects = {n: stats.detectable_effect(d) for n, d in diffs.items()}
    if all(math.isinf(e) for e in effects.values()):
        return ("With one seed these comparisons could not have detected a gain of any size; "
                f"{PUBLISHED.source}.")
    listed = ", ".join(f"{100 * e:.1f} % ({n})" for n, e in effects.items() if math.isfinite(e))
    return (f"At {stats.percent(stats.POWER)} power these comparisons could not have detected "
            f"gains smaller than {listed}; for scale, {PUBLISHED.source}.")


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def q1_table(results: experiments.Results, rates: dict[str, float]) -> Table:
    """One row per connection: its learning rate, mean training loss over the run and at the
    end (mean ± sd over seeds), final training error and test accuracy."""
    rows = []
    for variant in results:
        areas = [loss_area(r) for r in variant.runs]
        finals = [r.history[-1]["train_loss"] for r in variant.runs]
        errors = [r.final_train_error for r in variant.runs if r.final_train_error is not None]
        spread = len(areas) > 1

        def show(values, digits=3, spread=spread):
            text = f"{_mean(values):.{digits}f}"
            return text + (f" ± {torch.tensor(values).std().item():.{digits}f}" if spread else "")

        rows.append({"connection": variant.name, "learning rate": f"{rates[variant.name]:g}",
                     "mean training loss over the run": show(areas),
                     "training loss, last epoch": show(finals),
                     "final training error": f"{100 * _mean(errors):.1f}%" if errors else "—",
                     "test accuracy": variant.row(results.recipe.batch_size)["test accuracy"],
                     "seeds": len(variant.runs), "parameters": f"{variant.params:,}"})
    return Table(rows, caption=results.caption().replace(
        "test accuracy is the mean", "losses, error and accuracy are the mean")
        + " Losses: cross-entropy on the training batches (no augmentation, no label "
          "smoothing), mean over each epoch; the first loss column averages the epochs.")


def sweep_table(swept: dict[str, experiments.Variant | None], grid: Sequence[float]) -> Table:
    """Mean training loss over the run for every connection (rows) and rate (columns)."""
    rows = []
    for name in CONNECTIONS:
        row = {"connection": name}
        for lr in grid:
            area = variant_area(swept.get(sweep_name(name, lr)))
            row[f"lr {lr:g}"] = "diverged" if math.isinf(area) else f"{area:.3f}"
        rows.append(row)
    return Table(rows, caption="The learning-rate sweep: mean training loss over the run, one "
                               "seed (not one of the deciding seeds); lower is faster. "
                               "\"diverged\": the loss stopped being a number.")


def plot_loss_curves(results: experiments.Results, rates: dict[str, float]):
    """Training loss per epoch (mean over seeds, log scale) of each connection at its rate;
    identity dashed."""
    figure, ax = plt.subplots(figsize=(6.4, 3.4))
    for variant in results:
        curves = [[h["train_loss"] for h in run.history] for run in variant.runs]
        mean = [_mean(list(v)) for v in zip(*curves)]
        ax.plot(range(1, len(mean) + 1), mean, label=f"{variant.name} (lr {rates[variant.name]:g})",
                color=family_colour(variant.name),
                linestyle="--" if variant.name == REFERENCE else "-")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (mean over seeds)")
    integer_ticks(ax)
    legend_outside(ax)
    figure.tight_layout()
    return figure


def plot_sweep(swept: dict[str, experiments.Variant | None], grid: Sequence[float]):
    """Mean training loss over the run against the learning rate, one line per connection;
    diverged runs are left out of the line and marked at the top."""
    figure, ax = plt.subplots(figsize=(6.4, 3.4))
    top = max((variant_area(v) for v in swept.values() if v is not None), default=1.0)
    for name in CONNECTIONS:
        areas = [variant_area(swept.get(sweep_name(name, lr))) for lr in grid]
        colour = family_colour(name)
        ax.plot([lr for lr, a in zip(grid, areas) if math.isfinite(a)],
                [a for a in areas if math.isfinite(a)], marker="o", label=name, color=colour,
                linestyle="--" if name == REFERENCE else "-")
        for lr, a in zip(grid, areas):
            if math.isinf(a):
                ax.plot([lr], [top * 1.05], marker="x", color=colour, linestyle="")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("mean training loss over the run")
    legend_outside(ax)
    figure.tight_layout()
    return figure


def learned_weights(results: experiments.Results) -> dict[str, list[float]]:
    """For each learned connection, the value it ended at in each block (mean over seeds):
    λ and α as learned; where each started is ``blocks.weighted.STARTS``."""
    out = {}
    for variant in results:
        connection = CONNECTIONS[variant.name]
        if connection == "identity":
            continue
        no_images = torch.zeros((0, 3, 1, 1), dtype=torch.uint8)  # λ and α need none
        per_seed = [learned_values(run.model, connection, no_images) for run in variant.runs]
        out[variant.name] = [_mean(list(v)) for v in zip(*per_seed)]
    return out


def weights_table(weights: dict[str, list[float]]) -> Table:
    rows = []
    for name, per_block in weights.items():
        connection = CONNECTIONS[name]
        rows.append({"connection": name, "what": MEANING[connection],
                     "start": f"{STARTS[connection]:.2f}",
                     "after training, block by block": ", ".join(f"{v:.2f}" for v in per_block)})
    return Table(rows, caption="What the learned weights ended as (mean over seeds), blocks from "
                               "the first stage to the last.")


def q1_reading(results: experiments.Results, rates: dict[str, float], grid: Sequence[float],
               weights: dict[str, list[float]]) -> str:
    """The paragraph after Q1's tables, from the run's numbers."""
    by_area = sorted(results, key=variant_area)
    text = (f"Over the run the mean training loss is lowest for *{by_area[0].name}* "
            f"({variant_area(by_area[0]):.3f}) and highest for *{by_area[-1].name}* "
            f"({variant_area(by_area[-1]):.3f}). ")
    fitted = {v.name: sum(r.history[-1]["train_loss"] < FITTED * r.history[0]["train_loss"]
                          for r in v.runs) for v in results}
    text += (f"Runs that fitted the training images (a last-epoch loss below "
             f"{FITTED:.0%} of the first epoch's): "
             + ", ".join(f"{k} of {len(results[n].runs)} ({n})" for n, k in fitted.items()))
    text += (": every run covers the whole descent, so the mean over the run measures its "
             "speed. " if all(k == len(results[n].runs) for n, k in fitted.items()) else
             ": the others stalled, and the mean over the run counts a stall against its "
             "connection as it counts slow progress. ")
    edge = [n for n, lr in rates.items() if lr in (min(grid), max(grid))]
    text += ("The sweep chose " + ", ".join(f"{lr:g} for {n}" for n, lr in rates.items()) + ". ")
    if edge:
        text += (f"For {', '.join(edge)} that is an end of the grid, so a rate outside it might "
                 f"have trained faster still. ")
    spread = max(rates.values()) / min(rates.values())
    if spread > 3:
        text += (f"The best rates differ by {spread:.0f}×: compared at one shared rate, these "
                 f"connections would be measured partly by how well that rate suits each. ")
    for name, per_block in weights.items():
        start_value = STARTS[CONNECTIONS[name]]
        text += (f"{name}'s {MEANING[CONNECTIONS[name]]} moved from {start_value:.0f} to between "
                 f"{min(per_block):.2f} and {max(per_block):.2f}. ")
    return text.strip()


# --- Q2: what later architectures kept of the 2018 recipe -----------------------------------

LATER = 2018  # the review's year: models published after it say what became standard
# A model "uses" an ingredient when it holds at least this share of its MACs: enough to leave
# out incidental layers (RegNetY's squeeze-and-excitation 1×1s hold 0.1 %), small enough to
# count depthwise layers, which are cheap by design (2.4 % of ConvNeXt-T's MACs).
USE_SHARE = 0.01
ALL_FOUR = "all four together"
OTHER_SHARES = (0.005, 0.05)  # thresholds the reading tries instead of USE_SHARE


def _uses(c: census.Census, ingredient: str, min_share: float = USE_SHARE) -> bool:
    used = census.recipe_ingredients(c, min_share)
    return all(used.values()) if ingredient == ALL_FOUR else used[ingredient]


def families_after(censuses: list[census.Census], year: int = LATER) -> dict[str, list]:
    """family -> its census models published after ``year`` (a model without a family is a
    family of its own)."""
    out: dict[str, list] = {}
    for c in censuses:
        if c.year is not None and c.year > year:
            out.setdefault(c.family or c.name, []).append(c)
    return out


def family_uses(models: list[census.Census], ingredient: str,
                min_share: float = USE_SHARE) -> bool:
    """A family uses an ingredient when at least half of its counted models do."""
    return 2 * sum(_uses(c, ingredient, min_share) for c in models) >= len(models)


def census_part(censuses: list[census.Census], ingredient: str,
                min_share: float = USE_SHARE) -> stats.Verdict:
    """Did ``ingredient`` become standard? Counted over the families with models published
    after 2018, one vote each: *confirmed* when more than half use it (at least ``min_share``
    of their MACs, or any shuffle), *refuted* when fewer than half do, *inconclusive* at
    exactly half. A count over the families there are, not a sample: no interval."""
    families = families_after(censuses)
    if not families:
        raise ConfigError("the census has no model published after 2018, so it cannot say what "
                          "became standard; include e.g. efficientnet_b0 or convnext_tiny")
    users = [f for f, models in families.items() if family_uses(models, ingredient, min_share)]
    models = [c for ms in families.values() for c in ms]
    model_users = [c.name for c in models if _uses(c, ingredient, min_share)]
    if 2 * len(users) > len(families):
        label = stats.CONFIRMED
    elif 2 * len(users) < len(families):
        label = stats.REFUTED
    else:
        label = stats.INCONCLUSIVE
    what = "them all" if ingredient == ALL_FOUR else "it"
    text = (f"{len(users)} of the {len(families)} families after 2018 use {what}"
            + (f" ({', '.join(users)})" if users else "")
            + f"; {len(model_users)} of their {len(models)} models")
    return stats.Verdict("Q2", label, text, numbers={
        "users": users, "families": list(families), "model_users": model_users,
        "models": [c.name for c in models]})


def verdict_q2(censuses: list[census.Census]) -> stats.Verdict:
    """Q2 in named parts, each counted in the census: the recipe's four ingredients one by
    one, and all four together (the question as asked)."""
    parts = {ingredient: census_part(censuses, ingredient)
             for ingredient in (*census.INGREDIENTS, ALL_FOUR)}
    return stats.combine("Q2", parts)


def one_minute(q1: stats.Verdict, q2: stats.Verdict, depth: int) -> str:
    rates = q1.numbers.get("rates", {})
    gains = "; ".join(f"{name} {_gain_text(d)}" for name, d in q1.numbers["differences"].items())
    kept = [name for name in census.INGREDIENTS if q2.parts[name].label == stats.CONFIRMED]
    dropped = [name for name in census.INGREDIENTS if q2.parts[name].label == stats.REFUTED]
    return (f"In a {depth}-layer ResNet without batch norm, each connection at its own best learning "
            f"rate ({', '.join(f'{n} {lr:g}' for n, lr in rates.items())}), the learned "
            f"weights' gain in training loss over identity: {gains} (Q1 {q1.label}, smallest "
            f"gain of interest {100 * q1.numbers['smallest_effect']:.0f} %). Counted family "
            f"by family in torchvision's later convolutional networks, the 2018 recipe: most "
            f"use {', '.join(kept) or 'none of its ingredients'}; most do not use "
            f"{', '.join(dropped) or 'any of them'}; all four together: "
            f"{q2.parts[ALL_FOUR].label}.")


# --- readings and helpers the notebook calls ------------------------------------------------

COUNTS = ("MACs", "parameters")


@labels(model="model", count="count")
def census_view(model: str = "ResNet-50", count: str = "MACs",
                censuses: list[census.Census] | None = None) -> View:
    """Chapter 11: one census model -> the share of its MACs or parameters in each kind of
    layer, and which of the 2018 recipe's ingredients it uses."""
    if not censuses:
        raise ConfigError("census_view needs the census (censuses=census.torchvision_census())")
    by_name = {c.name: c for c in censuses}
    if model not in by_name:
        raise ConfigError(f"model must be one of {', '.join(by_name)}; got {model!r}")
    if count not in COUNTS:
        raise ConfigError(f"count must be one of {', '.join(COUNTS)}; got {count!r}")
    c = by_name[model]
    share = c.mac_share if count == "MACs" else c.param_share
    kinds = [k for k in (*census.KINDS, "other")
             if (c.macs if count == "MACs" else c.params).get(k, 0)]
    figure, ax = plt.subplots(figsize=(5.2, 3.0))
    values = [100 * share(k) for k in kinds]
    ax.barh(range(len(kinds)), values, color=[family_colour(k) for k in kinds])
    ax.set_yticks(range(len(kinds)), kinds)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"share of {count} (%)")
    ax.set_title(f"{c.name} ({c.year})")
    figure.tight_layout()
    used = [name for name, yes in census.recipe_ingredients(c, USE_SHARE).items() if yes]
    numbers = {"parameters": f"{c.total_params / 1e6:.1f} M",
               "MACs (224×224)": f"{c.total_macs / 1e9:.2f} G",
               "bottleneck / inverted 1×1 (% of MACs)":
                   f"{100 * c.bottleneck_1x1_macs / c.total_macs:.0f} / "
                   f"{100 * c.inverted_1x1_macs / c.total_macs:.0f}",
               "2018 recipe's ingredients used": ", ".join(used) if used else "none"}
    return View(figure, numbers)


def census_reading(censuses: list[census.Census]) -> str:
    """The paragraph after the census, from its numbers."""
    families = families_after(censuses)
    by_ingredient = {ingredient: [f for f, ms in families.items() if family_uses(ms, ingredient)]
                     for ingredient in census.INGREDIENTS}
    inverted = [f for f, ms in families.items()
                if 2 * sum(c.inverted_1x1_macs / c.total_macs >= USE_SHARE for c in ms)
                >= len(ms)]
    earlier_bottleneck = sorted({c.family or c.name for c in censuses
                                 if c.year is not None and c.year <= LATER
                                 and _uses(c, "bottleneck")})
    said = "; ".join(f"{ingredient}: {', '.join(names) if names else 'none'}"
                     for ingredient, names in by_ingredient.items())
    depthwise_top = max(censuses, key=lambda c: c.mac_share("depthwise"))
    changed = [f"{ingredient} ({census_part(censuses, ingredient).label} at "
               f"{100 * USE_SHARE:g} %, {census_part(censuses, ingredient, share).label} at "
               f"{100 * share:g} %)"
               for share in OTHER_SHARES for ingredient in (*census.INGREDIENTS, ALL_FOUR)
               if census_part(censuses, ingredient, share).label
               != census_part(censuses, ingredient).label]
    robust = (f" Counting an ingredient from {' or '.join(f'{100 * s:g} %' for s in OTHER_SHARES)}"
              f" of the MACs instead of {100 * USE_SHARE:g} % "
              + ("changes no label." if not changed else f"changes: {'; '.join(changed)}."))
    return (f"Of the {len(families)} families with models published after 2018, those using "
            f"each ingredient (at least 1 % of the MACs in at least half of their models, or "
            f"any shuffle): {said}. Where the later families narrow, they narrow out of an "
            f"inverted bottleneck: {len(inverted)} of {len(families)} "
            f"({', '.join(inverted) or 'none'}), against the bottlenecks of "
            f"{', '.join(earlier_bottleneck) or 'no family'} up to 2018. Depthwise layers hold "
            f"at most {100 * depthwise_top.mac_share('depthwise'):.0f} % of a model's MACs "
            f"({depthwise_top.name}): they are cheap by design, so the 1×1 layers beside them "
            f"carry the work." + robust)


def speed_reading(tables: dict[str, Table]) -> str:
    """One sentence per guideline: its last configuration (the paper's extreme case) against
    its first, at every batch size measured."""
    sentences = []
    for guideline, table in tables.items():
        ratios = guidelines.speed_ratios(table)
        configs = list(ratios)
        if len(configs) < 2:
            continue
        first, last = configs[0], configs[-1]
        at = ", ".join(f"{ratios[last][b]:.2f}× at batch {b}" for b in sorted(ratios[last]))
        sentences.append(f"{guideline}, *{last}* against *{first}*: {at}")
    return ("On this machine, at equal MACs (speed relative to each guideline's first "
            "configuration; below 1 is slower): " + "; ".join(sentences) + ". Single "
            "timings on a shared two-core machine vary by 10–20 % from run to run, so only "
            "ratios well away from 1 mean something.")
