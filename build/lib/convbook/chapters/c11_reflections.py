"""Chapter 11 — reflections: the review's two open questions put to experiment, and the book's
results in one place.

- Q1: should cross-layer connections carry learned weights (as channels do in SENet)?
- Q2: did "bottleneck + group convolution + channel shuffle + depthwise" become the standard
  recipe for cutting a network's cost?

The whole-book figure and table read the build's records (``convbook.records``): nothing is
retrained for them.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from functools import partial

import matplotlib.pyplot as plt
import torch
from torch import nn

from convbook import census, designs, experiments, guidelines, nets, profiles, records, stats
from convbook.blocks.convnext import ConvNeXtBlock
from convbook.blocks.weighted import DenseWeightedStage, WeightedBlock
from convbook.book import Setup, VerdictList, badge
from convbook.data import CifarData
from convbook.errors import ConfigError
from convbook.explore import View, labels, static_mode
from convbook.tables import Html, Table
from convbook.viz.style import family_colour, integer_ticks, legend_outside, log_ticks

CHAPTER = "11-reflections"

# --- Q1: weighted cross-layer connections ---------------------------------------------------

# name in tables -> connection (blocks.weighted.CONNECTIONS)
CONNECTIONS = {
    "identity": "identity",
    "shortcut scalar": "scalar",
    "ReZero": "rezero",
    "zero-init γ": "zero_gamma",
    "sigmoid gate": "gate",
    "weighted earlier blocks": "dense",
}
REFERENCE = "identity"


@dataclass(frozen=True)
class Q1Plan:
    depth: int
    width: int
    train_size: int | None  # None: the profile's
    epochs: int | None  # None: the profile's
    test_size: int | None = None  # None: the profile's


# Eleven variants and four designs, three seeds each, must fit in about five minutes on two CPU
# cores in `book`: 14-layer nets at width 8, 1,500 training images, 4 epochs, scored on 5,000
# test images. `full` trains He et al.'s 20 layers on all of CIFAR-10.
Q1_PLANS = {
    "smoke": Q1Plan(14, 4, None, None),
    "book": Q1Plan(14, 8, 1_500, 4, 5_000),
    "full": Q1Plan(20, 16, None, None),
}


def q1_plan(setup: Setup) -> Q1Plan:
    return profiles.choose(Q1_PLANS, setup.profile.name, "c11.Q1_PLANS")


def q1_data(setup: Setup) -> CifarData:
    plan = q1_plan(setup)
    return setup.data(train_size=plan.train_size, test_size=plan.test_size)


# Without batch norm nothing rescales the growing sum of branches, and the recipe's learning
# rate (0.3 at batch 64) made some of these networks diverge in a pilot run: every network
# without batch norm trains at a third of it.
NO_NORM_LR_FACTOR = 1 / 3


def q1_recipe(setup: Setup, norm: bool = True):
    plan = q1_plan(setup)
    recipe = setup.profile.recipe.with_(epochs=plan.epochs or setup.profile.epochs)
    return recipe if norm else recipe.with_(lr=recipe.lr * NO_NORM_LR_FACTOR)


def connection_names(norm: bool) -> list[str]:
    """The variants run with (``norm``) or without batch norm: zero-init γ needs a norm."""
    return [name for name, c in CONNECTIONS.items() if norm or c != "zero_gamma"]


def run_q1(setup: Setup, data: CifarData, norm: bool) -> experiments.Results:
    """Every connection of ``connection_names(norm)`` in the same CIFAR ResNet, every seed,
    with the final training error measured on the unaugmented training images."""
    plan = q1_plan(setup)
    variants = {name: partial(nets.WeightedResNet, plan.depth, plan.width, CONNECTIONS[name],
                              norm)
                for name in connection_names(norm)}
    return experiments.compare(variants, data, setup.profile, seeds=setup.seeds,
                               device=setup.device, recipe=q1_recipe(setup, norm),
                               measure_train_error=True,
                               record_as="batch norm" if norm else "no batch norm")


def against_reference(results: experiments.Results) -> dict[str, stats.Difference]:
    """Test accuracy of each learned connection minus identity, paired by seed and image; the
    intervals share the 5 % error rate among the comparisons (Bonferroni)."""
    others = [v.name for v in results if v.name != REFERENCE]
    confidence = stats.shared_confidence(len(others))
    return {name: results.difference(name, REFERENCE, confidence) for name in others}


def q1_part(diffs: dict[str, stats.Difference], setting: str) -> stats.Verdict:
    """One setting (with or without batch norm): *confirmed* when some learned connection is
    more accurate than identity beyond its interval; *refuted* when every one is less accurate
    beyond its interval; otherwise *inconclusive*."""
    if not diffs:
        raise ConfigError("q1_part needs at least one learned connection to compare")
    labels = {name: stats.label_difference(d, +1) for name, d in diffs.items()}
    better = [n for n, label in labels.items() if label == stats.CONFIRMED]
    worse = [n for n, label in labels.items() if label == stats.REFUTED]
    if better:
        label = stats.CONFIRMED
    elif len(worse) == len(diffs):
        label = stats.REFUTED
    else:
        label = stats.INCONCLUSIVE
    confidence = next(iter(diffs.values())).confidence
    listed = "; ".join(f"{name} {_short(d)}" for name, d in diffs.items())
    text = (f"{setting}, test accuracy minus identity ({stats.percent(confidence)} intervals, "
            f"so that the {len(diffs)} comparisons share a 5 % error rate): {listed}")
    if better:
        text += f". More accurate than identity beyond the interval: {', '.join(better)}"
    if worse:
        text += f". Less accurate beyond the interval: {', '.join(worse)}"
    if label == stats.INCONCLUSIVE:
        text += (". No learned connection is clearly better or worse than identity here; "
                 "training to convergence on all of CIFAR-10 (the `full` profile) and more "
                 "seeds would narrow these intervals")
    return stats.Verdict("Q1", label, text + ".", numbers={"differences": diffs})


def verdict_q1(with_norm: experiments.Results, without_norm: experiments.Results) -> stats.Verdict:
    """Q1 in two named parts, with and without batch norm (``stats.combine``)."""
    parts = {"with batch norm": q1_part(against_reference(with_norm), "With batch norm"),
             "without batch norm": q1_part(against_reference(without_norm),
                                           "Without batch norm")}
    return stats.combine("Q1", parts)


def _short(d: stats.Difference) -> str:
    if math.isinf(d.low):
        return f"{d.points(d.mean)} (one seed)"
    return f"{d.points(d.mean)} [{d.points(d.low)}, {d.points(d.high)}]"


def weighted_blocks(model: nn.Module) -> list[WeightedBlock]:
    return [m for m in model.modules() if isinstance(m, WeightedBlock)]


def _block_values(model: nn.Module, connection: str, images: torch.Tensor) -> list[float]:
    """What each block's learned connection ended as (see ``learned_weights``)."""
    blocks = weighted_blocks(model)
    if connection in ("scalar", "rezero"):
        return [b.weight.item() for b in blocks]
    if connection == "zero_gamma":
        return [b.conv2[1].weight.abs().mean().item() for b in blocks]
    if connection == "gate":
        from convbook.train import normalize

        inputs: dict[int, torch.Tensor] = {}
        hooks = [b.register_forward_pre_hook(
            lambda module, args, i=i: inputs.__setitem__(i, args[0])) for i, b in
            enumerate(blocks)]
        device = next(model.parameters()).device
        try:
            with torch.no_grad():
                model.eval()(normalize(images.to(device)))
                return [b.gate_values(inputs[i]).mean().item() for i, b in enumerate(blocks)]
        finally:
            for hook in hooks:
                hook.remove()
    if connection == "dense":
        stages = [m for m in model.modules() if isinstance(m, DenseWeightedStage)]
        return [alpha[-1].item() for stage in stages for alpha in stage.alphas]
    return []


