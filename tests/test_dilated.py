"""Chapter 9: coverage of dilation schedules, the context module, IoU, the ring task and the
verdict rules (every label each can return)."""

import math

import pytest
import torch
from convbook import experiments, measure, nets, profiles, receptive, segmentation, stats, synthetic
from convbook.chapters import c09_dilated as c09
from convbook.errors import ConfigError
from convbook.receptive import Layer
from torch import nn

C, R, I, N = stats.CONFIRMED, stats.REFUTED, stats.INCONCLUSIVE, stats.NUANCED


def _layers(*rates):
    return [Layer(3, dilation=r) for r in rates]


# --- coverage, against sets derived by hand ----------------------------------------------------

def test_offsets_of_the_schedules_match_hand_derived_sets():
    # rates 2, 2, 2: taps at 0, 2, 4 per layer, so every sum of three of them: the even numbers
    assert receptive.sampled_offsets(_layers(2, 2, 2)) == list(range(0, 13, 2))
    assert receptive.sampled_offsets(_layers(1, 2, 3)) == list(range(13))
    assert receptive.sampled_offsets(_layers(1, 2, 5)) == list(range(17))
    # rates 1, 2, 9: {0..6} + {0, 9, 18}: 0-6, 9-15, 18-24 (holes at 7, 8, 16, 17)
    assert receptive.sampled_offsets(_layers(1, 2, 9)) == [*range(7), *range(9, 16), *range(18, 25)]


def test_coverage_and_read_grid():
    assert receptive.coverage(_layers(2, 2, 2)) == pytest.approx((7 / 13) ** 2)
    assert receptive.coverage(_layers(1, 2, 3)) == 1.0
    assert receptive.coverage(_layers(3)) == pytest.approx(9 / 49)
    grid = receptive.read_grid(_layers(2))
    assert grid.shape == (5, 5) and int(grid.sum()) == 9
    assert grid[0, 0] and not grid[0, 1] and grid[2, 2] and not grid[1, 1]


def test_gridding_holes_appear_in_the_measured_gradient():
    maps = c09.gridding_erfs({"(2, 2, 2)": (2, 2, 2), "(1, 2, 3)": (1, 2, 3)}, size=21)
    holes, dense = maps["(2, 2, 2)"] > 0, maps["(1, 2, 3)"] > 0
    assert int(holes.sum()) == 7 * 7 and int(dense.sum()) == 13 * 13
    assert torch.equal(holes[4:17, 4:17], receptive.read_grid(_layers(2, 2, 2)))


# --- the context module ---------------------------------------------------------------------

def test_context_module_fields_and_parameters_match_yu_and_koltun():
    fields, table = c09.context_table(21)
    assert tuple(fields) == c09.PUBLISHED_CONTEXT_FIELDS
    channels = 21
    module = c09.context_module(channels)
    assert sum(p.numel() for p in module.parameters()) == 64 * channels**2 + 8 * channels
    assert "28,392" in table.caption


SCHEDULES = {"dense": (1, 1, 1, 1, 1, 1), "constant 2": (2, 2, 2, 2, 2, 2),
             "HDC (1, 2, 3)": (1, 2, 3, 1, 2, 3), "exponential": (1, 2, 4, 8, 1, 1)}


def test_identity_initialisation_passes_the_input_through():
    net = nets.ContextNet(width=4, init="identity")
    x = torch.rand(2, 4, 16, 16)  # non-negative: ReLU keeps it
    assert torch.allclose(net.context(x), x)
    random = nets.ContextNet(width=4, init="random")
    assert not torch.allclose(random.context(x), x)
    with pytest.raises(ConfigError, match="identity"):
        nets.identity_(nn.Conv2d(2, 3, 3))
    with pytest.raises(ConfigError, match="init"):
        nets.ContextNet(init="zeros")
    front = nets.ContextNet(width=4, init="none")
    assert len(front.context) == 0 and front(torch.rand(1, 1, 16, 16)).shape == (1, 3, 16, 16)


def test_dilated_nets_have_equal_parameters_whatever_the_rates():
    counts = {sum(p.numel() for p in nets.DilatedNet(rates, 8).parameters())
              for rates in SCHEDULES.values()}
    assert len(counts) == 1
    out = nets.DilatedNet(SCHEDULES["exponential"], 8)(torch.rand(2, 1, 32, 32))
    assert out.shape == (2, 3, 32, 32)


# --- IoU and the task -------------------------------------------------------------------------

def test_iou_on_constructed_masks():
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, :2] = 1  # top half class 1
    predicted = torch.zeros(1, 4, 4, dtype=torch.long)
    predicted[0, :1] = 1  # top quarter class 1
    iou = segmentation.iou_per_image(predicted, target, 3)
    assert iou[0, 1].item() == pytest.approx(4 / 8)  # 4 shared of 8 in either
    assert iou[0, 0].item() == pytest.approx(8 / 12)
    assert math.isnan(iou[0, 2].item())  # class 2 nowhere: not scored
    assert segmentation.mean_iou(iou)[0].item() == pytest.approx((0.5 + 8 / 12) / 2)
    with pytest.raises(ConfigError, match="label maps"):
        segmentation.iou_per_image(predicted, target[0], 3)


