"""Chapter 11: weighted connections and the rates they train at, the designs the book builds,
the verdict rules (every label each can return), and the build's records that the whole-book
figure and table read."""

import json
import math
import re
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from convbook import census, designs, experiments, measure, nets, profiles, records, stats, summary
from convbook.blocks.convnext import ConvNeXtBlock, LayerNorm2d
from convbook.blocks.regnet import XBlock
from convbook.blocks.weighted import GATE_BIAS, DenseWeightedStage, WeightedBlock, weighted_blocks
from convbook.chapters import c11_reflections as c11
from convbook.data import CifarData
from convbook.errors import ConfigError
from convbook.tables import Html, Table
from convbook.train import RECIPE, DivergedError, sgd_schedule
from convbook.viz import summary as summary_viz

X = torch.randn(2, 3, 32, 32)


# --- Q1's connections ---------------------------------------------------------------------------

def test_identity_connection_is_the_cifar_resnet_and_dense_starts_as_it():
    torch.manual_seed(0)
    plain = nets.CifarResNet(14, 8).eval()
    outputs = {}
    for connection in ("identity", "dense"):
        torch.manual_seed(0)
        outputs[connection] = nets.WeightedResNet(14, 8, connection).eval()(X)
    assert torch.equal(outputs["identity"], plain(X))
    assert torch.allclose(outputs["dense"], outputs["identity"], atol=1e-6)


@pytest.mark.parametrize("connection", ["rezero", "zero_gamma"])
def test_rezero_and_zero_gamma_start_every_block_at_the_identity(connection):
    model = nets.WeightedResNet(14, 8, connection).eval()
    block = weighted_blocks(model)[1]  # stride 1, same width: relu(x) at the start
    x = torch.randn(2, 8, 32, 32)
    assert torch.allclose(block(x), torch.relu(x))
    # and it is not so for the plain block
    identity = weighted_blocks(nets.WeightedResNet(14, 8, "identity").eval())[1]
    assert not torch.allclose(identity(x), torch.relu(x))


def test_gate_starts_mostly_on_the_shortcut_and_scalar_at_one():
    model = nets.WeightedResNet(14, 8, "gate").eval()
    g = weighted_blocks(model)[0].gate_values(torch.randn(2, 8, 32, 32))
    assert torch.allclose(g, torch.full_like(g, 1 / (1 + math.exp(-GATE_BIAS))))
    scalar = nets.WeightedResNet(14, 8, "scalar")
    assert all(b.weight.item() == 1.0 for b in weighted_blocks(scalar))


def test_learned_scalars_and_sums_get_no_weight_decay():
    model = nets.WeightedResNet(14, 8, "dense")
    optimizer, _ = sgd_schedule(model, RECIPE, 10)
    no_decay = {id(p) for p in optimizer.param_groups[1]["params"]}
    stages = [m for m in model.modules() if isinstance(m, DenseWeightedStage)]
    assert all(id(a) in no_decay for s in stages for a in s.alphas)
    rezero = nets.WeightedResNet(14, 8, "rezero")
    optimizer, _ = sgd_schedule(rezero, RECIPE, 10)
    assert all(id(b.weight) in {id(p) for p in optimizer.param_groups[1]["params"]}
               for b in weighted_blocks(rezero))


def test_dense_stage_reads_a_weighted_sum():
    blocks = [torch.nn.Identity(), torch.nn.Identity()]
    stage = DenseWeightedStage(blocks, include_input=True)
    with torch.no_grad():
        stage.alphas[1].copy_(torch.tensor([0.5, 0.0, 2.0]))
    x = torch.ones(1, 1, 1, 1)
    assert stage(x).item() == pytest.approx(2.5)  # 0.5 x + 0 y1 + 2 y2, all equal to x
    matrix = stage.weight_matrix()
    assert matrix.shape == (2, 3) and math.isnan(matrix[0, 2])


