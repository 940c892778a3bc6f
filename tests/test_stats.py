"""The statistics every verdict rests on: known cases, a planted effect, and noise alone."""

import math

import pytest
import torch
from convbook import stats
from convbook.errors import ConfigError


def test_t_quantiles_match_tables():
    # two-sided 95 % critical values from any t table
    for df, expected in ((1, 12.706), (2, 4.303), (4, 2.776), (10, 2.228), (30, 2.042)):
        assert stats.t_quantile(0.975, df) == pytest.approx(expected, abs=1e-3)
    assert stats.t_quantile(0.025, 2) == pytest.approx(-4.303, abs=1e-3)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        stats.t_quantile(1.0, 3)
    with pytest.raises(ValueError, match="df must be"):
        stats.t_quantile(0.9, 0)


def test_identical_predictions_give_zero_difference():
    correct = (torch.rand(3, 500, generator=torch.Generator().manual_seed(0)) < 0.7).float()
    diff = stats.paired_difference(correct, correct)
    assert diff.mean == 0 and diff.low == 0 and diff.high == 0
    assert stats.label_difference(diff) == stats.INCONCLUSIVE


def test_known_difference_and_interval_by_hand():
    # A is right on every image, B on 3 of 4 in every seed: difference 0.25, and the seed
    # term is 0, so the interval is t(2) times the image term alone.
    a = torch.ones(3, 4)
    b = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 1], [0, 1, 1, 1]], dtype=torch.float)
    diff = stats.paired_difference(a, b)
    assert diff.mean == pytest.approx(0.25)
    per_image = torch.tensor([1 / 3, 0, 1 / 3, 1 / 3])  # share of seeds where B missed it
    se_images = math.sqrt(per_image.var().item() / 4)
    assert diff.se_images == pytest.approx(se_images)
    assert diff.se_seeds == pytest.approx(0.0)
    assert diff.high - diff.mean == pytest.approx(4.3027 * se_images, rel=1e-4)
    assert diff.seeds == 3 and diff.images == 4


def _simulated(effect: float, seeds: int, images: int, seed: int, seed_sd: float = 0.01):
    """Correctness of two variants: image difficulty shared, a per-seed shift, and an
    ``effect`` added to A's chance of being right."""
    g = torch.Generator().manual_seed(seed)
    difficulty = torch.rand(images, generator=g) * 0.6 + 0.2  # chance right, per image
    rows_a, rows_b = [], []
    for _ in range(seeds):
        shift_a, shift_b = torch.randn(2, generator=g) * seed_sd
        rows_a.append(torch.rand(images, generator=g) < (difficulty + effect + shift_a).clamp(0, 1))
        rows_b.append(torch.rand(images, generator=g) < (difficulty + shift_b).clamp(0, 1))
    return torch.stack(rows_a).float(), torch.stack(rows_b).float()


def test_planted_effect_is_found():
    a, b = _simulated(0.05, seeds=3, images=10_000, seed=1)
    diff = stats.paired_difference(a, b)
    assert 0.03 < diff.mean < 0.07
    assert stats.label_difference(diff, +1) == stats.CONFIRMED
    assert stats.label_difference(diff, -1) == stats.REFUTED


def test_noise_alone_is_inconclusive_at_the_stated_rate():
    # With no effect, a 95 % interval should exclude zero in about 5 % of experiments (the
    # seed-by-image residual is counted twice, so a little less).
    excluded = 0
    trials = 200
    for trial in range(trials):
        a, b = _simulated(0.0, seeds=3, images=2_000, seed=100 + trial)
        diff = stats.paired_difference(a, b)
        excluded += stats.label_difference(diff) != stats.INCONCLUSIVE
    assert excluded / trials <= 0.08


def test_one_seed_decides_nothing():
    a, b = _simulated(0.2, seeds=1, images=2_000, seed=3)
    diff = stats.paired_difference(a, b)
    assert math.isinf(diff.low) and math.isinf(diff.high)
    assert stats.label_difference(diff) == stats.INCONCLUSIVE
    assert "one seed" in str(diff)


def test_paired_shapes_must_match():
    with pytest.raises(ValueError, match="same seeds x images shape"):
        stats.paired_difference(torch.ones(3, 10), torch.ones(2, 10))