BARELY_TRAINED = 0.7  # a final training error above this: the network has barely learned
STILL = 0.05  # a learned weight that moved less than this from its start in every block
START = {"scalar": 1.0, "rezero": 0.0, "zero_gamma": 0.0, "gate": 1 / (1 + math.exp(2.0)),
         "dense": 1.0}
MEANING = {
    "scalar": "λ on the shortcut",
    "rezero": "α on the branch",
    "zero_gamma": "mean |γ| of the branch's last norm",
    "gate": "mean gate g (share of the branch)",
    "dense": "weight on the newest block's output",
}


def learned_weights(results: experiments.Results, data: CifarData,
                    images: int = 256) -> dict[str, list[float]]:
    """For each learned connection, the value it ended at in each block (mean over seeds):
    λ and α as learned; zero-init γ as the mean |γ| of the branch's last batch norm; the gate as
    its mean over ``images`` test images; the weighted sum as the weight on the newest output.
    The identity start of each is ``START``."""
    batch = data.test[0][:images]
    out = {}
    for variant in results:
        connection = CONNECTIONS[variant.name]
        if connection == "identity":
            continue
        per_seed = [_block_values(run.model, connection, batch) for run in variant.runs]
        out[variant.name] = [sum(v) / len(v) for v in zip(*per_seed)]
    return out


