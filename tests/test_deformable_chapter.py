"""Chapter 10: the digits task, the networks, effective dilation and the verdict rules."""

import math

import matplotlib.pyplot as plt
import pytest
import torch
from convbook import deformation, experiments, nets, profiles, stats, synthetic
from convbook.blocks import DeformableConv2d
from convbook.chapters import c10_deformable as c10
from convbook.errors import ConfigError
from convbook.viz import deformable as deformable_viz
from torch import nn

C, R, I, N = stats.CONFIRMED, stats.REFUTED, stats.INCONCLUSIVE, stats.NUANCED


def test_digits_have_the_asked_scale_and_lie_inside_the_canvas():
    small_x, small_y, small_mask = synthetic.digits(20, (0.5, 0.5), seed=3)
    _, _, large_mask = synthetic.digits(20, (1.6, 1.6), seed=3)
    assert small_x.shape == (20, 1, 32, 32) and small_y.min() >= 0 and small_y.max() <= 9
    rows = [torch.nonzero(m.any(1)).flatten() for m in large_mask]
    heights = [int(r.max() - r.min()) + 1 for r in rows]
    assert min(heights) >= 18  # 1.6 × 14 = 22 pixels tall, minus faint antialiased rows
    assert large_mask.sum() > 2 * small_mask.sum()
    with pytest.raises(ConfigError, match="scales"):
        synthetic.digits(2, (0.1, 3.0))


def test_deformable_tail_replaces_only_the_last_units():
    plain = nets.CifarNet(8, blocks_per_stage=2)
    v1 = nets.deformable_cifar_net(8, blocks_per_stage=2, deformable=2)
    v2 = nets.deformable_cifar_net(8, blocks_per_stage=2, deformable=2, modulated=True)
    assert not deformation.deformable_layers(plain)
    assert len(deformation.deformable_layers(v1)) == 2 and not deformation.deformable_layers(v1)[0].modulated
    assert all(layer.modulated for layer in deformation.deformable_layers(v2))
    x = torch.randn(2, 3, 32, 32)
    assert v1(x).shape == plain(x).shape == (2, 10)
    torch.manual_seed(0)
    a = nets.CifarNet(8, blocks_per_stage=2)
    torch.manual_seed(0)
    b = nets.deformable_cifar_net(8, blocks_per_stage=2, deformable=2)
    # the shared layers start from the same weights, and the untrained block is a plain conv
    assert torch.equal(a.features[0][0].weight, b.features[0][0].weight)


def test_effective_dilation_of_a_plain_grid_is_one_and_grows_with_spread():
    block = DeformableConv2d(2, 2, 3)
    points = block.sampling_points(torch.zeros(1, 2, 6, 6))
    assert torch.allclose(deformation.effective_dilation(points), torch.ones(1, 6, 6))
    assert torch.allclose(deformation.effective_dilation(points * 2), 2 * torch.ones(1, 6, 6))
    assert deformation.slope({0.5: 1.0, 1.0: 1.5, 1.5: 2.0}) == pytest.approx(1.0)


def test_cell_masks_split_object_and_background():
    masks = torch.zeros(1, 32, 32, dtype=torch.bool)
    masks[0, 8:16, 8:16] = True
    on, off = deformation.cell_masks(masks, 4, 8)
    assert on[0, 2:4, 2:4].all() and on.sum() == 4
    assert not off[0, 1:5, 1:5].any() and off[0, 7, 7]


@pytest.mark.parametrize(("slopes", "on_map", "focus", "label"), [
    ([0.5, 0.6, 0.55], 0.8, [0.10, 0.12, 0.11], C),
    ([-0.5, -0.6, -0.55], 0.8, [-0.10, -0.12, -0.11], R),
    ([0.5, -0.5, 0.1], 0.8, [0.1, -0.1, 0.0], I),
    ([0.5, 0.6, 0.55], 0.8, [0.1, -0.1, 0.0], N),  # spread confirmed, focus undecided
    ([0.5, 0.6, 0.55], 0.3, [0.10, 0.12, 0.11], I),  # most taps in the padding: no verdict
    ([0.5], 0.8, [0.1], I),
])
def test_c101_every_label(slopes, on_map, focus, label):
    found = {"slopes": slopes, "on_map": [on_map] * len(slopes), "focus": focus,
             "inside": [on_map] * len(slopes), "per_seed": []}
    verdict = c10.verdict_c101(found)
    assert verdict.label == label
    mis_trained = "offsets mis-trained (30 % on map)" in verdict.text
    assert mis_trained == (on_map < c10.MIN_ON_MAP)


