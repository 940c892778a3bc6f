"""Chapter 10: the digits task, the networks, effective dilation and the verdict rules."""

import pytest
import torch
from convbook import deformation, experiments, nets, profiles, stats, synthetic
from convbook.blocks import DeformableConv2d
from convbook.chapters import c10_deformable as c10
from convbook.errors import ConfigError
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


@pytest.mark.parametrize(("slopes", "inside", "focus", "label"), [
    ([0.5, 0.6, 0.55], 0.8, [0.10, 0.12, 0.11], C),
    ([-0.5, -0.6, -0.55], 0.8, [-0.10, -0.12, -0.11], R),
    ([0.5, -0.5, 0.1], 0.8, [0.1, -0.1, 0.0], I),
    ([0.5, 0.6, 0.55], 0.3, [0.10, 0.12, 0.11], N),  # most taps in the padding: spread undecided
    ([0.5], 0.8, [0.1], I),
])
def test_c101_every_label(slopes, inside, focus, label):
    found = {"slopes": slopes, "inside": [inside] * len(slopes), "focus": focus, "per_seed": []}
    verdict = c10.verdict_c101(found)
    assert verdict.label == label
    if inside < c10.MIN_ON_MAP:
        assert verdict.parts["spread follows the digit"].label == I
        assert "zero padding" in verdict.text


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


def _results(effects: dict[str, float], images: int = 3000):
    g = torch.Generator().manual_seed(0)
    variants = []
    for name, effect in effects.items():
        correct = torch.rand(3, images, generator=g) < 0.6 + effect
        runs = [experiments.Run(s, float(row.float().mean()), row, [], None, nn.Identity())
                for s, row in enumerate(correct)]
        variants.append(experiments.Variant(name, 1, 1, runs))
    profile = profiles.get("book")
    return experiments.Results(variants, profile, profile.recipe, "synthetic", "cpu", (0, 1, 2))


@pytest.mark.parametrize(("v1", "v2", "cifar", "label"), [
    (0.1, 0.1, 0.1, C), (-0.1, -0.1, -0.1, R), (0.0, 0.0, 0.0, I), (0.1, 0.1, 0.0, N)])
def test_c102_every_label(v1, v2, cifar, label):
    digits = _results({"plain": 0.0, "DCNv1": v1, "DCNv2": v2})
    cifar_results = _results({"plain": 0.0, "DCNv1 (last unit)": cifar})
    assert c10.verdict_c102(digits, cifar_results).label == label
