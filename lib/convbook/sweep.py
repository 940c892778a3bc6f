"""Fair learning rates: each arm of a comparison trained at the rate that suits it.

A comparison of two architectures at one shared learning rate can measure the rate instead of
the architectures (a net without batch norm, or one with zero-started offsets, may want another).
``learning_rates`` trains every variant at a few rates on a split held out from the *training*
images (``held_out``: the test set is never looked at) and keeps the recipe's rate for each
variant unless another beat it there by more than ``STANDARD_ERRORS`` standard errors of the
paired difference (``Sweep.best``); it returns the table a chapter shows beside its verdict.
The verdict's comparison then trains each arm at its chosen rate (``compare_at_rates``) on
the whole training set, scored on the test set as before.

    chosen = sweep.learning_rates({"plain": ..., "residual": ...}, cifar, setup.profile,
                                  rates=sweep.rates_around(0.3), seeds=[0])
    chosen.best           # {"plain": 0.15, "residual": 0.3}
    chosen.table()        # variant x rate: held-out accuracy (mean over seeds)
    results = sweep.compare_at_rates(setup, variants, cifar, chosen.best)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

import torch

from convbook import experiments
from convbook.data import CifarData
from convbook.errors import ConfigError
from convbook.profiles import Profile
from convbook.tables import Table
from convbook.train import DivergedError, Recipe


def rates_around(lr: float) -> tuple[float, float, float]:
    """The book's sweep: half, once and twice a recipe's rate (``setup.profile.recipe.lr``:
    0.3 in ``book``, 0.4 in ``full``), so the recipe's own rate is always among those tried."""
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise ConfigError(f"lr must be a positive learning rate, e.g. 0.3, got {lr!r}")
    return (lr / 2, float(lr), lr * 2)


RATES = rates_around(0.3)  # the book profile's sweep: 0.15, 0.3, 0.6
# Another rate replaces the recipe's only if it beats it on the held-out images by more than
# this many standard errors of the paired difference: a one-seed sweep on 1,000 images cannot
# tell rates a point apart, and choosing among them by chance would move the verdicts.
STANDARD_ERRORS = 2.0


def held_out(data, size: int, seed: int = 0):
    """The training images split in two: ``size`` of them (drawn at random, with ``seed``)
    become the "test" set the sweep scores on, the rest its training set. The real test set is
    dropped, so nothing chosen with this data can have seen it. ``data`` is a ``CifarData`` or
    any frozen dataclass with ``train`` and ``test`` pairs (chapter 9's rings); the split is of
    the same kind."""
    images, labels = data.train
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size < len(labels):
        raise ConfigError(f"held_out needs a whole number of images between 1 and "
                          f"{len(labels) - 1} (fewer than the {len(labels):,} training images), "
                          f"got {size!r}")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    order = order.to(labels.device)
    held, kept = order[:size], order[size:]
    if isinstance(data, CifarData):
        return CifarData((images[kept], labels[kept]), (images[held], labels[held]),
                         f"{data.source}, {size:,} training images held out for choosing")
    return dataclasses.replace(data, train=(images[kept], labels[kept]),
                               test=(images[held], labels[held]))


