"""Every chapter's verdict rules, fed constructed results, for every label each can return."""

import pytest
import torch
from convbook import experiments, nets, profiles, stats, sweep
from convbook.chapters import c02_kernels as c02
from convbook.chapters import c03_inception as c03
from convbook.chapters import c04_bottleneck as c04
from convbook.chapters import c06_separable as c06
from convbook.chapters import c07_shuffle as c07
from convbook.chapters import c08_excitation as c08
from convbook.errors import ConfigError
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

# Chapter 1's rules and readings: tests/test_c01_c03.py.


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


def _census(name, ones=50, into=0, out_of=0, year=2016):
    """A census whose 1×1 layers hold ``ones`` parameters against 30 in dense k×k, and whose
    narrowing 1×1 layers do ``into`` MACs into bottlenecks and ``out_of`` out of inverted ones
    (of 1,000 in all)."""
    from convbook import census

    params = {"dense k×k": 30, "1×1": ones, "grouped": 0, "depthwise": 5,
              "fully connected": 5, "other": 5}
    macs = {"dense k×k": 400, "1×1": 500, "grouped": 0, "depthwise": 50,
            "fully connected": 25, "other": 25}
    return census.Census(name, year, params, macs, into + out_of, 0,
                         bottleneck_1x1_macs=into, inverted_1x1_macs=out_of)


CUTS = {"into": 300}  # a bottleneck network (ResNet-50's kind)
ENDS = {"out_of": 300}  # an inverted bottleneck (MobileNetV2's kind)
FLAT = {"into": 5, "out_of": 3}  # under 1 % of the MACs narrow: constant width (RegNet's kind)


@pytest.mark.parametrize("networks, label, parts", [
    ({"a": CUTS, "b": CUTS}, C, (C, C)),
    ({"a": ENDS, "b": FLAT}, R, (R, R)),  # 1×1 layers lead, but never to cut
    ({"a": CUTS, "b": ENDS}, N, (C, R)),
    ({"a": {**CUTS, "ones": 10}, "b": CUTS}, N, (R, C)),  # cuts, but 1×1 layers do not lead
])
def test_c42_every_label(networks, label, parts):
    origin = _census("GoogLeNet", ones=0, into=100, year=2014)
    counted = [origin, *(_census(name, **shape) for name, shape in networks.items())]
    v = c04.verdict_c42(counted)
    assert v.label == label
    assert tuple(p.label for p in v.parts.values()) == parts
    # GoogLeNet (2014) is counted for reference, not judged
    assert "GoogLeNet" not in v.parts and "of the MACs" in v.text
    assert f"in {parts.count(C)} of the {len(parts)} networks" in v.text


def test_c42_tells_bottlenecks_from_inverted_ends_and_constant_width():
    assert c04.one_by_one_role(_census("a", **CUTS)) == c04.CUTS
    assert c04.one_by_one_role(_census("a", **ENDS)) == c04.INVERTED
    assert c04.one_by_one_role(_census("a", **FLAT)) == c04.KEEPS_WIDTH
    assert c04.one_by_one_role(_census("a", into=100, out_of=300)) == c04.INVERTED
    v = c04.verdict_c42([_census("inv", **ENDS), _census("flat", **FLAT)])
    assert "ends of inverted bottlenecks" in v.parts["inv"].text
    assert "keep the width" in v.parts["flat"].text
    with pytest.raises(ConfigError, match="at least one network"):
        c04.verdict_c42([_census("old", year=2014)])


def _block_sweep(basic=0.3, bottleneck=0.3):
    from convbook import sweep
    from convbook.train import RECIPE

    rates = (0.15, 0.3, 0.6)
    return sweep.Sweep(rates, {c04.BASIC: {r: [0.6 if r == basic else 0.5] for r in rates},
                               c04.BOTTLENECK: {r: [0.6 if r == bottleneck else 0.5]
                                                for r in rates}},
                       RECIPE, "held-out images")


@pytest.mark.parametrize("effect, words", [
    (-0.08, "less accurate, beyond the interval"), (0.08, "more accurate, beyond the interval"),
    (0.0, "cannot be told apart here: at 80% power this run could detect a difference of")])
