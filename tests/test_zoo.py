"""convbook.zoo against torchvision: same parameter count, same outputs after copying weights."""

import pytest
import torch
import torchvision
from convbook import measure, zoo

CASES = {
    # name: (ours, torchvision's, parameter count torchvision reports)
    "alexnet": (zoo.alexnet, lambda: torchvision.models.alexnet(), 61_100_840),
    "googlenet": (zoo.googlenet,
                  lambda: torchvision.models.googlenet(aux_logits=False, init_weights=True),
                  6_624_904),
    "resnet18": (zoo.resnet18, lambda: torchvision.models.resnet18(), 11_689_512),
    "resnet50": (zoo.resnet50, lambda: torchvision.models.resnet50(), 25_557_032),
    "resnext50_32x4d": (zoo.resnext50_32x4d, lambda: torchvision.models.resnext50_32x4d(),
                        25_028_904),
    "densenet121": (zoo.densenet121, lambda: torchvision.models.densenet121(), 7_978_856),
    "mobilenet_v2": (zoo.mobilenet_v2, lambda: torchvision.models.mobilenet_v2(), 3_504_872),
    "shufflenet_v2_x1_0": (zoo.shufflenet_v2_x1_0,
                           lambda: torchvision.models.shufflenet_v2_x1_0(), 2_278_604),
}


@pytest.mark.parametrize("name", CASES)
def test_zoo_matches_torchvision(name):
    build_ours, build_theirs, expected = CASES[name]
    torch.manual_seed(0)
    ours, theirs = build_ours(), build_theirs()
    assert measure.count_params(ours) == measure.count_params(theirs) == expected
    zoo.copy_weights(theirs, ours)
    ours.eval(), theirs.eval()
    x = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


def test_published_accuracy_comes_from_torchvision_metadata():
    assert zoo.imagenet_top1("resnet50") == pytest.approx(76.13)
    assert zoo.imagenet_top1("densenet121") == pytest.approx(74.434)


def test_channel_shuffle_is_torchvisions_permutation():
    from convbook.blocks import channel_shuffle
    from torchvision.models.shufflenetv2 import channel_shuffle as reference

    x = torch.arange(2 * 12 * 3 * 3, dtype=torch.float32).reshape(2, 12, 3, 3)
    for groups in (1, 2, 3, 4, 6):
        assert torch.equal(channel_shuffle(x, groups), reference(x, groups))


def test_se_block_equals_torchvisions():
    from convbook.blocks import SqueezeExcitation

    ours, theirs = SqueezeExcitation(64, reduction=16), torchvision.ops.SqueezeExcitation(64, 4)
    zoo.copy_weights(theirs, ours)
    x = torch.randn(2, 64, 8, 8)
    torch.testing.assert_close(ours(x), theirs(x))


def test_se_resnet50_adds_two_small_layers_per_block():
    blocks = [m for m in zoo.se_resnet50().modules() if type(m).__name__ == "Bottleneck"]
    extra = sum(2 * (b.se.fc1.in_channels * b.se.fc1.out_channels) + b.se.fc1.out_channels
                + b.se.fc1.in_channels for b in blocks)
    assert measure.count_params(zoo.se_resnet50()) - 25_557_032 == extra
