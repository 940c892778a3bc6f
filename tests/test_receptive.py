import random

import pytest
import torch
from convbook import receptive
from convbook.errors import ConfigError
from convbook.receptive import Layer
from torch import nn


def test_known_receptive_fields():
    assert receptive.receptive_field([Layer(3)] * 2).size == 5
    assert receptive.receptive_field([Layer(3)] * 3).size == 7
    assert receptive.receptive_field([Layer(3, dilation=2)]).size == 5
    # AlexNet's conv1 (11x11, stride 4) then a 3x3 stride-2 max-pool
    alex = nn.Sequential(nn.Conv2d(3, 96, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2))
    field = receptive.receptive_field(alex)
    assert (field.size, field.jump) == (19, 8)


def _random_chain(rng: random.Random) -> nn.Sequential:
    layers = []
    for _ in range(rng.randint(1, 4)):
        k, d, s = rng.choice([1, 2, 3, 5]), rng.choice([1, 2, 3]), rng.choice([1, 1, 2])
        layers.append(nn.Conv2d(2, 2, k, stride=s, dilation=d, bias=False))
        if rng.random() < 0.3:
            layers.append(nn.AvgPool2d(2, 2))
    return nn.Sequential(*layers)


@pytest.mark.parametrize("seed", range(12))
def test_analytic_field_equals_gradient_support(seed):
    """The analytic size is exactly the extent of pixels with a non-zero gradient."""
    rng = random.Random(seed)
    chain = _random_chain(rng)
    chain.insert(0, nn.Conv2d(3, 2, 1, bias=False))  # 3 input channels like an image
    field = receptive.receptive_field(chain)
    size = field.size + 4 * field.jump + 8  # room for the whole field around the centre unit
    erf = receptive.effective_receptive_field(chain, (3, size, size), samples=2, seed=seed)
    assert receptive.support_size(erf) == field.size


def test_dilated_kernel_reads_with_holes():
    assert receptive.sampled_offsets([Layer(3, dilation=2)]) == [0, 2, 4]
    # two stacked dilation-2 layers still skip every odd offset ("gridding")
    assert receptive.sampled_offsets([Layer(3, dilation=2)] * 2) == [0, 2, 4, 6, 8]
    assert receptive.sampled_offsets([Layer(3)] * 2) == [0, 1, 2, 3, 4]


def test_dilated_holes_match_gradient():
    conv = nn.Conv2d(1, 1, 3, dilation=3, bias=False)
    erf = receptive.effective_receptive_field(conv, (1, 7, 7), samples=1)
    nonzero_rows = torch.nonzero(erf.sum(dim=1) > 0).flatten().tolist()
    assert nonzero_rows == receptive.sampled_offsets([Layer(3, dilation=3)])


def test_effective_field_grows_slower_than_analytic():
    growth = receptive.erf_versus_depth(3, [2, 16], input_size=65, samples=4)
    assert growth["analytic"] == [5, 33]
    assert growth["effective"][1] < growth["analytic"][1]
    assert growth["effective"][1] > growth["effective"][0]


def test_two_3x3_concentrate_more_than_one_5x5():
    five = receptive.erf_versus_depth(5, [1], samples=8)["maps"][0]
    pair = receptive.erf_versus_depth(3, [2], samples=8)["maps"][0]
    assert receptive.central_mass(pair, 3) > receptive.central_mass(five, 3)


def test_non_square_kernels_are_refused_clearly():
    with pytest.raises(ValueError, match="non-square"):
        receptive.receptive_field(nn.Conv2d(3, 3, (1, 3)))
    with pytest.raises(ValueError, match="Layer"):
        receptive.receptive_field(["3x3"])


@pytest.mark.parametrize("module, message", [
    (nn.Conv1d(3, 3, 3), "2-D convolutions and pooling only"),
    (nn.Conv3d(3, 3, 3), "2-D convolutions and pooling only"),
    (nn.ConvTranspose2d(3, 3, 3), "transposed convolution"),
])
def test_receptive_field_refuses_what_it_cannot_compute(module, message):
    with pytest.raises(ValueError, match=message):
        receptive.receptive_field(module)


def test_composite_blocks_are_refused_not_miscounted():
    from convbook.blocks import BasicBlock, NaiveInception

    for block in (NaiveInception(8, (4, 4, 4)), BasicBlock(8, 16, stride=2)):
        with pytest.raises(ValueError, match="not one"):
            receptive.receptive_field(block)
    # one path of a block, given as a chain, is counted
    block = BasicBlock(8, 16, stride=2)
    field = receptive.receptive_field([block.conv1, block.conv2])
    assert (field.size, field.jump) == (7, 2)


def test_central_mass_edges():
    flat = torch.ones(5, 5)
    assert receptive.central_mass(flat, 9) == 1.0  # a square larger than the map holds it all
    assert receptive.central_mass(flat, 3) == pytest.approx(9 / 25)
    with pytest.raises(ValueError, match="odd"):
        receptive.central_mass(flat, 4)


