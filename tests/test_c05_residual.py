"""Chapter 5: the interaction contrast, every label of each verdict rule, the learning-rate
sweep (divergence included), readings and figures."""

import math

import matplotlib.pyplot as plt
import pytest
import torch
from convbook import book, experiments, profiles, stats, sweep
from convbook.chapters import c05_residual as c05
from convbook.data import CifarData
from convbook.errors import ConfigError
from convbook.train import RECIPE, DivergedError
from convbook.viz import curves
from torch import nn

C, R, I = stats.CONFIRMED, stats.REFUTED, stats.INCONCLUSIVE
SEEDS, IMAGES = 5, 1000
NAMES = ("plain 8", "plain 20", "residual 8", "residual 20")


def _correct(wrong, images=IMAGES, seed=0):
    """Seeds × images correctness with ``wrong[s]`` misclassified images in seed ``s``."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for count in wrong:
        row = torch.ones(images)
        row[torch.randperm(images, generator=g)[:count]] = 0
        rows.append(row)
    return torch.stack(rows)


def _scores(**wrong):
    """Correctness on the training images of the four networks (``plain_20=[...]`` wrong per
    seed; networks not named fit every image) and on 500 test images (random)."""
    train = {name: _correct(wrong.get(name.replace(" ", "_"), [0] * SEEDS), seed=i)
             for i, name in enumerate(NAMES)}
    g = torch.Generator().manual_seed(9)
    test = {name: (torch.rand(SEEDS, 500, generator=g) < 0.5).float() for name in NAMES}
    return train, test


def _degradation(**wrong):
    return c05.degradation(*_scores(**wrong), (8, 20))


DEGRADED = [30, 25, 35, 28, 32]
NOISE = [1, 0, 0, 2, 0]


# --- the contrasts -----------------------------------------------------------------------------

def test_interaction_is_the_difference_of_the_two_depth_gaps_with_doubled_terms():
    train, _ = _scores(plain_20=DEGRADED, residual_20=[3, 1, 0, 2, 4], residual_8=NOISE)
    d = c05.error_interaction(train["plain 20"], train["plain 8"], train["residual 20"],
                              train["residual 8"])
    error = {n: 1 - train[n].mean().item() for n in NAMES}
    expected = (error["plain 20"] - error["plain 8"]) - (error["residual 20"] - error["residual 8"])
    assert d.mean == pytest.approx(expected)
    half = stats.paired_difference((train["plain 8"] + train["residual 20"]) / 2,
                                   (train["plain 20"] + train["residual 8"]) / 2)
    assert (d.low, d.high, d.se) == pytest.approx((2 * half.low, 2 * half.high, 2 * half.se))
    assert d.low < d.mean < d.high and d.seeds == SEEDS and d.images == IMAGES


def test_interaction_refuses_networks_scored_on_other_images():
    a, b = _correct([0] * SEEDS), _correct([0] * SEEDS, images=999)
    with pytest.raises(ConfigError, match="same seeds and images"):
        c05.error_interaction(a, a, a, b)


def test_error_difference_is_a_minus_b_in_error():
    worse, better = _correct(DEGRADED), _correct([0] * SEEDS)
    assert c05.error_difference(worse, better).mean == pytest.approx(sum(DEGRADED) / SEEDS / IMAGES)


@pytest.mark.parametrize("depths", [(8,), (20, 8), (8, 9), (8, 8, 20), "8,20", (8.0, 20)])
def test_depths_must_be_two_or_more_cifar_depths_in_order(depths):
    with pytest.raises(ConfigError, match="6n \\+ 2"):
        c05.check_depths(depths)


def test_degradation_names_missing_networks():
    train, test = _scores()
    del train["residual 20"]
    with pytest.raises(ConfigError, match="residual 20"):
        c05.degradation(train, test, (8, 20))


# --- C5.1 ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("wrong, label, says", [
    ({"plain_20": DEGRADED}, C, "degradation"),
    ({"residual_20": DEGRADED}, R, "opposite of degradation"),
    ({"plain_20": NOISE, "residual_20": [0, 1, 0, 0, 2]}, I, "could not have detected"),
    # positive only because the residual networks improved with depth: not degradation
    ({"residual_8": [8, 10, 9, 7, 10]}, I, "not because the plain ones got worse"),
    # the shallow networks never fit the set: a budget, not degradation
    ({"plain_8": [300] * 5, "residual_8": [300] * 5, "plain_20": [500] * 5,
      "residual_20": [300] * 5},
     I, "have not fit the set"),
    ({}, I, "no spread"),  # every network fits every image in every seed
])
def test_c51_every_label(wrong, label, says):
    v = c05.verdict_c51(_degradation(**wrong))
    assert v.label == label and says in v.text
    assert "20-layer plain minus 8-layer plain" in v.text and "test error" in v.text


def test_c51_undecided_at_20_layers_points_to_deeper_networks():
    assert "the `full` profile goes to 56" in c05.verdict_c51(_degradation()).text
    deep = c05.degradation(*[{n.replace("20", "56"): m for n, m in s.items()}
                             for s in _scores()], (8, 56))
    assert "`full` profile" not in c05.verdict_c51(deep).text


# --- C5.2 ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("c51, at_init, trained, label", [
    (C, [20.0, 30.0], [5.0, 0.5], R),      # degraded with gradients that reach the first layer
    (C, [0.01, 0.02], [0.05, 0.01], I),    # together, but co-occurrence does not show cause
    (C, [0.5, 2.0], [0.05, 0.3], I),       # trained and initial disagree
    (I, [0.01, 0.02], [0.01, 0.01], I),    # nothing to explain
    (R, [20.0, 30.0], [5.0, 5.0], I),
])
def test_c52_every_label(c51, at_init, trained, label):
    v = c05.verdict_c52(stats.Verdict("C5.1", c51, ""), at_init, trained, [1e-3, 2e-3], 20)
    assert v.label == label and "never confirm" in v.text


def test_c52_never_confirms_and_names_growth_toward_the_input():
    for c51 in (C, R, I):
        for ratios in ([1e-4], [0.05], [0.1], [1.0], [50.0]):
            v = c05.verdict_c52(stats.Verdict("C5.1", c51, ""), ratios, ratios, ratios, 20)
            assert v.label != C
    v = c05.verdict_c52(stats.Verdict("C5.1", C, ""), [27.0, 50.0], [3.0], [0.5], 20)
    assert "grows toward the input" in v.text and "27 to 50 times" in v.text
    with pytest.raises(ConfigError):
        c05.verdict_c52(stats.Verdict("C5.1", C, ""), [], [1.0], [1.0], 20)


# --- C5.3 ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("wrong, label", [
    ({"plain_20": DEGRADED}, C), ({"residual_20": DEGRADED}, R),
    ({"plain_20": NOISE, "residual_20": [0, 1, 0, 0, 2]}, I), ({}, I),
    ({"plain_8": [300] * 5, "plain_20": [500] * 5, "residual_20": [300] * 5}, I),
])
def test_c53_every_label(wrong, label):
    v = c05.verdict_c53(_degradation(**wrong))
    assert v.label == label and "does not test it" in v.text


# --- the learning-rate sweep ---------------------------------------------------------------------

def _data(n=60, test=20):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n + test, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.arange(n + test) % 10
    return CifarData((images[:n], labels[:n]), (images[n:], labels[n:]), "random images")


class _FakeSetup:
    """Trains nothing: every network scores ``accuracy(name, lr)`` held out and
    ``error(name, lr)`` in training; a (name, lr) in ``diverge`` raises as ``fit`` would."""

    seed = 0

    def __init__(self, accuracy, error, diverge=()):
        self.accuracy, self.error, self.diverge = accuracy, error, set(diverge)
        self.calls, self.results = [], []

    def compare(self, networks, data, seeds=(0,), recipe=RECIPE, secondary=(), **options):
        self.calls.append((sorted(networks), recipe.lr))
        if any((name, recipe.lr) in self.diverge for name in networks):
            raise DivergedError("the training loss became nan")
        variants = []
        for name in networks:
            runs = [experiments.Run(s, self.accuracy(name, recipe.lr), torch.ones(3), [],
                                    self.error(name, recipe.lr), nn.Identity())
                    for s in (seeds[:1] if name in secondary else seeds)]
            variants.append(experiments.Variant(name, 10, 100, runs))
        profile = profiles.get("smoke")
        self.results.append(experiments.Results(variants, profile, recipe, "d", "cpu",
                                                tuple(seeds)))
        return self.results[-1]


def _four():
    return c05.variants((8, 20), 2)


def test_sweep_picks_each_network_by_held_out_accuracy_and_survives_divergence():
    best = {"plain 8": 0.3, "plain 20": 0.1, "residual 8": 0.3, "residual 20": 0.9}
    fake = _FakeSetup(lambda name, lr: 0.9 if lr == best[name] else 0.5,
                      lambda name, lr: 0.34 if (name, lr) == ("plain 20", 0.3) else 0.0,
                      diverge={("plain 20", 0.9)})
    rates = c05.lr_sweep(fake, _four(), _data(), RECIPE, c05.sweep_rates(RECIPE))
    assert rates.best == best and rates.diverged() == [("plain 20", 0.9)]
    assert rates.train_error["plain 20"][0.9] is None
    # at 0.9 the shared call diverged, then each network trained on its own
    assert fake.calls.count((["plain 20"], 0.9)) == 1 and len(fake.calls) == 3 + 4
    text = c05.sweep_reading(rates, (8, 20))
    assert "plain 20 0.0 %, 34.0 %, diverged" in text
    assert "+34.0 points at 0.3" in text and "at 0.9" not in text.split("would have been")[1]
    row = c05.sweep_table(rates).rows[1]
    assert row["lr 0.9: training error %"] == "diverged" and row["chosen lr"] == "0.1"
    assert "12 training images held out" in rates.chosen.data


def test_sweep_refuses_a_network_that_diverges_at_every_rate_and_too_few_rates():
    rates = c05.sweep_rates(RECIPE)
    fake = _FakeSetup(lambda n, lr: 0.5, lambda n, lr: 0.0,
                      diverge={("residual 8", r) for r in rates})
    with pytest.raises(ConfigError, match="residual 8 diverged at every rate"):
        c05.lr_sweep(fake, _four(), _data(), RECIPE, rates)
    with pytest.raises(ConfigError, match="three or more rates"):
        c05.lr_sweep(fake, _four(), _data(), RECIPE, (0.1, 0.3))


def test_at_chosen_rates_trains_each_rate_once_and_pairs_the_networks():
    chosen = {"plain 8": 0.3, "plain 20": 0.1, "residual 8": 0.3, "residual 20": 0.3}
    rates = c05.RateSweep(sweep.Sweep((0.1, 0.3, 0.9), {n: {r: [0.9 if r == chosen[n] else 0.1]
                                                            for r in (0.1, 0.3, 0.9)}
                                                        for n in chosen}, RECIPE, "d"),
                          {n: {r: 0.0 for r in (0.1, 0.3, 0.9)} for n in chosen})
    fake = _FakeSetup(lambda n, lr: 0.5, lambda n, lr: 0.0)
    results = c05.at_chosen_rates(fake, _four(), _data(), rates, secondary=["residual 20"])
    assert fake.calls == [(["plain 8", "residual 20", "residual 8"], 0.3), (["plain 20"], 0.1)]
    assert [v.name for v in fake.results[0]] == ["residual 20", "plain 8", "residual 8"]
    assert [v.name for v in results] == list(_four())
    assert len(results["residual 20"].runs) == 1


def test_recipe_and_rates_for_fitting():
    recipe = c05.fitting_recipe(RECIPE, 40)
    assert (recipe.epochs, recipe.augment, recipe.label_smoothing, recipe.flip_tta) == \
        (40, False, 0.0, False)
    assert c05.sweep_rates(RECIPE) == (0.1, 0.3, 0.9)


def test_a_real_sweep_and_run_score_every_training_image(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVBOOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CONVBOOK_JOBS", "1")
    setup = book.start("smoke", device="cpu")
    networks = c05.variants((8, 14), 2)
    data, recipe = _data(), c05.fitting_recipe(profiles.get("smoke").recipe, 1)
    rates = c05.lr_sweep(setup, networks, data, recipe, (0.05, 0.1, 0.2))
    assert set(rates.best) == set(networks) and not rates.diverged()
    results = c05.at_chosen_rates(setup, networks, data, rates)
    correct = c05.correct_on_training(results, data, amp=setup.amp)
    for variant in results:
        assert correct[variant.name].shape == (1, 60)
        assert 1 - correct[variant.name].mean().item() == \
            pytest.approx(variant.runs[0].final_train_error)
    text = c05.depths_reading(results, correct, (8, 14))
    assert "from 8 to 14 layers" in text


# --- readings and figures ------------------------------------------------------------------------

def _results_from(train, histories=None):
    variants = []
    for name, scores in train.items():
        runs = [experiments.Run(s, 0.5 + 0.01 * s, torch.ones(4), (histories or {}).get(name, []),
                                1 - row.mean().item(), nn.Identity())
                for s, row in enumerate(scores)]
        variants.append(experiments.Variant(name, 10, 100, runs))
    profile = profiles.get("book")
    return experiments.Results(variants, profile, profile.recipe, "d", "cpu", tuple(range(SEEDS)))


@pytest.mark.parametrize("wrong, says", [
    ({}, "fit every training image in every seed, so the set is small enough to fit"),
    ({"plain_8": [300] * 5}, "have not fit it"),
])
def test_depths_reading_follows_the_numbers(wrong, says):
    train, _ = _scores(**wrong, plain_20=DEGRADED)
    text = c05.depths_reading(_results_from(train), train, (8, 20))
    assert "from 8 to 20 layers" in text and says in text
    assert "rises from" in text or "falls from" in text
    assert "stays at 0.00 %" in text  # the residual networks fit everything


def test_design_and_gradient_readings():
    text = c05.design_reading(_data(), c05.fitting_recipe(RECIPE, 40), (8, 20, 32), 8, [0, 1])
    assert "60 training images, 40 epochs in batches of 64 (40 steps)" in text
    assert "no augmentation" in text and "20 layers from one seed" in text
    ratios = {f"{k}, {n}": [2.0, 3.0] for k in c05.KINDS for n in ("with batch norm",
                                                                    "no batch norm")}
    text = c05.gradient_reading(ratios, {"plain": [40.0], "residual": [1.5]}, 20)
    assert "the plain network's 2 to 3 with batch norm" in text and "40 after training" in text


def test_figures_colour_by_kind_and_style_by_depth():
    train, _ = _scores(plain_20=DEGRADED)
    history = [{"epoch": e, "train_loss": 1.0 / e} for e in (1, 2, 3)]
    results = _results_from(train, {n: history for n in NAMES})
    figure = c05.plot_training_loss(results, (8, 20))
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    assert lines["plain 8"].get_color() == lines["plain 20"].get_color()
    assert lines["plain 8"].get_color() != lines["residual 8"].get_color()
    assert lines["plain 8"].get_linestyle() != lines["plain 20"].get_linestyle()
    figure = curves.plot_families_by_depth(results, c05.KINDS, (8, 20))
    bars = [c for c in figure.axes[0].containers if hasattr(c, "has_yerr") and c.has_yerr]
    assert len(bars) == 2  # one per kind, error bars from the seeds' spread
    assert c05.gradient_style("plain, no batch norm")["linestyle"] == "--"
    assert c05.gradient_style("residual 20, trained")["color"] == lines["residual 8"].get_color()
    rates = c05.RateSweep(sweep.Sweep((0.1, 0.3), {n: {0.1: [0.5], 0.3: [0.6]} for n in NAMES},
                                      RECIPE, "d"),
                          {n: {0.1: 0.0, 0.3: None} for n in NAMES})
    figure = c05.plot_lr_sweep(rates, (8, 20))
    assert len(figure.axes[0].get_lines()) == 4  # the chosen rate diverged: no ring
    plt.close("all")
    with pytest.raises(ConfigError, match="plain"):
        c05.kind_of("dense 8")
    with pytest.raises(ConfigError, match="not one of"):
        c05.depth_style(14, (8, 20))
    assert [c05.depth_style(d, (8, 20, 32, 56)) for d in (8, 20, 32, 56)] == ["--", "-.", ":", "-"]


def test_one_minute_names_every_label():
    d = _degradation(plain_20=DEGRADED)
    v = [c05.verdict_c51(d), stats.Verdict("C5.2", R, ""), c05.verdict_c53(d)]
    text = c05.one_minute(*v, d)
    assert "C5.1 confirmed" in text and "refuted" in text and "C5.3 confirmed" in text
    assert math.isfinite(d.interaction.low)