def test_connection_errors_say_what_works():
    with pytest.raises(ConfigError, match="rezero"):
        nets.WeightedResNet(14, 8, "zero_gamma", norm=False)
    with pytest.raises(ConfigError, match="connection must be one of"):
        nets.WeightedResNet(14, 8, "learned")
    with pytest.raises(ConfigError, match="DenseWeightedStage"):
        WeightedBlock(8, 8, connection="dense")
    with pytest.raises(ConfigError, match="gate"):
        WeightedBlock(8, 8).gate_values(torch.zeros(1, 8, 4, 4))


# --- Q2's designs -------------------------------------------------------------------------------

def test_layer_norm_2d_normalises_each_position_over_channels():
    x = torch.randn(2, 6, 4, 4)
    norm = LayerNorm2d(6)
    expected = F.layer_norm(x.permute(0, 2, 3, 1), (6,), eps=1e-6).permute(0, 3, 1, 2)
    assert torch.allclose(norm(x), expected, atol=1e-6)


def test_design_units_keep_shape_and_report_bad_widths():
    x = torch.randn(2, 32, 8, 8)
    for design in designs.DESIGNS:
        assert designs.unit(design, 32)(x).shape == x.shape
    assert ConvNeXtBlock(8).expand.out_channels == 32
    with pytest.raises(ConfigError, match="multiple of 8"):
        XBlock(12)
    with pytest.raises(ConfigError, match="design must be one of"):
        designs.unit("vgg", 32)
    with pytest.raises(ConfigError, match="design must be one of"):
        designs.network("vgg", 32)


def test_equal_mac_widths_finds_the_closest_width():
    target = designs.macs("shuffle", 64)
    widths = designs.equal_mac_widths(["inverted"], target)
    best = min(range(1, 33), key=lambda w: abs(designs.macs("inverted", w) - target))
    assert widths["inverted"] == best
    with pytest.raises(ConfigError, match="positive"):
        designs.equal_mac_widths(["dense"], 0)


def test_designs_are_matched_in_macs():
    target = designs.macs("shuffle", 48)
    widths = designs.equal_mac_widths(["inverted", "regnet", "convnext"], target)
    for design, width in widths.items():
        macs = measure.count_macs(designs.network(design, width))
        assert abs(macs / target - 1) < 0.10, (design, macs, target)


# --- Q1: each connection at its own rate --------------------------------------------------------

def test_at_learning_rate_trains_every_weight_at_a_multiple_and_keys_it():
    torch.manual_seed(0)
    plain = nets.WeightedResNet(8, 4, "rezero", norm=False).eval()
    torch.manual_seed(0)
    wrapped = c11.AtLearningRate(partial(nets.WeightedResNet, 8, 4, "rezero", False), 0.3).eval()
    assert torch.equal(wrapped(X), plain(X))  # the same network, the same start
    assert all(p.lr_multiplier == 0.3 for p in wrapped.parameters())
    optimizer, _ = sgd_schedule(wrapped, RECIPE.with_(lr=0.1), 10)
    assert all(g["initial_lr"] == pytest.approx(0.03) for g in optimizer.param_groups)
    assert "lr_multiplier=0.3" in repr(wrapped)  # so in the run cache's key
    other = c11.AtLearningRate(partial(nets.WeightedResNet, 8, 4, "rezero", False), 1.0)
    assert experiments.model_digest(other)["repr"] != experiments.model_digest(wrapped)["repr"]
    for bad in (0, -1.0, float("nan"), True, "0.1"):
        with pytest.raises(ConfigError, match="multiplier"):
            c11.AtLearningRate(partial(nets.WeightedResNet, 8, 4), bad)


