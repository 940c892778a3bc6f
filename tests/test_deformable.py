"""DeformableConv2d against torchvision's op, nn.Conv2d, a hand-computed bilinear sample,
and its MAC count."""

import pytest
import torch
import torch.nn.functional as F
from convbook import measure
from convbook.blocks import DeformableConv2d
from convbook.errors import ConfigError
from torch import nn


def _bilinear(image: torch.Tensor, y: float, x: float) -> float:
    """One channel read at (y, x) by bilinear interpolation, 0 outside: by hand."""
    h, w = image.shape
    y0, x0 = int(torch.floor(torch.tensor(y))), int(torch.floor(torch.tensor(x)))
    total = 0.0
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < h and 0 <= xx < w:
                total += wy * wx * float(image[yy, xx])
    return total


def test_zero_offsets_equal_a_plain_convolution():
    torch.manual_seed(0)
    block = DeformableConv2d(4, 6, 3, stride=2, dilation=2)
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2, bias=False)
    conv.weight.data.copy_(block.weight.data)
    x = torch.randn(2, 4, 11, 11)
    assert torch.allclose(block(x), conv(x), atol=1e-5)
    modulated = DeformableConv2d(4, 6, 3, modulated=True)
    plain = nn.Conv2d(4, 6, 3, padding=1, bias=False)
    plain.weight.data.copy_(modulated.weight.data)
    assert torch.allclose(modulated(x), plain(x), atol=1e-5)  # mask starts at 1


def test_an_offset_of_one_row_reads_the_next_row():
    torch.manual_seed(1)
    block = DeformableConv2d(3, 5, 3)
    block.offset.bias.data.view(9, 2)[:, 0] = 1.0  # every tap: Δy = +1, Δx = 0
    x = torch.randn(1, 3, 8, 8)
    # output row r reads rows r, r + 1, r + 2 (not r - 1 .. r + 1): pad 0 rows above, 2 below
    expected = F.conv2d(F.pad(x, (1, 1, 0, 2)), block.weight)
    assert torch.allclose(block(x), expected, atol=1e-5)


def test_sampling_points_are_where_torchvision_reads():
    """For each tap, a one-hot kernel makes the op's output the input read at that tap's
    point; it must equal a bilinear sample taken by hand at sampling_points()."""
    torch.manual_seed(2)
    block = DeformableConv2d(1, 9, 3, stride=1, dilation=1)
    nn.init.normal_(block.offset.weight, std=0.3)
    nn.init.normal_(block.offset.bias, std=1.5)
    with torch.no_grad():
        block.weight.zero_()
        for t in range(9):
            block.weight[t, 0, t // 3, t % 3] = 1.0  # output channel t = tap t
    x = torch.randn(1, 1, 7, 7)
    out = block(x)
    points = block.sampling_points(x)
    assert points.shape == (1, 7, 7, 9, 2)
    for oy, ox, t in ((3, 3, 0), (0, 6, 4), (6, 0, 8), (2, 5, 5), (5, 1, 2)):
        y, xx = points[0, oy, ox, t].tolist()
        assert out[0, t, oy, ox].item() == pytest.approx(_bilinear(x[0, 0], y, xx), abs=1e-5)
    plain = DeformableConv2d(1, 1, 3).sampling_points(torch.zeros(1, 1, 5, 5))
    assert plain[0, 2, 2].tolist() == [[1, 1], [1, 2], [1, 3], [2, 1], [2, 2], [2, 3],
                                       [3, 1], [3, 2], [3, 3]]


def test_backward_reaches_weights_and_offsets():
    block = DeformableConv2d(2, 3, 3, modulated=True)
    nn.init.normal_(block.offset.weight, std=0.1)
    block(torch.randn(2, 2, 6, 6)).square().sum().backward()
    assert block.weight.grad.abs().sum() > 0 and block.offset.weight.grad.abs().sum() > 0
    assert block.mask.weight.grad.abs().sum() > 0


def test_macs_count_the_convolution_and_the_sampling():
    block = DeformableConv2d(8, 16, 3)
    conv_macs = 16 * 8 * 9 * 10 * 10
    sampling = 4 * 8 * 9 * 10 * 10
    offset_conv = 18 * 8 * 9 * 10 * 10
    assert measure.count_macs(block, (8, 10, 10)) == conv_macs + sampling + offset_conv
    assert measure.count_params(block) == 16 * 8 * 9 + 18 * 8 * 9 + 18


def test_bad_arguments_say_what_works():
    with pytest.raises(ConfigError, match="offset_groups"):
        DeformableConv2d(6, 4, 3, offset_groups=4)
    with pytest.raises(ConfigError, match="padding"):
        DeformableConv2d(6, 4, 3, padding=-1)
    with pytest.raises(ConfigError, match="expects 6 channels"):
        DeformableConv2d(6, 4, 3)(torch.zeros(1, 3, 5, 5))


def test_bfloat16_autocast_runs_the_op_in_float32():
    """torchvision's op has no bfloat16 CPU kernel: under autocast, and with bfloat16 inputs,
    the block computes in float32 and hands back the input's dtype."""
    block = DeformableConv2d(2, 3, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.isfinite(block(torch.randn(1, 2, 6, 6))).all()
        out = block(torch.randn(1, 2, 6, 6).bfloat16())
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()


def test_the_offset_branch_trains_at_a_tenth_of_the_rate():
    from convbook import nets, train

    model = nets.deformable_cifar_net(4)
    optimizer, _ = train.sgd_schedule(model, train.RECIPE.with_(warmup=0.0), 10)
    rates = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    block = next(m for m in model.modules() if isinstance(m, DeformableConv2d))
    assert rates[id(block.offset.weight)] == pytest.approx(0.1 * train.RECIPE.lr)
    assert rates[id(block.weight)] == pytest.approx(train.RECIPE.lr)
    decays = {id(p): group["weight_decay"] for group in optimizer.param_groups
              for p in group["params"]}
    assert decays[id(block.offset.weight)] == train.RECIPE.weight_decay
    assert decays[id(block.offset.bias)] == 0
    assert "offset_lr=0.1" in repr(block)


def test_offset_lr_and_multipliers_are_checked():
    from convbook import train

    with pytest.raises(ConfigError, match="offset_lr"):
        DeformableConv2d(4, 4, offset_lr=0)
    layer = torch.nn.Conv2d(3, 3, 3)
    layer.weight.lr_multiplier = float("nan")
    with pytest.raises(ConfigError, match="lr_multiplier"):
        train.sgd_schedule(layer, train.RECIPE, 10)
