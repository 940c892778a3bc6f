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


def test_fractional_degrees_of_freedom():
    # Satterthwaite's counts are rarely whole: the quantile falls between its neighbours
    assert stats.t_quantile(0.975, 3) < stats.t_quantile(0.975, 2.5) < stats.t_quantile(0.975, 2)
    assert stats.t_quantile(0.975, math.inf) == pytest.approx(1.95996, abs=1e-5)


def test_seed_term_alone_by_hand():
    # A is right on every image in seeds 0 and 2 and wrong on every one in seed 1, B never:
    # no image effect and no residual, so the interval is Student's t at S − 1 = 2 degrees of
    # freedom on the spread of the three seed means (1, 0, 1), the old t-interval over seeds.
    a = torch.tensor([[1.0] * 4, [0.0] * 4, [1.0] * 4])
    diff = stats.paired_difference(a, torch.zeros(3, 4))
    se = math.sqrt(torch.tensor([1.0, 0.0, 1.0]).var().item() / 3)
    assert diff.mean == pytest.approx(2 / 3)
    assert diff.se_seeds == pytest.approx(se) and diff.se_images == 0
    assert diff.high - diff.mean == pytest.approx(4.3027 * se, rel=1e-4)
    assert diff.df == pytest.approx(2, rel=1e-3)
    assert diff.seeds == 3 and diff.images == 4


def test_image_term_alone_by_hand():
    # Every seed right on the same three of four images: no seed spread, no residual; the
    # image term is MS_image / (S N) with N − 1 = 3 degrees of freedom (MS_res is 0).
    a = torch.tensor([[1.0, 1.0, 1.0, 0.0]] * 3)
    diff = stats.paired_difference(a, torch.zeros(3, 4))
    ms_image = 3 * ((a[0] - 0.75) ** 2).sum().item() / 3
    se = math.sqrt(ms_image / 12)
    assert diff.se_seeds == 0 and diff.se_images == pytest.approx(se)
    assert diff.high - diff.mean == pytest.approx(stats.t_quantile(0.975, 3) * se, rel=1e-4)
    assert diff.df_images == pytest.approx(3)


def test_residual_alone_is_not_read_as_certainty():
    # Every seed's mean is the same and no image favours A, yet A and B disagree image by
    # image: the estimate of the variance would be 0, so the residual alone stands in for it.
    a = torch.ones(3, 4)
    b = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 1], [0, 1, 1, 1]], dtype=torch.float)
    diff = stats.paired_difference(a, b)
    ms_res = 2.0 / 6  # residual sum of squares 2 over (3 − 1)(4 − 1) degrees of freedom
    assert diff.mean == pytest.approx(0.25)
    assert diff.se_seeds == pytest.approx(math.sqrt(ms_res / 12)) and diff.se_images == 0
    assert diff.high - diff.mean == pytest.approx(4.3027 * diff.se_seeds, rel=1e-4)


def test_quantile_of_the_two_terms_matches_sampling():
    # the half-width is the quantile of √seed · t(2) + √image · z, here checked by drawing
    g = torch.Generator().manual_seed(0)
    draws = (0.5 * _student(2, 400_000, g) + torch.randn(400_000, generator=g)).abs()
    one = torch.tensor(1.0, dtype=torch.float64)
    for level in (0.6, 0.95, 0.99):
        q = stats._central_quantile(level, 0.25 * one, 2, one).item()
        assert (draws <= q).double().mean().item() == pytest.approx(level, abs=0.002)


def _student(df: int, n: int, g: torch.Generator) -> torch.Tensor:
    z = torch.randn(n, generator=g, dtype=torch.float64)
    chi2 = (torch.randn(n, df, generator=g, dtype=torch.float64) ** 2).sum(1)
    return z / (chi2 / df).sqrt()


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


# --- coverage of the interval, and power at the smallest detectable effect ---------------------

def _crossed(replicates, seeds, images, sd_seed, sd_image, sd_res, mean=0.0, seed=0):
    """``replicates`` seeds × images matrices D = mean + a_s + b_i + e_si (Gaussian terms)."""
    g = torch.Generator().manual_seed(seed)

    def draw(*shape):
        return torch.randn(replicates, *shape, generator=g, dtype=torch.float64)
    return mean + sd_seed * draw(seeds, 1) + sd_image * draw(1, images) + sd_res * draw(seeds, images)


