"""Chapter 5 — are deeper networks harder to train? Residual connections.

- C5.1: deeper plain networks train worse (the degradation problem). Decided on a small training
  set that the shallow networks fit (no augmentation, no label smoothing, many epochs), by one
  contrast of training error: (plain deep − plain shallow) − (residual deep − residual shallow),
  paired over seeds and training images.
- C5.2: vanishing gradients are the cause. The rule can refute (degradation with gradients that
  reach the first layer) but never confirm: gradients measured beside a training error show at
  most that the two occur together.
- C5.3: skip connections let much deeper networks train: plain minus residual training error at
  the greatest depth the profile trains (20 layers in ``book``, which is not "much deeper").

Every network is trained at the learning rate a small sweep picked for it on images held out
from the training set (``lr_sweep``), so that a plain network that needs a lower rate is not
judged at the residual one's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import partial

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from convbook import experiments, gradients, stats, sweep
from convbook.blocks.validate import check_positive
from convbook.data import CifarData
from convbook.errors import ConfigError
from convbook.explore import View, labels
from convbook.nets import CifarResNet
from convbook.tables import Table
from convbook.train import Recipe, batch_count, predict
from convbook.viz.style import family_colour, integer_ticks, legend_outside, log_ticks

CHAPTER = "05-residual"
KINDS = ("plain", "residual")
VANISHING = 0.1  # first-layer gradient below a tenth of the last layer's counts as vanishing
RATE_FACTORS = (1 / 3, 1.0, 3.0)  # the sweep: the recipe's rate, a third of it and three times it
HELD_OUT_SHARE = 5  # the sweep holds out a fifth of the training images
HE_DEEPEST_PLAIN = 56  # the deepest plain CIFAR-10 network of He et al. (2016), their Fig. 6
FITTED = 0.01  # the shallow networks have fit their training set: at most 1 % training error


# --- the networks and how they train ---------------------------------------------------------

def check_depths(depths) -> tuple[int, ...]:
    """``depths`` as a tuple of two or more CIFAR ResNet depths (6n + 2) in increasing order."""
    try:
        ds = tuple(depths)
    except TypeError:
        ds = ()
    if (len(ds) < 2 or any(isinstance(d, bool) or not isinstance(d, int) for d in ds)
            or list(ds) != sorted(set(ds)) or any(d < 8 or (d - 2) % 6 for d in ds)):
        raise ConfigError(f"depths must be two or more depths of the form 6n + 2 (8, 14, 20, "
                          f"32, 44, 56...) in increasing order, e.g. (8, 20); got {depths!r}")
    return ds


def variants(depths, width: int) -> dict[str, partial]:
    """Plain and residual CIFAR networks at each depth, named "plain 8", "residual 20"..."""
    depths = check_depths(depths)
    check_positive("width", width)
    return {f"{kind} {d}": partial(CifarResNet, d, width, skip=kind == "residual")
            for kind in KINDS for d in depths}


def fitting_recipe(recipe: Recipe, epochs: int) -> Recipe:
    """``recipe`` for a claim about what a network can fit: ``epochs`` passes, no augmentation,
    no label smoothing (the loss can go to zero) and no flip at test time (the networks never
    saw a mirrored image)."""
    check_positive("epochs", epochs)
    return recipe.with_(epochs=epochs, augment=False, label_smoothing=0.0, flip_tta=False)


def sweep_rates(recipe: Recipe) -> tuple[float, ...]:
    """The learning rates the sweep tries: the recipe's, a third of it and three times it."""
    return tuple(round(recipe.lr * factor, 6) for factor in RATE_FACTORS)


@dataclass
class RateSweep:
    """Each network at each rate, one run per seed on the training images less a held-out
    fifth: held-out accuracy (``chosen``, a ``sweep.Sweep``; its ``best`` is each network's
    rate) and the training error on the images it trained on (None where the run diverged)."""

    chosen: sweep.Sweep
    train_error: dict[str, dict[float, float | None]]

    @property
    def rates(self) -> tuple[float, ...]:
        return self.chosen.rates

    @property
    def best(self) -> dict[str, float]:
        return self.chosen.best

    def diverged(self) -> list[tuple[str, float]]:
        return [(name, rate) for name, by_rate in self.train_error.items()
                for rate, error in by_rate.items() if error is None]


