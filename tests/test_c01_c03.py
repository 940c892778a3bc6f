"""Chapters 1 and 3: their verdict rules for every label they can return, and the readings
and controls those verdicts are read beside, fed constructed results."""

import math
from functools import partial

import pytest
import torch
from convbook import experiments, filters, nets, profiles, stats
from convbook.chapters import c01_groups as c01
from convbook.chapters import c03_inception as c03
from convbook.errors import ConfigError

C, R, I = stats.CONFIRMED, stats.REFUTED, stats.INCONCLUSIVE


def _results(variants, seeds=(0, 1, 2)):
    profile = profiles.get("book")
    return experiments.Results(variants, profile, profile.recipe, "synthetic", "cpu",
                               tuple(seeds))


# --- chapter 1: experiment 1 -----------------------------------------------------------------

def _net(grouped=0.60, equal=0.65, dense_sd=0.004, dense_seeds=5, t1=0.02, tg=0.03,
         noise=math.nan):
    return c01.GroupedNet(c01.NetFigures(1000, 4 * 10**6, t1, 0.66, dense_seeds, dense_sd),
                          c01.NetFigures(300, 10**6, tg, grouped, 1),
                          c01.NetFigures(1050, 4 * 10**6, 0.05, equal, 1), 4, "cpu", noise)


def test_seed_band_is_a_prediction_interval_from_the_dense_seeds():
    band = c01.seed_band(_net())
    assert band == pytest.approx(stats.t_quantile(0.975, 4) * 0.004 * math.sqrt(1.2))
    assert math.isnan(c01.seed_band(_net(dense_seeds=1, dense_sd=0.0)))


@pytest.mark.parametrize("grouped, equal, seeds, phrase", [
    (0.655, 0.60, 5, "are inside that band: one seed cannot tell them from seed noise"),
    (0.60, 0.655, 5, "lands 0.5 points below it, inside that band"),
    (0.60, 0.665, 5, "lands 0.5 points above it, inside that band"),
    (0.60, 0.62, 5, "still trails it by 4.0 points, beyond that band"),
    (0.60, 0.70, 5, "beats it by 4.0 points, beyond that band"),
    (0.60, 0.65, 1, "no seed-to-seed spread to read these gaps against"),
])
def test_groups_reading_reads_gaps_against_the_measured_seed_spread(grouped, equal, seeds,
                                                                    phrase):
    text = c01.groups_reading(_net(grouped, equal, dense_seeds=seeds))
    assert phrase in text
    assert "In 4 groups at the same width" in text  # what the live check edits follow
    if seeds > 1:
        assert f"within ±{100 * c01.seed_band(_net()):.1f} points" in text


def test_timing_noise_is_the_largest_relative_difference_of_repeated_timings():
    assert c01.timing_noise([(0.0215, 0.0227)]) == pytest.approx(0.0227 / 0.0215 - 1)
    assert c01.timing_noise([(0.02, 0.021), (0.03, 0.027)]) == pytest.approx(0.03 / 0.027 - 1)
    assert math.isnan(c01.timing_noise([]))
    with pytest.raises(ConfigError, match="positive seconds"):
        c01.timing_noise([(0.0, 0.02)])


def test_c11_exact_counts_confirm_and_a_wrong_count_refutes():
    exact = {1: 589824, 2: 294912, 8: 73728}
    macs = {g: n * 56 * 56 for g, n in exact.items()}
    assert c01.verdict_c11(exact, macs, _net()).label == C
    assert c01.verdict_c11({**exact, 8: 80000}, macs, _net()).label == R
    assert c01.verdict_c11(exact, {**macs, 8: 1}, _net()).label == R


