import math

import pytest
import torch
from convbook import gradients, measure, nets
from torch import nn


def _batch(n=64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator)
    return images, torch.randint(0, 10, (n,), generator=generator)


def test_norms_are_per_conv_layer_and_leave_the_model_unchanged():
    model = nets.CifarResNet(14, 4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    norms = gradients.layer_gradient_norms(model, _batch(), batches=2, batch_size=32)
    assert len(norms) == len(gradients.conv_layers(model)) == 13  # stem + 12 block convs
    assert all(n > 0 for n in norms)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_rms_matches_a_hand_computation():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.LazyLinear(10))
    images, labels = _batch(8)
    model(torch.zeros(1, 3, 32, 32))  # materialise the lazy layer
    norms = gradients.layer_gradient_norms(model, (images, labels), batches=1, batch_size=8)
    from convbook.train import normalize

    loss = nn.functional.cross_entropy(model(normalize(images)), labels)
    (grad,) = torch.autograd.grad(loss, [model[0].weight])
    assert norms[0] == pytest.approx(float(grad.norm() / math.sqrt(grad.numel())), rel=1e-5)


def test_he_initialisation_keeps_gradients_in_plain_nets_without_batch_norm():
    """With PyTorch's default initialisation the first layer of a 32-layer plain net without
    batch norm got ~1e-6 of the last layer's gradient; He initialisation (as torchvision's
    ResNets) keeps the ratio within two orders of magnitude of 1."""
    series = gradients.at_initialisation(32, 4, _batch(), batches=1)
    assert set(series) == {"plain, with batch norm", "residual, with batch norm",
                           "plain, no batch norm", "residual, no batch norm"}
    for name in ("plain, no batch norm", "residual, no batch norm"):
        assert 1e-2 < gradients.first_to_last_ratio(series[name]) < 1e2, name
    # with batch norm the first layers get more gradient than the last, not less (Yang et
    # al., 2019, "A Mean Field Theory of Batch Normalization")
    assert gradients.first_to_last_ratio(series["plain, with batch norm"]) > 1
    torch.manual_seed(0)
    default = nets.CifarResNet(32, 4, skip=False, norm=False)
    for module in default.modules():  # undo He initialisation: PyTorch's default
        if isinstance(module, nn.Conv2d):
            module.reset_parameters()
    norms = gradients.layer_gradient_norms(default, _batch(), batches=1)
    assert gradients.first_to_last_ratio(norms) < 1e-2


def test_no_batch_norm_means_none_anywhere():
    for skip in (False, True):
        model = nets.CifarResNet(20, 4, skip=skip, norm=False)
        assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    # He et al.'s option A shortcuts add no parameters: plain and residual nets are equal
    assert (measure.count_params(nets.CifarResNet(20, 4, skip=True))
            == measure.count_params(nets.CifarResNet(20, 4, skip=False)))


def test_cifar_resnet_depths():
    assert len(gradients.conv_layers(nets.CifarResNet(20, 4))) == 19
    with pytest.raises(ValueError, match="6n \\+ 2"):
        nets.CifarResNet(18, 4)