def test_expected_erf_counts_paths():
    uniform = receptive.expected_erf(3, 2, weights="uniform")
    assert uniform.shape == (5, 5)
    # two 3×3 boxes convolved: 1, 2, 3, 2, 1 paths along each axis
    assert torch.allclose(uniform[2] * 3, torch.tensor([1.0, 2, 3, 2, 1]))
    assert receptive.central_mass(uniform, 3) == pytest.approx(49 / 81)
    random = receptive.expected_erf(3, 2)  # magnitude grows as the root of the path count
    assert random[0, 0] == pytest.approx(1 / 3)
    assert receptive.central_mass(receptive.expected_erf(5, 1), 3) == pytest.approx(9 / 25)


def test_expected_erf_matches_a_measured_random_stack():
    measured = receptive.erf_versus_depth(3, [2], samples=256, seed=0)["maps"][0]
    centre = measured.shape[0] // 2
    window = measured[centre - 2: centre + 3, centre - 2: centre + 3]
    expected = receptive.central_mass(receptive.expected_erf(3, 2), 3)
    assert receptive.central_mass(window, 3) == pytest.approx(expected, abs=0.05)
    with pytest.raises(ConfigError, match="random' or 'uniform"):
        receptive.expected_erf(3, 2, weights="gaussian")


# --- chapter 2: the path count worked through, the growth law fitted where the data are ---------

def test_path_counts_are_the_folded_box():
    from convbook.chapters import c02_kernels as c02

    assert c02.path_counts(3, 1) == [1, 1, 1]
    assert c02.path_counts(3, 2) == [1, 2, 3, 2, 1]
    assert c02.path_counts(3, 3) == [1, 3, 6, 7, 6, 3, 1]
    for k, depth in ((3, 2), (5, 2), (3, 4)):
        counts = torch.tensor(c02.path_counts(k, depth), dtype=torch.float64)
        grid = torch.outer(counts, counts)  # against the module's path-count map
        expected = receptive.expected_erf(k, depth, weights="uniform").double()
        assert torch.allclose(grid / grid.max(), expected, atol=1e-6)
        assert int(counts.sum()) == k**depth  # one tap per layer: k^depth paths per axis


def test_path_count_line_works_the_pair_through():
    from convbook.chapters import c02_kernels as c02

    line = c02.path_count_line(3, 2)
    assert "1, 2, 3, 2, 1 paths" in line and "3 × 3 = 9 at the centre" in line
    assert "81 = 9² over the whole 5×5 field" in line
    share = round(100 * receptive.central_mass(receptive.expected_erf(3, 2), 3))
    assert f"= {share} % of it" in line and share == 48
    with pytest.raises(ConfigError, match="smaller than the centre 3x3"):
        c02.path_count_line(1, 1)


def test_sqrt_law_is_fitted_to_every_point():
    from convbook.viz.receptive import sqrt_scale

    assert sqrt_scale([1, 4, 16], [2.0, 4.0, 8.0]) == pytest.approx(2.0)  # exactly 2√L
    # anchored at L = 1 the law would give 3·√16 = 12 at 16 layers; the fit follows the data
    depths, sizes = [1, 2, 4, 8, 16], [3, 5, 9, 13, 19]
    scale = sqrt_scale(depths, sizes)
    assert 4.0 < scale < 5.0 and abs(scale * 4 - 19) < abs(3 * 4 - 19)
    with pytest.raises(ConfigError, match="as many sizes as depths"):
        sqrt_scale([1, 2], [3])


def test_growth_reading_follows_the_numbers():
    from convbook.chapters import c02_kernels as c02

    growth = {"depth": [1, 2, 4, 8, 16], "analytic": [3, 5, 9, 17, 33],
              "effective": [3, 5, 9, 13, 19]}
    text = c02.growth_reading(growth)
    assert "from 9 to 19 (×2.1)" in text and "predicts ×2.0" in text and "layers ×4.0" in text
    assert "At 1, 2 and 4 layers the 90 % square is the whole analytic field" in text
    linear = {**growth, "effective": [2, 4, 8, 16, 32]}
    assert "from 8 to 32 (×4.0)" in c02.growth_reading(linear)
    assert "whole analytic field" not in c02.growth_reading(linear)
    with pytest.raises(ConfigError, match="two depths from 5 up"):
        c02.growth_reading({**growth, "depth": [1, 2, 3, 4, 5]}, start=5)


def test_erf_row_has_one_colour_bar_from_zero_to_the_peak():
    from convbook.viz.receptive import PEAK_LABEL, plot_erf_row

    maps = [receptive.expected_erf(3, d) for d in (1, 2)]
    figure = plot_erf_row(maps, [3, 5], ["one", "two"])
    bars = [ax for ax in figure.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 1 and bars[0].get_ylabel() == PEAK_LABEL
    assert all(ax.images[0].get_clim() == (0.0, 1.0) for ax in figure.axes[:2])
    assert len(plot_erf_row(maps, [3, 5], ["one", "two"], colorbar=None).axes) == 2