@pytest.mark.parametrize("low, high, direction, smallest, expected", [
    (0.01, 0.05, +1, 0.0, stats.CONFIRMED),
    (-0.05, -0.01, +1, 0.0, stats.REFUTED),
    (-0.05, -0.01, -1, 0.0, stats.CONFIRMED),
    (-0.01, 0.02, +1, 0.0, stats.INCONCLUSIVE),
    (-0.01, 0.02, +1, 0.03, stats.REFUTED),   # rules out the smallest effect the claim implies
    (-0.01, 0.04, +1, 0.03, stats.INCONCLUSIVE),
])
def test_label_difference_every_label(low, high, direction, smallest, expected):
    diff = stats.Difference((low + high) / 2, low, high, seeds=3, images=1000)
    assert stats.label_difference(diff, direction, smallest_effect=smallest) == expected


def test_label_threshold():
    diff = stats.Difference(0.03, 0.01, 0.05, 3, 1000)
    assert stats.label_difference(diff, threshold=0.02) == stats.INCONCLUSIVE
    assert stats.label_difference(diff, threshold=0.005) == stats.CONFIRMED
    # the whole interval below the claimed size: refuted, even though it is above zero
    assert stats.label_difference(diff, threshold=0.08) == stats.REFUTED
    assert stats.label_difference(diff, smallest_effect=0.08) == stats.REFUTED


def test_label_exact_and_combine():
    assert stats.label_exact(9, 9) == stats.CONFIRMED
    assert stats.label_exact(8.47, 9) == stats.REFUTED
    yes = stats.Verdict("C", stats.CONFIRMED, "a")
    no = stats.Verdict("C", stats.INCONCLUSIVE, "b")
    assert stats.combine("C", {"one": yes, "two": yes}).label == stats.CONFIRMED
    mixed = stats.combine("C", {"one": yes, "two": no})
    assert mixed.label == stats.NUANCED and "*one* (confirmed): a" in mixed.text
    with pytest.raises(ValueError, match="only for a claim whose named parts"):
        stats.Verdict("C", stats.NUANCED, "no parts")
    with pytest.raises(ValueError, match="label must be one of"):
        stats.Verdict("C", "maybe", "x")


def test_mean_interval():
    diff = stats.mean_interval([1.0, 2.0, 3.0])
    assert diff.mean == 2.0
    assert diff.high - diff.mean == pytest.approx(4.303 * (1 / math.sqrt(3)), abs=1e-3)
    assert math.isinf(stats.mean_interval([1.0]).low)
    with pytest.raises(ValueError, match="finite"):
        stats.mean_interval([float("nan"), 1.0])


@pytest.mark.parametrize("low, high, smallest, label, phrase", [
    (0.01, 0.03, 0.0, stats.CONFIRMED, "claimed effect, beyond"),
    (-0.03, -0.01, 0.0, stats.REFUTED, "opposite of the claimed effect"),
    (-0.01, 0.01, 0.02, stats.REFUTED, "excludes an effect of 2.0 points"),
    (-0.01, 0.03, 0.0, stats.INCONCLUSIVE, "cannot decide"),
])
def test_verdict_on_difference_text_follows_label(low, high, smallest, label, phrase):
    diff = stats.Difference((low + high) / 2, low, high, 3, 1000)
    verdict = stats.verdict_on_difference("C", diff, "A minus B", smallest_effect=smallest)
    assert verdict.label == label and phrase in verdict.text
    assert verdict.as_dict()["numbers"]["difference"]["low"] == low


def test_shared_confidence_splits_the_error_rate():
    assert stats.shared_confidence(1) == pytest.approx(0.95)
    assert stats.shared_confidence(2) == pytest.approx(0.975)
    assert stats.shared_confidence(5) == pytest.approx(0.99)
    with pytest.raises(ConfigError, match="whole number"):
        stats.shared_confidence(0)


def test_seeds_needed_scales_with_the_seed_term():
    diff = stats.Difference(0.01, -0.04, 0.06, seeds=3, images=10_000, se_seeds=0.02,
                            se_images=0.002)
    n = stats.seeds_needed(diff, 0.012)
    # with normal quantiles (1.96 + 0.84)² × 0.02² × 3 / (0.012² − 2.8² × 0.002²) ≈ 84;
    # Student's t at the answer's own degrees of freedom adds a few
    assert 75 <= n <= 90
    assert stats.seeds_needed(diff, 0.05) < n  # a larger effect needs fewer seeds
    assert stats.seeds_needed(diff, 0.005) is None  # the image term alone hides 0.5 points
    with pytest.raises(ConfigError, match="positive fraction"):
        stats.seeds_needed(diff, 0)
    with pytest.raises(ConfigError, match="two or more seeds"):
        stats.seeds_needed(stats.Difference(0.0, -math.inf, math.inf, 1, 100), 0.01)