def test_rings_label_inside_ring_and_outside():
    images, labels = synthetic.rings(8, seed=1)
    assert images.shape == (8, 1, 32, 32) and labels.shape == (8, 32, 32)
    for k in range(8):
        present = set(labels[k].unique().tolist())
        assert present == {0, 1, 2}
        assert labels[k, 0].eq(0).all() and labels[k, -1].eq(0).all()  # borders are outside
    ring = labels == 1
    assert images[:, 0][ring].mean() > images[:, 0][~ring].mean() + 0.5
    with pytest.raises(ConfigError, match="at least 16"):
        synthetic.rings(2, size=8)


def test_fit_dense_learns_the_ring_and_checks_its_input():
    data = synthetic.ring_data(64, 32)
    net = nets.DilatedNet((1, 2, 4), width=8)
    recipe = segmentation.DENSE_RECIPE.with_(epochs=2)
    result = segmentation.fit_dense(net, data.train, data.test, 3, recipe, seed=0,
                                    device=torch.device("cpu"), amp=False)
    assert result.ious.shape == (len(data.test[0]), 3)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    with pytest.raises(ConfigError, match="labels N x H x W"):
        segmentation.fit_dense(net, (data.train[0], data.train[1][:, 0]), data.test, 3)
    with pytest.raises(ConfigError, match="flip_tta"):
        segmentation.fit_dense(net, data.train, data.test, 3, recipe.with_(flip_tta=True))


def test_segmentation_runs_through_the_shared_runner_and_cache():
    """One runner for every task: compare trains a dense network, scores each test image by
    its mean IoU, caches the run under the shared key, and pairs it like a classifier."""
    data = synthetic.ring_data(32, 16)
    variants = {"dense": lambda: nets.DilatedNet((1, 1), 4),
                "dilated": lambda: nets.DilatedNet((1, 2), 4)}
    recipe = segmentation.DENSE_RECIPE.with_(epochs=1)
    first = experiments.compare(variants, data, profiles.get("smoke"), seeds=[0, 1],
                                device="cpu", recipe=recipe, latency=False, amp=False,
                                task=segmentation.SEGMENTATION)
    again = experiments.compare(variants, data, profiles.get("smoke"), seeds=[0, 1],
                                device="cpu", recipe=recipe, latency=False, amp=False,
                                task=segmentation.SEGMENTATION)
    run = first["dense"].runs[0]
    assert run.correct.shape == (16,)  # one score per test image
    assert run.test_accuracy == pytest.approx(float(segmentation.mean_iou(run.result.ious).mean()))
    assert all(r.cached for v in again for r in v.runs)
    assert torch.equal(again["dense"].correct, first["dense"].correct)
    assert first.difference("dilated", "dense").seeds == 2
    assert "mean IoU is the mean over 2 seeds" in first.caption()
    # costs counted on the task's own images (1 channel, 32 × 32), not CIFAR's
    assert first["dense"].macs == measure.count_macs(nets.DilatedNet((1, 1), 4), (1, 32, 32))


# --- verdict rules --------------------------------------------------------------------------

def test_c91_confirmed_by_counts_and_refuted_by_a_wrong_one():
    found = c09.kernels((1, 2, 3))
    assert c09.verdict_c91(found).label == C
    wrong = [c09.Kernel(k.dilation, k.params + k.dilation, k.field, k.coverage, k.erf_extent)
             for k in found]
    verdict = c09.verdict_c91(wrong)
    assert verdict.label == N and verdict.parts["counted"].label == R  # measured part holds
    short = [c09.Kernel(k.dilation, k.params + k.dilation, k.field, k.coverage, 1) for k in found]
    assert c09.verdict_c91(short).label == R


def _dense_results(effects: dict[str, float], seeds: int = 3, images: int = 400):
    g = torch.Generator().manual_seed(0)
    variants = []
    for name, effect in effects.items():
        runs = []
        for s in range(seeds):
            result = segmentation.DenseResult(
                (0.6 + effect + 0.1 * torch.rand(images, 3, generator=g)).double())
            scores = segmentation.mean_iou(result.ious).float()
            runs.append(experiments.Run(s, float(scores.mean()), scores, [], None,
                                        nets.DilatedNet((1,), 4), result=result))
        variants.append(experiments.Variant(name, 100, 1000, runs))
    return experiments.Results(variants, profiles.get("book"), segmentation.DENSE_RECIPE,
                               "rings", "cpu", tuple(range(seeds)),
                               task=segmentation.SEGMENTATION)