def deepest_first(networks: dict) -> dict:
    """``networks`` with the deepest (slowest) first, so that two workers pulling runs in turn
    end together instead of one finishing a deep network alone."""
    return dict(sorted(networks.items(), key=lambda item: -int(item[0].split()[-1])))


def _at_rate(setup, networks: dict, data: CifarData, recipe: Recipe,
             seeds: list[int]) -> dict[str, experiments.Variant | None]:
    """Every network trained at ``recipe`` (not recorded as a result of the chapter), deepest
    first; a network that diverges is None (``sweep.trained_or_none``)."""
    trained = sweep.trained_or_none(setup.compare, deepest_first(networks), data, seeds=seeds,
                                    recipe=recipe, measure_train_error=True, latency=False,
                                    record=False)
    return {name: trained[name] for name in networks}


def lr_sweep(setup, networks: dict, data: CifarData, recipe: Recipe,
             rates: tuple[float, ...], seeds: list[int] | None = None) -> RateSweep:
    """Train every network at every rate on ``data``'s training images less a held-out fifth
    (``sweep.held_out``: the test images are never used) and pick each one's rate by its
    held-out accuracy (``sweep.Sweep.best``). A diverged run counts as held-out accuracy 0."""
    if len(rates) < 3:
        raise ConfigError(f"a learning-rate sweep here tries three or more rates, got {rates!r}")
    seeds = [setup.seed] if seeds is None else list(seeds)
    split = sweep.held_out(data, len(data.train[1]) // HELD_OUT_SHARE)
    accuracy: dict[str, dict[float, list[float]]] = {name: {} for name in networks}
    errors: dict[str, dict[float, float | None]] = {name: {} for name in networks}
    for rate in rates:
        for name, variant in _at_rate(setup, networks, split, recipe.with_(lr=rate),
                                      seeds).items():
            if variant is None:
                accuracy[name][rate], errors[name][rate] = [0.0] * len(seeds), None
            else:
                accuracy[name][rate] = variant.accuracies
                errors[name][rate] = _mean([r.final_train_error for r in variant.runs])
    stuck = [name for name, by_rate in errors.items() if all(e is None for e in by_rate.values())]
    if stuck:
        raise ConfigError(f"{', '.join(stuck)} diverged at every rate tried ({rates}); try "
                          f"lower rates")
    return RateSweep(sweep.Sweep(tuple(rates), accuracy, recipe, split.describe()), errors)


def at_chosen_rates(setup, networks: dict, data: CifarData, rates: RateSweep,
                    secondary: tuple[str, ...] | list[str] = ()) -> experiments.Results:
    """Every network trained on all of ``data`` at the rate the sweep chose for it, its final
    training error measured (one ``setup.compare`` per rate), as one ``Results`` so that the
    arms pair seed by seed, in the order of ``networks``. ``secondary`` networks train the first
    seed only."""
    by_rate: dict[float, list[str]] = {}
    for name in networks:
        by_rate.setdefault(rates.best[name], []).append(name)
    parts = [setup.compare(deepest_first({name: networks[name] for name in names}), data,
                           recipe=rates.chosen.recipe(names[0]), measure_train_error=True,
                           latency=False, secondary=[n for n in secondary if n in names])
             for names in by_rate.values()]
    found = {v.name: v for part in parts for v in part.variants}
    first = parts[0]
    return experiments.Results([found[name] for name in networks], first.profile, first.recipe,
                               first.data, first.device, first.seeds, first.precision, first.task)


def correct_on_training(results: experiments.Results, data: CifarData,
                        amp: bool | None = None) -> dict[str, torch.Tensor]:
    """Seeds × training images for every network, 1 where the run's final weights classify the
    (unaugmented) training image correctly; rows in seed order."""
    images, targets = data.train
    out = {}
    for variant in results:
        runs = sorted(variant.runs, key=lambda r: r.seed)
        out[variant.name] = torch.stack([(predict(r.model, images, amp=amp).cpu()
                                          == targets.cpu()).float() for r in runs])
    return out


def correct_on_test(results: experiments.Results) -> dict[str, torch.Tensor]:
    """Seeds × test images for every network, rows in seed order."""
    return {v.name: torch.stack([r.correct.float() for r in sorted(v.runs, key=lambda r: r.seed)])
            for v in results}


# --- the contrasts ---------------------------------------------------------------------------

def error_difference(correct_a: torch.Tensor, correct_b: torch.Tensor) -> stats.Difference:
    """Error of A minus error of B (seeds × images correctness), paired by seed and image."""
    return stats.paired_difference(correct_b, correct_a)


def error_interaction(deep_a: torch.Tensor, shallow_a: torch.Tensor, deep_b: torch.Tensor,
                      shallow_b: torch.Tensor, confidence: float = 0.95) -> stats.Difference:
    """(error of deep A − shallow A) − (error of deep B − shallow B), paired by seed and image.

    Per seed and image this is (shallow A + deep B) − (deep A + shallow B) in correctness: twice
    the difference of two scores in [0, 1], so ``stats.paired_difference`` gives its interval
    (seeds × images model) for half the contrast, and every term doubles."""
    shapes = {tuple(x.shape) for x in (deep_a, shallow_a, deep_b, shallow_b)}
    if len(shapes) != 1:
        raise ConfigError(f"the four networks of an interaction must be scored on the same seeds "
                          f"and images, got shapes {sorted(shapes)}")
    half = stats.paired_difference((shallow_a + deep_b) / 2, (deep_a + shallow_b) / 2, confidence)
    return replace(half, mean=2 * half.mean, low=2 * half.low, high=2 * half.high,
                   se_seeds=2 * half.se_seeds, se_images=2 * half.se_images)


@dataclass(frozen=True)
class Degradation:
    """The training-error contrasts the verdicts rest on (fractions; test error beside)."""

    shallow: int
    deep: int
    train_images: int
    errors: dict[str, float]  # mean training error of each network (over its seeds)
    interaction: stats.Difference  # (plain deep − plain shallow) − (residual deep − shallow)
    plain_gap: stats.Difference  # plain deep − plain shallow
    residual_gap: stats.Difference  # residual deep − residual shallow
    gaps: dict[int, stats.Difference]  # plain − residual at each depth
    test_interaction: stats.Difference  # the same contrast as ``interaction``, in test error

    @property
    def shallow_error(self) -> float:
        """The larger training error of the two shallowest networks."""
        return max(self.errors[f"{kind} {self.shallow}"] for kind in KINDS)

    def unfitted(self) -> str:
        """Why the contrasts cannot speak of degradation when the shallow networks have not fit
        their training set (more than ``FITTED`` training error), else ""."""
        if self.shallow_error <= FITTED:
            return ""
        return (f" The {self.shallow}-layer networks still misclassify up to "
                f"{100 * self.shallow_error:.1f} % of their training images: they have not fit "
                f"the set, so the contrasts measure how far each network got in this budget, "
                f"not what it can fit, and decide nothing.")


def degradation(train: dict[str, torch.Tensor], test: dict[str, torch.Tensor],
                depths) -> Degradation:
    """The contrasts between the networks named "plain D" and "residual D" at the shallowest
    and deepest of ``depths``, from their seeds × images correctness on the training images
    (``correct_on_training``) and the test images (``correct_on_test``)."""
    ds = check_depths(depths)
    shallow, deep = ds[0], ds[-1]
    names = [f"{kind} {d}" for kind in KINDS for d in ds]
    missing = [n for n in names if n not in train or n not in test]
    if missing:
        raise ConfigError(f"no results for {', '.join(missing)}; the depths must be those trained")

    def four(scores):
        return (scores[f"plain {deep}"], scores[f"plain {shallow}"],
                scores[f"residual {deep}"], scores[f"residual {shallow}"])

    return Degradation(
        shallow, deep, train[names[0]].shape[1],
        {n: 1 - train[n].mean().item() for n in names},
        error_interaction(*four(train)),
        error_difference(train[f"plain {deep}"], train[f"plain {shallow}"]),
        error_difference(train[f"residual {deep}"], train[f"residual {shallow}"]),
        {d: error_difference(train[f"plain {d}"], train[f"residual {d}"]) for d in ds},
        error_interaction(*four(test)))


def _points(value: float) -> str:
    return f"{100 * value:.2f} points"


def _error(diff: stats.Difference, images: str = "training images") -> str:
    """A training-error difference for prose, with its interval (points, two decimals: one
    training image of 1,000 in one seed of five is 0.02 points)."""
    if diff.seeds < 2:
        return f"{100 * diff.mean:+.2f} points (one seed: no interval)"
    if _no_spread(diff):
        return (f"{100 * diff.mean:+.2f} points (the same on every one of the {diff.images:,} "
                f"{images} in all {diff.seeds} seeds: no spread, no interval)")
    return (f"{100 * diff.mean:+.2f} points ({stats.percent(diff.confidence)} interval "
            f"{100 * diff.low:+.2f} to {100 * diff.high:+.2f}; {diff.seeds} seeds × "
            f"{diff.images:,} {images})")


def _no_spread(diff: stats.Difference) -> bool:
    """Every seed and image gives the same contrast (e.g. every network fits every training
    image): the interval collapses to a point that says nothing about chance."""
    return diff.seeds >= 2 and diff.low == diff.high


def _undecided(label: str, diff: stats.Difference) -> str:
    """What an inconclusive training-error contrast could have seen, or why nothing can be said."""
    if label != stats.INCONCLUSIVE:
        return ""
    if _no_spread(diff):
        return (" The contrast is the same on every training image in every seed, so there is "
                "no spread to build an interval from and no size of effect this run could be "
                "said to have missed.")
    return stats.detectable_note(label, diff, unit=_points)


# --- verdicts --------------------------------------------------------------------------------

def verdict_c51(d: Degradation) -> stats.Verdict:
    """C5.1, decided by the interaction (plain deep − plain shallow) − (residual deep − residual
    shallow) of training error: confirmed when its interval lies above 0 and the plain networks
    did train worse with depth (their own gap above 0: a residual network that improves with
    depth while the plain one stays put is not degradation), refuted when it lies below 0 (the
    residual networks lose more to depth), inconclusive otherwise, and always inconclusive
    when the shallow networks have not fit their training set (``Degradation.unfitted``)."""
    label = stats.label_difference(d.interaction, +1)
    unfitted = d.unfitted()
    deep, shallow = d.deep, d.shallow
    text = (f"Training error on the {d.train_images:,} training images (final weights, no "
            f"augmentation), ({deep}-layer plain minus {shallow}-layer plain) minus "
            f"({deep}-layer residual minus {shallow}-layer residual): {_error(d.interaction)}. "
            f"Beside it, {deep}-layer plain minus {shallow}-layer plain: "
            f"{_error(d.plain_gap)}; residual: {_error(d.residual_gap)}; the same contrast in "
            f"test error: {_error(d.test_interaction, 'test images')}.")
    if unfitted:
        label = stats.INCONCLUSIVE
        text += unfitted
    elif label == stats.CONFIRMED and d.plain_gap.mean <= 0:
        label = stats.INCONCLUSIVE
        text += (" The contrast is positive because the residual networks improved with depth, "
                 "not because the plain ones got worse: that is not degradation.")
    elif label == stats.CONFIRMED:
        text += " The plain networks lose more to depth than the residual ones: degradation."
    elif label == stats.REFUTED:
        text += (" The residual networks lose more to depth than the plain ones, the opposite "
                 "of degradation.")
    else:
        if not _no_spread(d.interaction) and math.isfinite(d.interaction.high):
            text += (f" The run cannot decide; it rules out a contrast above "
                     f"{100 * max(d.interaction.high, 0):.2f} points.")
        text += _undecided(label, d.interaction)
        if deep < HE_DEEPEST_PLAIN:
            text += (f" He et al.'s plain networks were still at their best at 20 layers and "
                     f"trained worse at 32, 44 and 56 (their Fig. 6); this profile stops at "
                     f"{deep}, the `full` profile goes to {HE_DEEPEST_PLAIN}.")
    return stats.Verdict("C5.1", label, text,
                         numbers={"difference": d.interaction, "plain_gap": d.plain_gap,
                                  "residual_gap": d.residual_gap,
                                  "test_interaction": d.test_interaction,
                                  **stats.detectable_numbers(d.interaction)})


def _span(values: list[float]) -> str:
    low, high = min(values), max(values)
    return f"{low:.2g}" if f"{low:.2g}" == f"{high:.2g}" else f"{low:.2g} to {high:.2g}"


def verdict_c52(c51: stats.Verdict, at_init: list[float], trained: list[float],
                at_init_no_norm: list[float], deep: int) -> stats.Verdict:
    """C5.2: are vanishing gradients the cause? ``at_init`` and ``trained`` are the deep plain
    network's first-to-last gradient ratios per seed (with batch norm, as it trains), at
    initialisation and with its final weights; ``at_init_no_norm`` the same network's without
    batch norm (for the text).

    With no degradation established (C5.1 not confirmed) there is nothing to explain:
    inconclusive. Otherwise refuted when the first layer gets at least ``VANISHING`` of the last
    layer's gradient in every seed, at initialisation and after training: the network degraded
    with gradients that reached its first layer. When they vanish alongside the degradation
    the label stays inconclusive: co-occurrence cannot show cause. So this rule never returns
    "confirmed"; that would take an intervention (restoring the gradient another way and
    seeing the degradation go), which the chapter does not run."""
    if not at_init or not trained or not at_init_no_norm:
        raise ConfigError("verdict_c52 needs one gradient ratio per seed in each list")
    ratios = at_init + trained
    text = (f"The {deep}-layer plain network's first layer receives {_span(at_init)} times the "
            f"gradient of its last layer at initialisation with batch norm "
            f"({_span(at_init_no_norm)} without), and {_span(trained)} times with its trained "
            f"weights ({len(trained)} seed{'s' if len(trained) != 1 else ''}).")
    if min(ratios) > 1:
        text += (" With batch norm the gradient grows toward the input instead of vanishing, "
                 "as Yang et al. (2019) derive for deep batch-normalised plain networks.")
    numbers = {"ratios_init": at_init, "ratios_trained": trained,
               "ratios_init_no_norm": at_init_no_norm}
    if c51.label != stats.CONFIRMED:
        label, reading = stats.INCONCLUSIVE, ("Degradation was not established here (C5.1), so "
                                              "there is nothing whose cause this run could name.")
    elif max(ratios) < VANISHING:
        label, reading = stats.INCONCLUSIVE, ("Degradation and vanishing gradients appear "
                                              "together, which does not show that one causes "
                                              "the other.")
    elif min(ratios) >= VANISHING:
        label, reading = stats.REFUTED, ("The network degraded while its first layer received "
                                         "at least a tenth of its last layer's gradient in "
                                         "every seed, before and after training: the gradients "
                                         "did not vanish, so vanishing is not the cause here.")
    else:
        label, reading = stats.INCONCLUSIVE, ("The seeds, or initialisation and training, "
                                              "disagree on whether gradients vanish.")
    return stats.Verdict("C5.2", label, f"{text} {reading} (This rule can refute the claim but "
                                        f"never confirm it.)", numbers=numbers)


def verdict_c53(d: Degradation) -> stats.Verdict:
    """C5.3 at the greatest depth trained: the plain network's training error minus the
    residual one's (each at its own learning rate) above 0 confirms, below 0 refutes;
    inconclusive when the shallow networks have not fit their training set (the run then
    measures learning speed). The text says when that depth is short of "much deeper" (below
    He et al.'s deepest plain network)."""
    gap = d.gaps[d.deep]
    label = stats.label_difference(gap, +1)
    text = (f"Training error, plain minus residual, at {d.deep} layers: {_error(gap)}; at "
            + "; at ".join(f"{depth}: {_error(diff)}" for depth, diff in d.gaps.items()
                           if depth != d.deep) + ".")
    if d.unfitted():
        label = stats.INCONCLUSIVE
        text += d.unfitted()
    else:
        text += {stats.CONFIRMED: " The residual network fits its training images better.",
                 stats.REFUTED: " The plain network fits its training images better.",
                 stats.INCONCLUSIVE: ""}[label]
        text += _undecided(label, gap)
    if d.deep < HE_DEEPEST_PLAIN:
        text += (f" The claim is about much deeper networks: {d.shallow} to {d.deep} layers does "
                 f"not test it (He et al. trained residual networks of 110 and 1202 layers on "
                 f"CIFAR-10); the `full` profile goes to {HE_DEEPEST_PLAIN}.")
    return stats.Verdict("C5.3", label, text,
                         numbers={"difference": gap, "shallow_gap": d.gaps[d.shallow],
                                  **stats.detectable_numbers(gap)})


def one_minute(c51: stats.Verdict, c52: stats.Verdict, c53: stats.Verdict,
               d: Degradation) -> str:
    return (f"Each network trained at its own learning rate until it fit a small set. Plain "
            f"networks' extra training error from {d.shallow} to {d.deep} layers beyond the "
            f"residual networks': {100 * d.interaction.mean:+.2f} points (C5.1 {c51.label}). "
            f"Vanishing gradients as the cause: {c52.label} (a rule that cannot confirm). "
            f"Plain minus residual training error at {d.deep} layers: "
            f"{100 * d.gaps[d.deep].mean:+.2f} points (C5.3 {c53.label}).")


# --- readings --------------------------------------------------------------------------------

def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def design_reading(data: CifarData, recipe: Recipe, depths, width: int, seeds: list[int]) -> str:
    """This run's task in words: images, epochs and steps, what the recipe leaves out, depths,
    width and seeds."""
    ds = check_depths(depths)
    n = len(data.train[1])
    steps = batch_count(n, recipe.batch_size) * recipe.epochs
    between = (f" ({', '.join(map(str, ds[1:-1]))} layers from one seed)" if len(ds) > 2 else "")
    return (f"This run: {n:,} training images, {recipe.epochs} epochs in batches of "
            f"{recipe.batch_size} ({steps:,} steps), "
            f"{'no augmentation' if not recipe.augment else 'random crops and flips'}, label "
            f"smoothing {recipe.label_smoothing:g}, scored on {len(data.test[1]):,} test images; "
            f"plain and residual networks of {' and '.join(map(str, (ds[0], ds[-1])))} layers "
            f"at base width {width}, {len(seeds)} seed{'s' if len(seeds) != 1 else ''} "
            f"each{between}.")


def gradient_reading(at_init: dict[str, list[float]], trained: dict[str, list[float]],
                     deep: int) -> str:
    """The gradient figures in words: each network's first-to-last ratio (range over seeds) at
    initialisation, with and without batch norm, and after training."""
    def kind(k: str) -> str:
        return (f"the {k} network's {_span(at_init[f'{k}, with batch norm'])} with batch norm "
                f"({_span(at_init[f'{k}, no batch norm'])} without) at initialisation and "
                f"{_span(trained[k])} after training")

    return (f"First layer's gradient over the last layer's, {deep} layers, range over seeds: "
            f"{kind('plain')}; {kind('residual')}. Below 1 the gradient shrinks on its way to "
            f"the input; vanishing means far below 1 (this chapter counts under "
            f"{VANISHING:g}); above 1 it grows toward the input.")


def sweep_reading(rates: RateSweep, depths) -> str:
    """What the sweep chose, and how each network's training error on the sweep's images moved
    with the rate (one seed): where a shared rate would have made a plain network look degraded."""
    ds = check_depths(depths)
    shallow, deep = ds[0], ds[-1]

    def errors(name: str) -> str:
        return ", ".join("diverged" if rates.train_error[name][r] is None else
                         f"{100 * rates.train_error[name][r]:.1f} %" for r in rates.rates)

    text = (rates.chosen.describe() + " Each network then trains at its chosen rate on all the "
            f"training images, for every seed: the rate is picked per network, not shown to be "
            f"irrelevant. Training error on the sweep's own training images at rates "
            f"{', '.join(f'{r:g}' for r in rates.rates)}: " +
            "; ".join(f"{name} {errors(name)}" for name in rates.train_error) + ".")
    shared = []
    for r in rates.rates:
        four = [rates.train_error[f"{k} {d}"][r] for k in KINDS for d in (deep, shallow)]
        if all(e is not None for e in four):
            plain_deep, plain_shallow, res_deep, res_shallow = four
            shared.append(f"{100 * ((plain_deep - plain_shallow) - (res_deep - res_shallow)):+.1f}"
                          f" points at {r:g}")
    if shared:
        text += (f" Had all four shared one rate, the contrast C5.1 reads, (plain {deep} − plain "
                 f"{shallow}) − (residual {deep} − residual {shallow}), would have been "
                 f"{', '.join(shared)} (one seed, these images).")
    return text


def sweep_table(rates: RateSweep) -> Table:
    """One row per network: held-out accuracy and training error at each rate, and its rate."""
    rows = []
    for name, by_rate in rates.chosen.accuracy.items():
        row = {"network": name}
        for r in rates.rates:
            error = rates.train_error[name][r]
            row[f"lr {r:g}: held-out acc. %"] = ("diverged" if error is None else
                                                 round(100 * _mean(by_rate[r]), 1))
            row[f"lr {r:g}: training error %"] = ("diverged" if error is None else
                                                  round(100 * error, 1))
        row["chosen lr"] = f"{rates.best[name]:g}"
        rows.append(row)
    return Table(rows, caption=f"Learning-rate sweep on {rates.chosen.data}: accuracy on the "
                               f"held-out images, training error on the rest (final weights); "
                               f"the chosen rate has the best held-out accuracy.")


def depth_table(results: experiments.Results, rates: RateSweep,
                train: dict[str, torch.Tensor]) -> Table:
    """One row per network: its rate, final training error and test accuracy (mean ± sd over
    seeds), seeds and parameters."""
    rows = []
    for variant in results:
        errors = 1 - train[variant.name].mean(1)
        spread = (f" ± {100 * errors.std().item():.2f}" if len(errors) > 1 else "")
        rows.append({"network": variant.name, "lr": f"{rates.best[variant.name]:g}",
                     "training error %": f"{100 * errors.mean().item():.2f}{spread}",
                     "test accuracy %": f"{100 * variant.test_accuracy:.1f}"
                                        + (f" ± {100 * variant.accuracy_sd:.1f}"
                                           if len(variant.runs) > 1 else ""),
                     "seeds": len(variant.runs), "parameters": f"{variant.params:,}"})
    return Table(rows, caption=f"{results.caption()} Training error: final weights on the "
                               f"unaugmented training images, mean ± sd over seeds.")


def depths_reading(results: experiments.Results, train: dict[str, torch.Tensor], depths) -> str:
    """The depth table in words: each kind's training error across depth, whether the shallow
    networks fit their training set, and how test accuracy ranks the networks."""
    ds = check_depths(depths)
    error = {name: 1 - scores.mean().item() for name, scores in train.items()}

    def trend(kind: str) -> str:
        values = [error[f"{kind} {d}"] for d in ds]
        through = (" through " + ", ".join(f"{100 * v:.2f} %" for v in values[1:-1])
                   if len(values) > 2 else "")
        verb = ("stays at" if values[0] == values[-1] else
                "falls" if values[-1] < values[0] else "rises")
        if verb == "stays at":
            return f"stays at {100 * values[0]:.2f} %{through}"
        return f"{verb} from {100 * values[0]:.2f} %{through} to {100 * values[-1]:.2f} %"

    shallow = [f"{kind} {ds[0]}" for kind in KINDS]
    fit = max(error[n] for n in shallow)
    names = [f"{kind} {d}" for kind in KINDS for d in ds]
    by_accuracy = sorted(names, key=lambda n: -results[n].test_accuracy)
    return (f"Final training error (mean over the seeds each network trained) {trend('plain')} "
            f"for the plain networks from {ds[0]} to {ds[-1]} layers, and {trend('residual')} "
            f"for the residual ones. The {ds[0]}-layer networks "
            + ("fit every training image in every seed" if fit == 0 else
               f"misclassify at most {100 * fit:.2f} % of their training images")
            + (", so the set is small enough to fit." if fit <= FITTED else
               f": more than {100 * FITTED:g} %, so they have not fit it, and the verdicts "
               f"cannot speak of degradation.")
            + f" By test accuracy the order is "
            f"{', '.join(by_accuracy)}; the verdicts use training error, since degradation is "
            f"about what a network can fit, not what it generalises to.")


def trained_ratios(results: experiments.Results, name: str, data: CifarData) -> list[float]:
    """First-to-last gradient ratio of every seed's trained network ``name`` on the first
    batches of the training images (batch norm in training mode, as it trains)."""
    return [gradients.first_to_last_ratio(gradients.layer_gradient_norms(run.model, data.train))
            for run in sorted(results[name].runs, key=lambda r: r.seed)]


def gradient_ratios(depth: int, width: int, data: CifarData,
                    seeds: list[int]) -> dict[str, list[float]]:
    """First-to-last gradient ratio at initialisation, per seed, for plain and residual nets
    with and without batch norm (He initialisation, mixed training batches)."""
    out: dict[str, list[float]] = {}
    for seed in seeds:
        for name, norms in gradients.at_initialisation(depth, width, data.train, seed).items():
            out.setdefault(name, []).append(gradients.first_to_last_ratio(norms))
    return out


def stage_boundaries(depth: int) -> tuple[float, float]:
    """Where the width doubles in a CIFAR ResNet's list of 3×3 convolutions (stem first, then
    2n per stage): between stages 1 and 2, and 2 and 3, as positions between layer indices."""
    n = (depth - 2) // 6
    return (1 + 2 * n + 0.5, 1 + 4 * n + 0.5)


# --- figures: one colour per kind (plain, residual), one line style per depth -----------------

def kind_of(name: str) -> str:
    """"plain" or "residual", from a name that starts with one of them."""
    for kind in KINDS:
        if name.startswith(kind):
            return kind
    raise ConfigError(f"a network's name starts with 'plain' or 'residual', got {name!r}")


def depth_style(depth: int, depths) -> str:
    """The line style of ``depth`` among ``depths``: solid for the deepest, dashed for the
    shallowest, dash-dot and dotted between."""
    ds = check_depths(depths)
    if depth not in ds:
        raise ConfigError(f"depth {depth} is not one of {ds}")
    if depth == ds[-1]:
        return "-"
    between = ("-.", ":")
    return "--" if depth == ds[0] else between[(ds.index(depth) - 1) % 2]


def gradient_style(name: str) -> dict:
    """Plot options for a gradient series: its kind's colour; dashed without batch norm."""
    return {"color": family_colour(kind_of(name)),
            "linestyle": "--" if "no batch norm" in name else "-"}


def plot_lr_sweep(rates: RateSweep, depths) -> Figure:
    """Training error on the sweep's training images against the learning rate, one line per
    network; a ring marks each network's chosen rate."""
    figure, ax = plt.subplots(figsize=(5.2, 3.3))
    for name, by_rate in rates.train_error.items():
        kind, depth = kind_of(name), int(name.split()[-1])
        points = [(r, 100 * e) for r, e in by_rate.items() if e is not None]
        colour = family_colour(kind)
        ax.plot(*zip(*points), marker="o", markersize=4, color=colour,
                linestyle=depth_style(depth, depths), label=name)
        best = rates.best[name]
        if by_rate[best] is not None:
            ax.plot([best], [100 * by_rate[best]], marker="o", markersize=11, fillstyle="none",
                    color=colour, linestyle="none")
    log_ticks(ax, "x")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training error (%)")
    legend_outside(ax)
    return figure


def plot_training_loss(results: experiments.Results, depths) -> Figure:
    """Training loss after each epoch (mean over the seeds each network trained), log scale."""
    figure, ax = plt.subplots(figsize=(5.2, 3.3))
    for variant in results:
        kind, depth = kind_of(variant.name), int(variant.name.split()[-1])
        histories = [run.history for run in variant.runs]
        epochs = [h["epoch"] for h in histories[0]]
        loss = [_mean(h[i]["train_loss"] for h in histories) for i in range(len(epochs))]
        ax.plot(epochs, loss, color=family_colour(kind), linestyle=depth_style(depth, depths),
                label=variant.name)
    log_ticks(ax, "y")
    integer_ticks(ax)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    legend_outside(ax)
    return figure


# --- explorer --------------------------------------------------------------------------------

@labels(depth="depth (conv layers)", norm="batch norm")
def gradient_depth(depth: int = 20, norm: bool = True, width: int = 8, seed: int = 0) -> View:
    """Chapter 5: plain against residual CIFAR networks of ``depth`` at initialisation ->
    the RMS gradient reaching each conv layer on one batch of random images."""
    from convbook.gradients import first_to_last_ratio, layer_gradient_norms
    from convbook.viz.curves import plot_layer_norms

    check_positive("width", width)
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=generator)
    targets = torch.randint(0, 10, (64,), generator=generator)
    series = {}
    for name, skip in (("plain", False), ("residual", True)):
        torch.manual_seed(seed)
        model = CifarResNet(depth, width, skip=skip, norm=norm)
        series[name] = layer_gradient_norms(model, (images, targets), batches=1)
    figure, ax = plt.subplots(figsize=(5.2, 3.3))
    plot_layer_norms(series, ax=ax, boundaries=stage_boundaries(depth), style=gradient_style)
    ax.set_title(f"depth {depth}, {'with' if norm else 'without'} batch norm, at initialisation")
    figure.tight_layout()
    numbers = {f"first / last layer, {name}": f"{first_to_last_ratio(values):.2g}"
               for name, values in series.items()}
    return View(figure, numbers)