def test_q1_variants_and_the_sweep_name_every_connection_and_rate():
    variants = c11.q1_variants(8, 4, {"identity": 0.01, "ReZero": 0.3}, 0.1)
    assert set(variants) == {"identity", "ReZero"}
    model = variants["ReZero"]()
    assert model.multiplier == pytest.approx(3.0) and model.net.connection == "rezero"
    assert model.net.features[0][1].__class__.__name__ != "BatchNorm2d"  # no batch norm
    swept = c11.sweep_variants(8, 4, (0.01, 0.1), 0.1)
    assert list(swept) == [f"{n}, lr {lr:g}" for n in c11.CONNECTIONS for lr in (0.01, 0.1)]
    with pytest.raises(ConfigError, match="rates must give"):
        c11.q1_variants(8, 4, {"gate": 0.1}, 0.1)
    with pytest.raises(ConfigError, match="learning rate of 'ReZero'"):
        c11.q1_variants(8, 4, {"ReZero": 0}, 0.1)
    with pytest.raises(ConfigError, match="grid is empty"):
        c11.sweep_variants(8, 4, (), 0.1)
    assert c11.sweep_seed([0, 1, 2, 3, 4]) == 5


def test_downsampled_shrinks_every_image_and_says_so():
    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    labels = torch.arange(6) % 10
    data = CifarData((images[:4], labels[:4]), (images[4:], labels[4:]), "CIFAR-10 (test)")
    small = c11.downsampled(data, 16)
    assert small.train[0].shape == (4, 3, 16, 16) and small.test[0].dtype == torch.uint8
    assert torch.equal(small.train[1], labels[:4])
    assert small.describe().startswith("CIFAR-10 (test), downsampled to 16×16: 4 training")
    flat = CifarData((torch.full((2, 3, 32, 32), 7, dtype=torch.uint8), labels[:2]),
                     (torch.full((2, 3, 32, 32), 7, dtype=torch.uint8), labels[:2]), "flat")
    assert (c11.downsampled(flat, 8).train[0] == 7).all()  # a flat image stays flat
    assert c11.downsampled(data, 32) is data
    for bad in (0, 64, 16.0):
        with pytest.raises(ConfigError, match="size"):
            c11.downsampled(data, bad)


def history(losses):
    return [{"epoch": i + 1, "steps": 1, "train_loss": v, "train_accuracy": 0.0}
            for i, v in enumerate(losses)]


def loss_results(areas: dict[str, list[float]]) -> experiments.Results:
    """Results whose runs (one per seed) have flat training-loss curves at the given values."""
    variants = []
    for name, per_seed in areas.items():
        runs = [experiments.Run(seed, 0.5, torch.ones(4, dtype=torch.bool), history([v, v]),
                                0.1, torch.nn.Identity()) for seed, v in enumerate(per_seed)]
        variants.append(experiments.Variant(name, 0, 0, runs))
    seeds = tuple(range(len(next(iter(areas.values())))))
    return experiments.Results(variants, profiles.get("book"), RECIPE, "CIFAR-10", "cpu", seeds)


def test_loss_area_is_the_mean_of_the_curve_and_gains_pair_by_seed():
    run = experiments.Run(0, 0.5, torch.ones(2), history([2.0, 1.0, 0.0]), None, None)
    assert c11.loss_area(run) == pytest.approx(1.0)
    results = loss_results({"identity": [1.0, 2.0], "ReZero": [0.5, 2.0]})
    assert c11.relative_gains(results, "ReZero") == pytest.approx([0.5, 0.0])
    results["ReZero"].runs[0].seed = 7  # only seed 1 is shared now
    assert c11.relative_gains(results, "ReZero") == pytest.approx([0.0])
    results["ReZero"].runs[1].seed = 8
    with pytest.raises(ConfigError, match="share no seed"):
        c11.relative_gains(results, "ReZero")
    with pytest.raises(ConfigError, match="no training history"):
        c11.loss_area(experiments.Run(0, 0.5, torch.ones(2), [], None, None))


def gain(mean, low, high, seeds=5):
    return stats.Difference(mean, low, high, seeds, 0, 0.975)


@pytest.mark.parametrize("d, label", [
    (gain(0.30, 0.20, 0.40), stats.CONFIRMED),  # beyond the smallest effect, excludes zero
    (gain(0.12, 0.01, 0.23), stats.CONFIRMED),
    (gain(0.01, -0.05, 0.07), stats.REFUTED),  # within ±10 %
    (gain(-0.40, -0.50, -0.30), stats.REFUTED),  # worse than identity
    (gain(0.15, -0.02, 0.32), stats.INCONCLUSIVE),  # large, but the interval holds zero
    (gain(0.08, 0.02, 0.14), stats.INCONCLUSIVE),  # real, but not clearly below 10 %
    (gain(0.05, -math.inf, math.inf, seeds=1), stats.INCONCLUSIVE),
])
def test_label_gain_every_label(d, label):
    assert c11.label_gain(d) == label