def dense_matrices(results: experiments.Results) -> list[torch.Tensor]:
    """The weighted-sum variant's weights, one matrix per stage, mean over seeds."""
    name = next(n for n, c in CONNECTIONS.items() if c == "dense")
    per_seed = [[s.weight_matrix() for s in run.model.modules()
                 if isinstance(s, DenseWeightedStage)] for run in results[name].runs]
    return [torch.stack(ms).mean(0) for ms in zip(*per_seed)]


def weights_table(with_norm: dict[str, list[float]], without_norm: dict[str, list[float]]) -> Table:
    rows = []
    for setting, values in (("batch norm", with_norm), ("no batch norm", without_norm)):
        for name, per_block in values.items():
            connection = CONNECTIONS[name]
            start = START[connection]
            rows.append({"connection": name, "network": setting, "what": MEANING[connection],
                         "start": f"{start:.2f}",
                         "after training, block by block": ", ".join(f"{v:.2f}" for v in per_block),
                         "largest change": f"{max(abs(v - start) for v in per_block):.2f}"})
    return Table(rows, caption="What the learned connections ended as (mean over seeds). "
                               "Blocks run from the first stage to the last.")


def q1_table(results: experiments.Results) -> Table:
    """The comparison's table plus the final training error (unaugmented images)."""
    rows = results.rows()
    for row, variant in zip(rows, results):
        errors = [r.final_train_error for r in variant.runs if r.final_train_error is not None]
        row["final training error"] = (f"{100 * sum(errors) / len(errors):.1f}%" if errors
                                       else "—")
    return Table(rows, caption=results.caption())


def plot_training_error(with_norm: experiments.Results, without_norm: experiments.Results):
    """Training error per epoch (augmented batches, mean over seeds), one panel per setting."""
    figure, axes = plt.subplots(1, 2, figsize=(9.6, 3.4), sharey=True)
    for ax, (title, results) in zip(axes, (("with batch norm", with_norm),
                                           ("without batch norm", without_norm))):
        for variant in results:
            curves = [[1 - h["train_accuracy"] for h in run.history] for run in variant.runs]
            mean = [100 * sum(v) / len(v) for v in zip(*curves)]
            ax.plot(range(1, len(mean) + 1), mean, marker="o", markersize=3,
                    label=variant.name, color=family_colour(variant.name),
                    linestyle="--" if variant.name == REFERENCE else "-")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        integer_ticks(ax)
    axes[0].set_ylabel("training error (%, running,\naugmented batches)")
    legend_outside(axes[1])
    figure.tight_layout()
    return figure


def plot_learned_weights(with_norm: dict[str, list[float]], without_norm: dict[str, list[float]]):
    """Each learned connection's value per block, as distance from where it started."""
    figure, axes = plt.subplots(1, 2, figsize=(9.6, 3.4), sharey=True)
    for ax, (title, values) in zip(axes, (("with batch norm", with_norm),
                                          ("without batch norm", without_norm))):
        for name, per_block in values.items():
            start = START[CONNECTIONS[name]]
            ax.plot(range(1, len(per_block) + 1), [v - start for v in per_block], marker="o",
                    markersize=4, label=name, color=family_colour(name))
        ax.axhline(0, color="0.4", linewidth=1, linestyle=":")
        ax.set_title(title)
        ax.set_xlabel("block (first stage to last)")
        integer_ticks(ax)
    axes[0].set_ylabel("value − starting value")
    handles = {}
    for ax in axes:  # one legend for both panels (zero-init γ runs with batch norm only)
        handles.update(zip(*reversed(ax.get_legend_handles_labels())))
    axes[1].legend(list(handles.values()), list(handles), loc="upper left",
                   bbox_to_anchor=(1.02, 1), borderaxespad=0)
    figure.tight_layout()
    return figure


