"""Chapter 1 — must a convolution see all channels? Group convolution.

Claims (the review's, in the book's words):
- C1.1: splitting the channels into g groups divides a layer's weights and MACs by g.
- C1.2: AlexNet's two towers specialise, one in colour-agnostic filters, one in colour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from torch import nn

from convbook import experiments, filters, measure, nets, stats, zoo
from convbook.blocks.validate import check_groups, check_positive
from convbook.book import Setup
from convbook.errors import ConfigError
from convbook.explore import View, labels
from convbook.tables import Table
from convbook.viz.connectivity import connectivity, plot_connectivity, plot_wiring

CHAPTER = "01-group-convolution"
GROUPS = (1, 2, 4, 8)
LAYER_GROUPS = (1, 2, 4, 8, 16, 32, 64, 256)


def layer_sweep() -> Table:
    """A 3×3 convolution from 256 to 256 channels on a 56×56 map at several group counts:
    parameters and MACs measured on the module and by formula."""
    return measure.group_sweep(256, 256, 3, size=56, groups=list(LAYER_GROUPS))


# Experiment 1's networks, as the notebook names them
DENSE, SAME_WIDTH, EQUAL_PARAMS = "dense", "grouped", "grouped, 2× width"


def alexnet_costs() -> Table:
    """Parameters and MACs of torchvision's AlexNet and of the 2012 network with two towers and
    with one, with the share of each network's parameters in its convolutional features and in
    its fully connected classifier."""
    table = measure.compare_models({
        "torchvision alexnet (1 tower)": zoo.alexnet(),
        "AlexNet 2012, two towers": zoo.alexnet_2012(towers=2),
        "AlexNet 2012 widths, one tower": zoo.alexnet_2012(towers=1),
    }, input_size=(3, 224, 224), parts=("features", "classifier"))
    words = {"share in features": "share of its parameters in the conv layers",
             "share in classifier": "share of its parameters in the FC layers"}
    table.rows = [{words.get(k, k): v for k, v in row.items()} for row in table.rows]
    table.caption += (" The shares split each network's parameters between its convolutional "
                      "features and its fully connected classifier.")
    return table


@dataclass
class GroupCosts:
    """The cost table of every group count, and the forward + backward seconds of one
    training batch it measured (by group count): a second timing of networks the trained
    comparison times again, which shows how much a timing varies from one measurement to the
    next."""

    table: Table
    step_seconds: dict[int, float]

    def _repr_html_(self) -> str:
        return self.table._repr_html_()

    def __repr__(self) -> str:
        return repr(self.table)


def group_costs(setup: Setup) -> GroupCosts:
    """Parameters, MACs and measured latency of the network at every group count (untrained:
    cost does not depend on the weights), at the training batch size on the chapter's device."""
    rows, steps = [], {}
    for g in GROUPS:
        model = nets.CifarNet(setup.profile.width, groups=g)
        timing = measure.train_latency(model, setup.profile.batch_size, device=setup.device)
        steps[g] = timing["forward_backward"]
        rows.append({"groups": g, "parameters": measure.count_params(model),
                     "MACs / image": f"{measure.count_macs(model) / 1e6:.2f} M",
                     f"forward ms (batch {setup.profile.batch_size})":
                         f"{1000 * timing['forward']:.1f}",
                     "forward + backward ms": f"{1000 * timing['forward_backward']:.1f}"})
    table = Table(rows, caption=f"The network at every group count, base width "
                  f"{setup.profile.width}; latency: median of repeated timed batches "
                  f"(torch.utils.benchmark) on {setup.device.type}, after a warm-up.")
    return GroupCosts(table, steps)


# --- experiment 1: what groups save and cost in a network -----------------------------------

@dataclass(frozen=True)
class NetFigures:
    """One trained network of experiment 1: its cost, one measured training step, accuracy."""

    params: int
    macs: int
    step_seconds: float  # forward + backward, one training batch
    accuracy: float  # mean test accuracy over its seeds
    seeds: int
    accuracy_sd: float = 0.0  # standard deviation of test accuracy over its seeds