@dataclass
class Sweep:
    """Held-out score of each variant at each rate (mean and per seed), and each one's best.
    ``metric`` names the score: "accuracy" for classification, "mean IoU" for segmentation."""

    rates: tuple[float, ...]
    accuracy: dict[str, dict[float, list[float]]]  # variant -> rate -> score per seed
    base: Recipe
    data: str
    metric: str = "accuracy"
    # variant -> rate -> one tensor of per-image held-out scores per seed (in seed order)
    scores: dict[str, dict[float, list[torch.Tensor]]] | None = field(default=None, repr=False)
    held: int | None = None  # how many held-out images scored each run

    @property
    def leader(self) -> dict[str, float]:
        """Each variant's rate with the highest mean held-out score (ties: the recipe's rate,
        then the lower rate)."""
        return {name: max(self.rates, key=lambda r: (_mean(by_rate[r]), r == self.base.lr, -r))
                for name, by_rate in self.accuracy.items()}

    def margin(self, name: str, rate: float) -> tuple[float, float] | None:
        """``rate``'s held-out score minus the recipe's rate's for variant ``name``, paired over
        the held-out images (per-image differences averaged over seeds), and the standard error
        of that mean. None without per-image scores or when the recipe's rate was not tried."""
        if self.scores is None or self.base.lr not in self.rates:
            return None
        by_rate = self.scores[name]
        if len(by_rate[rate]) != len(by_rate[self.base.lr]):
            raise ConfigError(f"{name}: {len(by_rate[rate])} seeds at lr {rate:g} against "
                              f"{len(by_rate[self.base.lr])} at the recipe's {self.base.lr:g}; "
                              f"a paired margin needs the same seeds at both")
        per_image = torch.stack([a - b for a, b in zip(by_rate[rate], by_rate[self.base.lr])])
        diff = per_image.double().mean(0)  # one difference per image, averaged over seeds
        return diff.mean().item(), (diff.std() / len(diff) ** 0.5).item()

    @property
    def best(self) -> dict[str, float]:
        """Each variant's chosen rate: its leader where that beats the recipe's own rate on the
        held-out images by more than ``STANDARD_ERRORS`` standard errors of the paired
        difference, else the recipe's rate (the sweep catches a rate that is clearly wrong for
        a network; it cannot choose among rates its images cannot tell apart). Without per-image
        scores, or when the recipe's rate was not tried, the leader."""
        chosen = {}
        for name, rate in self.leader.items():
            margin = None if rate == self.base.lr else self.margin(name, rate)
            if margin is not None and margin[0] <= STANDARD_ERRORS * margin[1]:
                rate = self.base.lr
            chosen[name] = rate
        return chosen

    def kept(self) -> dict[str, tuple[float, float, float]]:
        """Variants whose leader did not beat the recipe's rate by enough: name -> (leader,
        margin, standard error)."""
        out = {}
        for name, rate in self.leader.items():
            if rate != self.best[name]:
                out[name] = (rate, *self.margin(name, rate))
        return out

    def recipe(self, name: str) -> Recipe:
        """The base recipe at variant ``name``'s chosen rate."""
        if name not in self.accuracy:
            raise ConfigError(f"no variant {name!r} in this sweep; it has "
                              f"{', '.join(self.accuracy)}")
        return self.base.with_(lr=self.best[name])

    def edge(self) -> list[str]:
        """Variants whose best rate is the lowest or highest tried: a wider sweep might do better."""
        if len(self.rates) < 2:
            return list(self.accuracy)
        return [name for name, rate in self.best.items() if rate in (min(self.rates), max(self.rates))]

    def table(self) -> Table:
        """One row per variant: held-out score (%, mean over seeds) at each rate, and the rate
        chosen."""
        rows = [{"variant": name,
                 **{f"lr {rate:g}": round(100 * _mean(by_rate[rate]), 1) for rate in self.rates},
                 "chosen lr": self.best[name]}
                for name, by_rate in self.accuracy.items()]
        return Table(rows, caption=f"Learning-rate sweep: held-out {self.metric} (%), {self.data}")

    def describe(self) -> str:
        """One sentence for the page: what was swept, on what, and what each arm got."""
        chosen = "; ".join(f"{name}: {rate:g}" for name, rate in self.best.items())
        seeds = len(next(iter(next(iter(self.accuracy.values())).values())))
        text = (f"Learning rates {', '.join(f'{r:g}' for r in self.rates)} were tried for each "
                f"network on {self.data} ({seeds} seed{'s' if seeds != 1 else ''}; the test "
                f"images were not used); chosen: {chosen}.")
        at_edge = self.edge()
        if at_edge:
            text += (f" For {', '.join(at_edge)} the best rate is at the edge of the sweep, so a "
                     f"rate outside it might do better.")
        return text + _kept_text(self, {})


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _kept_text(chosen: Sweep, names: dict[str, str]) -> str:
    """One sentence per variant whose best held-out rate did not beat the recipe's by enough."""
    text = ""
    for name, (rate, diff, error) in chosen.kept().items():
        text += (f" For {names.get(name, name)} the best held-out rate, {rate:g}, beat the "
                 f"recipe's {chosen.base.lr:g} by {100 * diff:.1f} points, within "
                 f"{STANDARD_ERRORS:g} standard errors ({100 * STANDARD_ERRORS * error:.1f} "
                 f"points), so it keeps {chosen.base.lr:g}.")
    return text