def _covered(d, confidence=0.95, true_mean=0.0):
    """Share of replicates whose interval (the model's, batched) covers ``true_mean``."""
    half = stats._half_widths(d, confidence)[2]
    return ((d.mean((-2, -1)) - true_mean).abs() <= half).double().mean().item()


def _covered_by_the_old_model(d, confidence=0.95):
    """The model this replaced: the per-seed and per-image spreads added, Student's t at S − 1."""
    seeds, images = d.shape[-2:]
    se = (d.mean(-1).var(-1) / seeds + d.mean(-2).var(-1) / images).sqrt()
    half = stats.t_quantile(0.5 + confidence / 2, seeds - 1) * se
    return (d.mean((-2, -1)).abs() <= half).double().mean().item()


# (seeds, sd of the seed effect, sd of the image effect, sd of the residual), 500 images: with a
# seed variance 30 times the rest, or none at all and an image term 19 (3 seeds) to 31 times
# (5 seeds) the residual's
SEED_DOMINATED = [(3, 0.10, 0.5, 0.2), (5, 0.10, 0.5, 0.2)]
IMAGE_DOMINATED = [(3, 0.0, 0.5, 0.2), (5, 0.0, 0.5, 0.2)]


@pytest.mark.parametrize("seeds, sd_seed, sd_image, sd_res", SEED_DOMINATED + IMAGE_DOMINATED)
def test_the_95_percent_interval_covers_95_percent(seeds, sd_seed, sd_image, sd_res):
    # 3,000 replicates: the coverage estimate's own standard error is 0.4 points
    d = _crossed(3000, seeds, 500, sd_seed, sd_image, sd_res, seed=seeds)
    assert _covered(d) == pytest.approx(0.95, abs=0.02)


@pytest.mark.parametrize("seeds, sd_seed, sd_image, sd_res", IMAGE_DOMINATED)
def test_the_old_model_over_covered_where_images_dominate(seeds, sd_seed, sd_image, sd_res):
    # t at S − 1 degrees of freedom on a term with hundreds: the test above can fail
    d = _crossed(3000, seeds, 500, sd_seed, sd_image, sd_res, seed=seeds)
    assert _covered_by_the_old_model(d) > 0.97 + 0.02 * (seeds == 3)


def test_terms_of_similar_size_err_wide_not_narrow():
    # seed term about twice the rest at three seeds, where a single t at Satterthwaite's
    # estimated degrees of freedom covered only about 93 %
    d = _crossed(3000, 3, 500, 0.025, 0.5, 0.2, seed=11)
    assert 0.95 <= _covered(d) <= 0.985


@pytest.mark.parametrize("seeds, sd_seed", [(3, 0.10), (5, 0.10), (3, 0.0)])
def test_power_at_the_detectable_effect_is_80_percent(seeds, sd_seed):
    images, sd_image, sd_res = 500, 0.5, 0.2
    seed_var = (sd_res**2 + images * sd_seed**2) / (seeds * images)  # E[MS_seed] / (S N)
    image_var = sd_image**2 / images
    one = torch.tensor(1.0, dtype=torch.float64)
    half = stats._central_quantile(0.95, seed_var * one, seeds - 1, image_var * one).item()
    true = stats.detectable_effect(stats.Difference(
        0.0, -half, half, seeds, images, se_seeds=math.sqrt(seed_var),
        se_images=math.sqrt(image_var)))
    d = _crossed(3000, seeds, images, sd_seed, sd_image, sd_res, mean=true, seed=20 + seeds)
    half = stats._half_widths(d, 0.95)[2]
    confirmed = (d.mean((-2, -1)) - half > 0).double().mean().item()
    assert confirmed == pytest.approx(0.80, abs=0.03)