@dataclass(frozen=True)
class GroupedNet:
    """Experiment 1's networks: dense, grouped at the same width, grouped at equal parameters.
    ``timing_noise``: how far two timings of the same network differed (a fraction; NaN when
    nothing was timed twice)."""

    dense: NetFigures
    grouped: NetFigures
    equal: NetFigures
    groups: int
    device: str
    timing_noise: float = math.nan


def timing_noise(pairs: list[tuple[float, float]]) -> float:
    """The largest relative difference between two timings of the same network, over
    ``pairs`` of seconds: 0.08 when one of them took 8 % longer than the other. NaN without a
    pair."""
    for first, second in pairs:
        if not (first > 0 and second > 0):
            raise ConfigError(f"timings must be positive seconds, got {first!r} and {second!r}")
    if not pairs:
        return math.nan
    return math.expm1(max(abs(math.log(first / second)) for first, second in pairs))


def grouped_net(results: experiments.Results, groups: int, device: str,
                costs: GroupCosts | None = None) -> GroupedNet:
    """Experiment 1's figures from its results (variants named ``DENSE``, ``SAME_WIDTH`` and
    ``EQUAL_PARAMS``), its networks grouped in ``groups``. ``costs``: the cost table's own
    timings, which time the dense network and (when ``groups`` is one of its group counts) the
    same-width grouped one a second time: their differences are the timing noise."""
    def figures(name: str) -> NetFigures:
        v = results[name]
        if not v.latency:
            raise ConfigError(f"{name!r} was trained without latency=True; C1.1 reports its "
                              f"measured step time")
        return NetFigures(v.params, v.macs, v.latency["forward_backward"], v.test_accuracy,
                          len(v.runs), v.accuracy_sd)
    dense, grouped = figures(DENSE), figures(SAME_WIDTH)
    pairs = []
    if costs is not None:
        pairs = [(costs.step_seconds[g], net.step_seconds)
                 for g, net in ((1, dense), (groups, grouped)) if g in costs.step_seconds]
    return GroupedNet(dense, grouped, figures(EQUAL_PARAMS), groups, device, timing_noise(pairs))


def _time_reading(net: GroupedNet) -> tuple[str, bool]:
    """What one measured training step says about the MAC cut, and whether the difference
    lies inside the timing noise."""
    t1, tg = net.dense.step_seconds, net.grouped.step_seconds
    mac_cut = net.dense.macs / net.grouped.macs
    noise = net.timing_noise
    within = math.isfinite(noise) and abs(math.log(t1 / tg)) <= math.log1p(noise)
    beyond = (f" (beyond the timing noise: the same networks timed a second time, in the cost "
              f"table, differed by up to {100 * noise:.0f} %)" if math.isfinite(noise) else "")
    if within:
        return (f"a difference inside the timing noise (the same networks timed a second time, "
                f"in the cost table, differed by up to {100 * noise:.0f} %), so the fewer MACs "
                f"bought no time that this measurement can show"), True
    if t1 / tg >= 0.75 * mac_cut:
        return "roughly in step with the MACs" + beyond, False
    if tg < t1:
        return "fewer MACs bought less time, but far from proportionally" + beyond, False
    return "fewer MACs did not buy less time" + beyond, False


