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
