"""Chapter 11: weighted connections, the designs compared at equal MACs, the verdict rules (every
label each can return), and the build's records that the whole-book figure reads."""

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
from convbook.errors import ConfigError
from convbook.tables import Html, Table
from convbook.train import RECIPE, sgd_schedule
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
    widths = c11.equal_mac_widths(48)
    macs = {name: measure.count_macs(designs.network(c11.DESIGNS[name], w))
            for name, w in widths.items()}
    target = macs[c11.RECIPE_2018]
    for name, value in macs.items():
        assert abs(value / target - 1) < 0.10, (name, value, target)


# --- verdict rules ------------------------------------------------------------------------------

def diff(mean, low, high, seeds=3):
    return stats.Difference(mean, low, high, seeds, 1000, 0.99)


@pytest.mark.parametrize("diffs, label", [
    ({"a": diff(0.02, 0.005, 0.035), "b": diff(-0.01, -0.03, 0.01)}, stats.CONFIRMED),
    ({"a": diff(-0.02, -0.03, -0.01), "b": diff(-0.05, -0.06, -0.04)}, stats.REFUTED),
    ({"a": diff(-0.02, -0.03, -0.01), "b": diff(0.0, -0.01, 0.01)}, stats.INCONCLUSIVE),
    ({"a": diff(0.01, -math.inf, math.inf, seeds=1)}, stats.INCONCLUSIVE),
])
def test_q1_part_every_label(diffs, label):
    verdict = c11.q1_part(diffs, "With batch norm")
    assert verdict.label == label
    assert "99% intervals" in verdict.text


def test_q1_part_needs_a_comparison():
    with pytest.raises(ConfigError):
        c11.q1_part({}, "With batch norm")


def fake_results(correct_by_name: dict[str, list[list[int]]]) -> experiments.Results:
    """Results whose variants scored the given 0/1 per seed (rows) and test image (columns)."""
    variants = []
    for name, rows in correct_by_name.items():
        runs = [experiments.Run(seed, sum(r) / len(r), torch.tensor(r, dtype=torch.bool), [],
                                None, torch.nn.Identity()) for seed, r in enumerate(rows)]
        variants.append(experiments.Variant(name, 0, 0, runs))
    seeds = tuple(range(len(next(iter(correct_by_name.values())))))
    return experiments.Results(variants, profiles.get("book"), RECIPE, "CIFAR-10", "cpu", seeds)


def pattern(share: float, images: int = 400, seeds: int = 3, shift: int = 0) -> list[list[int]]:
    """Per seed, the first ``share`` of the images right (rotated a little per seed)."""
    right = int(share * images)
    rows = []
    for s in range(seeds):
        row = [1 if i < right else 0 for i in range(images)]
        k = (s * 7 + shift) % images
        rows.append(row[k:] + row[:k])
    return rows


@pytest.mark.parametrize("shares, label", [
    ({"ShuffleNet-style (2018)": 0.9, "B": 0.5, "C": 0.5}, stats.CONFIRMED),
    ({"ShuffleNet-style (2018)": 0.5, "B": 0.9, "C": 0.5}, stats.REFUTED),
    ({"ShuffleNet-style (2018)": 0.5, "B": 0.5, "C": 0.5}, stats.INCONCLUSIVE),
])
def test_recipe_part_every_label(shares, label):
    results = fake_results({name: pattern(share) for name, share in shares.items()})
    assert c11.recipe_part(results).label == label


def fake_census(name, year, depthwise=0, grouped=0, shuffles=0):
    kinds = dict.fromkeys((*census.KINDS, "other"), 0)
    macs = dict(kinds, **{"1×1": 100, "depthwise": depthwise, "grouped": grouped})
    return census.Census(name, year, dict(kinds), macs, 0, shuffles)


@pytest.mark.parametrize("users, label", [(3, stats.CONFIRMED), (1, stats.REFUTED),
                                          (2, stats.INCONCLUSIVE), (0, stats.REFUTED)])
def test_census_part_every_label(users, label):
    later = [fake_census(f"m{i}", 2020, depthwise=10 if i < users else 0) for i in range(4)]
    early = [fake_census("old", 2012, depthwise=50)]  # before 2018: never counted
    verdict = c11.census_part(early + later, "depthwise convolution")
    assert verdict.label == label
    assert f"{users} of the census' 4 models" in verdict.text


def test_census_part_ignores_incidental_layers_and_needs_later_models():
    tiny = [fake_census(f"m{i}", 2021, depthwise=2) for i in range(3)]  # 2 % of MACs
    assert c11.census_part(tiny, "depthwise convolution").label == stats.CONFIRMED
    faint = [fake_census(f"m{i}", 2021, depthwise=0.5) for i in range(3)]  # 0.5 % of MACs
    assert c11.census_part(faint, "depthwise convolution").label == stats.REFUTED
    with pytest.raises(ConfigError, match="after 2018"):
        c11.census_part([fake_census("old", 2015)], "depthwise convolution")