@pytest.mark.parametrize("areas, label", [
    ({"identity": [1.0, 1.1, 0.9, 1.0, 1.05], "shortcut scalar": [1.0, 1.1, 0.9, 1.0, 1.05],
      "ReZero": [0.5, 0.56, 0.44, 0.5, 0.52]}, stats.CONFIRMED),
    ({"identity": [1.0, 1.1, 0.9, 1.0, 1.05], "shortcut scalar": [1.01, 1.1, 0.91, 0.99, 1.05],
      "ReZero": [1.0, 1.09, 0.9, 1.01, 1.04]}, stats.REFUTED),
    ({"identity": [1.0, 1.1, 0.9, 1.0, 1.05], "shortcut scalar": [1.0, 1.1, 0.9, 1.0, 1.05],
      "ReZero": [0.5, 1.4, 0.6, 1.3, 0.7]}, stats.INCONCLUSIVE),
    ({"identity": [1.0], "shortcut scalar": [0.5], "ReZero": [0.5]}, stats.INCONCLUSIVE),
])
def test_verdict_q1_every_label(areas, label):
    rates = {"identity": 0.01, "shortcut scalar": 0.01, "ReZero": 0.1}
    verdict = c11.verdict_q1(loss_results(areas), rates)
    assert verdict.label == label
    assert "97.5% intervals" in verdict.text and "ReZero 0.1" in verdict.text
    assert verdict.numbers["unit"] == "%" and set(verdict.numbers["differences"]) == {
        "shortcut scalar", "ReZero"}
    if label == stats.INCONCLUSIVE:
        assert "could not have detected" in verdict.text and "32 %" in verdict.text
    if label == stats.CONFIRMED:  # names the connection that passed, not the other
        assert "ReZero: the gain exceeds it" in verdict.text
        assert "scalar: the gain" not in verdict.text


def test_q1_reading_counts_the_runs_that_fitted_and_flags_the_grid_ends():
    def run(seed, first, last):
        return experiments.Run(seed, 0.5, torch.ones(2), history([first, last]), 0.0, None)

    variants = [experiments.Variant("identity", 0, 0, [run(0, 2.3, 0.01), run(1, 2.3, 1.5)]),
                experiments.Variant("ReZero", 0, 0, [run(0, 2.3, 0.01), run(1, 2.3, 0.02)])]
    results = experiments.Results(variants, profiles.get("book"), RECIPE, "CIFAR-10", "cpu",
                                  (0, 1))
    rates = {"identity": 0.03, "ReZero": 0.3}
    text = c11.q1_reading(results, rates, (0.01, 0.03, 0.3), {"ReZero": [0.1, 0.5]})
    assert "1 of 2 (identity), 2 of 2 (ReZero): the others stalled" in text
    assert "For ReZero that is an end of the grid" in text and "differ by 10×" in text
    assert "moved from 0 to between 0.10 and 0.50" in text
    fitted = experiments.Results(variants[1:], profiles.get("book"), RECIPE, "CIFAR-10", "cpu",
                                 (0, 1))
    assert "every run covers the whole descent" in c11.q1_reading(
        fitted, {"ReZero": 0.1}, (0.01, 0.1, 0.3), {})


def test_verdict_q1_needs_a_learned_connection():
    with pytest.raises(ConfigError, match="learned connection"):
        c11.verdict_q1(loss_results({"identity": [1.0, 1.0]}))


def swept_variant(name, area):
    run = experiments.Run(9, 0.5, torch.ones(2), history([area]), None, None)
    return experiments.Variant(name, 0, 0, [run])


