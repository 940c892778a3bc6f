"""Chapter 1 — must a convolution see all channels? Group convolution.

Claims (the review's, in the book's words):
- C1.1: splitting the channels into g groups divides a layer's weights and MACs by g.
- C1.2: AlexNet's two towers specialise, one in colour-agnostic filters, one in colour.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
from torch import nn

from convbook import experiments, filters, measure, nets, stats
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


def group_costs(setup: Setup) -> Table:
    """Parameters, MACs and measured latency of the network at every group count (untrained:
    cost does not depend on the weights), at the training batch size on the chapter's device."""
    rows = []
    for g in GROUPS:
        model = nets.CifarNet(setup.profile.width, groups=g)
        timing = measure.train_latency(model, setup.profile.batch_size, device=setup.device)
        rows.append({"groups": g, "parameters": measure.count_params(model),
                     "MACs / image": f"{measure.count_macs(model) / 1e6:.2f} M",
                     f"forward ms (batch {setup.profile.batch_size})":
                         f"{1000 * timing['forward']:.1f}",
                     "forward + backward ms": f"{1000 * timing['forward_backward']:.1f}"})
    return Table(rows, caption=f"The network at every group count, base width "
                 f"{setup.profile.width}; latency: median of repeated timed batches "
                 f"(torch.utils.benchmark) on {setup.device.type}, after a warm-up.")


@dataclass(frozen=True)
class TowerSeed:
    """Colour shares of conv1's filters for one seed: the two-tower net's towers, and the
    one-tower net (same seed, same initial conv1) split into halves the same way."""

    seed: int
    tower_shares: tuple[float, float]
    half_shares: tuple[float, float]
    p_value: float  # of the two-tower gap, against random equal splits of the same filters
    filter_shares: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())  # per tower, each filter
    initial_share: float = float("nan")  # mean colour share of conv1 at initialisation

    @property
    def gap(self) -> float:
        return abs(self.tower_shares[1] - self.tower_shares[0])

    @property
    def control_gap(self) -> float:
        return abs(self.half_shares[1] - self.half_shares[0])


def tower_measures(results: experiments.Results, permutations: int = 2000) -> list[TowerSeed]:
    """Per seed: colour share of each tower (the "two towers" net) and of each half (the "one
    tower" net), and conv1's mean colour share before training (the same seed's initial
    weights)."""
    out = []
    two_runs = {r.seed: r for r in results["two towers"].runs}
    for one_run in results["one tower"].runs:
        two = two_runs[one_run.seed].model.features
        one = one_run.model.features
        towers = two.tower_of_first_filters()
        shares_two = filters.colour_share(two.first_conv.weight)
        shares_one = filters.colour_share(one.first_conv.weight)
        members = [[i for i, x in enumerate(towers) if x == k] for k in (0, 1)]
        initial = filters.colour_share(
            results["two towers"].initial_model(one_run.seed).features.first_conv.weight)
        out.append(TowerSeed(
            one_run.seed,
            tuple(float(shares_two[m].mean()) for m in members),
            tuple(float(shares_one[m].mean()) for m in members),
            filters.permutation_p_value(shares_two, towers, permutations, one_run.seed),
            tuple(tuple(float(x) for x in shares_two[members[k]]) for k in (0, 1)),
            float(initial.mean())))
    return out


def tower_table(measures: list[TowerSeed]) -> Table:
    rows = [{"seed": m.seed,
             "two towers: colour share, tower 0 / 1":
                 f"{m.tower_shares[0]:.3f} / {m.tower_shares[1]:.3f}",
             "gap": f"{m.gap:.3f}", "p (random split)": f"{m.p_value:.3f}",
             "one tower: halves 0 / 1": f"{m.half_shares[0]:.3f} / {m.half_shares[1]:.3f}",
             "control gap": f"{m.control_gap:.3f}",
             "conv1 before training": f"{m.initial_share:.3f}"} for m in measures]
    return Table(rows, caption="Mean colour share of conv1's filters (0: brightness only, 1: "
                 "colour contrast only) per tower of the two-tower network, and per half of the "
                 "one-tower network trained from the same seed. p: share of random equal splits "
                 "of the two-tower filters with a gap at least as large. Last column: the mean "
                 "over all of conv1's filters at initialisation.")


def plot_shares(measures: list[TowerSeed]):
    """Every conv1 filter's colour share per tower and seed (two-tower network)."""
    from convbook.viz.filters import plot_tower_shares

    initial = sum(m.initial_share for m in measures) / len(measures)
    return plot_tower_shares([m.filter_shares for m in measures], [m.seed for m in measures],
                             initial)