def plot_dense_weights(matrices: list[torch.Tensor]):
    """The weighted sum's learned weights: row = the block (or stage output) that reads,
    column = the output it reads from; 1 on the newest and 0 elsewhere is where they started."""
    figure, axes = plt.subplots(1, len(matrices), figsize=(3.1 * len(matrices), 2.9))
    axes = list(axes) if len(matrices) > 1 else [axes]
    limit = max(float(m.nan_to_num(0).abs().max()) for m in matrices)
    for stage, (ax, matrix) in enumerate(zip(axes, matrices), start=1):
        image = ax.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit)
        rows, cols = matrix.shape
        first = "in" if cols > rows else None
        names = ([first] if first else []) + [f"b{k + 1}" for k in range(rows)]
        ax.set_xticks(range(cols), names)
        readers = [f"input of b{k + 2}" for k in range(rows - 1)] + ["stage output"]
        ax.set_yticks(range(rows), readers if stage == 1 else [""] * rows)
        ax.set_xlabel("output of")
        for r in range(rows):
            for c in range(cols):
                if not math.isnan(matrix[r, c]):
                    value = float(matrix[r, c])
                    ax.text(c, r, f"{value:.2f}", ha="center", va="center", fontsize=9,
                            color="white" if abs(value) > 0.55 * limit else "black")
        ax.set_title(f"stage {stage}")
        ax.grid(False)
    figure.colorbar(image, ax=axes, shrink=0.8, label="weight")
    return figure


def barely_trained(results: experiments.Results) -> list[str]:
    """Variants whose mean final training error (over seeds) is above ``BARELY_TRAINED``."""
    out = []
    for variant in results:
        errors = [r.final_train_error for r in variant.runs if r.final_train_error is not None]
        if errors and sum(errors) / len(errors) > BARELY_TRAINED:
            out.append(variant.name)
    return out


def q1_reading(with_norm: experiments.Results, without_norm: experiments.Results,
               weights_bn: dict[str, list[float]], weights_raw: dict[str, list[float]]) -> str:
    """The paragraph after Q1's tables, from the run's numbers."""
    def best(results):
        return max(results, key=lambda v: v.test_accuracy)

    def percent(v):
        return f"{100 * v.test_accuracy:.1f} %"

    diffs = against_reference(with_norm)
    widths = [100 * (d.high - d.low) / 2 for d in diffs.values() if math.isfinite(d.low)]
    text = (f"With batch norm the most accurate network is *{best(with_norm).name}* "
            f"({percent(best(with_norm))}, identity {percent(with_norm[REFERENCE])}); without "
            f"it, *{best(without_norm).name}* ({percent(best(without_norm))}, identity "
            f"{percent(without_norm[REFERENCE])}). ")
    text += (f"With {len(with_norm.seeds)} seeds and the error rate shared among the "
             f"comparisons, the intervals reach ±{max(widths):.0f} points with batch norm: only "
             f"a larger effect could be seen, and the published effects below were measured "
             f"after full training on other scales. " if widths else
             "With one seed no interval can be computed: nothing is decided. ")
    slow = [(name, with_norm[name].latency, with_norm[REFERENCE].latency) for name in
            connection_names(True) if name != REFERENCE and with_norm[name].latency]
    costly = [f"{name} {lat['forward_backward'] / ref['forward_backward']:.2f}×"
              for name, lat, ref in slow]
    if costly:
        text += ("Training steps cost, relative to identity (forward and backward, this "
                 f"machine): {', '.join(costly)}. ")
    for setting, results in (("With", with_norm), ("Without", without_norm)):
        weak = barely_trained(results)
        if weak:
            text += (f"{setting} batch norm, {', '.join(weak)} end with a mean training error "
                     f"above {100 * BARELY_TRAINED:.0f} %: at this scale they barely train, "
                     f"so their comparisons say little. ")
    still = [name for weights in (weights_bn, weights_raw) for name, values in weights.items()
             if values and max(abs(v - START[CONNECTIONS[name]]) for v in values) < STILL]
    if still:
        text += (f"Some learned weights hardly moved from their start (by less than {STILL} in "
                 f"every block): {', '.join(sorted(set(still)))}; those networks compare a "
                 f"fixed connection, not a learned one.")
    return text.strip()


# --- Q2: the 2018 recipe against later designs ----------------------------------------------

DESIGNS = {
    "ShuffleNet-style (2018)": "shuffle",
    "MobileNetV2-style (2018)": "inverted",
    "RegNet-style (2020)": "regnet",
    "ConvNeXt-style (2022)": "convnext",
}
RECIPE_2018 = "ShuffleNet-style (2018)"
MAC_TOLERANCE = 0.10  # every design's MACs within 10 % of the ShuffleNet-style net's
def equal_mac_widths(reference_width: int) -> dict[str, int]:
    """Each design's width whose MACs are closest to the ShuffleNet-style net's at
    ``reference_width`` (``designs.equal_mac_widths``)."""
    target = designs.macs("shuffle", reference_width)
    widths = designs.equal_mac_widths(list(DESIGNS.values()), target)
    widths["shuffle"] = reference_width
    return {name: widths[design] for name, design in DESIGNS.items()}