def test_best_rates_take_the_fastest_rate_and_skip_diverged_runs():
    grid = (0.01, 0.1)
    swept = {c11.sweep_name(n, lr): swept_variant(c11.sweep_name(n, lr), area)
             for n in c11.CONNECTIONS for lr, area in zip(grid, (1.0, 0.5))}
    swept[c11.sweep_name("identity", 0.1)] = None  # diverged
    assert c11.best_rates(swept, grid) == {"identity": 0.01, "shortcut scalar": 0.1,
                                           "ReZero": 0.1}
    table = c11.sweep_table(swept, grid)
    assert table.rows[0]["lr 0.1"] == "diverged" and table.rows[2]["lr 0.1"] == "0.500"
    swept[c11.sweep_name("identity", 0.01)] = None
    with pytest.raises(ConfigError, match="identity diverged at every"):
        c11.best_rates(swept, grid)


def test_sweep_trains_one_by_one_after_a_divergence():
    calls = []

    def compare(variants, data, **options):
        calls.append(list(variants))
        assert options["seeds"] == [5] and options["latency"] is False
        if "bad" in variants:
            raise DivergedError("the training loss became nan")
        return [swept_variant(n, 1.0) for n in variants]

    out = c11.sweep(compare, {"good": None, "bad": None}, None, RECIPE, 5)
    assert out["bad"] is None and out["good"].name == "good"
    assert calls == [["good", "bad"], ["good"], ["bad"]]
    assert c11.sweep(compare, {"good": None}, None, RECIPE, 5)["good"].name == "good"


def test_q1_runs_end_to_end_at_two_rates(tmp_path, monkeypatch):
    """One connection at two learning rates, two seeds, on random images: the rates give two
    runs (two cache files), the sweep chooses one, the verdict and the tables come out."""
    monkeypatch.setenv("CONVBOOK_CACHE", str(tmp_path))
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (96, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (96,), generator=g)
    data = c11.downsampled(CifarData((images[:64], labels[:64]), (images[64:], labels[64:]),
                                     "random"), 16)
    profile = profiles.scaled(profiles.get("smoke"), seeds=2)
    recipe = RECIPE.with_(epochs=2, augment=False, label_smoothing=0.0, lr=0.1)

    def compare(variants, data, **options):
        return experiments.compare(variants, data, profile, jobs=1, **options)

    grid = (0.01, 0.1)
    swept = c11.sweep(compare, c11.sweep_variants(8, 4, grid, 0.1), data, recipe, 2)
    assert len(list((tmp_path / "runs").glob("*.pt"))) == 6
    areas = {name: c11.variant_area(v) for name, v in swept.items()}
    assert areas["identity, lr 0.01"] != areas["identity, lr 0.1"]
    rates = c11.best_rates(swept, grid)
    results = compare(c11.q1_variants(8, 4, rates, 0.1), data, recipe=recipe,
                      measure_train_error=True, latency=False)
    verdict = c11.verdict_q1(results, rates)
    assert verdict.label in stats.LABELS
    assert c11.q1_table(results, rates).rows[0]["learning rate"] == f"{rates['identity']:g}"
    weights = c11.learned_weights(results)
    assert set(weights) == {"shortcut scalar", "ReZero"} and len(weights["ReZero"]) == 3
    assert "moved from 0" in c11.q1_reading(results, rates, grid, weights)
    assert c11.plot_loss_curves(results, rates) is not None
    assert c11.plot_sweep(swept, grid) is not None


# --- Q2: the census decides -------------------------------------------------------------------

def fake_census(name, year, depthwise=0, grouped=0, shuffles=0, family="", bottleneck=0,
                inverted=0):
    kinds = dict.fromkeys((*census.KINDS, "other"), 0)
    macs = dict(kinds, **{"1×1": 100, "depthwise": depthwise, "grouped": grouped})
    return census.Census(name, year, dict(kinds), macs, 0, shuffles,
                         bottleneck_1x1_macs=bottleneck, inverted_1x1_macs=inverted,
                         family=family)


@pytest.mark.parametrize("users, label", [(3, stats.CONFIRMED), (1, stats.REFUTED),
                                          (2, stats.INCONCLUSIVE), (0, stats.REFUTED)])