def verdict_c11(layer_params: dict[int, int], layer_macs: dict[int, int],
                net: GroupedNet) -> stats.Verdict:
    """C1.1 is arithmetic: confirmed when every grouped layer holds exactly 1/g of the dense
    layer's weights and performs exactly 1/g of its MACs (both counted on the modules), refuted
    otherwise. It cannot be inconclusive (a count has no noise); the network-level figures and
    the measured time are reported, not judged (a time is read against the timing noise)."""
    dense_layer = layer_params[1]
    exact = (all(params * g == dense_layer for g, params in layer_params.items())
             and all(macs * g == layer_macs[1] for g, macs in layer_macs.items()))
    g_max = max(layer_params)
    label = stats.label_exact(1.0, 1.0 if exact else 0.0)
    dense, grouped, g = net.dense, net.grouped, net.groups
    t1, tg = dense.step_seconds, grouped.step_seconds
    speed = (f"ran {t1 / tg:.2f}× as fast" if tg < t1 else f"took {tg / t1:.2f}× as long")
    mac_cut = dense.macs / grouped.macs
    reading, _ = _time_reading(net)
    text = (f"Per layer the cut is {'exactly' if exact else 'not'} g, in weights and in MACs: at "
            f"g = {g_max} a 3×3 layer from 256 to 256 channels holds {layer_params[g_max]:,} "
            f"weights instead of {dense_layer:,}. For the whole network it is less, because the "
            f"stem stays dense: with every later unit in {g} groups the parameters fell from "
            f"{dense.params:,} to {grouped.params:,} ({dense.params / grouped.params:.1f}× fewer) "
            f"and the MACs from {dense.macs / 1e6:.2f} M to {grouped.macs / 1e6:.2f} M "
            f"({mac_cut:.1f}× fewer), while one training step (forward and backward, measured) "
            f"{speed} on {net.device}: {reading}.")
    return stats.Verdict("C1.1", label, text, numbers={
        "layer_params": layer_params, "layer_macs": layer_macs,
        "params": [dense.params, grouped.params, net.equal.params],
        "macs": [dense.macs, grouped.macs, net.equal.macs],
        "step_seconds": [t1, tg, net.equal.step_seconds], "timing_noise": net.timing_noise,
        "accuracy": [dense.accuracy, grouped.accuracy, net.equal.accuracy]})


def seed_band(net: GroupedNet, confidence: float = 0.95) -> float:
    """Half-width of the band around the dense network's mean accuracy within which one more
    seed of it would fall with probability ``confidence`` (a prediction interval from its
    seeds: t · sd · √(1 + 1/S)). A one-seed network that varies as much from seed to seed and
    lands inside it cannot be told apart from the dense one. NaN with fewer than two seeds."""
    d = net.dense
    if d.seeds < 2:
        return math.nan
    t = stats.t_quantile(0.5 + confidence / 2, d.seeds - 1)
    return t * d.accuracy_sd * math.sqrt(1 + 1 / d.seeds)


def groups_reading(net: GroupedNet) -> str:
    """A reading of the trained networks' table: what grouping cost at the same width, and
    whether the grouped network with the dense one's parameters and MACs closes the gap (the
    loss was the lost parameters) or not (the grouping itself costs). The grouped networks
    trained from one seed each, so every gap is read against ``seed_band``, the dense
    network's measured seed-to-seed spread."""
    d, s, e, g = net.dense, net.grouped, net.equal, net.groups
    lost = d.accuracy - s.accuracy
    remainder = d.accuracy - e.accuracy
    band = seed_band(net)
    if math.isnan(band):
        share = ("with one seed of the dense network there is no seed-to-seed spread to read "
                 "these gaps against, so they are reported, not read")
    else:
        share = (f"one more seed of the dense network would land within ±{100 * band:.1f} "
                 f"points of its mean (95 % prediction interval from its {d.seeds} seeds; the "
                 f"grouped networks are assumed to vary as much). ")
        if lost <= band:
            share += (f"The {100 * lost:.1f} points lost at the same width are inside that "
                      f"band: one seed cannot tell them from seed noise")
        elif abs(remainder) <= band:
            share += (f"The grouped network with the dense one's parameters lands "
                      f"{100 * abs(remainder):.1f} points {'below' if remainder > 0 else 'above'}"
                      f" it, inside that band: consistent with the loss coming from the "
                      f"parameters and MACs that grouping removes, though one seed cannot rule "
                      f"out a cost of grouping itself of up to about {100 * band:.1f} points")
        elif remainder > 0:
            share += (f"The grouped network with the dense one's parameters still trails it by "
                      f"{100 * remainder:.1f} points, beyond that band: grouping itself seems to "
                      f"cost here, though one seed each is thin evidence")
        else:
            share += (f"The grouped network with the dense one's parameters beats it by "
                      f"{100 * -remainder:.1f} points, beyond that band: at twice the channels "
                      f"grouping more than recovers here, though one seed each is thin evidence")
    return (f"The dense network reaches {100 * d.accuracy:.1f} % (mean of {d.seeds} seed"
            f"{'s' if d.seeds != 1 else ''}). In "
            f"{g} groups at the same width it reaches {100 * s.accuracy:.1f} % with "
            f"{d.params / s.params:.1f}× fewer parameters; at twice the width, with "
            f"{e.params:,} parameters and {e.macs / 1e6:.2f} M MACs against the dense "
            f"network's {d.params:,} and {d.macs / 1e6:.2f} M, {100 * e.accuracy:.1f} % (one "
            f"seed each). To read these gaps: {share}. The wider grouped network is not the "
            f"same network with groups: it has twice the channels and activations. With every "
            f"unit grouped and no shuffle, the {g} groups form {g} isolated towers from the stem "
            f"to the head, which alone mixes them (chapter 7 adds the shuffle).")


