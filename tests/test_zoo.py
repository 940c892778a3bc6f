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