def reading(chosen: Sweep, held: int | None = None, names: dict[str, str] | None = None) -> str:
    """What the sweep chose, on what, what the comparison does with it, and how much of the
    gaps between rates the ``held`` held-out images' sampling alone could make (default: the
    number the sweep recorded). ``names``: how prose names each variant (default: its key)."""
    held = chosen.held if held is None else held
    if isinstance(held, bool) or not isinstance(held, int) or held < 1:
        raise ConfigError(f"held is the number of held-out images the sweep scored on, a whole "
                          f"number >= 1, got {held!r}")
    names = names or {}
    seeds = {len(by_seed) for by_rate in chosen.accuracy.values() for by_seed in by_rate.values()}
    chose = _and([f"{rate:g} for {names.get(name, name)}" for name, rate in chosen.best.items()])
    text = (f"Scored on held-out training images ({chosen.data}; "
            f"{_and([str(n) for n in sorted(seeds)])} seed{'s' if seeds != {1} else ''}; the "
            f"test images were not used), the rates {_and([f'{r:g}' for r in chosen.rates])} "
            f"chose {chose}. The comparison below trains each network at the rate chosen for it.")
    text += _kept_text(chosen, names)
    edge = chosen.edge()
    if edge:
        text += (f" For {_and([names.get(name, name) for name in edge])} the best rate is at "
                 f"the edge of those tried, so a rate beyond it might do better still.")
    means = {name: [_mean(a) for a in by_rate.values()] for name, by_rate in chosen.accuracy.items()}
    gaps = _and([f"{100 * (max(m) - min(m)):.1f} points for {names.get(n, n)}"
                 for n, m in means.items()])
    if chosen.metric != "accuracy":  # no binomial error for a score like mean IoU
        return text + (f" From the best rate to the worst the held-out {chosen.metric} moved "
                       f"{gaps}.")
    everything = [m for by_name in means.values() for m in by_name]
    p = _mean(everything)
    error = (p * (1 - p) / held) ** 0.5  # one accuracy's standard error on the held-out images
    return text + (f" Each held-out accuracy has a standard error of about {100 * error:.1f} "
                   f"points from its {held:,} images alone; from the best rate to the worst "
                   f"the accuracy moved {gaps}: the sweep rules out a rate that is clearly wrong "
                   f"for one network, not smaller differences.")