def test_c101_is_gated_by_its_worst_network():
    """One seed's network below the threshold makes the verdict inconclusive, however clear
    the others' trend: every network a verdict rests on must keep its taps on the map."""
    found = {"slopes": [0.5, 0.6, 0.55], "focus": [0.10, 0.12, 0.11], "per_seed": [],
             "on_map": [0.9, 0.9, 0.45], "inside": [0.9, 0.9, 0.45]}
    verdict = c10.verdict_c101(found)
    assert verdict.label == I and "offsets mis-trained (45 % on map)" in verdict.text
    found["on_map"] = [0.9, 0.9, 0.5]  # exactly at the threshold: judged
    assert c10.verdict_c101(found).label == C


def test_effective_dilation_counts_only_taps_on_the_map():
    block = DeformableConv2d(2, 2, 3)
    points = block.sampling_points(torch.zeros(1, 2, 6, 6))
    far = points.clone()
    far[..., 2, 1] += 100  # the top-right tap leaves the map: its two pairs drop out
    on = deformation.effective_dilation(far, size=6)
    assert torch.allclose(on[0, 2, 2], torch.tensor(1.0))
    assert deformation.effective_dilation(far)[0, 2, 2] > 10


def test_focus_of_a_plain_grid_is_zero():
    block = DeformableConv2d(2, 2, 3)
    points = block.sampling_points(torch.zeros(1, 2, 8, 8))
    obj = torch.zeros(1, 8, 8, dtype=torch.bool)
    obj[0, 2:5, 2:5] = True
    inside = deformation.on_map(points, 8)
    assert deformation._focus(points, inside, obj, 8) == pytest.approx(0.0)
    shifted = points.clone()
    shifted[0, 2, 2] = torch.tensor([3.0, 3.0])  # every tap of (2, 2) onto the object
    assert deformation._focus(shifted, inside, obj, 8) > 0


class _Scales:
    """Stands in for DigitData: where each test scale's digits lie in the test set."""

    train_scales = synthetic.TRAIN_SCALES

    def __init__(self, per_scale: int, scales=c10.TEST_SCALES):
        self.slices = {s: slice(i * per_scale, (i + 1) * per_scale) for i, s in enumerate(scales)}

    def scale_slices(self):
        return self.slices


def _results(effects: dict[str, float], per_scale: int = 600, seeds: int = 3,
             elsewhere: dict[str, float] | None = None):
    """Per-image right/wrong over ``seeds`` seeds: accuracy 0.6 + effect on the endpoint's
    scales, 0.6 + ``elsewhere``'s effect (default the same) on the other scales."""
    g = torch.Generator().manual_seed(0)
    data = _Scales(per_scale)
    endpoint = torch.zeros(per_scale * len(c10.TEST_SCALES), dtype=torch.bool)
    for scale in c10.ENDPOINT_SCALES:
        endpoint[data.slices[scale]] = True
    variants = []
    for name, effect in effects.items():
        other = (elsewhere or {}).get(name, effect)
        rate = torch.where(endpoint, 0.6 + effect, 0.6 + other)
        correct = torch.rand(seeds, len(endpoint), generator=g) < rate
        runs = [experiments.Run(s, float(row.float().mean()), row, [], None, nn.Identity())
                for s, row in enumerate(correct)]
        variants.append(experiments.Variant(name, 1, 1, runs))
    profile = profiles.get("book")
    results = experiments.Results(variants, profile, profile.recipe, "synthetic", "cpu",
                                  tuple(range(seeds)))
    return results, data


@pytest.mark.parametrize(("effect", "on_map", "label"), [
    (0.1, 0.8, C), (-0.1, 0.8, R), (0.0, 0.8, I),
    (0.1, 0.3, I),  # a clear gain, but on offsets that throw most taps off the map
])
def test_c102_every_label(effect, on_map, label):
    results, data = _results({"plain": 0.0, "DCNv1": effect})
    verdict = c10.verdict_c102(results, data, {"on_map": [on_map] * 3})
    assert verdict.label == label
    assert ("offsets mis-trained" in verdict.text) == (on_map < c10.MIN_ON_MAP)
    assert "1.3–1.6" in verdict.text
    if label == I and on_map >= c10.MIN_ON_MAP:  # what the run could have seen, and the paper
        assert "could not have detected a difference smaller than" in verdict.text
        assert "3.7 points" in verdict.text and verdict.numbers["detectable"] > 0


def test_c102_judges_the_endpoint_scales_only():
    """A DCNv1 better only on scales 1.3-1.6 is confirmed, though pooled over every scale it
    would lose; one worse only there is refuted, though pooled it would win."""
    results, data = _results({"plain": 0.0, "DCNv1": 0.1}, elsewhere={"DCNv1": -0.3})
    assert results.difference("DCNv1", "plain").mean < 0  # pooled: a loss
    assert c10.verdict_c102(results, data, {"on_map": [0.8] * 3}).label == C
    results, data = _results({"plain": 0.0, "DCNv1": -0.1}, elsewhere={"DCNv1": 0.3})
    assert c10.verdict_c102(results, data, {"on_map": [0.8] * 3}).label == R
    diff = c10.endpoint_difference(results, data)
    assert diff.images == 4 * 600 and diff.seeds == 3


