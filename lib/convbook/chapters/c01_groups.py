"""Chapter 1 — must a convolution see all channels? Group convolution.

Claims (the review's, in the book's words):
- C1.1: splitting the channels into g groups divides a layer's weights and MACs by g.
- C1.2: AlexNet's two towers specialise, one in colour-agnostic filters, one in colour.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import matplotlib.pyplot as plt
from torch import nn

from convbook import experiments, filters, measure, nets, stats
from convbook.blocks.validate import check_groups, check_positive
from convbook.book import Setup
from convbook.data import CifarData
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


def run_groups(setup: Setup, data: CifarData) -> experiments.Results:
    """The plain CIFAR network dense (g = 1, the book's baseline, which later chapters reuse:
    every seed) and with every unit after the stem in 8 groups (one seed). C1.1 is decided by
    counting; the accuracies show what grouping costs and are reported, not judged."""
    width = setup.profile.width
    variants = {f"groups={g}": partial(nets.CifarNet, width, groups=g) for g in (1, 8)}
    return experiments.compare(variants, data, setup.profile, seeds=setup.seeds,
                               device=setup.device, secondary=["groups=8"])


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


def tower_widths(setup: Setup) -> tuple[int, int]:
    """(base width, conv1 filters) of the tower networks: half the profile's width everywhere
    but conv1, which keeps the profile's 2 × width filters. AlexNet's layout at full width costs
    two and a half CifarNets per image; the colour test needs many conv1 filters, not wide
    later layers, and conv1 is cheap."""
    return max(2, setup.profile.width // 2 // 2 * 2), 2 * setup.profile.width


def run_towers(setup: Setup, data: CifarData) -> experiments.Results:
    """AlexNet's layout at CIFAR scale with two towers and with one, from the same seeds."""
    width, first = tower_widths(setup)
    return experiments.compare(
        {"two towers": partial(nets.TwoTowerNet, width, towers=2, first_channels=first),
         "one tower": partial(nets.TwoTowerNet, width, towers=1, first_channels=first)},
        data, setup.profile, seeds=setup.seeds, device=setup.device, latency=False)


@dataclass(frozen=True)
class TowerSeed:
    """Colour shares of conv1's filters for one seed: the two-tower net's towers, and the
    one-tower net (same seed, same initial conv1) split into halves the same way."""

    seed: int
    tower_shares: tuple[float, float]
    half_shares: tuple[float, float]
    p_value: float  # of the two-tower gap, against random equal splits of the same filters

    @property
    def gap(self) -> float:
        return abs(self.tower_shares[1] - self.tower_shares[0])

    @property
    def control_gap(self) -> float:
        return abs(self.half_shares[1] - self.half_shares[0])


def tower_measures(results: experiments.Results, permutations: int = 2000) -> list[TowerSeed]:
    """Per seed: colour share of each tower (two-tower net) and of each half (one-tower net)."""
    out = []
    two_runs = {r.seed: r for r in results["two towers"].runs}
    for one_run in results["one tower"].runs:
        two = two_runs[one_run.seed].model.features
        one = one_run.model.features
        towers = two.tower_of_first_filters()
        shares_two = filters.colour_share(two.first_conv.weight)
        shares_one = filters.colour_share(one.first_conv.weight)
        mean = lambda s, t, k: float(s[[i for i, x in enumerate(t) if x == k]].mean())
        out.append(TowerSeed(
            one_run.seed,
            (mean(shares_two, towers, 0), mean(shares_two, towers, 1)),
            (mean(shares_one, towers, 0), mean(shares_one, towers, 1)),
            filters.permutation_p_value(shares_two, towers, permutations, one_run.seed)))
    return out


def tower_table(measures: list[TowerSeed]) -> Table:
    rows = [{"seed": m.seed,
             "two towers: colour share, tower 0 / 1":
                 f"{m.tower_shares[0]:.3f} / {m.tower_shares[1]:.3f}",
             "gap": f"{m.gap:.3f}", "p (random split)": f"{m.p_value:.3f}",
             "one tower: halves 0 / 1": f"{m.half_shares[0]:.3f} / {m.half_shares[1]:.3f}",
             "control gap": f"{m.control_gap:.3f}"} for m in measures]
    return Table(rows, caption="Mean colour share of conv1's filters (0: brightness only, 1: "
                 "colour contrast only) per tower of the two-tower network, and per half of the "
                 "one-tower network trained from the same seed. p: share of random equal splits "
                 "of the two-tower filters with a gap at least as large.")


@dataclass(frozen=True)
class GroupedNet:
    """Whole-network figures of the plain net at g = 1 and at g = 8."""

    params: tuple[int, int]
    macs: tuple[int, int]
    latency: tuple[float, float]  # forward + backward seconds per training batch
    accuracy: tuple[float, float]  # mean test accuracy at g = 1 and g = 8 (g = 8: one seed)
    device: str