def towers_reading(measures: list[TowerSeed]) -> str:
    """A reading of the tower table: where the shares start, where they end, and how the gaps
    compare."""
    initial = sum(m.initial_share for m in measures) / len(measures)
    trained = sum(sum(m.tower_shares) / 2 for m in measures) / len(measures)
    larger = sum(m.gap > m.control_gap for m in measures)
    return (f"Before training a filter's colour share averages {initial:.2f}: random weights "
            f"put about two thirds of their energy in the two colour-contrast directions of "
            f"RGB and one third in brightness. Training moves the two-tower filters to "
            f"{trained:.2f} on average, "
            + ("towards brightness. " if trained < initial else "towards colour. ")
            + f"The tower gap exceeds the one-tower control's gap in {larger} of "
            f"{len(measures)} seeds. AlexNet's towers had 48 first-layer filters each and "
            f"trained for about 90 epochs on ImageNet; these have "
            f"{len(measures[0].filter_shares[0]) or 'a few'} and far less training, which is "
            f"the first thing to change for a test with more power (the `full` profile doubles "
            f"them).")


@dataclass(frozen=True)
class NetFigures:
    """One trained network of experiment 1: its cost, one measured training step, accuracy."""

    params: int
    macs: int
    step_seconds: float  # forward + backward, one training batch
    accuracy: float  # mean test accuracy over its seeds
    seeds: int


@dataclass(frozen=True)
class GroupedNet:
    """Experiment 1's networks: dense, grouped at the same width, grouped at equal parameters."""

    dense: NetFigures
    grouped: NetFigures
    equal: NetFigures
    groups: int
    device: str


def grouped_net(results: experiments.Results, groups: int, device: str) -> GroupedNet:
    """Experiment 1's figures from its results (variants named ``DENSE``, ``SAME_WIDTH`` and
    ``EQUAL_PARAMS``), its networks grouped in ``groups``."""
    def figures(name: str) -> NetFigures:
        v = results[name]
        if not v.latency:
            raise ConfigError(f"{name!r} was trained without latency=True; C1.1 reports its "
                              f"measured step time")
        return NetFigures(v.params, v.macs, v.latency["forward_backward"], v.test_accuracy,
                          len(v.runs))
    return GroupedNet(figures(DENSE), figures(SAME_WIDTH), figures(EQUAL_PARAMS), groups,
                      device)


def verdict_c11(layer_params: dict[int, int], layer_macs: dict[int, int],
                net: GroupedNet) -> stats.Verdict:
    """C1.1 is arithmetic: confirmed when every grouped layer holds exactly 1/g of the dense
    layer's weights and performs exactly 1/g of its MACs (both counted on the modules), refuted
    otherwise. It cannot be inconclusive (a count has no noise); the network-level figures and
    the measured time are reported, not judged."""
    dense_layer = layer_params[1]
    exact = (all(params * g == dense_layer for g, params in layer_params.items())
             and all(macs * g == layer_macs[1] for g, macs in layer_macs.items()))
    g_max = max(layer_params)
    label = stats.label_exact(1.0, 1.0 if exact else 0.0)
    dense, grouped, g = net.dense, net.grouped, net.groups
    t1, tg = dense.step_seconds, grouped.step_seconds
    speed = (f"ran {t1 / tg:.2f}× as fast" if tg < t1 else f"took {tg / t1:.2f}× as long")
    mac_cut = dense.macs / grouped.macs
    if t1 / tg >= 0.75 * mac_cut:
        reading = "roughly in step with the MACs"
    elif tg < t1:
        reading = "fewer MACs bought less time, but far from proportionally"
    else:
        reading = "fewer MACs did not buy less time"
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
        "step_seconds": [t1, tg, net.equal.step_seconds],
        "accuracy": [dense.accuracy, grouped.accuracy, net.equal.accuracy]})


SEED_NOISE = 0.02  # accuracy gaps up to 2 points between one-seed runs are read as noise


