import pytest
import torch
from convbook import blocks, measure, nets, zoo
from convbook.blocks import (
    BasicBlock,
    Bottleneck,
    BottleneckConv,
    ConvBNAct,
    DenseBlock,
    NaiveInception,
    TwoTowerFeatures,
)
from torch import nn


def test_conv_unit_keeps_size_and_counts():
    unit = ConvBNAct(16, 32, 5, groups=4, dilation=2)
    assert unit(torch.randn(2, 16, 12, 12)).shape == (2, 32, 12, 12)
    conv, bn = unit[0], unit[1]
    assert conv.bias is None and isinstance(bn, nn.BatchNorm2d)
    assert measure.count_params(unit) == 5 * 5 * 4 * 32 + 2 * 32


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"in_channels": 12, "out_channels": 16, "groups": 5}, "values that work: 1, 2, 4"),
        ({"in_channels": 12, "out_channels": 16, "kernel_size": 0}, "kernel_size must be >= 1"),
        ({"in_channels": 12, "out_channels": 16, "stride": 1.5}, "stride must be a whole number"),
        ({"in_channels": 0, "out_channels": 16}, "in_channels must be >= 1"),
    ],
)
def test_conv_unit_rejects_bad_arguments_with_advice(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConvBNAct(**kwargs)


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_cifar_net_shapes_and_grouped_params(groups):
    net = nets.CifarNet(width=8, groups=groups)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    grouped = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.groups == groups]
    assert len(grouped) == (3 if groups > 1 else 4)


def test_cifar_net_rejects_groups_not_dividing_width():
    with pytest.raises(ValueError, match="groups=3"):
        nets.CifarNet(width=8, groups=3)


def test_two_tower_features_are_grouped_where_alexnet_was():
    features = TwoTowerFeatures(width=8, towers=2)
    convs = [m for m in features.modules() if isinstance(m, nn.Conv2d)]
    assert [c.groups for c in convs] == [1, 2, 1, 2, 2]
    assert features.tower_of_first_filters() == [0] * 8 + [1] * 8
    assert nets.TwoTowerNet(8, towers=2)(torch.randn(1, 3, 32, 32)).shape == (1, 10)



def test_alexnet_2012_two_towers_parameter_count():
    # 60,965,224: the two-tower network of Krizhevsky et al. (2012), conv2/4/5 in two groups.
    assert measure.count_params(zoo.alexnet_2012(towers=2)) == 60_965_224
    one = measure.count_params(zoo.alexnet_2012(towers=1))
    # without the split, conv2, conv4 and conv5 double their weights
    assert one - 60_965_224 == (256 * 48 * 25) + (384 * 192 * 9) + (256 * 192 * 9)


def test_copy_weights_refuses_other_networks():
    with pytest.raises(ValueError, match="not the same network|does not fit"):
        zoo.copy_weights(nets.CifarNet(8), zoo.alexnet())


def test_naive_inception_concatenates_every_branch():
    module = NaiveInception(192, widths=(64, 128, 32), kernel_sizes=(1, 3, 5))
    assert module.out_channels == 64 + 128 + 32 + 192
    assert module(torch.randn(1, 192, 28, 28)).shape == (1, 416, 28, 28)
    convs = sum(c.weight.numel() for c in module.modules() if isinstance(c, nn.Conv2d))
    assert convs == 192 * (64 * 1 + 128 * 9 + 32 * 25)


def test_naive_inception_refuses_even_kernels():
    with pytest.raises(ValueError, match="odd sizes"):
        NaiveInception(16, widths=(8,), kernel_sizes=(2,))


def test_bottleneck_reproduces_the_articles_worked_example():
    direct = nn.Conv2d(256, 256, 3, padding=1, bias=False)
    bottleneck = BottleneckConv(256, 64, norm=False)
    assert measure.count_params(direct) == 589_824
    assert measure.count_params(bottleneck) == 69_632
    assert bottleneck(torch.randn(1, 256, 8, 8)).shape == (1, 256, 8, 8)


