import pytest
import torch
import torchvision
from torch import nn

from convbook import measure, nets, zoo
from convbook.blocks import ConvBNAct, TwoTowerFeatures


def test_conv_unit_keeps_size_and_counts():
    unit = ConvBNAct(16, 32, 5, groups=4, dilation=2)
    assert unit(torch.randn(2, 16, 12, 12)).shape == (2, 32, 12, 12)
    conv, bn = unit[0], unit[1]
    assert conv.bias is None and isinstance(bn, nn.BatchNorm2d)
    assert measure.count_params(unit) == 5 * 5 * 4 * 32 + 2 * 32


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(in_channels=12, out_channels=16, groups=5), "values that work: 1, 2, 4"),
        (dict(in_channels=12, out_channels=16, kernel_size=0), "kernel_size must be >= 1"),
        (dict(in_channels=12, out_channels=16, stride=1.5), "stride must be a whole number"),
        (dict(in_channels=0, out_channels=16), "in_channels must be >= 1"),
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


def test_alexnet_matches_torchvision_exactly():
    ours, theirs = zoo.alexnet(), torchvision.models.alexnet(weights=None)
    assert measure.count_params(ours) == measure.count_params(theirs) == 61_100_840
    zoo.copy_weights(theirs, ours)
    x = torch.randn(2, 3, 224, 224)
    ours.eval(), theirs.eval()
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)


def test_alexnet_2012_two_towers_parameter_count():
    # 60,965,224: the two-tower network of Krizhevsky et al. (2012), conv2/4/5 in two groups.
    assert measure.count_params(zoo.alexnet_2012(towers=2)) == 60_965_224
    one = measure.count_params(zoo.alexnet_2012(towers=1))
    # without the split, conv2, conv4 and conv5 double their weights
    assert one - 60_965_224 == (256 * 48 * 25) + (384 * 192 * 9) + (256 * 192 * 9)


def test_copy_weights_refuses_other_networks():
    with pytest.raises(ValueError, match="not the same network|does not fit"):
        zoo.copy_weights(nets.CifarNet(8), zoo.alexnet())