@pytest.mark.parametrize("t1, tg, noise, phrase", [
    (0.02, 0.021, 0.08, "inside the timing noise"),
    (0.04, 0.012, 0.05, "roughly in step with the MACs (beyond the timing noise"),
    (0.02, 0.015, 0.05, "far from proportionally (beyond the timing noise"),
    (0.02, 0.03, 0.05, "did not buy less time (beyond the timing noise"),
    (0.02, 0.021, math.nan, "fewer MACs did not buy less time"),
])
def test_c11_reads_the_measured_time_against_the_timing_noise(t1, tg, noise, phrase):
    exact = {1: 589824, 2: 294912}
    macs = {g: n * 56 * 56 for g, n in exact.items()}
    net = _net(t1=t1, tg=tg, noise=noise)
    v = c01.verdict_c11(exact, macs, net)
    assert phrase in v.text
    assert ("timing noise" in v.text) == math.isfinite(noise)
    within = "inside the timing noise" in phrase
    assert ("(inside the timing noise)" in c01.one_minute(v, _c12([0.01] * 3, [0.99] * 3), net)
            ) == within


def test_grouped_net_takes_the_timing_noise_from_the_cost_table():
    def variant(name, seconds, accuracies):
        runs = [experiments.Run(s, a, torch.ones(10, dtype=torch.bool), [], None, None)
                for s, a in enumerate(accuracies)]
        return experiments.Variant(name, 1000, 10**6, runs,
                                   {"forward": seconds / 3, "forward_backward": seconds})
    results = _results([variant(c01.DENSE, 0.0227, [0.66, 0.67, 0.65]),
                        variant(c01.SAME_WIDTH, 0.021, [0.6]),
                        variant(c01.EQUAL_PARAMS, 0.05, [0.64])])
    costs = c01.GroupCosts(table=None, step_seconds={1: 0.0215, 2: 0.02, 4: 0.0205})
    net = c01.grouped_net(results, groups=4, device="cpu", costs=costs)
    assert net.timing_noise == pytest.approx(0.0227 / 0.0215 - 1)
    assert net.dense.accuracy_sd == pytest.approx(0.01, rel=1e-5)
    assert math.isnan(c01.grouped_net(results, groups=4, device="cpu").timing_noise)


def test_alexnet_table_says_share_of_what():
    table = c01.alexnet_costs()
    keys = list(table.rows[0])
    assert "share of its parameters in the conv layers" in keys
    assert "share of its parameters in the FC layers" in keys
    assert not any(k.startswith("share in") for k in keys)


# --- chapter 1: experiment 2 -----------------------------------------------------------------

def _tower(seed, p_above, p_below, gap=0.05, null=0.02):
    return c01.TowerSeed(seed, (0.5, 0.5 + gap), p_above, p_below, null, 0.1,
                         ((0.5,), (0.55,)), 0.66)


def _c12(p_above, p_below):
    return c01.verdict_c12([_tower(s, a, b) for s, (a, b) in enumerate(zip(p_above, p_below))])


@pytest.mark.parametrize("p_above, p_below, label, phrase", [
    ([0.01, 0.04, 0.02, 0.2, 0.03], [0.99] * 5, C, "they specialise"),
    ([0.99] * 5, [0.01, 0.04, 0.02, 0.2, 0.03], R, "more alike in colour than random splits"),
    ([0.3, 0.6, 0.2, 0.8, 0.5], [0.7, 0.4, 0.8, 0.2, 0.5], I, "Neither direction clears"),
    ([1 / 2001] * 3 + [1.0] * 3, [1.0] * 3 + [1 / 2001] * 3, I, "Both directions clear"),
    ([1 / 2001], [1.0], I, "With one seed this decides nothing"),
])
def test_c12_every_label(p_above, p_below, label, phrase):
    v = _c12(p_above, p_below)
    assert v.label == label and phrase in v.text
    assert v.numbers["combined_p"] == pytest.approx(stats.fisher_combined(p_above))
    assert v.numbers["combined_p_below"] == pytest.approx(stats.fisher_combined(p_below))
    assert "difference" not in v.numbers  # not points of accuracy: the summary table shows "—"


def test_c12_decides_at_half_the_error_rate_in_each_direction():
    # combined p between 0.025 and 0.05: not enough for one direction of a shared 5 %
    p = [0.06, 0.2, 0.1]
    assert 0.025 < stats.fisher_combined(p) < 0.05
    assert _c12(p, [0.95] * 3).label == I
    assert _c12(p, [0.95] * 3).numbers["significant_seeds"] == 0