@pytest.mark.parametrize("block", [BasicBlock, Bottleneck])
def test_residual_blocks_add_the_input_and_plain_blocks_do_not(block):
    residual = block(64 * block.expansion, 64)
    plain = block(64 * block.expansion, 64, skip=False)
    plain.load_state_dict(residual.state_dict())
    residual.eval(), plain.eval()
    x = torch.randn(2, 64 * block.expansion, 8, 8)
    with torch.no_grad():
        # with the last unit zeroed, the residual block is relu(identity), the plain one is 0
        last = residual.conv2 if block is BasicBlock else residual.conv3
        last[1].weight.zero_()
        plain.load_state_dict(residual.state_dict())
        torch.testing.assert_close(residual(x), torch.relu(x))
        assert plain(x).abs().max() == 0


def test_residual_block_projects_when_shape_changes():
    block = BasicBlock(16, 32, stride=2)
    assert block.downsample is not None
    assert block(torch.randn(1, 16, 8, 8)).shape == (1, 32, 4, 4)


def test_dense_block_grows_by_the_growth_rate():
    block = DenseBlock(num_layers=4, in_channels=16, growth_rate=8)
    assert block.out_channels == 48
    out = block(torch.randn(1, 16, 8, 8))
    assert out.shape == (1, 48, 8, 8)
    x = torch.randn(1, 16, 8, 8)
    assert torch.equal(block(x)[:, :16], x)  # every layer's input travels on unchanged