def run_q2(setup: Setup, data: CifarData) -> experiments.Results:
    """The four designs at (nearly) equal MACs, every seed, on ``designs.task_data`` with
    ``designs.task_recipe`` (chapter 7's task, so a whole-book build reuses its runs)."""
    widths = equal_mac_widths(designs.reference_width(setup.profile))
    variants = {name: partial(designs.network, DESIGNS[name], widths[name]) for name in DESIGNS}
    return experiments.compare(variants, data, setup.profile, seeds=setup.seeds,
                               device=setup.device, recipe=designs.task_recipe(setup.profile))


def recipe_part(results: experiments.Results) -> stats.Verdict:
    """Accuracy at equal MACs: the ShuffleNet-style net minus each other design (intervals
    sharing 5 %). *Confirmed* (the 2018 recipe holds up) when it beats every other design
    beyond the interval; *refuted* when some design beats it beyond the interval; otherwise
    *inconclusive*."""
    others = [v.name for v in results if v.name != RECIPE_2018]
    confidence = stats.shared_confidence(len(others))
    diffs = {name: results.difference(RECIPE_2018, name, confidence) for name in others}
    labels = {name: stats.label_difference(d, +1) for name, d in diffs.items()}
    beaten_by = [n for n, label in labels.items() if label == stats.REFUTED]
    if beaten_by:
        label = stats.REFUTED
    elif all(label == stats.CONFIRMED for label in labels.values()):
        label = stats.CONFIRMED
    else:
        label = stats.INCONCLUSIVE
    listed = "; ".join(f"minus {name} {_short(d)}" for name, d in diffs.items())
    text = (f"test accuracy at equal MACs on CIFAR-10, the ShuffleNet-style net {listed} "
            f"({stats.percent(confidence)} intervals)")
    if beaten_by:
        text += f"; more accurate than it beyond the interval: {', '.join(beaten_by)}"
    if label == stats.INCONCLUSIVE:
        text += ("; at this scale the run cannot rank them (the `full` profile trains them on "
                 "all of CIFAR-10)")
    return stats.Verdict("Q2", label, text, numbers={"differences": diffs})


LATER = 2018  # the review's year: models published after it say what became standard
# A model "uses" an ingredient when it holds at least this share of its MACs: enough to leave
# out incidental layers (RegNetY's squeeze-and-excitation 1×1s hold 0.1 %), small enough to
# count depthwise layers, which are cheap by design (2.4 % of ConvNeXt-T's MACs).
USE_SHARE = 0.01


def census_part(censuses: list[census.Census], ingredient: str,
                min_share: float = USE_SHARE) -> stats.Verdict:
    """Did ``ingredient`` become standard? Counted over the census' models published after
    2018: *confirmed* when more than half use it (at least ``min_share`` of their MACs, or any
    shuffle), *refuted* when fewer than half do, *inconclusive* at exactly half."""
    later = [c for c in censuses if c.year is not None and c.year > LATER]
    if not later:
        raise ConfigError("the census has no model published after 2018, so it cannot say what "
                          "became standard; include e.g. efficientnet_b0 or convnext_tiny")
    users = [c.name for c in later if _uses(c, ingredient, min_share)]
    strict = [c.name for c in later if _uses(c, ingredient, 0.05)]
    if 2 * len(users) > len(later):
        label = stats.CONFIRMED
    elif 2 * len(users) < len(later):
        label = stats.REFUTED
    else:
        label = stats.INCONCLUSIVE
    text = (f"{len(users)} of the census' {len(later)} models after 2018 "
            f"{'uses' if len(users) == 1 else 'use'} "
            f"{'them all' if ingredient == ALL_FOUR else 'it'}"
            + (f" ({', '.join(users)})" if users else "")
            + (f"; {len(strict)} counting only ingredients with 5 % of the MACs or more"
               if len(strict) != len(users) else ""))
    return stats.Verdict("Q2", label, text, numbers={"users": users,
                                                     "models": [c.name for c in later]})


ALL_FOUR = "all four together"


def _uses(c: census.Census, ingredient: str, min_share: float) -> bool:
    used = census.recipe_ingredients(c, min_share)
    return all(used.values()) if ingredient == ALL_FOUR else used[ingredient]


def verdict_q2(censuses: list[census.Census], results: experiments.Results) -> stats.Verdict:
    """Q2 in named parts: each ingredient of the recipe in the census, the four together (the
    question as asked), and the recipe's accuracy against the other designs at equal MACs."""
    parts = {ingredient: census_part(censuses, ingredient)
             for ingredient in (*census.INGREDIENTS, ALL_FOUR)}
    parts["accuracy at equal MACs"] = recipe_part(results)
    return stats.combine("Q2", parts)


