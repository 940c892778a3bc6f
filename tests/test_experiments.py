import warnings
from functools import partial

import pytest
import torch
from convbook import cache, experiments, nets, profiles
from convbook.blocks import BasicBlock
from convbook.data import CifarData
from convbook.train import RECIPE
from torch import nn


def _data(seed=0):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (64,), generator=generator)
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=generator)
    return CifarData(train=(images, labels), test=(images[:32], labels[:32]), source="synthetic")


def _net(width):
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(width, 10))


PROFILE = profiles.scaled(profiles.get("smoke"), epochs=1, batch_size=32)


def test_compare_trains_every_seed_measures_and_caches():
    variants = {"narrow": lambda: _net(4), "wide": lambda: _net(8)}
    first = experiments.compare(variants, _data(), PROFILE, seeds=[1, 2], device="cpu",
                                secondary=["narrow"])
    assert [v.name for v in first] == ["narrow", "wide"]
    assert [r.seed for r in first["narrow"].runs] == [1]
    assert [r.seed for r in first["wide"].runs] == [1, 2]
    assert first["wide"].params == 3 * 9 * 8 + 8 + 8 * 10 + 10
    assert set(first["wide"].latency) == {"forward", "forward_backward"}
    assert first["wide"].correct.shape == (2, 32)
    second = experiments.compare(variants, _data(), PROFILE, seeds=[1, 2], device="cpu",
                                 secondary=["narrow"], latency=False)
    assert all(r.cached for v in second for r in v.runs)
    for a, b in zip(first, second):
        assert a.accuracies == b.accuracies and a.history == b.history
        for key, value in a.model.state_dict().items():
            assert torch.equal(value, b.model.state_dict()[key])
    html = second._repr_html_()
    assert "profile &#x27;smoke&#x27;" in html and "synthetic" in html and "narrow" in html
    # the paired difference uses the seeds both ran
    diff = first.difference("wide", "narrow")
    assert diff.seeds == 1 and diff.images == 32


def test_compare_refuses_what_cannot_work():
    with pytest.raises(ValueError, match="at least one variant"):
        experiments.compare({}, _data(), PROFILE)
    with pytest.raises(ValueError, match="secondary names unknown"):
        experiments.compare({"a": lambda: _net(4)}, _data(), PROFILE, secondary=["b"])
    with pytest.raises(ValueError, match="must return an nn.Module"):
        experiments.compare({"a": lambda: "net"}, _data(), PROFILE, latency=False)


def _key(model, recipe=RECIPE, seed=0, data=None):
    return experiments.run_key(model, recipe, seed, data or _data(), torch.device("cpu"))


def test_cache_key_covers_what_shapes_a_run():
    torch.manual_seed(0)
    base = _key(_net(4))
    torch.manual_seed(0)
    assert _key(_net(4)) == base
    torch.manual_seed(1)
    assert _key(_net(4)) != base  # other initial weights
    torch.manual_seed(0)
    assert _key(_net(4), recipe=RECIPE.with_(lr=0.1)) != base  # a recipe field
    torch.manual_seed(0)
    assert _key(_net(4), seed=1) != base
    torch.manual_seed(0)
    assert _key(_net(4), data=_data(seed=1)) != base  # other data contents
    relabelled = _data()
    relabelled.test[1][0] = (relabelled.test[1][0] + 1) % 10
    torch.manual_seed(0)
    assert _key(_net(4), data=relabelled) != base
    # a flag that changes forward but not the weights
    torch.manual_seed(0)
    with_skip = _key(BasicBlock(8, 8, skip=True))
    torch.manual_seed(0)
    assert _key(BasicBlock(8, 8, skip=False)) != with_skip


def test_a_broken_cache_file_is_reported_deleted_and_rebuilt(tmp_path, monkeypatch):
    build = partial(nets.CifarNet, 4)
    first = experiments.train_run(build, _data(), PROFILE.recipe, seed=0, device="cpu")
    files = list((tmp_path / "cache" / "runs").glob("*.pt"))
    assert len(files) == 1
    files[0].write_bytes(files[0].read_bytes()[:100])  # a kill mid-write
    with pytest.warns(RuntimeWarning, match="cannot be read.*computing again"):
        again = experiments.train_run(build, _data(), PROFILE.recipe, seed=0, device="cpu")
    assert not again.cached and again.test_accuracy == first.test_accuracy
    third = experiments.train_run(build, _data(), PROFILE.recipe, seed=0, device="cpu")
    assert third.cached