def test_mixed_unit_costs_exactly_one_3x3_unit():
    plain, mixed = nets.CifarNet(16), nets.CifarNet(16, unit=nets.mixed_unit((1, 3, 5), (2, 5, 1)))
    assert measure.count_params(mixed) == measure.count_params(plain)
    assert measure.count_macs(mixed) == measure.count_macs(plain)
    assert mixed(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    with pytest.raises(ValueError, match="multiple of 8"):
        nets.MixedUnit(16, 20, (1, 3, 5), (2, 5, 1))


def test_bottleneck_unit_narrows_the_middle():
    net = nets.CifarNet(16, unit=nets.bottleneck_unit(4))
    middles = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert [m.in_channels for m in middles[1:]] == [4, 8, 16]  # stage widths 16, 32, 64 over 4


def test_separable_and_shuffle_units():
    from convbook.blocks import ChannelShuffle, DepthwiseSeparable, ShuffleUnit

    sep = DepthwiseSeparable(32, 64)
    assert sep(torch.randn(1, 32, 8, 8)).shape == (1, 64, 8, 8)
    assert sep[0][0].groups == 32
    unit = ShuffleUnit(240, groups=3)
    assert unit(torch.randn(1, 240, 8, 8)).shape == (1, 240, 8, 8)
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert ChannelShuffle(2)(x).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    with pytest.raises(ValueError, match="must divide"):
        ShuffleUnit(240, groups=7)


def test_grouped_unit_shuffle_keeps_cost():
    plain = nets.CifarNet(16, unit=nets.grouped_unit(4, shuffle=False))
    shuffled = nets.CifarNet(16, unit=nets.grouped_unit(4, shuffle=True))
    assert measure.count_params(plain) == measure.count_params(shuffled)
    assert measure.count_macs(plain) == measure.count_macs(shuffled)


@pytest.mark.parametrize("build, message", [
    (lambda: blocks.ConvBNAct(8, 8, 4), "kernel_size must be odd"),
    (lambda: blocks.BNActConv(8, 8, 2), "kernel_size must be odd"),
    (lambda: blocks.BottleneckConv(16, 4, kernel_size=4), "kernel_size must be odd"),
    (lambda: blocks.Inception(16, 4, 4, 4, 4, 4, 4, kernel_size_5x5=4), "kernel_size must be odd"),
    (lambda: blocks.ConvBNAct(8, 8, 3, padding=-1), "padding must be a whole number >= 0"),
    (lambda: blocks.ConvBNAct(8, 8, 3, activation=nn.ReLU()), "not an instance"),
    (lambda: blocks.ShuffleUnit(16, 0), "groups must be >= 1"),
    (lambda: blocks.ShuffleV2Block(16, 33, 2), "out_channels must be even"),
    (lambda: blocks.ShuffleV2Block(16, 32, 1), "must equal out_channels"),
])
def test_blocks_refuse_bad_arguments_clearly(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_even_kernel_with_explicit_padding_is_allowed():
    layer = blocks.ConvBNAct(4, 4, 2, padding=0)
    assert layer(torch.zeros(1, 4, 8, 8)).shape == (1, 4, 7, 7)


def test_channel_shuffle_keeps_channels_last_and_refuses_zero_groups():
    from convbook.blocks.shuffle import channel_shuffle

    x = torch.randn(2, 12, 5, 5)
    out = channel_shuffle(x.contiguous(memory_format=torch.channels_last), 3)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out, torch.nn.functional.channel_shuffle(x, 3))
    with pytest.raises(ValueError, match="groups must be >= 1"):
        channel_shuffle(x, 0)


def test_cifarnet_widens_a_stage_at_its_first_or_last_unit():
    def widths(net):
        return [(m.in_channels, m.out_channels) for m in net.modules() if isinstance(m, nn.Conv2d)]
    last = widths(nets.CifarNet(8, stages=2, blocks_per_stage=2))
    first = widths(nets.CifarNet(8, stages=2, blocks_per_stage=2, widen_first=True))
    assert last == [(3, 8), (8, 8), (8, 8), (8, 8), (8, 16)]
    assert first == [(3, 8), (8, 8), (8, 8), (8, 16), (16, 16)]  # VGG's order


def test_cifar_resnet_of_bottlenecks_costs_about_a_basic_one():
    from convbook import measure
    basic, bottleneck = nets.CifarResNet(8, 8), nets.CifarResNet(11, 8, block="bottleneck")
    assert bottleneck(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    ratio = measure.count_params(bottleneck) / measure.count_params(basic)
    assert 0.9 < ratio < 1.25  # He et al.'s Fig. 5 pairing
    assert bottleneck.features[-1].conv3.out_channels == 4 * 32
    with pytest.raises(ValueError, match="9n \\+ 2"):
        nets.CifarResNet(14, 8, block="bottleneck")
    with pytest.raises(ValueError, match="'basic' or 'bottleneck'"):
        nets.CifarResNet(8, 8, block="wide")


def test_norm_and_activation_layers_are_callables_as_in_torchvision():
    from convbook.blocks import BasicBlock, Bottleneck, ConvBNAct
    from convbook.errors import ConfigError

    unit = ConvBNAct(8, 8, norm_layer=lambda c: nn.GroupNorm(4, c), activation=nn.GELU)
    assert isinstance(unit[1], nn.GroupNorm) and unit[1].num_channels == 8
    assert isinstance(unit[2], nn.GELU)
    block = BasicBlock(8, 16, stride=2, norm_layer=lambda c: nn.GroupNorm(4, c),
                       act_layer=nn.SiLU)
    kinds = {type(m) for m in block.modules()}
    assert nn.GroupNorm in kinds and nn.SiLU in kinds
    assert nn.BatchNorm2d not in kinds and nn.ReLU not in kinds  # the shortcut's norm too
    assert block(torch.randn(2, 8, 8, 8)).shape == (2, 16, 4, 4)
    wide = Bottleneck(16, 4, norm_layer=lambda c: nn.GroupNorm(2, c))
    assert nn.BatchNorm2d not in {type(m) for m in wide.modules()}
    with pytest.raises(ConfigError, match="norm_layer must be a factory"):
        ConvBNAct(8, 8, norm_layer=nn.BatchNorm2d(8))
    with pytest.raises(ConfigError, match="must return an nn.Module"):
        ConvBNAct(8, 8, norm_layer=lambda c: c)
