"""Every chapter's verdict rules, fed constructed results, for every label each can return."""

import pytest
import torch
from convbook import experiments, nets, profiles, stats
from convbook.chapters import c01_groups as c01
from convbook.chapters import c02_kernels as c02
from convbook.chapters import c03_inception as c03
from convbook.chapters import c04_bottleneck as c04
from convbook.chapters import c05_residual as c05
from convbook.chapters import c06_separable as c06
from convbook.chapters import c07_shuffle as c07
from convbook.chapters import c08_excitation as c08
from torch import nn

C, R, I, N = stats.CONFIRMED, stats.REFUTED, stats.INCONCLUSIVE, stats.NUANCED
EFFECTS = {C: 0.08, R: -0.08, I: 0.0}  # planted accuracy difference for each label


def _correct(effect: float, seeds: int = 3, images: int = 2000, seed: int = 0):
    """Correctness matrices (seeds × images) of A and B, where A is right on ``effect`` more
    of the images; seed-to-seed noise is small."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(seeds, images, generator=g)
    a = (base < 0.6 + effect).float()
    b = (torch.rand(seeds, images, generator=g) < 0.6).float()
    return a, b


def _variant(name, correct, params=1000, macs=10**6, train_errors=None):
    runs = [experiments.Run(seed=s, test_accuracy=float(row.mean()), correct=row.bool(),
                            history=[], final_train_error=(train_errors or [None] * 9)[s],
                            model=nn.Identity()) for s, row in enumerate(correct)]
    return experiments.Variant(name, params, macs, runs,
                               {"forward": 0.01, "forward_backward": 0.03})


def _results(variants):
    profile = profiles.get("book")
    return experiments.Results(variants, profile, profile.recipe, "synthetic", "cpu", (0, 1, 2))


def _pair(a_name, b_name, label, **extra):
    a, b = _correct(EFFECTS[label])
    return _results([_variant(a_name, a), _variant(b_name, b), *extra.get("more", [])])


# --- chapter 1 -------------------------------------------------------------------------------

def _net(equal_accuracy=0.65):
    return c01.GroupedNet(c01.NetFigures(1000, 4 * 10**6, 0.02, 0.66, 3),
                          c01.NetFigures(300, 10**6, 0.03, 0.60, 1),
                          c01.NetFigures(1050, 4 * 10**6, 0.05, equal_accuracy, 1), 4, "cpu")


@pytest.mark.parametrize("equal, reading", [
    (0.65, "comes within 1.0 points"), (0.62, "still trails it by 4.0 points")])
def test_groups_reading_tells_capacity_from_grouping(equal, reading):
    assert reading in c01.groups_reading(_net(equal))


def test_c11_exact_counts_confirm_and_a_wrong_count_refutes():
    exact = {1: 589824, 2: 294912, 8: 73728}
    macs = {g: n * 56 * 56 for g, n in exact.items()}
    assert c01.verdict_c11(exact, macs, _net()).label == C
    assert c01.verdict_c11({**exact, 8: 80000}, macs, _net()).label == R
    assert c01.verdict_c11(exact, {**macs, 8: 1}, _net()).label == R
    assert "did not buy less time" in c01.verdict_c11(exact, macs, _net()).text


@pytest.mark.parametrize("gaps, controls, label", [
    ([0.30, 0.28, 0.33], [0.02, 0.03, 0.01], C),
    ([0.01, 0.02, 0.01], [0.30, 0.28, 0.33], R),
    ([0.05, 0.01, 0.09], [0.04, 0.06, 0.02], I),
])
def test_c12_every_label(gaps, controls, label):
    measures = [c01.TowerSeed(s, (0.5, 0.5 + g), (0.5, 0.5 + c), 0.01, ((0.5,), (0.6,)), 0.66)
                for s, (g, c) in enumerate(zip(gaps, controls))]
    assert c01.verdict_c12(measures).label == label


def test_c12_one_seed_is_inconclusive():
    assert c01.verdict_c12([c01.TowerSeed(0, (0.1, 0.9), (0.5, 0.5), 0.001)]).label == I


# --- chapter 2 -------------------------------------------------------------------------------

def test_c21_counts():
    five, pair = c02.stack(5, 1), c02.stack(3, 2)
    centre = c02.CentreShares(0.4, 0.5, 0.36, 0.48, 64)
    assert c02.verdict_c21(five, pair, centre).label == C
    assert "expects 48%" in c02.verdict_c21(five, pair, centre).text
    three = c02.stack(3, 1)  # smaller field: the claim does not hold for it
    assert c02.verdict_c21(five, three, centre).label == R


@pytest.mark.parametrize("label", [C, R, I])
def test_c22_every_label(label):
    results = _pair(c02.PAIR, c02.FIVE, label)
    assert c02.verdict_c22(results).label == label


# --- chapter 3 -------------------------------------------------------------------------------

@pytest.mark.parametrize("label", [C, R, I])
def test_c31_every_label(label):
    assert c03.verdict_c31(_pair("1x1 + 3x3 + 5x5", "3x3 only", label)).label == label


def test_c32_counts():
    costs = c03.ModuleCosts(naive=1500, same_conv_outputs=400, same_width=700, reduced=160)
    stack = c03.StackCosts([10, 20, 45], [30, 60, 90], table=None)
    assert c03.verdict_c32(costs, stack).label == C
    # more, but not "far more" (at least twice): refuted
    assert c03.verdict_c32(c03.ModuleCosts(900, 400, 700, 160), stack).label == R
    assert c03.verdict_c32(c03.ModuleCosts(500, 400, 700, 160), stack).label == R
    measured, _ = c03.module_costs()
    # 64 + 9·128 + 25·32 = 9·224 weights per input channel; the module adds its batch norms
    assert measured.naive == pytest.approx(measured.same_conv_outputs, rel=0.01)
    real = c03.stacking(modules=4)
    v = c03.verdict_c32(measured, real)
    assert v.label == R  # one naive module is not the costly part
    assert real.growth > 4 and "at every step it holds fewer" in v.text
    assert all(n < p for n, p in zip(real.naive, real.plain))


# --- chapter 4 -------------------------------------------------------------------------------

def test_c41_counts():
    claimed = c04.claimed_counts()
    assert claimed == (589_824, 69_632)
    measured, _ = c04.worked_example()
    assert c04.verdict_c41(measured, claimed).label == C
    assert c04.verdict_c41((589_824, 70_000), claimed).label == R


@pytest.mark.parametrize("shares, accuracy, label", [
    ({"a": 50, "b": 60}, C, C), ({"a": 10, "b": 10}, R, R), ({"a": 50, "b": 10}, C, N),
    ({"a": 50, "b": 60}, I, N), ({"a": 50, "b": 60}, R, N)])
def test_c42_every_label(shares, accuracy, label):
    from convbook import census

    def counted(name, ones):
        params = {"dense k×k": 30, "1×1": ones, "grouped": 0, "depthwise": 5,
                  "fully connected": 5, "other": 5}
        return census.Census(name, 2016, params, dict(params), 0, 0)

    origin = census.Census("GoogLeNet", 2014, {**counted("g", 0).params}, {}, 0, 0)
    results = _pair(c04.BOTTLENECK, c04.BASIC, accuracy)
    verdict = c04.verdict_c42([origin, *(counted(n, s) for n, s in shares.items())], results)
    assert verdict.label == label
    assert verdict.parts["at equal cost"].label == accuracy
    # GoogLeNet (2014, 0 in 1×1) is counted for reference, not judged
    assert "of the MACs" in verdict.text and "GoogLeNet" not in verdict.parts["forecast"].parts


# --- chapter 5 -------------------------------------------------------------------------------

def _depths(plain_gap, residual_gain, residual_depth=(0.0, 0.0, 0.0)):
    """Training errors per seed: shallow plain; deep plain = shallow + plain_gap; deep residual
    = deep plain − residual_gain; shallow residual = deep residual − residual_depth."""
    shallow = [0.20, 0.21, 0.19]
    deep_plain = [s + g for s, g in zip(shallow, plain_gap)]
    deep_res = [p - g for p, g in zip(deep_plain, residual_gain)]
    shallow_res = [r - g for r, g in zip(deep_res, residual_depth)]
    ones = torch.ones(3, 10)
    results = _results([_variant("plain 8", ones, train_errors=shallow),
                        _variant("plain 20", ones, train_errors=deep_plain),
                        _variant("residual 8", ones, train_errors=shallow_res),
                        _variant("residual 20", ones, train_errors=deep_res)])
    return c05.degradation(results, (8, 20))


@pytest.mark.parametrize("gaps, label", [
    ([0.05, 0.06, 0.05], C), ([-0.05, -0.06, -0.05], R), ([0.05, -0.04, 0.0], I)])
def test_c51_every_label(gaps, label):
    assert c05.verdict_c51(_depths(gaps, gaps)).label == label


LOWER, HIGHER, MIXED = [-0.05, -0.051, -0.049], [0.05, 0.051, 0.049], [0.05, -0.04, 0.0]


@pytest.mark.parametrize("gain, depth, label", [
    ([0.10, 0.101, 0.099], LOWER, C),   # beats plain, and deeper residual trains better
    ([-0.10, -0.101, -0.099], HIGHER, R),
    (MIXED, MIXED, I),
    ([0.10, 0.101, 0.099], HIGHER, N),  # beats plain, but degrades with depth itself
])
def test_c53_every_label(gain, depth, label):
    assert c05.verdict_c53(_depths([0.05] * 3, gain, depth)).label == label


@pytest.mark.parametrize("c51, ratios, label", [
    (C, [0.01, 0.02, 0.05], I),   # together, but co-occurrence does not show cause
    (C, [0.5, 2.0, 17.0], R),
    (C, [0.05, 0.5, 1.0], I),
    (I, [0.01, 0.02, 0.05], I),   # nothing to explain: no degradation established
])
def test_c52_every_label(c51, ratios, label):
    first = stats.Verdict("C5.1", c51, "")
    assert c05.verdict_c52(first, ratios, [1e-3] * 3).label == label


# --- chapter 6 -------------------------------------------------------------------------------

def _same_width(separable_params):
    return c06.SameWidth((1000, separable_params), (10**6, 3 * 10**5), (0.01, 0.008),
                         (0.03, 0.035), (4, 7), "cpu")


def test_c61_counts():
    assert c06.verdict_c61(_same_width(250)).label == C
    assert c06.verdict_c61(_same_width(600)).label == R
    reading = c06.time_reading(_same_width(250))
    assert "0.30× the MACs" in reading and "7 batch norms" in reading


@pytest.mark.parametrize("xception, mobilenet, label", [
    (C, C, C), (R, R, R), (I, I, I), (C, I, N)])
def test_c62_every_label(xception, mobilenet, label):
    # two intervals share the 5 % error rate, so each is wider: plant larger effects
    a, b = _correct(2 * EFFECTS[xception], seed=1)
    m, _ = _correct(2 * EFFECTS[mobilenet], seed=2)
    results = _results([_variant(c06.XCEPTION, a), _variant(c06.STANDARD, b),
                        _variant(c06.MOBILENET, m)])
    v = c06.verdict_c62(results)
    assert v.label == label
    assert [p.label for p in v.parts.values()] == [xception, mobilenet]


# --- chapter 7 -------------------------------------------------------------------------------

@pytest.mark.parametrize("label", [C, R, I])
def test_c71_every_label(label):
    a, b = _correct(EFFECTS[label])
    one = torch.ones(1, 10)
    others = [_variant(c07.name(g, s), one) for g in (2, 8) for s in (False, True)]
    results = _results([_variant(c07.name(4, True), a), _variant(c07.name(4, False), b), *others])
    verdict = c07.verdict_c71(results, 4)
    assert verdict.label == label and "at g = 4" in verdict.text
    assert "g = 2" in verdict.text and "g = 8" in verdict.text  # the others, reported


def _c72(vs_mobile, alex_better=0.0, shuffle_params=500):
    """ShuffleNet-, MobileNet- and AlexNet-style results with planted accuracy gaps; the
    AlexNet-style net is right on a further ``alex_better`` share of the images."""
    shuffle, mobile = _correct(vs_mobile, seed=1)
    _, alex = _correct(0.0, seed=2)
    extra = torch.rand(alex.shape, generator=torch.Generator().manual_seed(3)) < alex_better
    alex = torch.where(extra, torch.ones_like(alex), alex)
    return _results([_variant(c07.SHUFFLENET, shuffle, params=shuffle_params),
                     _variant(c07.MOBILENET, mobile, params=1000),
                     _variant(c07.ALEXNET, alex, params=5000, macs=8 * 10**6)])


@pytest.mark.parametrize("label", [C, R, I])
def test_c72_beyond_mobilenet_every_label(label):
    verdict = c07.verdict_c72(_c72(2 * EFFECTS[label]))  # 97.5 % intervals: a larger gap
    assert verdict.parts["beyond MobileNet"].label == label
    assert verdict.parts["parameters"].label == C


def test_c72_parameters_refuted_when_the_shufflenet_is_heavier():
    assert c07.verdict_c72(_c72(0.0, 0.0, shuffle_params=2000)).parts["parameters"].label == R


@pytest.mark.parametrize("diff, label", [(0.0, C), (-0.02, I), (-0.15, R)])
def test_comparable_to_alexnet_every_label(diff, label):
    d = stats.Difference(diff, diff - 0.01, diff + 0.01, 3, 1000)
    assert c07.comparable_label(d) == label


def test_c72_comparable_part_reads_the_alexnet_gap():
    verdict = c07.verdict_c72(_c72(0.0, 0.5))  # AlexNet-style ~20 points better: not comparable
    assert verdict.parts["comparable to AlexNet"].label == R
    assert verdict.label == N


def test_no_shuffle_before_the_head():
    from convbook.blocks import ChannelShuffle

    model = nets.grouped_cifar_net(16, 4, shuffle=True)
    shuffles = [m for m in model.modules() if isinstance(m, ChannelShuffle)]
    assert len(shuffles) == 2  # after the first two of three grouped units
    assert not any(isinstance(m, ChannelShuffle) for m in model.features[-1].modules())


# --- chapter 8 -------------------------------------------------------------------------------

@pytest.mark.parametrize("label", [C, R, I])
def test_c81_every_label(label):
    a, b = _correct(EFFECTS[label])
    results = _results([_variant("SE, r=2", a, params=1100), _variant("no SE", b),
                        _variant("SE, r=8", a[:1])])
    assert c08.verdict_c81(results).label == label


def _se_blocks(specificities):
    from convbook.excitation import BlockMeasures
    return [BlockMeasures(x, 0.2, 0.05, 0.5, 0.01) for x in specificities]


# per seed: (first block, last block) class specificity, trained and untrained
RISES = [(0.05, 0.30), (0.06, 0.32), (0.04, 0.31)]
NOISY = [(0.10, 0.30), (0.30, 0.10), (0.20, 0.25)]
UNTRAINED = [(0.05, 0.10), (0.05, 0.11), (0.05, 0.09)]


@pytest.mark.parametrize("trained, untrained, label, parts", [
    (RISES, UNTRAINED, C, (C, C)),  # last block learned, more than the first
    ([(0.30, 0.05), (0.32, 0.06), (0.31, 0.04)], UNTRAINED, R, (R, R)),  # less than untrained
    (NOISY, UNTRAINED, I, (I, I)),
    ([(0.40, 0.30), (0.41, 0.32), (0.40, 0.31)], UNTRAINED, N, (C, R)),  # specific, but early
])
def test_c82_every_label(trained, untrained, label, parts):
    s = c08.Specificity([_se_blocks(t) for t in trained], [_se_blocks(u) for u in untrained])
    v = c08.verdict_c82(s)
    assert v.label == label
    assert tuple(p.label for p in v.parts.values()) == parts
    assert "squeezed features" in v.text


def test_c81_states_the_power_and_reports_r8_apart():
    # half the images favour SE (right on 90 % of seeds against 30 %), half the plain net: no
    # gain on average, but an image term of 1.3 points that no number of seeds shrinks
    g = torch.Generator().manual_seed(0)
    favour = torch.rand(2000, generator=g) < 0.5
    p_se, p_plain = torch.where(favour, 0.9, 0.3), torch.where(favour, 0.3, 0.9)
    a = (torch.rand(3, 2000, generator=g) < p_se).float()
    b = (torch.rand(3, 2000, generator=g) < p_plain).float()
    results = _results([_variant("SE, r=2", a, params=1100), _variant("no SE", b),
                        _variant("SE, r=8", a[:1], params=1020)])
    v = c08.verdict_c81(results)
    assert "1.16 points" in v.text and "r = 8 (one seed, not judged)" in v.text
    assert "more seeds than is practical" in v.text and v.numbers["seeds_needed"] is None
    assert "while the paper reports 1.16 points (Hu et al. 2018" in v.text
    assert v.numbers["detectable"] > 2.8 * v.numbers["difference"].se_images > 0.0116


def test_c81_counts_the_seeds_when_seeds_are_the_noise():
    # independent right/wrong per seed and image: no image term, so more seeds would tell
    a, b = _correct(0.0)
    results = _results([_variant("SE, r=2", a, params=1100), _variant("no SE", b),
                        _variant("SE, r=8", a[:1], params=1020)])
    v = c08.verdict_c81(results)
    assert v.label == I and "of the order of" in v.text and v.numbers["seeds_needed"] > 3


def test_branch_ablation_silences_each_kernel_size():
    from functools import partial

    from convbook import nets
    from convbook.data import CifarData

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (40,), generator=g)
    data = CifarData((images, labels), (images, labels), "random")
    split = (4, 2, 2)
    build = partial(nets.CifarNet, 8, unit=nets.mixed_unit((1, 3, 5), split))
    runs = [experiments.Run(s, 0.0, torch.zeros(40, dtype=torch.bool), [], None,
                            build().eval()) for s in range(2)]
    results = _results([experiments.Variant(c03.MIXED, 0, 0, runs)])
    ablation = c03.branch_ablation(results, data)
    table = c03.ablation_table(ablation, split)
    assert [row["branch silenced"] for row in table.rows] == ["none", "1×1", "3×3", "5×5"]
    assert [row["share of each unit's channels"] for row in table.rows[1:]] == ["4/8", "2/8", "2/8"]
    assert "points on average" in c03.ablation_reading(ablation)
    # the hooks are gone afterwards: the intact accuracy is reproducible
    assert ablation.intact == c03.branch_ablation(results, data).intact


def test_ablation_reading_says_which_branches_matter():
    used = c03.Ablation([0.66] * 3, {1: [0.40] * 3, 3: [0.50] * 3, 5: [0.60] * 3})
    assert "relies on all three kernel sizes" in c03.ablation_reading(used)
    assert "1×1 branches at their mean costs the most (26.0" in c03.ablation_reading(used)
    idle = c03.Ablation([0.66] * 3, {1: [0.40] * 3, 3: [0.655] * 3, 5: [0.66] * 3})
    assert "Only the 1×1 branches cost" in c03.ablation_reading(idle)


def test_depths_reading_follows_the_numbers():
    d = _depths([0.05] * 3, [0.10] * 3, [-0.05] * 3)  # plain rises, residual falls with depth
    ones = torch.ones(3, 10)
    results = _results([_variant("plain 8", ones, train_errors=[0.20, 0.21, 0.19]),
                        _variant("plain 20", ones, train_errors=[0.25, 0.26, 0.24]),
                        _variant("residual 8", ones, train_errors=[0.20, 0.21, 0.19]),
                        _variant("residual 20", ones, train_errors=[0.15, 0.16, 0.14])])
    text = c05.depths_reading(results, (8, 20))
    assert "rises from 20.0 % to 25.0 %" in text and "falls from 20.0 % to 15.0 %" in text
    assert d.residual_depth.mean < 0


# --- readings: each follows its numbers --------------------------------------------------------

def _accuracies(names_accuracies, seeds=3, params=1000, macs=10**6):
    """Variants whose runs score exactly the given accuracy on 1,000 images, per seed."""
    variants = []
    for name, accuracy in names_accuracies.items():
        row = torch.zeros(1000)
        row[: round(1000 * accuracy)] = 1
        variants.append(_variant(name, torch.stack([row] * seeds), params=params, macs=macs))
    return _results(variants)


def test_kernels_reading_says_whether_the_control_trails():
    low = c02.kernels_reading(_accuracies({c02.FIVE: 0.70, c02.PAIR: 0.72, c02.CONTROL: 0.60}))
    assert "pay here" in low and "70.0 %" in low
    high = c02.kernels_reading(_accuracies({c02.FIVE: 0.70, c02.PAIR: 0.72, c02.CONTROL: 0.71}))
    assert "does not clearly pay" in high


def test_inception_reading_compares_the_gap_with_the_spread():
    same = c03.inception_reading(_accuracies({c03.MIXED: 0.66, "3x3 only": 0.66}))
    assert "within one seed-to-seed standard deviation" in same
    stack = c03.stacking(modules=4)
    assert f"{stack.growth:.1f}-fold" in c03.stacking_reading(stack)


def test_shuffle_reading_needs_seeds_to_speak_of_spread():
    names = {c07.name(g, s): 0.6 + 0.02 * s for g in (2, 4) for s in (False, True)}
    assert "+2.0 points at g = 4" in c07.shuffle_reading(_accuracies(names), 4)
    assert "At g = 2" in c07.shuffle_reading(_accuracies(names), 2)
    assert "not measured" in c07.shuffle_reading(_accuracies(names, seeds=1), 4)
    assert c07.groups_of(_accuracies(names)) == [2, 4]


def test_group_speed_reading_follows_the_times():
    from convbook.tables import Table
    rows = [{"layer": f"g={g}", "MACs": 1000 + g, "latency (ms)": t}
            for g, t in zip(c07.GROUPS_G2, (1.0, 1.5, 2.0, 3.0))]
    assert "as G2 says" in c07.group_speed_reading(Table(rows))
    rows[-1]["latency (ms)"] = 0.5
    assert "did not cost time" in c07.group_speed_reading(Table(rows))


def test_specificity_reading_names_the_block_and_the_size_of_the_moves():
    s = c08.Specificity([_se_blocks([0.1, 0.2, 0.5])] * 3, [_se_blocks([0.05, 0.05, 0.1])] * 3)
    text = c08.specificity_reading(s)
    assert "most class specificity in block 3" in text and "rising block by block" in text
    assert "10 %" in text and "gentle reweighting" in text  # spread 0.05 around 0.5