def test_equal_cost_reading_says_each_outcome_and_what_could_be_seen(effect, words):
    results = _pair(c04.BOTTLENECK, c04.BASIC, {0.08: C, -0.08: R, 0.0: I}[effect])
    text = c04.equal_cost_reading(results, _block_sweep())
    assert words in text and "both at learning rate 0.3" in text
    assert "at 80% power this run could detect a difference of" in text
    assert "No paper reports this comparison" in text
    split = c04.equal_cost_reading(results, _block_sweep(basic=0.15, bottleneck=0.6))
    assert "basic network at learning rate 0.15, the bottleneck network at 0.6" in split
    assert "gave the basic network 60.0 % and the bottleneck network 60.0 %" in split
    # both best rates at the sweep's edge: the leader's can only widen the gap
    leader = ("basic" if results.difference(c04.BOTTLENECK, c04.BASIC).mean < 0
              else "bottleneck")
    assert f"The {leader} network's best rate is at the edge" in split
    assert "would only widen the gap it leads" in split and "might narrow the gap" in split
    assert "edge" not in text  # 0.3 is inside the sweep


def test_equal_cost_reading_with_one_seed_says_nothing_either_way():
    a, b = _correct(0.05, seeds=1)
    results = _results([_variant(c04.BOTTLENECK, a), _variant(c04.BASIC, b)])
    assert "says nothing either way" in c04.equal_cost_reading(results, _block_sweep())


class _FakeSetup:
    """Stands in for book.Setup: compare returns the planted results of the variants asked for,
    and records the recipe each call trained with."""

    profile = profiles.get("book")

    def __init__(self, results):
        self.results, self.calls = results, []

    def compare(self, variants, data, recipe=None, secondary=()):
        self.calls.append((sorted(variants), recipe.lr))
        return _results([self.results[name] for name in variants])


def test_compare_at_rates_trains_each_arm_at_its_rate_and_pairs_them():
    a, b = _correct(0.0)
    planted = {c04.BASIC: _variant(c04.BASIC, b), c04.BOTTLENECK: _variant(c04.BOTTLENECK, a)}
    variants = {c04.BASIC: None, c04.BOTTLENECK: None}
    same = _FakeSetup(planted)
    merged = sweep.compare_at_rates(same, variants, None, _block_sweep().best)
    assert same.calls == [(sorted(variants), 0.3)]
    assert [v.name for v in merged] == [c04.BASIC, c04.BOTTLENECK]
    apart = _FakeSetup(planted)
    merged = sweep.compare_at_rates(apart, variants, None, _block_sweep(0.15, 0.6).best)
    assert apart.calls == [([c04.BASIC], 0.15), ([c04.BOTTLENECK], 0.6)]
    assert [v.name for v in merged] == [c04.BASIC, c04.BOTTLENECK]
    assert merged.difference(c04.BOTTLENECK, c04.BASIC).seeds == 3


# --- chapter 5 -------------------------------------------------------------------------------

# Chapter 5's rules, readings and figures: tests/test_c05_residual.py.


# --- chapter 6 -------------------------------------------------------------------------------

def _same_width(separable_params):
    return c06.SameWidth((1000, separable_params), (10**6, 3 * 10**5), (0.01, 0.008),
                         (0.03, 0.035), (4, 7), "cpu")


def test_c61_counts():
    assert c06.verdict_c61(_same_width(250)).label == C
    assert c06.verdict_c61(_same_width(600)).label == R
    reading = c06.time_reading(_same_width(250))
    assert "0.30× the MACs" in reading and "7 batch norms" in reading


def _c62(xception, mobilenet=0.0):
    """Xception's unit and the standard net from three seeds with a planted gap; MobileNet's
    unit from one seed (it is reported, not judged), right on ``mobilenet`` more images."""
    a, b = _correct(xception, seed=1)
    m, _ = _correct(mobilenet, seeds=1, seed=2)
    return _results([_variant(c06.STANDARD, b), _variant(c06.MOBILENET, m),
                     _variant(c06.XCEPTION, a)])


@pytest.mark.parametrize("label", [C, R, I])
def test_c62_every_label(label):
    v = c06.verdict_c62(_c62(EFFECTS[label]), {c06.STANDARD: 0.3, c06.XCEPTION: 0.6})
    assert v.label == label
    assert "MobileNet's unit, not judged (1 seed)" in v.text
    assert ("0.3 for the standard network and 0.6 for the network with Xception's unit"
            in v.text)
    # what the run could have seen, beside Xception's 0.8 points, when it cannot decide
    assert ("0.8 points (Chollet 2017" in v.text) == (label == I)


def test_one_minute_states_what_an_inconclusive_run_could_see():
    c61 = c06.verdict_c61(_same_width(250))
    undecided = c06.one_minute(c61, c06.verdict_c62(_c62(0.0)))
    assert "could not have detected less than" in undecided and "was 0.8 points." in undecided
    decided = c06.one_minute(c61, c06.verdict_c62(_c62(EFFECTS[C])))
    assert "could not have detected" not in decided and decided.endswith("(C6.2 confirmed).")