def test_c12_inconclusive_states_what_it_could_have_seen():
    v = _c12([0.3, 0.6, 0.2], [0.7, 0.4, 0.8])
    assert "could not have detected a difference smaller than" in v.text
    assert "in the gap above random splits" in v.text
    assert v.numbers["excess"].mean == pytest.approx(0.03)


def test_tower_seeds_add_the_control_time_as_seeds():
    assert c01.tower_seeds([0, 1, 2, 3, 4]) == [0, 1, 2, 3, 4, 5, 6]
    assert c01.tower_seeds([3], extra=0) == [3]
    with pytest.raises(ConfigError, match="seeds"):
        c01.tower_seeds([])


def test_split_test_matches_the_library_permutation_test_and_finds_a_planted_split():
    g = torch.Generator().manual_seed(1)
    shares = torch.rand(32, generator=g)
    towers = [i // 16 for i in range(32)]
    test = c01.split_test(shares, towers, 500, seed=3)
    assert test.p_above == pytest.approx(filters.permutation_p_value(shares, towers, 500, 3))
    assert test.p_above + test.p_below >= 1  # the real split counts in both tails
    planted = shares.clone()
    planted[16:] += 0.5
    split = c01.split_test(planted, towers, 500, seed=3)
    assert split.p_above == pytest.approx(1 / 501) and split.p_below == 1.0
    assert 0 < split.null_gap < 0.5


def test_p_values_print_their_floor_not_zero():
    assert c01.p_text(1 / 2001, 2000) == "≤ 1/2001"
    assert c01.p_text(0.0123, 2000) == "0.012"
    assert c01.p_text(3.14e-5) == "3.1 × 10⁻⁵"
    table = c01.tower_table([_tower(0, 1 / 2001, 1.0)])
    assert table.rows[0]["p (gap ≥ random splits')"] == "≤ 1/2001"
    assert table.rows[0]["gap in filter sds"] == "0.50"


def test_tower_measures_on_trained_shape_networks():
    build = partial(nets.TwoTowerNet, 2, towers=2, first_channels=8)
    runs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        runs.append(experiments.Run(seed, 0.1, torch.zeros(4, dtype=torch.bool), [], None,
                                    build()))
    variant = experiments.Variant("two towers", 0, 0, runs, build=build)
    measures = c01.tower_measures(_results([variant], seeds=(0, 1)), permutations=200)
    assert [m.seed for m in measures] == [0, 1]
    for m, run in zip(measures, runs):
        shares = filters.colour_share(run.model.features.first_conv.weight)
        towers = run.model.features.tower_of_first_filters()
        assert m.p_value == pytest.approx(filters.permutation_p_value(shares, towers, 200,
                                                                      m.seed))
        assert len(m.filter_shares[0]) == 4 and m.filter_sd > 0
        assert 0 < m.initial_share < 1
    assert "random equal split of the same filters leaves" in c01.towers_reading(measures)


# --- chapter 3: the branch ablation and its random-channel control ----------------------------

F = c03.Fraction


def _mixed_results(seeds=2, split=(4, 2, 2)):
    from convbook.data import CifarData

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (40,), generator=g)
    data = CifarData((images, labels), (images, labels), "random")
    build = partial(nets.CifarNet, 8, unit=nets.mixed_unit((1, 3, 5), split))
    runs = []
    for s in range(seeds):
        torch.manual_seed(s)
        runs.append(experiments.Run(s, 0.0, torch.zeros(40, dtype=torch.bool), [], None,
                                    build().eval()))
    return _results([experiments.Variant(c03.MIXED, 0, 0, runs)], seeds=range(seeds)), data