@pytest.mark.parametrize(("effects", "label"), [
    ({"exponential": 0.1, "dense": 0.0, "HDC (1, 2, 3)": 0.1, "constant 2": 0.0}, C),
    ({"exponential": -0.1, "dense": 0.0, "HDC (1, 2, 3)": -0.1, "constant 2": 0.0}, R),
    ({"exponential": 0.0, "dense": 0.0, "HDC (1, 2, 3)": 0.0, "constant 2": 0.0}, I),
    ({"exponential": 0.1, "dense": 0.0, "HDC (1, 2, 3)": 0.0, "constant 2": 0.0}, N),
])
def test_c92_every_label(effects, label):
    assert c09.verdict_c92(_dense_results(effects)).label == label


@pytest.mark.parametrize(("identity", "label"), [(0.1, C), (-0.1, R), (0.0, I)])
def test_c93_every_label(identity, label):
    results = _dense_results({"front end alone": -0.2, "context module, identity init": identity,
                              "context module, random init": 0.0})
    verdict = c09.verdict_c93(results)
    assert verdict.label == label and "lifted the front end" in verdict.text


def test_one_seed_is_inconclusive():
    results = _dense_results({"front end alone": 0.0, "context module, identity init": 0.2,
                              "context module, random init": 0.0}, seeds=1)
    assert c09.verdict_c93(results).label == I


def test_explorer_views_and_bad_choices():
    view = c09.dilation_view("HDC (1, 2, 3)", 3)
    assert view.numbers["receptive field"] == "13×13 pixels"
    assert view.numbers["positions read"] == "169 of 169 (100%)"
    grid = c09.dilation_view("constant 2", 3)
    assert grid.numbers["positions read"].startswith("49 of 169")
    with pytest.raises(ConfigError, match="schedule must be one of"):
        c09.schedule_rates("fibonacci", 3)


# --- figures: what they draw follows the numbers ------------------------------------------------

def test_field_rows_carry_the_seed_spread_and_none_for_one_seed():
    effects = {"dense": 0.0, "exponential": 0.1}
    rows = c09.field_rows(_dense_results(effects))
    inside = c09.CLASSES.index("inside")
    variant = _dense_results(effects)["exponential"]
    per_seed = torch.tensor([run.result.class_iou(inside) for run in variant.runs])
    assert rows[1]["inside sd"] == pytest.approx(float(per_seed.std()))
    assert rows[1]["inside sd"] > 0
    assert all(row[f"{name} sd"] is None for row in c09.field_rows(_dense_results(effects, seeds=1))
               for name in c09.CLASSES)


def test_iou_plot_draws_a_bar_per_schedule_only_with_seeds():
    from convbook.viz import dilation as dilation_viz

    def bars(seeds):
        figure = dilation_viz.plot_iou_against_field(
            c09.field_rows(_dense_results({"dense": 0.0, "exponential": 0.1}, seeds=seeds)),
            c09.CLASSES)
        return sum(len(ax.containers) for ax in figure.axes)

    assert bars(3) == 2 * len(c09.CLASSES)  # one error bar per schedule and class
    assert bars(1) == 0


def test_read_grid_figure_has_a_key_for_each_shade():
    from convbook.viz import dilation as dilation_viz

    grids, coverages, _ = c09.gridding()
    figure = dilation_viz.plot_read_grids(grids, coverages)
    (key,) = figure.legends
    assert [t.get_text() for t in key.get_texts()] == list(dilation_viz.SHADES)
    # the three shades the panels use are the three the key names
    smallest = figure.axes[0].images[0].get_array()  # rates (2, 2, 2): a smaller field
    assert sorted({float(v) for v in smallest.flatten()}) == sorted(dilation_viz.SHADES.values())


def test_points_at_one_field_sit_side_by_side():
    from convbook.viz.dilation import _dodged

    assert _dodged([13, 25, 25, 35]) == [13, 24.6, 25.4, 35]
    assert _dodged([25, 25, 25], step=1.0) == [24.0, 25.0, 26.0]


def test_verdicts_and_tables_say_each_networks_learning_rate():
    results = _dense_results({"front end alone": -0.2, "context module, identity init": 0.0,
                              "context module, random init": 0.0})
    rates = {"front end alone": 0.1, "context module, identity init": 0.05,
             "context module, random init": 0.1}
    text = c09.verdict_c93(results, rates).text
    assert ("Learning rates, each chosen on held-out training rings: context module, identity "
            "init 0.05; context module, random init 0.1; front end alone 0.1." in text)
    assert "Learning rates" not in c09.verdict_c93(results).text
    schedules = _dense_results({"exponential": 0.1, "dense": 0.0, "HDC (1, 2, 3)": 0.1,
                                "constant 2": 0.0})
    assert "dense 0.1" in c09.verdict_c92(schedules, {"dense": 0.1}).text
    table = c09.schedule_table(schedules, {"dense": 0.1})
    by_network = dict(zip(table.column("network"), table.column("learning rate")))
    assert by_network == {"exponential": "0.05", "dense": "0.1", "HDC (1, 2, 3)": "0.05",
                          "constant 2": "0.05"}
    assert "held-out training rings" in c09.schedule_table(schedules, {"dense": 0.1}).caption