def test_c62_ignores_mobilenets_unit():
    # MobileNet's unit far below or above the standard net: the verdict does not move
    labels = {c06.verdict_c62(_c62(0.0, gap)).label for gap in (-0.3, 0.0, 0.3)}
    assert labels == {I}


def test_separable_reading_states_the_detectable_effect():
    text = c06.separable_reading(_c62(0.0), {c06.STANDARD: 13, c06.XCEPTION: 44,
                                              c06.MOBILENET: 44})
    assert "3.4× as wide" in text
    assert "could not have detected a difference smaller than" in text
    assert "while the paper reports 0.8 points" in text


def test_rates_reading_says_what_was_chosen_and_warns_at_the_edge():
    from convbook import sweep

    def swept(standard, xception):
        accuracy = {c06.STANDARD: dict(zip(sweep.RATES, standard)),
                    c06.XCEPTION: dict(zip(sweep.RATES, xception))}
        return sweep.Sweep(sweep.RATES, accuracy, profiles.get("book").recipe, "held-out images")

    middle = sweep.reading(swept([[0.5], [0.6], [0.55]], [[0.5], [0.62], [0.6]]), 1000, c06.PROSE)
    assert ("chose 0.3 for the standard network and 0.3 for the network with Xception's unit"
            in middle)
    assert "1 seed;" in middle and "edge" not in middle
    # sampling error of an accuracy near 0.56 on 1,000 images: sqrt(.56 · .44 / 1000) = 1.6 %
    assert "standard error of about 1.6 points" in middle
    assert ("moved 10.0 points for the standard network and 12.0 points for the network with "
            "Xception's unit" in middle)
    edge = sweep.reading(swept([[0.5], [0.6], [0.65]], [[0.5], [0.62], [0.6]]), 1000, c06.PROSE)
    assert "0.6 for the standard network" in edge
    assert "For the standard network the best rate is at the edge" in edge


def test_results_table_names_each_networks_rate():
    table = sweep.results_table(_c62(0.0), {c06.XCEPTION: 0.15})
    assert dict(zip(table.column("variant"), table.column("learning rate"))) == {
        c06.STANDARD: "0.3", c06.MOBILENET: "0.3", c06.XCEPTION: "0.15"}
    assert "held-out training images" in table.caption


def test_compare_at_rates_trains_each_rate_once_and_keeps_the_order(monkeypatch):
    calls = []

    def fake_compare(variants, data, recipe, secondary):
        calls.append((recipe.lr, list(variants), list(secondary)))
        ones = torch.ones(1 if secondary else 3, 10)
        return _results([_variant(name, ones) for name in variants])

    setup = type("FakeSetup", (), {"profile": profiles.get("book"),
                                   "compare": staticmethod(fake_compare)})()
    variants = {c06.STANDARD: None, c06.MOBILENET: None, c06.XCEPTION: None}
    results = sweep.compare_at_rates(setup, variants, None, {c06.STANDARD: 0.15,
                                                            c06.XCEPTION: 0.15})
    assert [v.name for v in results] == list(variants)
    assert sorted(calls) == [(0.15, [c06.STANDARD, c06.XCEPTION], []),
                             (0.3, [c06.MOBILENET], [])]
    with pytest.raises(ConfigError, match="not variants here"):
        sweep.compare_at_rates(setup, variants, None, {"dense": 0.1})


def test_unit_shapes_follow_real_modules():
    shapes = c06.unit_shapes(channels_in=8, channels_out=24, size=10, kernel_size=5)
    assert shapes.input == (8, 10, 10) and shapes.depthwise == (8, 10, 10)
    assert shapes.pointwise == shapes.standard == (24, 10, 10)
    assert shapes.weights == {"standard": 25 * 8 * 24, "depthwise": 25 * 8, "pointwise": 8 * 24}
    figure = c06.plot_separable_unit(shapes)
    shown = " ".join(t.get_text() for t in figure.axes[0].texts)
    assert "4,800 weights" in shown and "200 weights" in shown and "192 weights" in shown
    assert "8 × 10 × 10" in shown and "24 × 10 × 10" in shown
    with pytest.raises(ConfigError, match="channels_out"):
        c06.unit_shapes(channels_out=0)


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