def test_verdict_q2_names_every_ingredient():
    results = fake_results({"ShuffleNet-style (2018)": pattern(0.5), "B": pattern(0.9)})
    cs = [fake_census(f"m{i}", 2020, depthwise=10) for i in range(3)]
    verdict = c11.verdict_q2(cs, results)
    assert set(verdict.parts) == {*census.INGREDIENTS, c11.ALL_FOUR, "accuracy at equal MACs"}
    assert verdict.label == stats.NUANCED  # depthwise confirmed, shuffle refuted
    assert verdict.parts[c11.ALL_FOUR].label == stats.REFUTED
    everything = [fake_census(f"m{i}", 2020, depthwise=10, shuffles=1) for i in range(3)]
    for c in everything:
        c.narrowing_1x1_macs = c.grouped_1x1_macs = 10
    assert c11.verdict_q2(everything, results).parts[c11.ALL_FOUR].label == stats.CONFIRMED
    q1_results = fake_results({"identity": pattern(0.5), "ReZero": pattern(0.5, shift=3)})
    summary = c11.one_minute(c11.verdict_q1(q1_results, q1_results), verdict)
    assert "could be told apart" in summary and "all four together: refuted" in summary
    assert "most use depthwise convolution" in summary


# --- the build's records and the whole-book view ----------------------------------------------

def test_results_are_recorded_only_inside_a_build(tmp_path, monkeypatch):
    results = fake_results({"A": pattern(0.5), "B": pattern(0.7)})
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
    assert entry["chapter"] == "07-shuffle" and entry["test_accuracy"] == pytest.approx(0.7)
    assert entries["07-shuffle|CIFAR-10|B · no batch norm"]["variant"] == "B · no batch norm"


def test_verdict_table_links_chapters_and_shows_badges(monkeypatch):
    monkeypatch.setenv("CONVBOOK_STATIC", "1")
    verdicts = {
        "02-small-kernels:C2.1": {"chapter": "02-small-kernels", "claim": "C2.1",
                                  "label": "confirmed", "numbers": {}, "seeds": [0]},
        "01-group-convolution:C1.2": {"chapter": "01-group-convolution", "claim": "C1.2",
                                      "label": "inconclusive", "seeds": [0, 1, 2],
                                      "numbers": {"difference": {"mean": 0.01, "low": -0.02,
                                                                 "high": 0.04}}},
    }
    table = summary.verdict_table(verdicts)
    assert [row["claim"] for row in table.rows] == ["C1.2", "C2.1"]
    page = table._repr_html_()
    assert '<a href="01-group-convolution.html">' in page
    assert re.search(r'convbook-verdict-inconclusive"[^>]*>inconclusive</span>', page)
    assert "+1.0 [-2.0, +4.0]" in page and "inconclusive" in repr(table)


def test_html_cells_are_not_escaped_but_text_is():
    table = Table([{"a": Html("<b>x</b>", "x"), "b": "<i>"}])
    page = table._repr_html_()
    assert "<b>x</b>" in page and "&lt;i&gt;" in page
    assert "x" in repr(table) and "<b>" not in repr(table)


def test_book_figure_reads_cifar_records_and_says_when_there_are_none():
    entry = {"chapter": "02-small-kernels", "variant": "3×3", "profile": "book", "seeds": 3,
             "test_accuracy": 0.7, "macs": 2e6, "forward_ms": 5.0}
    results = {"a": dict(entry, data="CIFAR-10: 10,000 training / 10,000 test images"),
               "b": dict(entry, data="digits: 2,500 training / 1,000 test images")}
    points = summary.book_points(results)
    assert len(points) == 1 and points[0]["train_images"] == 10_000
    assert summary_viz.plot_book(points, summary.CHAPTER_TITLES) is not None
    with pytest.raises(ConfigError, match="recorded networks"):
        summary_viz.plot_book([], summary.CHAPTER_TITLES)
    assert "make book" in summary.book_reading({})
    assert summary.plot_book_or_say(summary.BookRecords({}, {})) is None


def test_trend_verdicts_pick_the_chapters_asked_for():
    verdicts = {"a": {"chapter": "05-residual", "claim": "C5.1", "label": "refuted"},
                "b": {"chapter": "06-separable", "claim": "C6.1", "label": "confirmed"}}
    assert repr(summary.trend_verdicts(verdicts, ["05-residual"])) == "C5.1 refuted"


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


def test_q1_runs_end_to_end_on_a_tiny_task(tmp_path, monkeypatch):
    """Two connections, two seeds, one epoch on random images: the tables, the learned
    weights and the verdict come out of real runs."""
    from convbook.data import CifarData

    monkeypatch.setenv("CONVBOOK_CACHE", str(tmp_path))
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (96, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (96,), generator=g)
    data = CifarData((images[:64], labels[:64]), (images[64:], labels[64:]), "random")
    profile = profiles.scaled(profiles.get("smoke"), seeds=2)
    variants = {name: partial(nets.WeightedResNet, 8, 4, c11.CONNECTIONS[name])
                for name in ("identity", "ReZero", "sigmoid gate")}
    results = experiments.compare(variants, data, profile, latency=False,
                                  measure_train_error=True, recipe=RECIPE.with_(epochs=1))
    weights = c11.learned_weights(results, data, images=8)
    assert set(weights) == {"ReZero", "sigmoid gate"} and len(weights["ReZero"]) == 3
    assert "final training error" in c11.q1_table(results).rows[0]
    verdict = c11.q1_part(c11.against_reference(results), "With batch norm")
    assert verdict.label in stats.LABELS and "97.5% intervals" in verdict.text