def test_census_part_every_label_counts_families(users, label):
    later = []
    for i in range(4):  # four families of two models each
        uses = 10 if i < users else 0
        later += [fake_census(f"f{i}a", 2020, depthwise=uses, family=f"f{i}"),
                  fake_census(f"f{i}b", 2021, depthwise=uses, family=f"f{i}")]
    early = [fake_census("old", 2012, depthwise=50, family="old")]  # up to 2018: not counted
    verdict = c11.census_part(early + later, "depthwise convolution")
    assert verdict.label == label
    assert f"{users} of the 4 families after 2018" in verdict.text
    assert f"{2 * users} of their 8 models" in verdict.text


def test_a_family_uses_what_half_of_its_models_use():
    half = [fake_census("a", 2020, depthwise=10, family="f"), fake_census("b", 2020, family="f")]
    assert c11.family_uses(half, "depthwise convolution")
    third = half + [fake_census("c", 2020, family="f")]
    assert not c11.family_uses(third, "depthwise convolution")
    lone = [fake_census("x", 2020, depthwise=10)]  # no family: a family of its own
    assert list(c11.families_after(lone)) == ["x"]


def test_census_part_ignores_incidental_layers_and_needs_later_models():
    tiny = [fake_census(f"m{i}", 2021, depthwise=2) for i in range(3)]  # 2 % of MACs
    assert c11.census_part(tiny, "depthwise convolution").label == stats.CONFIRMED
    faint = [fake_census(f"m{i}", 2021, depthwise=0.5) for i in range(3)]  # 0.5 % of MACs
    assert c11.census_part(faint, "depthwise convolution").label == stats.REFUTED
    with pytest.raises(ConfigError, match="after 2018"):
        c11.census_part([fake_census("old", 2015)], "depthwise convolution")


def test_verdict_q2_names_every_ingredient_and_reads_bottlenecks_apart():
    cs = [fake_census(f"m{i}", 2020, depthwise=10, inverted=30, family=f"f{i}")
          for i in range(3)]
    verdict = c11.verdict_q2(cs)
    assert set(verdict.parts) == {*census.INGREDIENTS, c11.ALL_FOUR}
    assert verdict.label == stats.NUANCED  # depthwise confirmed, the bottleneck refuted
    assert verdict.parts["bottleneck"].label == stats.REFUTED  # inverted is not ShuffleNet's
    assert verdict.parts[c11.ALL_FOUR].label == stats.REFUTED
    everything = [fake_census(f"m{i}", 2020, depthwise=10, shuffles=1, bottleneck=10,
                              family=f"f{i}") for i in range(3)]
    for c in everything:
        c.grouped_1x1_macs = 10
    assert c11.verdict_q2(everything).parts[c11.ALL_FOUR].label == stats.CONFIRMED
    reading = c11.census_reading(cs + [fake_census("old", 2015, bottleneck=20, family="R")])
    assert "out of an inverted bottleneck: 3 of 3" in reading and "bottlenecks of R" in reading
    q1 = c11.verdict_q1(loss_results({"identity": [1.0, 1.0], "ReZero": [0.5, 0.5]}),
                        {"identity": 0.01, "ReZero": 0.1})
    summary_text = c11.one_minute(q1, verdict, 20)
    assert "20-layer" in summary_text and "all four together: refuted" in summary_text
    assert "most use depthwise convolution" in summary_text and "ReZero 0.1" in summary_text


def test_census_reading_says_whether_the_threshold_matters():
    steady = [fake_census(f"m{i}", 2020, depthwise=10, family=f"f{i}") for i in range(3)]
    assert "changes no label" in c11.census_reading(steady)
    cheap = [fake_census(f"m{i}", 2020, depthwise=2, family=f"f{i}") for i in range(3)]
    assert "depthwise convolution (confirmed at 1 %, refuted at 5 %)" in c11.census_reading(cheap)


# --- the build's records and the whole-book view ----------------------------------------------