def plot_census(censuses: list[census.Census]):
    """Share of MACs by kind of layer, one bar per model in order of publication."""
    ordered = sorted(censuses, key=lambda c: (c.year or 0))
    kinds = [k for k in census.KINDS if any(c.macs.get(k, 0) for c in ordered)]
    figure, ax = plt.subplots(figsize=(9.6, 3.8))
    bottom = [0.0] * len(ordered)
    for kind in kinds:
        shares = [100 * c.mac_share(kind) for c in ordered]
        ax.bar(range(len(ordered)), shares, bottom=bottom, label=kind,
               color=family_colour(kind), width=0.75)
        bottom = [b + s for b, s in zip(bottom, shares)]
    for i, c in enumerate(ordered):
        if c.shuffles:
            ax.annotate("shuffles", (i, 101), ha="center", va="bottom", fontsize=9)
    ax.set_xticks(range(len(ordered)), [f"{c.name}\n{c.year}" for c in ordered], rotation=45,
                  ha="right", fontsize=9)
    ax.set_ylabel("share of MACs (%)")
    ax.set_ylim(0, 110)
    legend_outside(ax)
    figure.tight_layout()
    return figure


# --- the whole book --------------------------------------------------------------------------

CHAPTER_TITLES = {
    "01-group-convolution": "1 · group convolution",
    "02-small-kernels": "2 · small kernels",
    "03-inception": "3 · Inception",
    "04-bottleneck": "4 · bottleneck",
    "05-residual": "5 · residual",
    "06-separable": "6 · separable",
    "07-shuffle": "7 · shuffle",
    "08-squeeze-excitation": "8 · squeeze-excitation",
    "09-dilated": "9 · dilated",
    "10-deformable": "10 · deformable",
    CHAPTER: "11 · reflections",
}
MISSING = ("This figure reads the records of a whole-book build, which this run does not have. "
           "Build the book (`make book`, which sets CONVBOOK_VERDICTS and CONVBOOK_RESULTS), "
           "or point those variables at a build's _build/verdicts.json and _build/results.json.")


@dataclass
class BookRecords:
    verdicts: dict
    results: dict


def book_records() -> BookRecords:
    """The verdicts and trained networks recorded by this build so far (empty outside one)."""
    return BookRecords(records.load(records.path_from(records.VERDICTS_ENV)),
                       records.load(records.path_from(records.RESULTS_ENV)))


def chapter_link(chapter: str) -> Html:
    title = CHAPTER_TITLES.get(chapter, chapter)
    target = f"{chapter}.html" if static_mode() else f"{chapter}.ipynb"
    return Html(f'<a href="{target}">{html.escape(title)}</a>', title)


def _interval(numbers: dict) -> str:
    d = numbers.get("difference")
    if not isinstance(d, dict) or "mean" not in d:
        return "—"
    low, high = d.get("low"), d.get("high")
    if not isinstance(low, (int, float)) or not isinstance(high, (int, float)):
        return f"{100 * d['mean']:+.1f} (one seed)"
    return f"{100 * d['mean']:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]"


def _order(entry: dict) -> tuple:
    """Chapter, then claim number (C2.10 after C2.9)."""
    number = re.match(r"[CQ](\d+)\.?(\d*)", entry["claim"])
    return (entry["chapter"], int(number.group(1)) if number else 0,
            int(number.group(2) or 0) if number else 0)


def verdict_table(verdicts: dict) -> Table:
    """Every verdict of the book, in chapter order: chapter (linked), claim, label, the
    difference and interval it rests on (points of accuracy, where it is one), seeds."""
    rows = []
    for entry in sorted(verdicts.values(), key=_order):
        rows.append({"chapter": chapter_link(entry["chapter"]), "claim": entry["claim"],
                     "verdict": Html(badge(entry["label"]), entry["label"]),
                     "difference [interval], points": _interval(entry.get("numbers", {})),
                     "seeds": len(entry.get("seeds") or []) or "—"})
    profiles_used = sorted({e.get("profile", "?") for e in verdicts.values()})
    return Table(rows, caption=f"Every verdict of this build (profile "
                               f"{', '.join(profiles_used)}). Differences are in points of test "
                               f"accuracy where the claim is a paired comparison; the chapter "
                               f"gives the rest.")