def grouped_net(results: experiments.Results, device: str) -> GroupedNet:
    one, eight = results["groups=1"], results["groups=8"]
    return GroupedNet((one.params, eight.params), (one.macs, eight.macs),
                      (one.latency["forward_backward"], eight.latency["forward_backward"]),
                      (one.test_accuracy, eight.test_accuracy), device)


def verdict_c11(layer_params: dict[int, int], layer_macs: dict[int, int],
                net: GroupedNet) -> stats.Verdict:
    """C1.1 is arithmetic: confirmed when every grouped layer holds exactly 1/g of the dense
    layer's weights and performs exactly 1/g of its MACs (both counted on the modules), refuted
    otherwise. It cannot be inconclusive (a count has no noise); the network-level figures and
    the measured time are reported, not judged."""
    dense = layer_params[1]
    exact = (all(params * g == dense for g, params in layer_params.items())
             and all(macs * g == layer_macs[1] for g, macs in layer_macs.items()))
    g_max = max(layer_params)
    label = stats.label_exact(1.0, 1.0 if exact else 0.0)
    p1, p8 = net.params
    m1, m8 = net.macs
    t1, t8 = net.latency
    speed = (f"{t1 / t8:.2f}× as fast" if t8 < t1 else f"{t8 / t1:.2f}× as long")
    if t1 / t8 >= (m1 / m8) / 2:
        reading = "roughly in step with the MACs"
    elif t8 < t1:
        reading = "fewer MACs bought less time, but far from proportionally"
    else:
        reading = "fewer MACs did not buy less time"
    text = (f"Per layer the cut is {'exactly' if exact else 'not'} g, in weights and in MACs: at "
            f"g = {g_max} a 3×3 layer from 256 to 256 channels holds {layer_params[g_max]:,} "
            f"weights instead of {dense:,}. For the whole network it is less, because the stem stays dense: with "
            f"every later unit in 8 groups the parameters fell from {p1:,} to {p8:,} "
            f"({p1 / p8:.1f}× fewer) and the MACs from {m1 / 1e6:.2f} M to {m8 / 1e6:.2f} M "
            f"({m1 / m8:.1f}× fewer), while one training step (forward and backward, measured) "
            f"took {speed} on {net.device}: {reading}. "
            f"Test accuracy went from {100 * net.accuracy[0]:.1f}% (g = 1) to "
            f"{100 * net.accuracy[1]:.1f}% (g = 8, one seed; reported, not judged).")
    return stats.Verdict("C1.1", label, text, numbers={
        "layer_params": layer_params, "layer_macs": layer_macs, "params": net.params, "macs": net.macs,
        "step_seconds": net.latency, "accuracy_g1_g8": net.accuracy})


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
            f"same filters (p < {alpha}) in {significant} of {len(measures)} seeds; AlexNet "
            f"reports its split \"in every run\".")
    if label == stats.INCONCLUSIVE:
        text += (" The interval includes zero, so this run cannot decide; more first-layer "
                 "filters per tower, more seeds and longer training (the `full` profile) would.")
    return stats.Verdict("C1.2", label, text, numbers={
        "gaps": [m.gap for m in measures], "control_gaps": [m.control_gap for m in measures],
        "p_values": [m.p_value for m in measures], "difference": diff})


def _interval(diff: stats.Difference) -> str:
    if diff.seeds < 2:
        return "one seed: no interval"
    return f"{diff.confidence:.0%} interval {diff.low:+.3f} to {diff.high:+.3f} over {diff.seeds} seeds"


def baseline_text(results: experiments.Results) -> str:
    """The baseline network's (g = 1) test accuracy over seeds, for the recipe page."""
    base = results["groups=1"]
    seeds = len(base.runs)
    spread = f" ± {100 * base.accuracy_sd:.1f}" if seeds > 1 else ""
    return (f"{100 * base.test_accuracy:.1f}%{spread} (mean{' ± standard deviation' if spread else ''}"
            f" over {seeds} seed{'s' if seeds > 1 else ''})")


def one_minute(c11: stats.Verdict, c12: stats.Verdict, net: GroupedNet) -> str:
    t1, t8 = net.latency
    return (f"Grouping cuts a layer's weights and MACs by exactly g (C1.1 {c11.label}). In a "
            f"small CIFAR network at g = 8 the MACs fell {net.macs[0] / net.macs[1]:.1f}× but a "
            f"training step took {t8 / t1:.2f}× the time of the dense one. Tower specialisation "
            f"by colour: {c12.label}.")


# --- explorer -------------------------------------------------------------------------------

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
        f"MACs on a {size}×{size} map": f"{macs:,}",
        "saving against groups = 1": f"{dense / params:.2f}×",
        "input channels each output sees": f"{int(matrix[0].sum())} of {in_channels}",
    }
    return View(figure, numbers)