def test_branch_ablation_silences_each_kernel_size_and_random_channels():
    results, data = _mixed_results()
    ablation = c03.branch_ablation(results, data, draws=2)
    assert ablation.shares == {1: F(1, 2), 3: F(1, 4), 5: F(1, 4)}
    assert sorted(ablation.random) == [F(1, 4), F(1, 2)]
    assert all(len(per_seed) == 2 and all(len(d) == 2 for d in per_seed)
               for per_seed in ablation.random.values())
    table = c03.ablation_table(ablation, (4, 2, 2))
    assert [row["channels held at their mean"] for row in table.rows] == [
        "none", "the 1×1 branches", "random channels (control)", "the 3×3 branches",
        "the 5×5 branches", "random channels (control)"]
    assert [row["share of each unit's channels"] for row in table.rows] == [
        "—", "4/8", "4/8", "2/8", "2/8", "2/8"]
    assert "2 draws per seed" in table.caption and "on 40 test images" in table.caption
    assert c03.branch_ablation(results, data, draws=1, images=15).images == 14  # every 3rd
    # the hooks are gone afterwards: the intact accuracy is reproducible
    assert ablation.intact == c03.branch_ablation(results, data, draws=1).intact


def test_silencing_a_branch_through_its_unit_equals_silencing_the_branch(monkeypatch):
    results, data = _mixed_results(seeds=1)
    model = results[c03.MIXED].model
    batch = data.test[0][:16].float() / 255

    def outputs(model, test):  # stands in for evaluate: the logits themselves
        with torch.no_grad():
            return model(batch)
    monkeypatch.setattr(c03.train, "evaluate", outputs)
    units = c03._units(model)
    masks = {unit: torch.tensor([k == 3 for k in ks]) for unit, ks in units}
    through_units = c03._silenced_accuracy(model, data.test, masks)

    def silence(module, inputs, output):
        return output.mean(dim=(0, 2, 3), keepdim=True).expand_as(output)
    hooks = [m.register_forward_hook(silence) for name, m in model.named_modules()
             if name.endswith("conv3x3")]
    try:
        by_branch = outputs(model, None)
    finally:
        for hook in hooks:
            hook.remove()
    assert torch.allclose(through_units, by_branch, atol=1e-6)
    assert not torch.allclose(through_units, outputs(model, None), atol=1e-3)


def test_branch_ablation_refuses_a_network_without_multi_size_units():
    results, data = _mixed_results(seeds=1)
    results[c03.MIXED].runs[0].model = nets.CifarNet(8).eval()
    with pytest.raises(ConfigError, match="multi-size units"):
        c03.branch_ablation(results, data)
    with pytest.raises(ConfigError, match="draws"):
        c03.branch_ablation(_mixed_results(seeds=1)[0], data, draws=0)


def test_ablation_images_spread_over_the_test_set():
    labels = torch.arange(10).repeat_interleave(1000)  # sorted by class, the worst order
    images = torch.zeros(10_000, 1)
    kept_images, kept = c03.ablation_images((images, labels), 5000)
    assert len(kept) == len(kept_images) == 5000 and kept.bincount().tolist() == [500] * 10
    assert len(c03.ablation_images((images, labels), 20_000)[1]) == 10_000
    with pytest.raises(ConfigError, match="most"):
        c03.ablation_images((images, labels), 0)


def test_random_masks_silence_the_share_across_branches():
    results, _ = _mixed_results(seeds=1)
    units = c03._units(results[c03.MIXED].model)
    masks = c03.random_masks(units, F(1, 4), torch.Generator().manual_seed(0))
    for unit, kernels in units:
        assert int(masks[unit].sum()) == len(kernels) // 4
    last, kernels = units[-1]
    chosen = {k for k, m in zip(kernels, masks[last].tolist()) if m}
    assert len(chosen) > 1  # drawn across the branches, not from one of them


def _ablation(silenced, seeds=3):
    noise = [0.0, 0.01, -0.01][:seeds]
    return c03.Ablation([0.66] * seeds,
                        {k: [v + e for e in noise] for k, v in silenced.items()},
                        {1: F(1, 2), 3: F(1, 4), 5: F(1, 4)},
                        {F(1, 2): [[0.30, 0.30]] * seeds, F(1, 4): [[0.50, 0.50]] * seeds})