# the review's trends (glue name -> the chapters whose verdicts bear on it)
TRENDS = {
    "trend_kernels": ["02-small-kernels", "04-bottleneck"],
    "trend_shapes": ["03-inception", "09-dilated", "10-deformable"],
    "trend_channels": ["01-group-convolution", "06-separable", "07-shuffle",
                       "08-squeeze-excitation", CHAPTER],
    "trend_connections": ["05-residual", CHAPTER],
}


def trend_verdicts(verdicts: dict, chapters: list[str]) -> VerdictList:
    """The verdicts of ``chapters`` as one line of badges (a trend's evidence in this book)."""
    chosen = sorted((e for e in verdicts.values() if e["chapter"] in chapters), key=_order)
    return VerdictList.of_pairs([(e["claim"], e["label"]) for e in chosen])


def _train_images(data: str) -> int | None:
    match = re.search(r"([\d,]+) training /", data)
    return int(match.group(1).replace(",", "")) if match else None


def book_points(results: dict) -> list[dict]:
    """The recorded CIFAR-10 networks (other tasks, like chapter 10's digits, are left out)."""
    return [dict(e, train_images=_train_images(e["data"])) for e in results.values()
            if e["data"].startswith("CIFAR-10")]


def plot_book(results: dict):
    """Every CIFAR-10 network the build trained: test accuracy against MACs and against
    forward latency; colour = chapter, marker = size of the training set."""
    points = book_points(results)
    if not points:
        raise ConfigError(MISSING)
    chapters = sorted({p["chapter"] for p in points})
    colours = plt.get_cmap("tab20").colors
    colour = {ch: colours[(2 * i) % 20 + (i // 10)] for i, ch in enumerate(chapters)}
    sizes = sorted({p["train_images"] for p in points if p["train_images"]}, reverse=True)
    markers = dict(zip(sizes, "osD^vP*X"))
    figure, axes = plt.subplots(1, 2, figsize=(10.5, 4.0), sharey=True)
    for ax, key, label in ((axes[0], "macs", "MACs per image"),
                           (axes[1], "forward_ms", "forward latency (ms per batch)")):
        for p in points:
            if p.get(key):
                ax.scatter(p[key], 100 * p["test_accuracy"], s=22, alpha=0.85,
                           color=colour[p["chapter"]], marker=markers.get(p["train_images"], "o"),
                           edgecolors="none")
        log_ticks(ax, "x")
        ax.set_xlabel(label)
    axes[0].set_ylabel("test accuracy (%)")
    handles = [plt.Line2D([], [], color=colour[ch], marker="o", linestyle="",
                          label=CHAPTER_TITLES.get(ch, ch)) for ch in chapters]
    handles += [plt.Line2D([], [], color="0.3", marker=markers[s], linestyle="",
                           label=f"{s:,} training images") for s in sizes]
    axes[1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1),
                   borderaxespad=0, fontsize=9)
    figure.tight_layout()
    return figure


def book_reading(results: dict) -> str:
    points = book_points(results)
    if not points:
        return MISSING
    sizes = sorted({p["train_images"] for p in points if p["train_images"]})
    epochs = sorted({p["epochs"] for p in points if p.get("epochs")})
    return (f"The build trained {len(points)} CIFAR-10 networks (each point is a variant, its "
            f"accuracy the mean over its seeds) on training sets of "
            f"{', '.join(f'{s:,}' for s in sizes)} images for "
            f"{', '.join(map(str, epochs))} epochs. Accuracies are comparable within one "
            f"chapter's comparison, not across chapters: each shrinks the task (images, "
            f"epochs, width) to fit its time budget, and the latencies were measured at "
            f"different moments on a shared machine.")


def one_minute(q1: stats.Verdict, q2: stats.Verdict) -> str:
    q1_parts = "; ".join(f"{name}: {p.label}" for name, p in q1.parts.items())
    census_parts = [name for name in census.INGREDIENTS if q2.parts[name].label == stats.CONFIRMED]
    dropped = [name for name in census.INGREDIENTS if q2.parts[name].label == stats.REFUTED]
    return (f"Learned weights on a small CIFAR ResNet's connections, against identity "
            f"({q1_parts}): at this scale no form could be told apart from plain identity "
            f"shortcuts beyond its interval." if q1.label == stats.INCONCLUSIVE else
            f"Learned weights on a small CIFAR ResNet's connections ({q1_parts}).") + (
            f" The 2018 recipe, counted in later torchvision models: most use "
            f"{', '.join(census_parts) or 'none of its ingredients'}; most do not use "
            f"{', '.join(dropped) or 'any of them'}; all four together: "
            f"{q2.parts[ALL_FOUR].label}. At equal MACs on CIFAR-10 the ShuffleNet-style "
            f"network against the other designs: {q2.parts['accuracy at equal MACs'].label}.")


def profile_note(setup: Setup) -> str:
    plan = q1_plan(setup)
    size = "all" if plan.train_size is None and setup.profile.train_size is None else (
        f"{plan.train_size or setup.profile.train_size:,}")
    return (f"{plan.depth}-layer networks at base width {plan.width}, {size} training images, "
            f"{plan.epochs or setup.profile.epochs} epochs, the learning rate of the recipe "
            f"with batch norm and a third of it without")



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
               "2018 recipe's ingredients used": ", ".join(used) if used else "none"}
    return View(figure, numbers)


def census_reading(censuses: list[census.Census]) -> str:
    """The paragraph after the census, from its numbers."""
    later = [c for c in censuses if c.year is not None and c.year > LATER]
    by_ingredient = {ingredient: [c.name for c in later if _uses(c, ingredient, USE_SHARE)]
                     for ingredient in census.INGREDIENTS}
    full = [c.name for c in censuses if all(census.recipe_ingredients(c, USE_SHARE).values())]
    said = "; ".join(f"{ingredient}: {', '.join(names) if names else 'none'}"
                     for ingredient, names in by_ingredient.items())
    depthwise_top = max(censuses, key=lambda c: c.mac_share("depthwise"))
    one_by_one = max(censuses, key=lambda c: c.mac_share("1×1"))
    return (f"Of the census' {len(later)} models published after 2018, those using each ingredient "
            f"(at least 1 % of MACs, or any shuffle): {said}. Models with all four: "
            f"{', '.join(full) if full else 'none'}. Depthwise layers hold at most "
            f"{100 * depthwise_top.mac_share('depthwise'):.0f} % of a model's MACs "
            f"({depthwise_top.name}): they are cheap by design, so the 1×1 layers beside them "
            f"carry the work ({100 * one_by_one.mac_share('1×1'):.0f} % of {one_by_one.name}'s "
            f"MACs).")


def q2_reading(results: experiments.Results) -> str:
    ordered = sorted(results, key=lambda v: v.test_accuracy, reverse=True)
    reference = results[RECIPE_2018]
    deviation = max(abs(v.macs / reference.macs - 1) for v in results)
    params = sorted(results, key=lambda v: v.params)
    matched = ("" if deviation <= MAC_TOLERANCE else
               f" — more than the {100 * MAC_TOLERANCE:.0f} % this comparison means to allow, "
               f"so read it with care")
    text = (f"MACs per image are within {100 * deviation:.0f} % of the ShuffleNet-style "
            f"network's{matched}; parameters are not matched ({params[0].params:,} for "
            f"{params[0].name} to {params[-1].params:,} for {params[-1].name}). By mean test "
            f"accuracy: {', '.join(f'{v.name} {100 * v.test_accuracy:.1f} %' for v in ordered)}"
            f"; the verdict below says which gaps its intervals can resolve.")
    timed = [v for v in results if v.latency]
    if timed:
        fastest = min(timed, key=lambda v: v.latency["forward"])
        slowest = max(timed, key=lambda v: v.latency["forward"])
        text += (f" At nearly equal MACs a forward pass takes "
                 f"{1000 * fastest.latency['forward']:.1f} ms ({fastest.name}) to "
                 f"{1000 * slowest.latency['forward']:.1f} ms ({slowest.name}) per batch of "
                 f"{results.recipe.batch_size} on this machine.")
    scales = [float(m.scale.detach().abs().mean()) for run in results["ConvNeXt-style (2022)"].runs
              for m in run.model.modules() if isinstance(m, ConvNeXtBlock)]
    if scales:
        mean = sum(scales) / len(scales)
        text += (f" The ConvNeXt-style blocks' layer scale, which starts at 10⁻⁶, ended at a "
                 f"mean |γ| of {mean:.2g}")
        text += (": after this short training their branches still add little, a likely "
                 "reason for this design's rank here." if mean < 0.1 else ".")
    return text


def guideline_options(setup: Setup) -> dict:
    """Smaller, quicker benchmarks in ``smoke`` (numbers meaningless there)."""
    if setup.profile.name == "smoke":
        return {"size": 8, "batch_sizes": (1,), "min_run_time": 0.02}
    return {}


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


def plot_book_or_say(book: BookRecords):
    """The whole-book figure, or the one message saying how to get it."""
    if not book_points(book.results):
        print(MISSING)
        return None
    return plot_book(book.results)


def verdict_table_or_say(book: BookRecords):
    if not book.verdicts:
        print(MISSING)
        return None
    return verdict_table(book.verdicts)