def fake_results(correct_by_name: dict[str, list[list[int]]]) -> experiments.Results:
    """Results whose variants scored the given 0/1 per seed (rows) and test image (columns)."""
    variants = []
    for name, rows in correct_by_name.items():
        runs = [experiments.Run(seed, sum(r) / len(r), torch.tensor(r, dtype=torch.bool), [],
                                None, torch.nn.Identity()) for seed, r in enumerate(rows)]
        variants.append(experiments.Variant(name, 0, 0, runs))
    seeds = tuple(range(len(next(iter(correct_by_name.values())))))
    return experiments.Results(variants, profiles.get("book"), RECIPE, "CIFAR-10", "cpu", seeds)


def test_results_are_recorded_only_inside_a_build(tmp_path, monkeypatch):
    results = fake_results({"A": [[1, 0]] * 3, "B": [[1, 1], [1, 0], [1, 1]]})
    monkeypatch.delenv(records.RESULTS_ENV, raising=False)
    records.record_results(results)  # outside a build: nothing, no error
    path = tmp_path / "results.json"
    monkeypatch.setenv(records.RESULTS_ENV, str(path))
    monkeypatch.setenv(records.CHAPTER_ENV, "07-shuffle")
    records.record_results(results)
    records.record_results(results)  # again: replaced, not doubled
    records.record_results(results, "no batch norm")  # same names, another comparison: kept
    entries = json.loads(path.read_text())
    assert len(entries) == 4
    entry = entries["07-shuffle|CIFAR-10|B"]
    assert entry["chapter"] == "07-shuffle" and entry["test_accuracy"] == pytest.approx(5 / 6)
    assert entries["07-shuffle|CIFAR-10|B · no batch norm"]["variant"] == "B · no batch norm"


def test_verdict_table_links_chapters_and_shows_every_part(monkeypatch):
    monkeypatch.setenv("CONVBOOK_STATIC", "1")
    interval = {"mean": 0.01, "low": -0.02, "high": 0.04}
    verdicts = {
        "02-small-kernels:C2.1": {"chapter": "02-small-kernels", "claim": "C2.1",
                                  "label": "confirmed", "numbers": {}, "seeds": [0]},
        "01-group-convolution:C1.2": {"chapter": "01-group-convolution", "claim": "C1.2",
                                      "label": "inconclusive", "seeds": [0, 1, 2],
                                      "numbers": {"difference": interval}},
        "09-dilated:C9.2": {"chapter": "09-dilated", "claim": "C9.2", "label": "nuanced",
                            "numbers": {}, "seeds": [0], "parts": {
                                "wider field": {"label": "confirmed",
                                                "numbers": {"difference": interval}},
                                "no gridding": {"label": "inconclusive", "numbers": {
                                    "difference": dict(interval, low="-inf", high="inf")}}}},
        "11-reflections:Q1": {"chapter": "11-reflections", "claim": "Q1", "label": "refuted",
                              "seeds": [0], "numbers": {"unit": "%", "differences": {
                                  "ReZero": {"mean": 0.02, "low": -0.05, "high": 0.09}}}},
    }
    table = summary.verdict_table(verdicts)
    assert [row["claim"] for row in table.rows] == ["C1.2", "C2.1", "C9.2", "Q1"]
    page = table._repr_html_()
    assert '<a href="01-group-convolution.html">' in page
    assert re.search(r'convbook-verdict-inconclusive"[^>]*>inconclusive</span>', page)
    assert "+1.0 [-2.0, +4.0]" in page and "inconclusive" in repr(table)
    assert "<i>wider field</i> (confirmed): +1.0 [-2.0, +4.0]<br>" in page
    assert "no gridding (inconclusive): +1.0 (one seed)" in repr(table)
    assert "ReZero +2.0 % [-5.0, +9.0]" in page
    assert table.rows[1]["numbers [interval]"] == "—"


@pytest.mark.parametrize("numbers, said", [
    ({"slope": {"mean": 0.0123, "low": -0.5, "high": 1.0}}, ["slope +0.0123 [-0.5, +1]"]),
    ({"users": ["a", "b"], "families": ["a", "b", "c"]}, ["2 of 3 families"]),
    ({"users": [], "models": ["a"]}, ["0 of 1 models"]),
    ({"ratios": [17.1]}, []),
    ("not numbers", []),
])
def test_verdict_numbers_say_what_they_can(numbers, said):
    assert summary.verdict_numbers(numbers) == said


