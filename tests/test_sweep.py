"""convbook.sweep: held-out splits never touch the test set; each arm gets its best rate."""

from functools import partial

import pytest
import torch
from convbook import nets, profiles, sweep
from convbook.data import CifarData
from convbook.errors import ConfigError
from convbook.train import RECIPE


def _data(n=96, test=40):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n + test, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.arange(n + test) % 10
    return CifarData((images[:n], labels[:n]), (images[n:], labels[n:]), "random images")


def test_held_out_splits_the_training_images_and_drops_the_test_set():
    data = _data()
    split = sweep.held_out(data, 16, seed=3)
    assert len(split.train[1]) == 80 and len(split.test[1]) == 16
    train_rows = {bytes(x.numpy().tobytes()) for x in data.train[0]}
    test_rows = {bytes(x.numpy().tobytes()) for x in data.test[0]}
    held_rows = {bytes(x.numpy().tobytes()) for x in split.test[0]}
    kept_rows = {bytes(x.numpy().tobytes()) for x in split.train[0]}
    assert held_rows <= train_rows and not held_rows & test_rows and not held_rows & kept_rows
    assert torch.equal(sweep.held_out(data, 16, seed=3).test[0], split.test[0])  # reproducible
    assert "held out" in split.describe()


@pytest.mark.parametrize("size", [0, 96, 200, 1.5, True, None])
def test_held_out_refuses_a_size_that_leaves_nothing(size):
    with pytest.raises(ConfigError, match="between 1 and 95"):
        sweep.held_out(_data(), size)


def _sweep(table):
    return sweep.Sweep((0.1, 0.2, 0.4), table, RECIPE, "some images")


def test_best_rate_is_the_highest_mean_and_ties_go_to_the_lower_rate():
    s = _sweep({"a": {0.1: [0.5, 0.7], 0.2: [0.6, 0.8], 0.4: [0.1, 0.2]},
                "b": {0.1: [0.5, 0.5], 0.2: [0.4, 0.4], 0.4: [0.5, 0.5]}})
    assert s.best == {"a": 0.2, "b": 0.1}
    assert s.recipe("a").lr == 0.2 and s.recipe("a").epochs == RECIPE.epochs
    assert s.edge() == ["b"]
    text = s.describe()
    assert "chosen: a: 0.2; b: 0.1" in text and "edge of the sweep" in text and "b" in text
    row = s.table().rows[0]
    assert row == {"variant": "a", "lr 0.1": 60.0, "lr 0.2": 70.0, "lr 0.4": 15.0, "chosen lr": 0.2}
    with pytest.raises(ConfigError, match="no variant 'c'"):
        s.recipe("c")


def test_a_sweep_with_the_best_rate_inside_says_nothing_of_edges():
    s = _sweep({"a": {0.1: [0.5], 0.2: [0.6], 0.4: [0.55]}})
    assert s.edge() == [] and "edge" not in s.describe()


@pytest.mark.parametrize("rates", [(0.1,), (0.1, 0.1), (0.1, -0.2), (0.1, True), ()])
def test_learning_rates_refuses_too_few_or_bad_rates(rates):
    with pytest.raises(ConfigError, match="rates"):
        sweep.learning_rates({"n": partial(nets.CifarNet, 4)}, _data(), profiles.get("smoke"),
                             rates)


def test_learning_rates_trains_each_variant_at_each_rate_and_records_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVBOOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CONVBOOK_RESULTS", str(tmp_path / "results.json"))
    s = sweep.learning_rates({"n": partial(nets.CifarNet, 4)}, _data(), profiles.get("smoke"),
                             (0.05, 0.5), seeds=[0], held=24, device="cpu", jobs=1)
    assert set(s.accuracy["n"]) == {0.05, 0.5}
    assert all(len(v) == 1 and 0 <= v[0] <= 1 for v in s.accuracy["n"].values())
    assert s.best["n"] in (0.05, 0.5) and "24 training images held out" in s.data
    assert not (tmp_path / "results.json").exists()  # a sweep is not a result of the chapter


@pytest.mark.parametrize("held", [0, -5, 1.5, True, None])
def test_reading_refuses_a_held_out_count_that_is_not_a_count(held):
    s = _sweep({"a": {0.1: [0.5], 0.2: [0.6], 0.4: [0.55]}})
    with pytest.raises(ConfigError, match="held is the number of held-out images"):
        sweep.reading(s, held)


def test_reading_names_variants_as_prose_does():
    s = _sweep({"a": {0.1: [0.5], 0.2: [0.6], 0.4: [0.55]}})
    text = sweep.reading(s, 1000, {"a": "the plain network"})
    assert "chose 0.2 for the plain network" in text
    assert "moved 10.0 points for the plain network" in text


def test_held_out_splits_rings_into_rings():
    """Chapter 9's sweep: the split of a segmentation set keeps its kind (and its pixel labels)."""
    from convbook import synthetic

    rings = synthetic.ring_data(24, 8)
    split = sweep.held_out(rings, 6, seed=1)
    assert isinstance(split, synthetic.RingData)
    assert len(split.train[0]) == 18 and len(split.test[0]) == 6
    assert split.test[1].shape[1:] == rings.train[1].shape[1:]  # a label per pixel
    held = {bytes(x.numpy().tobytes()) for x in split.test[0]}
    assert held <= {bytes(x.numpy().tobytes()) for x in rings.train[0]}
    assert not held & {bytes(x.numpy().tobytes()) for x in rings.test[0]}