def test_detectable_effect_of_a_t_interval():
    # a seed term alone at many degrees of freedom: (z₀.₉₇₅ + z₀.₈) standard errors
    diff = stats.Difference(0.0, -1.96 * 0.01, 1.96 * 0.01, 3, 1000, df=math.inf)
    assert stats.detectable_effect(diff) == pytest.approx((1.95996 + 0.84162) * 0.01, rel=2e-3)
    # at 2 degrees of freedom the exact (non-central t) answer exceeds t₀.₉₇₅ + t₀.₈ = 5.36 SE
    small = stats.mean_interval([0.0, 0.01, 0.02])
    ratio = stats.detectable_effect(small) / small.se
    assert 5.364 < ratio < 7
    assert math.isinf(stats.detectable_effect(stats.mean_interval([0.01])))


def test_inconclusive_verdict_states_what_it_could_have_seen():
    import json

    diff = stats.Difference(0.005, -0.01, 0.02, 3, 1000, se_seeds=0.005, se_images=0.002)
    paper = stats.Published(0.012, "Szegedy et al. 2016, Table 2")
    v = stats.verdict_on_difference("C", diff, "A minus B", published=paper)
    mde = stats.detectable_effect(diff)
    assert v.label == stats.INCONCLUSIVE
    assert (f"could not have detected a difference smaller than {100 * mde:.1f} points, while "
            f"the paper reports 1.2 points (Szegedy et al. 2016, Table 2)") in v.text
    numbers = json.loads(json.dumps(v.as_dict(), allow_nan=False))["numbers"]
    assert numbers["detectable"] == pytest.approx(mde) and numbers["power"] == 0.8
    assert numbers["published"] == {"effect": 0.012, "upto": None,
                                    "source": "Szegedy et al. 2016, Table 2"}
    assert numbers["difference"]["low"] == -0.01  # the keys chapters and the site read
    bare = stats.verdict_on_difference("C", diff, "A minus B")
    assert "no published effect size is quoted" in bare.text
    assert bare.as_dict()["numbers"]["published"] is None
    one = stats.verdict_on_difference("C", stats.mean_interval([0.01]), "A minus B")
    assert "With one seed this run could not have detected a difference of any size" in one.text
    assert stats.Published(0.013, "Zhang et al. 2018", upto=0.058).points() == "1.3 to 5.8 points"


def test_paired_difference_is_quick_on_a_full_test_set():
    import time

    g = torch.Generator().manual_seed(0)
    a, b = (torch.rand(2, 5, 10_000, generator=g) < 0.7).float()
    start = time.perf_counter()
    for _ in range(5):
        stats.paired_difference(a, b)
    assert (time.perf_counter() - start) / 5 < 0.25  # called dozens of times per build


# --- Fisher's combination of independent p-values -----------------------------------------------

def test_fisher_combined_by_hand():
    assert stats.fisher_combined([0.3]) == pytest.approx(0.3)  # one value: unchanged
    # two values: P(χ²₄ ≥ −2 ln(p1 p2)) = q (1 − ln q) with q = p1 p2
    q = 0.05 * 0.2
    assert stats.fisher_combined([0.05, 0.2]) == pytest.approx(q * (1 - math.log(q)), rel=1e-12)
    assert stats.fisher_combined([1.0, 1.0, 1.0]) == 1.0
    # three seeds that each point the same way, none alone below 0.05, combine below it
    assert stats.fisher_combined([0.06, 0.08, 0.07]) < 0.02
    # thousands of values and tiny ones stay finite
    assert 0 < stats.fisher_combined([1 / 2001] * 50) < 1e-100
    assert 0.2 < stats.fisher_combined([math.exp(-1)] * 2000) < 0.8  # each at its null mean
    assert stats.fisher_combined([0.5] * 2000) > 0.999  # more null-like than chance


def test_fisher_combined_rejects_at_its_level_under_the_null():
    g = torch.Generator().manual_seed(0)
    draws = torch.rand(4000, 5, generator=g, dtype=torch.float64).clamp_min(1e-12)
    combined = torch.tensor([stats.fisher_combined(row.tolist()) for row in draws])
    assert abs((combined < 0.05).double().mean().item() - 0.05) < 0.012
    assert abs((combined < 0.25).double().mean().item() - 0.25) < 0.03


@pytest.mark.parametrize("bad", [[], [0.0], [0.2, 1.5], [float("nan")], [True], "0.05", 0.05,
                                 None, [0.1, "x"]])
def test_fisher_combined_names_bad_input(bad):
    with pytest.raises(ConfigError, match="p-value|p_values"):
        stats.fisher_combined(bad)