def test_an_unwritable_cache_warns_and_the_run_goes_on(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CONVBOOK_CACHE", str(blocker))
    cache._warned.clear()
    with pytest.warns(RuntimeWarning, match="cannot be created"):
        run = experiments.train_run(partial(_net, 4), _data(), PROFILE.recipe, device="cpu")
    assert not run.cached and 0 <= run.test_accuracy <= 1


def test_no_partial_file_after_a_failed_write(tmp_path, monkeypatch):
    def explode(obj, handle):
        handle.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", explode)
    cache._warned.clear()
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert cache.save_atomic({"x": 1}, tmp_path / "run.pt") is False
    assert list(tmp_path.iterdir()) == []


def test_profiles():
    assert profiles.get("auto").name == ("full" if torch.cuda.is_available() else "book")
    assert profiles.get("smoke").epochs == 1
    assert profiles.get("book").seeds >= 3 and profiles.get("full").seeds >= 3
    assert profiles.get("book", seeds=5).seed_list(2) == [2, 3, 4, 5, 6]
    with pytest.raises(ValueError, match="choose one of: auto, smoke, book, full"):
        profiles.get("fast")
    with pytest.raises(ValueError, match="seeds must be a whole number"):
        profiles.get("book", seeds=0)


def test_results_link_the_recipe_page_on_the_website(monkeypatch):
    variants = {"narrow": lambda: _net(4)}
    results = experiments.compare(variants, _data(), PROFILE, seeds=[0], device="cpu",
                                  latency=False)
    assert "recipe.html" not in results._repr_html_()  # a live notebook has no such page
    monkeypatch.setenv("CONVBOOK_STATIC", "1")
    assert '<a href="recipe.html">Training recipe</a>' in results._repr_html_()


def test_accuracy_text_for_prose():
    runs = [experiments.Run(seed=s, test_accuracy=a, correct=torch.ones(4, dtype=torch.bool),
                            history=[], final_train_error=None, model=None)
            for s, a in enumerate((0.66, 0.67))]
    two = experiments.Variant("v", 10, 10, runs)
    assert two.accuracy_text() == "66.5 % (sd 0.7 over seeds)"
    assert experiments.Variant("v", 10, 10, runs[:1]).accuracy_text() == "66.0 % (one seed)"


def test_plan_mode_counts_the_work_and_trains_nothing(tmp_path, monkeypatch):
    """With CONVBOOK_PLAN set, compare records each variant's MACs, images, epochs and runs
    (ci/plan_full.py sums them into the full profile's estimate) and raises PlanRecorded."""
    import json

    from convbook import measure, nets

    plan = tmp_path / "plan.json"
    monkeypatch.setenv("CONVBOOK_PLAN", str(plan))
    monkeypatch.setenv("CONVBOOK_CHAPTER", "99-test")
    data = _data()
    recipe = profiles.get("smoke").recipe.with_(epochs=2, flip_tta=False)
    variants = {"narrow": partial(nets.CifarNet, 4), "wide": partial(nets.CifarNet, 8)}
    with pytest.raises(experiments.PlanRecorded, match="nothing was trained"):
        experiments.compare(variants, data, profiles.get("smoke"), seeds=[0, 1, 2],
                            recipe=recipe, secondary=["wide"], cache=False)
    entries = json.loads(plan.read_text())
    narrow = entries["99-test||narrow"]
    macs = measure.count_macs(nets.CifarNet(4))
    n, t = len(data.train[1]), len(data.test[1])
    assert narrow["runs"] == 3 and entries["99-test||wide"]["runs"] == 1
    assert narrow["work"] == 3 * macs * (3 * n * 2 + t)
    assert not narrow["scaled"]  # not CIFAR-10: counted as it is
    assert not list(tmp_path.glob("cache/runs/*.pt"))