# --- experiment 2: do two towers specialise? -------------------------------------------------

TOWER_EXTRA_SEEDS = 2  # the one-tower control's training time, spent on more two-tower seeds
PERMUTATIONS = 2000  # random equal splits per seed
TOWER_ALPHA = 0.05  # the combined test's error rate, shared by its two directions


def tower_seeds(seeds: list[int], extra: int = TOWER_EXTRA_SEEDS) -> list[int]:
    """The seeds the two-tower network trains: the chapter's ``seeds`` and ``extra`` more
    after the last of them."""
    if not seeds:
        raise ConfigError("tower_seeds needs the chapter's seeds (setup.seeds), got none")
    if isinstance(extra, bool) or not isinstance(extra, int) or extra < 0:
        raise ConfigError(f"extra must be a whole number >= 0, got {extra!r}")
    return list(seeds) + [max(seeds) + 1 + i for i in range(extra)]


@dataclass(frozen=True)
class SplitTest:
    """The real tower split of one network's conv1 filters against random equal splits of
    the same filters."""

    p_above: float  # share of random splits with a gap at least as large (the towers differ more)
    p_below: float  # share of random splits with a gap at most as large (the towers differ less)
    null_gap: float  # mean gap of the random splits
    permutations: int


def split_test(shares: torch.Tensor, towers: list[int], permutations: int = PERMUTATIONS,
               seed: int = 0) -> SplitTest:
    """Random equal splits of the filters (``permutations`` of the tower labels, drawn as
    ``filters.permutation_p_value`` draws them, so ``p_above`` equals its value): how often
    their gap in mean colour share reaches the real one, how often it stays below, and its
    mean. Each p-value counts the real split among the splits: (count + 1) / (permutations +
    1), never 0."""
    check_positive("permutations", permutations)
    labels = torch.as_tensor(towers)
    observed = abs(filters.tower_gap(shares, labels))
    generator = torch.Generator().manual_seed(seed)
    splits = torch.stack([labels[torch.randperm(len(labels), generator=generator)]
                          for _ in range(permutations)]).double()
    values = shares.double()
    ones = splits.sum(1)
    gaps = ((splits @ values) / ones - ((1 - splits) @ values) / (len(labels) - ones)).abs()
    return SplitTest(((gaps >= observed - 1e-12).sum().item() + 1) / (permutations + 1),
                     ((gaps <= observed + 1e-12).sum().item() + 1) / (permutations + 1),
                     gaps.mean().item(), permutations)


@dataclass(frozen=True)
class TowerSeed:
    """Colour shares of conv1's filters in one seed's two-tower network, and how its tower
    split compares with random equal splits of the same filters."""

    seed: int
    tower_shares: tuple[float, float]
    p_value: float  # the towers' gap against random equal splits: as large or larger
    p_below: float  # ... as small or smaller
    null_gap: float  # mean gap of random equal splits of the same filters
    filter_sd: float  # spread (sd) of single filters' shares within a tower, pooled
    filter_shares: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())  # per tower, each filter
    initial_share: float = math.nan  # mean colour share of conv1 at initialisation
    permutations: int = PERMUTATIONS

    @property
    def gap(self) -> float:
        return abs(self.tower_shares[1] - self.tower_shares[0])