def _c72(vs_mobile=0.0, alex_better=0.0, shuffle_params=500, seeds=1):
    """ShuffleNet-, MobileNet- and AlexNet-style results (1,000 and 5,000 parameters for the
    references) with planted accuracy gaps; the AlexNet-style net is right on a further
    ``alex_better`` share of the images."""
    shuffle, mobile = _correct(vs_mobile, seeds=seeds, seed=1)
    _, alex = _correct(0.0, seeds=seeds, seed=2)
    extra = torch.rand(alex.shape, generator=torch.Generator().manual_seed(3)) < alex_better
    alex = torch.where(extra, torch.ones_like(alex), alex)
    return _results([_variant(c07.SHUFFLENET, shuffle, params=shuffle_params),
                     _variant(c07.MOBILENET, mobile, params=1000),
                     _variant(c07.ALEXNET, alex, params=5000, macs=8 * 10**6)])


@pytest.mark.parametrize("shuffle_params, label, mobile, alex", [
    (500, C, C, C), (2000, N, R, C), (6000, R, R, R)])
def test_c72_parameters_every_label(shuffle_params, label, mobile, alex):
    verdict = c07.verdict_c72(_c72(shuffle_params=shuffle_params), 1500)
    assert verdict.label == label
    assert [p.label for p in verdict.parts.values()] == [mobile, alex]
    assert "5,000 for the AlexNet-style net" in verdict.text  # both references, always
    assert "1,000 for the MobileNet-style net" in verdict.text


@pytest.mark.parametrize("vs_mobile, alex_better", [(-0.3, 0.5), (0.3, 0.0), (0.0, 0.0)])
def test_c72_does_not_judge_accuracy(vs_mobile, alex_better):
    verdict = c07.verdict_c72(_c72(vs_mobile, alex_better, seeds=3), 1500)
    assert verdict.label == C  # fewer parameters than both, whatever the accuracies
    assert "not judged: 240 training steps on 1,500 images" in verdict.text


def test_networks_reading_names_both_references_and_the_illustration():
    reading = c07.networks_reading(_c72(shuffle_params=2000), 1500)
    assert "fewer than the AlexNet-style one only" in reading
    assert "illustration only (240 training steps on 1,500 images, 1 seed" in reading
    assert "fewer than both" in c07.networks_reading(_c72(), 1500)


def test_shuffle_bars_draw_no_bar_for_one_seed():
    names = {c07.name(g, s): 0.6 + 0.02 * s for g in (2, 4) for s in (False, True)}
    three = _accuracies(names)
    one_seed_g2 = _results([v if v.name.startswith("g=4") else
                            experiments.Variant(v.name, v.params, v.macs, v.runs[:1], v.latency)
                            for v in three])
    ax = c07.plot_shuffle_bars(one_seed_g2).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["g=2\n(one seed)", "g=4"]
    from matplotlib.container import ErrorbarContainer

    errors = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(errors) == 2  # one per kind: g = 2's bar is NaN (not drawn), g = 4's is drawn
    for error in errors:
        no_bar, bar = error.lines[2][0].get_segments()
        assert len(no_bar) == 0 and len(bar) == 2


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
    results = _results([_variant(c08.SE, a, params=1100), _variant(c08.NO_SE, b)])
    assert c08.verdict_c81(results).label == label


def _se_blocks(specificities):
    from convbook.excitation import BlockMeasures
    return [BlockMeasures(x, 0.2, 0.05, 0.5, 0.01) for x in specificities]


def _gated(against_per_channel, against_local, seeds=5, images=2000):
    """SE, the network without it and the two simpler gates, each right on an image with
    probability 0.6 (SE) or 0.6 minus the given effect (a gate), independently per seed."""
    g = torch.Generator().manual_seed(1)

    def right(p):
        return (torch.rand(seeds, images, generator=g) < p).float()
    return _results([_variant(c08.SE, right(0.6), params=1100),
                     _variant(c08.NO_SE, right(0.6)),
                     _variant(c08.PER_CHANNEL, right(0.6 - against_per_channel), params=1020),
                     _variant(c08.LOCAL, right(0.6 - against_local), params=1003)])


@pytest.mark.parametrize("per_channel, local, label, parts", [
    (C, C, C, (C, C)), (R, R, R, (R, R)), (I, I, I, (I, I)), (C, I, N, (C, I)),
    (C, R, N, (C, R))])
def test_relations_every_label(per_channel, local, label, parts):
    v = c08.verdict_relations(_gated(EFFECTS[per_channel], EFFECTS[local]))
    assert v.label == label
    assert tuple(p.label for p in v.parts.values()) == parts
    for part in v.parts.values():  # two comparisons share the 5 % error rate
        assert part.numbers["difference"].confidence == 0.975
        assert part.numbers["difference"].seeds == 5