def groups_reading(net: GroupedNet) -> str:
    """A reading of the trained networks' table: what grouping cost at the same width, and
    whether the grouped network with the dense one's parameters and MACs closes the gap (the
    loss was the lost parameters) or not (the grouping itself costs). The grouped networks
    trained from one seed, so gaps within ``SEED_NOISE`` are not read as effects."""
    d, s, e, g = net.dense, net.grouped, net.equal, net.groups
    lost = d.accuracy - s.accuracy
    remainder = d.accuracy - e.accuracy
    if lost <= SEED_NOISE:
        share = (f"grouping at the same width cost {100 * lost:.1f} points, within what one "
                 f"seed can tell")
    elif remainder <= SEED_NOISE:
        share = (f"the grouped network with the dense one's parameters comes within "
                 f"{100 * max(remainder, 0):.1f} points of it, within what one seed can tell: "
                 f"at this scale the loss came from the parameters and MACs grouping removes, "
                 f"not from grouping as such")
    else:
        share = (f"the grouped network with the dense one's parameters still trails it by "
                 f"{100 * remainder:.1f} points, more than one seed's noise: grouping itself "
                 f"seems to cost here, though one seed cannot settle it")
    return (f"The dense network reaches {100 * d.accuracy:.1f} % (mean of {d.seeds} seeds). In "
            f"{g} groups at the same width it reaches {100 * s.accuracy:.1f} % with "
            f"{d.params / s.params:.1f}× fewer parameters; at twice the width, with "
            f"{e.params:,} parameters and {e.macs / 1e6:.2f} M MACs against the dense "
            f"network's {d.params:,} and {d.macs / 1e6:.2f} M, {100 * e.accuracy:.1f} % (one "
            f"seed each). Of the {100 * lost:.1f} points lost at the same width, {share}. The "
            f"wider grouped network is not the same network with groups: it has twice the "
            f"channels and activations. With every unit grouped and no shuffle, the {g} groups "
            f"form {g} isolated towers from the stem to the head, which alone mixes them "
            f"(chapter 7 adds the shuffle).")


def verdict_c12(measures: list[TowerSeed], alpha: float = 0.05) -> stats.Verdict:
    """C1.2: does training in two towers open a colour gap between them? Per seed, the
    two-tower gap minus the gap between the halves of a one-tower net from the same seed; the
    t-interval over seeds decides (confirmed above 0, refuted below, inconclusive across it,
    and always inconclusive with one seed)."""
    diff = stats.mean_interval([m.gap - m.control_gap for m in measures])
    label = stats.label_difference(diff, +1)
    significant = sum(m.p_value < alpha for m in measures)
    gaps = ", ".join(f"{m.gap:.3f}" for m in measures)
    controls = ", ".join(f"{m.control_gap:.3f}" for m in measures)
    text = (f"Gap in mean colour share between the towers, per seed: {gaps}; between the halves "
            f"of the one-tower control: {controls}. Towers minus control: "
            f"{diff.mean:+.3f} ({_interval(diff)}). The tower gap beat a random split of the "
            f"same filters (p < {alpha}) in {significant} of {len(measures)} seeds. AlexNet's "
            f"authors saw the split \"during every run\", independent of the initialisation "
            f"\"modulo a renumbering of the GPUs\" (Krizhevsky et al. 2012, section 6.1).")
    if label == stats.INCONCLUSIVE:
        text += (" The interval includes zero, so this run cannot decide; more first-layer "
                 "filters per tower, more seeds and longer training (the `full` profile) would.")
    text += stats.detectable_note(label, diff, unit=lambda v: f"{v:.3f} in the colour gap")
    return stats.Verdict("C1.2", label, text, numbers={
        "gaps": [m.gap for m in measures], "control_gaps": [m.control_gap for m in measures],
        "p_values": [m.p_value for m in measures], "difference": diff,
        **stats.detectable_numbers(diff)})


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
    return (f"Grouping cuts a layer's weights and MACs by exactly g (C1.1 {c11.label}). In a "
            f"small CIFAR network at g = {net.groups} the MACs fell "
            f"{net.dense.macs / net.grouped.macs:.1f}× but a training step took "
            f"{net.grouped.step_seconds / net.dense.step_seconds:.2f}× the time of the dense one. "
            f"Tower specialisation by colour: {c12.label}.")


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
    plot_connectivity(matrix, ax=right, title="which inputs each output sees")
    figure.tight_layout()
    numbers = {
        "parameters (counted on the module)": f"{params:,}",
        "parameters (k²·C_in/g·C_out)": f"{measure.conv2d_params(in_channels, out_channels, kernel_size, groups):,}",
        maps_text(size, size + 2 * (kernel_size // 2) - kernel_size + 1): f"{macs:,}",
        "saving against groups = 1": f"{dense / params:.2f}×",
        "input channels each output sees": f"{int(matrix[0].sum())} of {in_channels}",
    }
    return View(figure, numbers)