@pytest.mark.parametrize("silenced, phrase, absent", [
    ({1: 0.20, 3: 0.40, 5: 0.40},
     "relies on all three kernel sizes beyond their share of the width", None),
    ({1: 0.30, 3: 0.50, 5: 0.50}, "the drops measure the width lost", "relies on all"),
    ({1: 0.20, 3: 0.60, 5: 0.50},
     ("the 1×1 branches cost more than random channels of the same share; the 3×3 branches "
      "cost less; the 5×5 branches cannot be told from random channels"), "relies on all"),
    ({1: 0.40, 3: 0.60, 5: 0.60}, "the 1×1, 3×3 and 5×5 branches cost less", "relies on all"),
])
def test_ablation_reading_compares_each_branch_with_random_channels(silenced, phrase, absent):
    text = c03.ablation_reading(_ablation(silenced))
    assert phrase in text
    assert "as many random channels cost 36.0 points at 1/2 and 16.0 points at 1/4" in text
    if absent:
        assert absent not in text


def test_ablation_reading_with_one_seed_reports_without_reading():
    text = c03.ablation_reading(_ablation({1: 0.20, 3: 0.40, 5: 0.40}, seeds=1))
    assert "reported, not read" in text and "relies on all" not in text


def test_ablation_excess_is_the_branch_drop_minus_the_random_drop():
    ablation = _ablation({1: 0.20, 3: 0.40, 5: 0.40})
    assert ablation.excess(1).mean == pytest.approx(0.46 - 0.36)
    assert ablation.excess(3).mean == pytest.approx(0.26 - 0.16)
    # three comparisons with the control share one 5 % error rate
    assert ablation.excess(1).confidence == pytest.approx(1 - 0.05 / 3)
    assert "98.3% intervals over seeds, sharing a 5% error rate" in c03.ablation_reading(ablation)
    # a drop beyond random channels' at 95 % but not at 98.3 % is not read as more
    wide = c03.Ablation([0.66] * 3, {1: [0.24, 0.22, 0.18], 3: [0.5] * 3, 5: [0.5] * 3},
                        ablation.shares, ablation.random)
    assert [round(x, 6) for x in [d - 0.36 for d in wide.drops(1)]] == [0.06, 0.08, 0.12]
    assert stats.mean_interval([0.06, 0.08, 0.12]).low > 0 > wide.excess(1).low
    assert "the 1×1 branches cost more" not in c03.ablation_reading(wide)


# --- chapter 3: C3.2's scope and the 159K ----------------------------------------------------

def test_c32_says_what_is_refuted_and_what_is_not():
    stack = c03.StackCosts([10, 20, 45], [30, 60, 90], table=None)
    refuted = c03.verdict_c32(c03.ModuleCosts(500, 400, 700, 160), stack)
    assert refuted.label == R
    assert refuted.text.startswith("What is refuted: that one naive module holds far more")
    assert "What is not: that naive modules grow costly when stacked (the fourth holds 4.5×" \
        in refuted.text
    confirmed = c03.verdict_c32(c03.ModuleCosts(1500, 400, 700, 160), stack)
    assert confirmed.label == C and confirmed.text.startswith("Confirmed for one module")
    c31 = stats.Verdict("C3.1", I, "", numbers={"difference": "+0.1 points"})
    assert "a claim about the single module" in c03.one_minute(c31, refuted)
    assert "4.5-fold" in c03.one_minute(c31, refuted)


def test_reduced_module_count_is_reconciled_with_googlenets_table():
    costs, _ = c03.module_costs()
    # 192·64 + 192·96 + 9·96·128 + 192·16 + 25·16·32 + 192·32 weights
    assert costs.reduced_weights == 163_328
    assert costs.reduced_norm == 2 * (64 + 96 + 128 + 16 + 32 + 32) == 736
    assert costs.reduced == costs.reduced_weights + costs.reduced_norm == 164_064
    text = c03.module_reading(costs)
    assert "163,328 convolution weights and 736 batch-norm" in text
    assert "it would count 163,696" in text and "159K" in text and "2.7 % above" in text
    v = c03.verdict_c32(costs, c03.stacking(modules=4))
    assert "163,328 convolution weights (164,064 parameters with its batch norms" in v.text