def test_relations_inconclusive_states_what_it_could_see_beside_wang_et_al():
    v = c08.verdict_relations(_gated(0.0, 0.0))
    pc, local = v.parts.values()
    assert "could not have detected a difference smaller than" in pc.text
    assert "0.36 points (Wang et al. 2020" in pc.text and "per-channel gate's favour" in pc.text
    assert "0.72 points (Wang et al. 2020" in local.text and "ECA's favour" in local.text


# per seed: (first block, last block) class specificity, trained and untrained
RISES = [(0.05, 0.30), (0.06, 0.32), (0.04, 0.31)]
NOISY = [(0.10, 0.30), (0.30, 0.10), (0.20, 0.25)]
UNTRAINED = [(0.05, 0.10), (0.05, 0.11), (0.05, 0.09)]


@pytest.mark.parametrize("trained, gates, label, parts", [
    (RISES, (C, C), C, (C, C)),  # beats both gates; the last block learned class specificity
    ([(0.30, 0.05), (0.32, 0.06), (0.31, 0.04)], (R, R), R, (R, R)),  # less than untrained
    (NOISY, (I, I), I, (I, I)),
    (RISES, (I, I), N, (I, C)),  # class-specific weights, relations not shown
    (RISES, (C, I), N, (N, C)),
])
def test_c82_every_label(trained, gates, label, parts):
    s = c08.Specificity([_se_blocks(t) for t in trained], [_se_blocks(u) for u in UNTRAINED])
    v = c08.verdict_c82(s, _gated(*(EFFECTS[g] for g in gates)))
    assert v.label == label
    assert tuple(p.label for p in v.parts.values()) == parts
    assert list(v.parts) == ["relations between channels", "differ by class"]
    assert "squeezed features" in v.text and "Not judged" in v.text


def test_c82_by_class_inconclusive_states_its_detectable_effect():
    s = c08.Specificity([_se_blocks(t) for t in NOISY], [_se_blocks(u) for u in UNTRAINED])
    v = c08.verdict_c82(s, _gated(0.0, 0.0))
    assert "could not have detected a difference smaller than" in v.parts["differ by class"].text
    assert "in class specificity" in v.parts["differ by class"].text


@pytest.mark.parametrize("per_channel, words", [
    (0.31, "about as class-specific as SE's"), (0.45, "more class-specific than SE's"),
    (0.10, "less class-specific than SE's")])
def test_gates_reading_compares_the_per_channel_gate_with_se(per_channel, words):
    last = {c08.SE: 0.30, c08.PER_CHANNEL: per_channel, c08.LOCAL: 0.29}
    text = c08.gates_reading(_gated(0.0, 0.0), last)
    assert words in text
    assert "per-channel gate: +20 parameters" in text and "local gate (ECA): +3 parameters" in text


def test_gates_one_minute_names_each_comparison():
    s = c08.Specificity([_se_blocks(t) for t in RISES], [_se_blocks(u) for u in UNTRAINED])
    results = _gated(0.0, 0.0)
    text = c08.one_minute(c08.verdict_c81(results), c08.verdict_c82(s, results))
    assert "against the per-channel gate" in text and "against the local gate (ECA)" in text
    assert "relations between channels inconclusive" in text


def test_c81_states_the_power():
    # half the images favour SE (right on 90 % of seeds against 30 %), half the plain net: no
    # gain on average, but an image term of 1.3 points that no number of seeds shrinks
    g = torch.Generator().manual_seed(0)
    favour = torch.rand(2000, generator=g) < 0.5
    p_se, p_plain = torch.where(favour, 0.9, 0.3), torch.where(favour, 0.3, 0.9)
    a = (torch.rand(3, 2000, generator=g) < p_se).float()
    b = (torch.rand(3, 2000, generator=g) < p_plain).float()
    results = _results([_variant(c08.SE, a, params=1100), _variant(c08.NO_SE, b)])
    v = c08.verdict_c81(results)
    assert "1.16 points" in v.text and "The SE blocks add 100 parameters" in v.text
    assert "more seeds than is practical" in v.text and v.numbers["seeds_needed"] is None
    assert "while the paper reports 1.16 points (Hu et al. 2018" in v.text
    assert v.numbers["detectable"] > 2.8 * v.numbers["difference"].se_images > 0.0116


def test_c81_counts_the_seeds_when_seeds_are_the_noise():
    # independent right/wrong per seed and image: no image term, so more seeds would tell
    a, b = _correct(0.0)
    results = _results([_variant(c08.SE, a, params=1100), _variant(c08.NO_SE, b)])
    v = c08.verdict_c81(results)
    assert v.label == I and "of the order of" in v.text and v.numbers["seeds_needed"] > 3


# Chapter 3's branch ablation and its control: tests/test_c01_c03.py.


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