def test_endpoint_difference_names_missing_scales():
    results, data = _results({"plain": 0.0, "DCNv1": 0.1})
    with pytest.raises(ConfigError, match="test scales"):
        c10.endpoint_difference(results, data, scales=(1.8,))


def test_decide_hint_names_the_term_that_sets_the_width():
    seeds = stats.Difference(0.05, -0.05, 0.15, 5, 2000, se_seeds=0.04, se_images=0.01)
    images = stats.Difference(0.05, 0.0, 0.1, 5, 2000, se_seeds=0.005, se_images=0.02)
    assert "more seeds" in c10.decide_hint(seeds) and "4.0 points" in c10.decide_hint(seeds)
    assert "more test digits" in c10.decide_hint(images)
    assert "three or more seeds" in c10.decide_hint(
        stats.Difference(0.05, -math.inf, math.inf, 1, 2000))


def test_offsets_gate_and_table():
    assert c10.offsets_gate([0.9, 0.5]) == ""
    text = c10.offsets_gate([0.9, 0.49])
    assert "offsets mis-trained (49 % on map)" in text and "1 of the 2" in text
    with pytest.raises(ConfigError, match="share of taps"):
        c10.offsets_gate([])
    table = c10.on_map_table({"DCNv1": [0.9, 0.8], "DCNv2": [0.3]})
    assert [row["lowest"] for row in table.rows] == ["80 %", "30 %"]
    assert table.rows[1]["at least 50 %"].startswith("no")
    assert "DCNv2 fall below" in c10.taps_reading({"DCNv1": [0.9], "DCNv2": [0.3]})


def test_taps_on_map_of_a_plain_grid_and_of_offsets_thrown_off():
    """Zero offsets read like a plain 3×3 kernel: on an 8×8 map the border positions' outer
    taps fall off, (22/24)² of the taps stay on; offsets of 100 pixels leave none."""
    torch.manual_seed(0)
    model = nets.deformable_cifar_net(4, blocks_per_stage=2, deformable=2)
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    assert deformation.taps_on_map(model, images, batch_size=2) == pytest.approx((22 / 24) ** 2)
    for layer in deformation.deformable_layers(model):
        layer.offset.bias.data.fill_(100.0)
    assert deformation.taps_on_map(model, images) == 0.0
    with pytest.raises(ConfigError, match="batch of images"):
        deformation.taps_on_map(model, images[0])


def test_plot_offsets_draws_each_tap_and_a_dilation_map():
    torch.manual_seed(0)
    model = nets.deformable_cifar_net(4, blocks_per_stage=2, deformable=2)
    data = synthetic.digit_data(4, 2, test_scales=c10.TEST_SCALES)
    figure = deformable_viz.plot_offsets(model, data, scales=(0.7, 1.6), positions=3)
    axes = [ax for ax in figure.axes if ax.get_title()]
    assert len(axes) == 4  # two digits, each with arrows and a dilation map
    arrows = [c for c in axes[0].collections if type(c).__name__ == "Quiver"]
    assert len(arrows) == 4 and all(len(q.U) == 9 for q in arrows)  # nine taps per position
    with pytest.raises(ConfigError, match="no test digits at scale"):
        deformable_viz.plot_offsets(model, data, scales=(1.8,))
    plt.close(figure)


def test_digits_reading_says_whether_the_recipe_trained_both():
    trained, data = _results({"plain": 0.35, "DCNv1": 0.38})  # 95-98 % everywhere
    assert "the shared recipe trains both" in c10.digits_reading(trained, data)
    untrained, data = _results({"plain": 0.0, "DCNv1": 0.0})  # 60 %
    assert "did not train both" in c10.digits_reading(untrained, data)


@pytest.mark.parametrize(("background", "focus", "words"), [
    (2.0, 0.05, ["between the values on digits", "stay on the digit"]),
    (4.0, -0.10, ["above every value on digits", "reach past the digit's edge"]),
    (0.5, -0.10, ["below every value on digits", "10 points fewer"]),
])
def test_adaptation_reading_describes_what_was_measured(background, focus, words):
    per_seed = [{"object": {0.7: 1.5, 1.6: 3.0}, "background": {0.7: background, 1.6: background}}]
    text = c10.adaptation_reading({"per_seed": per_seed, "focus": [focus], "on_map": [0.8]})
    assert all(w in text for w in words) and "80 %" in text