def tower_measures(results: experiments.Results,
                   permutations: int = PERMUTATIONS) -> list[TowerSeed]:
    """Per seed of the "two towers" network: each tower's colour share, the split test, the
    spread of single filters' shares, and conv1's mean share before training (the same
    seed's initial weights)."""
    variant = results["two towers"]
    out = []
    for run in variant.runs:
        features = run.model.features
        towers = features.tower_of_first_filters()
        shares = filters.colour_share(features.first_conv.weight)
        members = [[i for i, x in enumerate(towers) if x == k] for k in (0, 1)]
        test = split_test(shares, towers, permutations, run.seed)
        spread = math.sqrt(sum(float(shares[m].var()) if len(m) > 1 else 0.0
                               for m in members) / 2)
        initial = filters.colour_share(variant.initial_model(run.seed).features.first_conv.weight)
        out.append(TowerSeed(
            run.seed, tuple(float(shares[m].mean()) for m in members), test.p_above,
            test.p_below, test.null_gap, spread,
            tuple(tuple(float(x) for x in shares[members[k]]) for k in (0, 1)),
            float(initial.mean()), permutations))
    return out


def p_text(p: float, permutations: int | None = None) -> str:
    """A p-value for a table or a sentence: a permutation p-value at its floor as
    "≤ 1/2001" (no random split reached the real one), a very small combined one as
    "3.1 × 10⁻⁵", others to three decimals."""
    if permutations is not None and p <= 1 / (permutations + 1) + 1e-15:
        return f"≤ 1/{permutations + 1}"
    if p >= 0.001:
        return f"{p:.3f}"
    mantissa, exponent = f"{p:.1e}".split("e")
    digits = str(int(exponent)).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
    return f"{mantissa} × 10{digits}"


def tower_table(measures: list[TowerSeed]) -> Table:
    rows = [{"seed": m.seed,
             "colour share, tower 0 / 1": f"{m.tower_shares[0]:.3f} / {m.tower_shares[1]:.3f}",
             "gap": f"{m.gap:.3f}",
             "random splits' mean gap": f"{m.null_gap:.3f}",
             "gap in filter sds": f"{m.gap / m.filter_sd:.2f}" if m.filter_sd > 0 else "—",
             "p (gap ≥ random splits')": p_text(m.p_value, m.permutations),
             "conv1 before training": f"{m.initial_share:.3f}"} for m in measures]
    permutations = measures[0].permutations if measures else PERMUTATIONS
    return Table(rows, caption="Mean colour share of conv1's filters in each tower of the "
                 "two-tower network, one row per seed. Colour share: the part of a filter's "
                 "energy that reacts to differences between colour planes (0: brightness only, "
                 "1: colour contrast only; random weights average about 2/3). Random splits: "
                 f"{permutations:,} random equal splits of the same trained filters into two "
                 "groups; p: the share of them whose gap is at least the towers' (the towers' "
                 "own split counted in, so its floor is 1/(splits + 1)). Gap in filter sds: the "
                 "gap over the standard deviation of single filters' shares within a tower, a "
                 "scale for its size. Last column: the mean over all of conv1's filters at "
                 "initialisation.")


def plot_shares(measures: list[TowerSeed]):
    """Every conv1 filter's colour share per tower and seed (two-tower network)."""
    from convbook.viz.filters import plot_tower_shares

    initial = sum(m.initial_share for m in measures) / len(measures)
    return plot_tower_shares([m.filter_shares for m in measures], [m.seed for m in measures],
                             initial)


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def towers_reading(measures: list[TowerSeed], alpha: float = TOWER_ALPHA) -> str:
    """A reading of the tower table: where the shares start, where they end, how the towers'
    gaps compare with random splits of the same filters, and a scale for their size."""
    initial = _mean(m.initial_share for m in measures)
    trained = _mean(sum(m.tower_shares) / 2 for m in measures)
    gap, null = _mean(m.gap for m in measures), _mean(m.null_gap for m in measures)
    spread = _mean(m.filter_sd for m in measures)
    significant = sum(m.p_value < alpha for m in measures)
    return (f"Before training a filter's colour share averages {initial:.2f}: random weights "
            f"put about two thirds of their energy in the two colour-contrast directions of "
            f"RGB and one third in brightness. Training moves the two-tower filters to "
            f"{trained:.2f} on average, "
            + ("towards brightness. " if trained < initial else "towards colour. ")
            + f"For scale: single filters' shares spread with a standard deviation of "
            f"{spread:.2f} within a tower, and a random equal split of the same filters leaves "
            f"a gap of {null:.3f} on average; the towers' gap averages {gap:.3f}, "
            f"{gap / null:.1f}× that of random splits. "
            f"In {significant} of {len(measures)} seeds the towers' gap beats random splits "
            f"at p < {alpha}. AlexNet's towers had 48 first-layer filters each and trained for "
            f"about 90 epochs on ImageNet; these have "
            f"{len(measures[0].filter_shares[0]) or 'a few'} and far less training, which is "
            f"the first thing to change for a test with more power (the `full` profile doubles "
            f"them).")


