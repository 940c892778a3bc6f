"""Chapter 11 — reflections: the review's two open questions put to experiment, and the book's
results in one place.

- Q1: should cross-layer connections carry learned weights (as channels do in SENet)?
- Q2: did "bottleneck + group convolution + channel shuffle + depthwise" become the standard
  recipe for cutting a network's cost?

The whole-book figure and table read the build's records (``convbook.records``): nothing is
retrained for them.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch

from convbook import census, designs, experiments, guidelines, stats
from convbook.blocks.convnext import ConvNeXtBlock
from convbook.blocks.weighted import STARTS, DenseWeightedStage, learned_values
from convbook.data import CifarData
from convbook.errors import ConfigError
from convbook.explore import View, labels
from convbook.tables import Table
from convbook.viz.style import family_colour

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


def connection_names(norm: bool) -> list[str]:
    """The variants run with (``norm``) or without batch norm: zero-init γ needs a norm."""
    return [name for name, c in CONNECTIONS.items() if norm or c != "zero_gamma"]


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
                 "seeds would narrow these intervals. " + stats.detectable_range(diffs))
    return stats.Verdict("Q1", label, text.rstrip(".") + ".", numbers={
        "differences": diffs, "detectable": {n: stats.detectable_effect(d)
                                             for n, d in diffs.items()}})


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


BARELY_TRAINED = 0.7  # a final training error above this: the network has barely learned
STILL = 0.05  # a learned weight that moved less than this from its start in every block
MEANING = {
    "scalar": "λ on the shortcut",
    "rezero": "α on the branch",
    "zero_gamma": "mean |γ| of the branch's last norm",
    "gate": "mean gate g (share of the branch)",
    "dense": "weight on the newest block's output",
}


def starting_values() -> dict[str, float]:
    """Where each learned connection starts (name in tables -> value), for the weights figure."""
    return {name: STARTS[c] for name, c in CONNECTIONS.items() if c in STARTS}


def learned_weights(results: experiments.Results, data: CifarData,
                    images: int = 256) -> dict[str, list[float]]:
    """For each learned connection, the value it ended at in each block (mean over seeds):
    λ and α as learned; zero-init γ as the mean |γ| of the branch's last batch norm; the gate as
    its mean over ``images`` test images; the weighted sum as the weight on the newest output.
    The start of each is ``blocks.weighted.STARTS``."""
    batch = data.test[0][:images]
    out = {}
    for variant in results:
        connection = CONNECTIONS[variant.name]
        if connection == "identity":
            continue
        per_seed = [learned_values(run.model, connection, batch) for run in variant.runs]
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
            start = STARTS[connection]
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
             if values and max(abs(v - STARTS[CONNECTIONS[name]]) for v in values) < STILL]
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
                 "all of CIFAR-10). " + stats.detectable_range(diffs).rstrip("."))
    return stats.Verdict("Q2", label, text, numbers={
        "differences": diffs, "detectable": {n: stats.detectable_effect(d)
                                             for n, d in diffs.items()}})


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


