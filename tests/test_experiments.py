import pytest
import torch
from convbook import experiments, profiles
from convbook.data import CifarData
from torch import nn


def _data():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (64,), generator=generator)
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=generator)
    return CifarData(train=(images, labels), test=(images[:32], labels[:32]), source="synthetic")


def _net(width):
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(width, 10))


def test_compare_trains_measures_and_caches():
    profile = profiles.scaled(profiles.get("smoke"), epochs=1, batch_size=32)
    variants = {"narrow": lambda: _net(4), "wide": lambda: _net(8)}
    first = experiments.compare(variants, _data(), profile, seed=1, device="cpu")
    assert [r.name for r in first] == ["narrow", "wide"]
    assert first["wide"].params == 3 * 9 * 8 + 8 + 8 * 10 + 10
    assert not any(r.cached for r in first)
    second = experiments.compare(variants, _data(), profile, seed=1, device="cpu")
    assert all(r.cached for r in second)
    for a, b in zip(first, second):
        assert a.test_accuracy == b.test_accuracy and a.history == b.history
        for key, value in a.model.state_dict().items():
            assert torch.equal(value, b.model.state_dict()[key])
    html = second._repr_html_()
    assert "profile &#x27;smoke&#x27;" in html and "synthetic" in html and "narrow" in html
    # another seed is another configuration: not taken from the cache
    third = experiments.compare(variants, _data(), profile, seed=2, device="cpu")
    assert not any(r.cached for r in third)


def test_compare_needs_variants():
    with pytest.raises(ValueError, match="at least one variant"):
        experiments.compare({}, _data(), profiles.get("smoke"))


def test_judge_uses_noise_margin():
    margin = experiments.accuracy_margin(0.6, 2000)
    assert 0.02 < margin < 0.04
    assert experiments.judge(0.66, 0.60, 2000) == "confirmed"
    assert experiments.judge(0.61, 0.60, 2000) == "nuanced"
    assert experiments.judge(0.54, 0.60, 2000) == "refuted"


def test_profiles():
    assert profiles.get("auto").name == ("full" if torch.cuda.is_available() else "book")
    assert profiles.get("smoke").epochs == 1
    with pytest.raises(ValueError, match="choose one of: auto, smoke, book, full"):
        profiles.get("fast")