def verdict_c12(measures: list[TowerSeed], alpha: float = TOWER_ALPHA) -> stats.Verdict:
    """C1.2: do the two towers differ in colour share more than random equal splits of the
    same filters would? The rule, fixed before the run: Fisher's combination of the seeds'
    permutation p-values, each direction at ``alpha`` / 2 — confirmed when the towers differ
    more than random splits, refuted when they differ less (more alike than chance),
    inconclusive when neither clears it, when both do (seeds that disagree), and with one
    seed (one network says nothing about "every run")."""
    if not measures:
        raise ConfigError("verdict_c12 needs the tower measures of at least one seed")
    side = alpha / 2
    above = stats.fisher_combined([m.p_value for m in measures])
    below = stats.fisher_combined([m.p_below for m in measures])
    seeds = len(measures)
    if seeds < 2 or (above < side and below < side):  # one network, or seeds that disagree
        label = stats.INCONCLUSIVE
    elif above < side:
        label = stats.CONFIRMED
    elif below < side:
        label = stats.REFUTED
    else:
        label = stats.INCONCLUSIVE
    excess = stats.mean_interval([m.gap - m.null_gap for m in measures])
    significant = sum(m.p_value < alpha for m in measures)
    permutations = measures[0].permutations
    gaps = ", ".join(f"{m.gap:.3f}" for m in measures)
    nulls = ", ".join(f"{m.null_gap:.3f}" for m in measures)
    spread = _mean(m.filter_sd for m in measures)
    text = (f"Gap in mean colour share between the towers, per seed: {gaps}; random equal "
            f"splits of the same filters give on average {nulls}. Combined over the {seeds} "
            f"seeds (Fisher's method on each seed's p-value from {permutations:,} random "
            f"splits; rule fixed before the run, each direction at {stats.percent(side)}): "
            f"p = {p_text(above)} for towers that differ more than random splits, p = "
            f"{p_text(below)} for towers that differ less. Seed by seed, the towers beat random "
            f"splits at p < {alpha} in {significant} of {seeds}. The towers' gap exceeds random "
            f"splits' by {excess.mean:+.3f} on average ({_interval(excess)}), where single "
            f"filters' shares spread with a standard deviation of {spread:.2f}. AlexNet's "
            f"authors saw the split \"during every run\", independent of the initialisation "
            f"\"modulo a renumbering of the GPUs\" (Krizhevsky et al. 2012, section 6.1).")
    if seeds < 2:
        text += (" With one seed this decides nothing about training in towers, whatever the "
                 "one network shows.")
    elif label == stats.CONFIRMED:
        text += (" Across seeds, the towers differ in colour more than random splits of their "
                 "own filters: they specialise, to the size the gap shows.")
    elif label == stats.REFUTED:
        text += (" Across seeds, the towers are more alike in colour than random splits of "
                 "their own filters: the opposite of a specialisation.")
    elif above < side:
        text += (" Both directions clear the threshold: some seeds' towers differ more than "
                 "random splits and others less, so this run cannot decide.")
    else:
        text += (" Neither direction clears the threshold, so this run cannot decide; more "
                 "first-layer filters per tower, more seeds and longer training (the `full` "
                 "profile) would.")
    text += stats.detectable_note(label, excess,
                                  unit=lambda v: f"{v:.3f} in the gap above random splits")
    return stats.Verdict("C1.2", label, text, numbers={
        "seeds": [m.seed for m in measures], "gaps": [m.gap for m in measures],
        "null_gaps": [m.null_gap for m in measures], "filter_sd": spread,
        "p_values": [m.p_value for m in measures], "p_below": [m.p_below for m in measures],
        "combined_p": above, "combined_p_below": below, "alpha": alpha,
        "significant_seeds": significant, "excess": excess,
        **stats.detectable_numbers(excess)})


