import pytest
import torch
from convbook import train
from torch import nn


def _colour_problem(n=256, seed=0):
    """Images whose class is their dominant colour channel: learnable in a few steps."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=generator)
    images = torch.randint(0, 80, (n, 3, 32, 32), dtype=torch.uint8, generator=generator)
    images[torch.arange(n), labels] += 150
    return images, labels


def _tiny_net():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))


def test_fit_lowers_the_loss_and_learns():
    torch.manual_seed(0)
    model = _tiny_net()
    result = train.fit(model, _colour_problem(), _colour_problem(seed=1), epochs=4,
                       batch_size=64, lr=0.1, progress=False)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0]
    assert result.test_accuracy > 0.9
    assert result.train_seconds > 0 and len(result.history) == 4


def test_same_seed_same_numbers():
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        model = _tiny_net()
        result = train.fit(model, _colour_problem(), None, epochs=2, batch_size=64, seed=5,
                           progress=False)
        runs.append(([h["train_loss"] for h in result.history], model.state_dict()))
    assert runs[0][0] == runs[1][0]
    for key in runs[0][1]:
        assert torch.equal(runs[0][1][key], runs[1][1][key])


def test_augment_crops_and_flips_on_device():
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.int64).reshape(2, 3, 8, 8).to(torch.uint8)
    out = train.augment(images, torch.Generator().manual_seed(0), pad=2)
    assert out.shape == images.shape and out.dtype == images.dtype
    # no padding: each output is the image or its mirror
    same = train.augment(images, torch.Generator().manual_seed(1), pad=0)
    for a, b in zip(same, images):
        assert torch.equal(a, b) or torch.equal(a, b.flip(2))


def test_evaluate_counts_correct_predictions():
    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.dummy = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return torch.tensor([[1.0, 0.0]]).repeat(len(x), 1)

    images = torch.zeros(10, 3, 32, 32, dtype=torch.uint8)
    labels = torch.tensor([0] * 7 + [1] * 3)
    assert train.evaluate(Constant(), (images, labels)) == pytest.approx(0.7)


def test_fit_rejects_float_images():
    with pytest.raises(ValueError, match="uint8"):
        train.fit(_tiny_net(), (torch.zeros(4, 3, 32, 32), torch.zeros(4, dtype=torch.int64)))


def test_pick_device_prefers_what_is_given():
    assert train.pick_device("cpu").type == "cpu"