def test_a_segmentation_sweep_names_its_score_and_claims_no_binomial_error():
    s = sweep.Sweep((0.1, 0.2, 0.4), {"a": {0.1: [0.5], 0.2: [0.6], 0.4: [0.55]}}, RECIPE,
                    "rings", metric="mean IoU")
    assert "held-out mean IoU (%)" in s.table().caption
    text = sweep.reading(s, 500)
    assert "held-out mean IoU moved 10.0 points for a" in text
    assert "standard error" not in text


def test_compare_at_rates_starts_from_the_recipe_it_is_given():
    from convbook import segmentation

    seen = []

    class Called(Exception):
        pass

    class FakeSetup:
        profile = profiles.get("book")

        def compare(self, variants, data, recipe=None, secondary=(), **options):
            seen.append((recipe.lr, recipe.batch_size, options.get("task")))
            raise Called  # the call is all this test needs

    dense = segmentation.DENSE_RECIPE
    with pytest.raises(Called):
        sweep.compare_at_rates(FakeSetup(), {"a": None}, None, {}, recipe=dense,
                               task=segmentation.SEGMENTATION)
    assert seen == [(dense.lr, dense.batch_size, segmentation.SEGMENTATION)]


def _scored(correct_by_rate, base_lr=0.3):
    """A sweep of one variant, one seed, from per-image 0/1 scores at each rate."""
    accuracy = {"net": {r: [float(c.float().mean())] for r, c in correct_by_rate.items()}}
    scores = {"net": {r: [c.float()] for r, c in correct_by_rate.items()}}
    return sweep.Sweep(tuple(correct_by_rate), accuracy, RECIPE.with_(lr=base_lr),
                       "held-out images", scores=scores)


def _correct(right: int, n: int = 1000, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    c = torch.zeros(n)
    c[torch.randperm(n, generator=g)[:right]] = 1
    return c


def test_a_rate_that_beats_the_recipes_only_by_noise_does_not_replace_it():
    # 0.15 leads by 0.6 points on 1,000 images: far inside two standard errors
    s = _scored({0.15: _correct(516, seed=1), 0.3: _correct(510, seed=2), 0.6: _correct(505, seed=3)})
    assert s.leader == {"net": 0.15} and s.best == {"net": 0.3}
    leader, diff, error = s.kept()["net"]
    assert leader == 0.15 and abs(diff - 0.006) < 1e-9 and 0.015 < error < 0.03
    text = sweep.reading(s, 1000)
    assert "chose 0.3 for net" in text
    assert "For net the best held-out rate, 0.15, beat the recipe's 0.3 by 0.6 points" in text
    assert "so it keeps 0.3" in text
    assert s.edge() == []  # the kept rate is inside the sweep


def test_a_rate_that_clearly_beats_the_recipes_replaces_it():
    base = _correct(400, seed=2)
    better = base.clone()
    wrong = torch.nonzero(base == 0).flatten()[:150]
    better[wrong] = 1  # right on every image 0.3 got right, and on 150 more
    s = _scored({0.15: better, 0.3: base, 0.6: _correct(300, seed=4)})
    assert s.best == {"net": 0.15} and s.kept() == {}
    diff, error = s.margin("net", 0.15)
    assert abs(diff - 0.15) < 1e-9 and diff > sweep.STANDARD_ERRORS * error


def test_without_the_recipes_rate_in_the_sweep_the_leader_is_chosen():
    s = _scored({0.1: _correct(516, seed=1), 0.2: _correct(510, seed=2)}, base_lr=0.3)
    assert s.margin("net", 0.1) is None and s.best == {"net": 0.1}


def test_rates_around_a_profiles_rate_include_it():
    assert sweep.rates_around(0.3) == sweep.RATES == (0.15, 0.3, 0.6)
    assert sweep.rates_around(profiles.get("full").recipe.lr) == (0.2, 0.4, 0.8)
    for bad in (0, -0.1, True, "0.3"):
        with pytest.raises(ConfigError, match="positive learning rate"):
            sweep.rates_around(bad)


def test_a_rate_at_which_a_network_diverges_scores_zero(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVBOOK_CACHE", str(tmp_path / "cache"))
    s = sweep.learning_rates({"n": partial(nets.CifarNet, 4)}, _data(), profiles.get("smoke"),
                             (0.05, 1e30), seeds=[0], held=24, device="cpu", jobs=1)
    assert s.accuracy["n"][1e30] == [0.0] and s.best["n"] == 0.05
    assert s.held == 24 and "24 training images held out" in s.data


def test_a_tie_with_the_recipes_rate_goes_to_the_recipes_rate():
    s = _sweep({"a": {0.1: [0.5], 0.2: [0.6], 0.4: [0.6]}})  # RECIPE's rate is 0.3: not tried
    assert s.leader == {"a": 0.2}
    tied = sweep.Sweep((0.15, 0.3, 0.6), {"a": {0.15: [0.448], 0.3: [0.448], 0.6: [0.42]}},
                       RECIPE, "some images")
    assert tied.leader == {"a": 0.3} and tied.kept() == {}