def _interval(diff: stats.Difference) -> str:
    if diff.seeds < 2:
        return "one seed: no interval"
    return f"{diff.confidence:.0%} interval {diff.low:+.3f} to {diff.high:+.3f} over {diff.seeds} seeds"


def baseline_text(results: experiments.Results) -> str:
    """The baseline network's (g = 1) test accuracy over seeds, for the recipe page."""
    base = results[DENSE]
    seeds = len(base.runs)
    spread = f" ± {100 * base.accuracy_sd:.1f}" if seeds > 1 else ""
    return (f"{100 * base.test_accuracy:.1f}%{spread} (mean{' ± standard deviation' if spread else ''}"
            f" over {seeds} seed{'s' if seeds > 1 else ''})")


def one_minute(c11: stats.Verdict, c12: stats.Verdict, net: GroupedNet) -> str:
    _, within = _time_reading(net)
    seeds = len(c12.numbers.get("seeds", []))
    return (f"Grouping cuts a layer's weights and MACs by exactly g (C1.1 {c11.label}). In a "
            f"small CIFAR network at g = {net.groups} the MACs fell "
            f"{net.dense.macs / net.grouped.macs:.1f}× but a training step took "
            f"{net.grouped.step_seconds / net.dense.step_seconds:.2f}× the time of the dense one"
            + (" (inside the timing noise)" if within else "")
            + f". Tower specialisation by colour, combined over {seeds} seeds: {c12.label} "
            f"(p = {p_text(c12.numbers['combined_p'])}).")


# --- explorer -------------------------------------------------------------------------------

def maps_text(size: int, out_size: int) -> str:
    """The map a MAC count is taken on; an even kernel with padding k // 2 grows it by one."""
    if out_size == size:
        return f"MACs on a {size}×{size} map"
    return f"MACs from a {size}×{size} input to a {out_size}×{out_size} output"


@labels(groups="groups (g)", kernel_size="kernel size (k)")
def grouped_conv(in_channels: int = 16, out_channels: int = 16, groups: int = 4,
                 kernel_size: int = 3, size: int = 32) -> View:
    """Chapter 1: a k x k convolution split into ``groups`` -> its wiring, parameters and MACs."""
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("kernel_size", kernel_size), ("size", size)):
        check_positive(name, value)
    check_groups(in_channels, out_channels, groups)
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                     groups=groups, bias=False)
    matrix = connectivity(conv, in_channels)
    params = measure.count_params(conv)
    macs = measure.count_macs(conv, (in_channels, size, size))
    dense = measure.conv2d_params(in_channels, out_channels, kernel_size)
    figure, (left, right) = plt.subplots(1, 2, figsize=(7, 3.4))
    plot_wiring(matrix, groups, ax=left)
    left.set_title(f"groups = {groups}")
    plot_connectivity(matrix, ax=right, title="which inputs each output sees",
                      kernel_size=kernel_size)
    figure.tight_layout()
    numbers = {
        "parameters (counted on the module)": f"{params:,}",
        "parameters (k²·C_in/g·C_out)": f"{measure.conv2d_params(in_channels, out_channels, kernel_size, groups):,}",
        maps_text(size, size + 2 * (kernel_size // 2) - kernel_size + 1): f"{macs:,}",
        "saving against groups = 1": f"{dense / params:.2f}×",
        "input channels each output sees": f"{int(matrix[0].sum())} of {in_channels}",
    }
    return View(figure, numbers)