def test_html_cells_are_not_escaped_but_text_is():
    table = Table([{"a": Html("<b>x</b>", "x"), "b": "<i>"}])
    page = table._repr_html_()
    assert "<b>x</b>" in page and "&lt;i&gt;" in page
    assert "x" in repr(table) and "<b>" not in repr(table)


def book_entry(chapter, data, epochs=10, accuracy=0.7):
    return {"chapter": chapter, "variant": "v", "profile": "book", "seeds": 3,
            "test_accuracy": accuracy, "macs": 2e6, "forward_ms": 5.0, "data": data,
            "epochs": epochs, "batch_size": 64}


def test_book_figure_shows_only_networks_trained_alike():
    main = "CIFAR-10: 10,000 training / 10,000 test images"
    results = {"a": book_entry("02-small-kernels", main), "b": book_entry("05-residual", main),
               "c": book_entry("07-shuffle", "CIFAR-10: 1,500 training / 2,500 test images", 3),
               "d": book_entry("05-residual", main, epochs=5),
               "e": book_entry("10-deformable", "digits: 2,500 training / 1,000 test images")}
    points = summary.alike_points(results)
    assert [p["chapter"] for p in points] == ["02-small-kernels", "05-residual"]
    assert points[0]["train_images"] == 10_000
    assert summary_viz.plot_book(points, summary.CHAPTER_TITLES) is not None
    with pytest.raises(ConfigError, match="trained alike"):
        summary_viz.plot_book(summary.book_points(results), summary.CHAPTER_TITLES)
    with pytest.raises(ConfigError, match="recorded networks"):
        summary_viz.plot_book([], summary.CHAPTER_TITLES)
    table = summary.budget_table(results)
    assert [row["networks"] for row in table.rows] == [2, 1, 1]
    assert table.rows[0]["chapters"] == "2 · small kernels, 5 · residual"
    reading = summary.book_reading(results)
    assert "4 CIFAR-10 networks on 3 different budgets" in reading
    assert "only the 2 networks trained alike" in reading and "10 epochs" in reading
    assert "make book" in summary.book_reading({})
    assert summary.plot_book_or_say(summary.BookRecords({}, {})) is None
    assert summary.budget_table_or_say(summary.BookRecords({}, {})) is None


def test_trend_verdicts_pick_chapters_or_single_claims():
    verdicts = {"a": {"chapter": "05-residual", "claim": "C5.1", "label": "refuted"},
                "b": {"chapter": "06-separable", "claim": "C6.1", "label": "confirmed"},
                "c": {"chapter": "11-reflections", "claim": "Q1", "label": "refuted"},
                "d": {"chapter": "11-reflections", "claim": "Q2", "label": "nuanced"}}
    assert repr(summary.trend_verdicts(verdicts, ["05-residual"])) == "C5.1 refuted"
    assert repr(summary.trend_verdicts(verdicts, ["05-residual", "11-reflections:Q1"])) == (
        "C5.1 refuted · Q1 refuted")
    assert "11-reflections:Q2" in summary.TRENDS["trend_channels"]
    assert "11-reflections:Q1" in summary.TRENDS["trend_connections"]
    assert not any(s == "11-reflections" for trend in summary.TRENDS.values() for s in trend)


def test_census_view_checks_its_inputs():
    cs = [fake_census("m", 2020, depthwise=10)]
    view = c11.census_view("m", "MACs", censuses=cs)
    assert view.numbers["2018 recipe's ingredients used"] == "depthwise convolution"
    with pytest.raises(ConfigError, match="model must be one of"):
        c11.census_view("x", "MACs", censuses=cs)
    with pytest.raises(ConfigError, match="count must be one of"):
        c11.census_view("m", "weights", censuses=cs)
    with pytest.raises(ConfigError, match="needs the census"):
        c11.census_view("m", "MACs")
