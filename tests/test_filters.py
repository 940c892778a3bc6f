import pytest
import torch
from convbook import filters


def test_colour_share_extremes():
    grey = torch.randn(4, 1, 5, 5).repeat(1, 3, 1, 1)
    assert torch.allclose(filters.colour_share(grey), torch.zeros(4), atol=1e-6)
    opponent = torch.randn(4, 1, 5, 5) * torch.tensor([1.0, -1.0, 0.0]).view(1, 3, 1, 1)
    assert torch.allclose(filters.colour_share(opponent), torch.ones(4), atol=1e-6)


def test_permutation_test_separates_real_from_random_towers():
    grey = torch.randn(16, 1, 3, 3).repeat(1, 3, 1, 1)
    colour = torch.randn(16, 3, 3, 3) * 3
    shares = filters.colour_share(torch.cat([grey, colour]))
    towers = [0] * 16 + [1] * 16
    assert filters.tower_gap(shares, towers) > 0.3
    assert filters.permutation_p_value(shares, towers, permutations=500) < 0.01
    mixed = [0, 1] * 16
    assert filters.permutation_p_value(shares, mixed, permutations=500) > 0.05


def test_colour_share_needs_rgb_filters():
    with pytest.raises(ValueError, match="N x 3 x k x k"):
        filters.colour_share(torch.zeros(4, 8, 3, 3))