def learning_rates(variants: dict, data, profile: Profile,
                   rates: Sequence[float], seeds: Sequence[int] = (0,),
                   recipe: Recipe | None = None, held: int | None = None,
                   **compare_options) -> Sweep:
    """Train each variant at each rate in ``rates`` on ``held_out(data, held)`` (default: a
    fifth of the training images held out) and return the ``Sweep``. ``recipe`` is the base
    recipe (default: the profile's); ``compare_options`` go to ``experiments.compare`` (device,
    amp, jobs...). Runs are cached like every other run."""
    rates = tuple(rates)
    if len(rates) < 2 or any(isinstance(r, bool) or not isinstance(r, (int, float)) or not r > 0
                             for r in rates):
        raise ConfigError(f"rates must be two or more positive learning rates, e.g. "
                          f"(0.1, 0.2, 0.4), got {rates!r}")
    if len(set(rates)) != len(rates):
        raise ConfigError(f"rates has a repeated value: {rates!r}")
    recipe = recipe or profile.recipe
    held = len(data.train[1]) // 5 if held is None else held
    split = held_out(data, held)
    accuracy: dict[str, dict[float, list[float]]] = {name: {} for name in variants}
    scores: dict[str, dict[float, list[torch.Tensor]]] = {name: {} for name in variants}
    for rate in rates:
        trained = trained_or_none(partial(experiments.compare, profile=profile), variants, split,
                                  seeds=list(seeds), recipe=recipe.with_(lr=float(rate)),
                                  latency=False, record=False, **compare_options)
        for name in variants:
            if trained[name] is None:  # diverged: scored 0 on every held-out image
                accuracy[name][rate] = [0.0] * len(seeds)
                scores[name][rate] = [torch.zeros(held) for _ in seeds]
                continue
            accuracy[name][rate] = trained[name].accuracies
            runs = sorted(trained[name].runs, key=lambda run: run.seed)
            scores[name][rate] = [run.correct.float().cpu() for run in runs]
    task = compare_options.get("task", experiments.CLASSIFICATION)
    metric = task.metric.removeprefix("test ")  # "test accuracy" -> "accuracy"
    described = (split.describe() if isinstance(split, CifarData) else
                 f"{data.describe()}, {held:,} of the training images held out for choosing")
    return Sweep(rates, accuracy, recipe, described, metric, scores, held)


def trained_or_none(compare, variants: dict, data, **options) -> dict:
    """``compare(variants, data, **options)``, each variant's result by name. A rate at which a
    network diverges is a finding of a sweep, not an error: that variant is None and the others
    are trained one by one (finished runs are cached)."""
    try:
        results = compare(variants, data, **options)
        return {name: results[name] for name in variants}
    except DivergedError:
        out = {}
        for name, build in variants.items():
            try:
                out[name] = compare({name: build}, data, **options)[name]
            except DivergedError:
                out[name] = None
        return out


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def compare_at_rates(setup, variants: dict, data, rates: dict[str, float],
                     secondary: Sequence[str] = (), recipe: Recipe | None = None,
                     **options) -> experiments.Results:
    """``setup.compare`` with each variant at its own learning rate (``rates``: name -> rate,
    e.g. a sweep's ``best``; a variant not named trains at the recipe's), one comparison per
    distinct rate, merged in ``variants``' order as one ``Results`` so that the arms pair seed
    by seed. ``recipe``: the base recipe (default: the profile's); ``secondary`` variants train
    from the first seed only; ``options`` go to every ``setup.compare`` (e.g. ``latency=False``,
    ``task=...``)."""
    unknown = sorted(set(rates) - set(variants))
    if unknown:
        raise ConfigError(f"rates names {unknown}, which are not variants here; the variants "
                          f"are {', '.join(variants)}")
    base = recipe or setup.profile.recipe
    by_rate: dict[float, list[str]] = {}
    for name in variants:
        by_rate.setdefault(float(rates.get(name, base.lr)), []).append(name)
    parts = [setup.compare({name: variants[name] for name in names}, data,
                           recipe=base.with_(lr=rate),
                           secondary=[name for name in secondary if name in names], **options)
             for rate, names in by_rate.items()]
    found = {v.name: v for part in parts for v in part}
    first = parts[0]
    return experiments.Results([found[name] for name in variants], first.profile, base,
                               first.data, first.device, first.seeds, first.precision,
                               first.task)


def results_table(results: experiments.Results, rates: dict[str, float]) -> Table:
    """The comparison's table with each network's learning rate beside it."""
    rows = [{**row, "learning rate": f"{rates.get(row['variant'], results.recipe.lr):g}"}
            for row in results.rows()]
    return Table(rows, caption=results.caption() + " Learning rates: each deciding network's "
                 "chosen on held-out training images (the sweep above); any other network's is "
                 "the book's.")
