"""Chapter 5 — are deeper networks harder to train? Residual connections.

- C5.1: deeper plain networks train worse (the degradation problem).
- C5.2: vanishing gradients are the cause.
- C5.3: skip connections let much deeper networks train.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch

from convbook import experiments, gradients, stats
from convbook.blocks.validate import check_positive
from convbook.data import CifarData
from convbook.errors import ConfigError
from convbook.explore import View, labels

CHAPTER = "05-residual"
VANISHING = 0.1  # first-layer gradient below a tenth of the last layer's counts as vanishing


def stage_boundaries(depth: int) -> tuple[float, float]:
    """Where the width doubles in a CIFAR ResNet's list of 3×3 convolutions (stem first, then
    2n per stage): between stages 1 and 2, and 2 and 3, as positions between layer indices."""
    n = (depth - 2) // 6
    return (1 + 2 * n + 0.5, 1 + 4 * n + 0.5)


def train_error_difference(results: experiments.Results, a: str, b: str,
                           confidence: float = 0.95) -> stats.Difference:
    """Final training error of ``a`` minus ``b``, paired by seed. The training set is fixed,
    not a sample, so the interval covers seeds only."""
    errors_b = {r.seed: r.final_train_error for r in results[b].runs}
    return stats.mean_interval([r.final_train_error - errors_b[r.seed]
                                for r in results[a].runs if r.seed in errors_b], confidence)


def gradient_ratios(depth: int, width: int, data: CifarData, seeds: list[int]) -> dict[str, list[float]]:
    """First-to-last gradient ratio at initialisation, per seed, for plain and residual nets
    with and without batch norm (He initialisation, mixed training batches)."""
    out: dict[str, list[float]] = {}
    for seed in seeds:
        for name, norms in gradients.at_initialisation(depth, width, data.train, seed).items():
            out.setdefault(name, []).append(gradients.first_to_last_ratio(norms))
    return out


@dataclass(frozen=True)
class Degradation:
    shallow: int
    deep: int
    plain_gap: stats.Difference  # training error, deep plain minus shallow plain
    residual_gain: stats.Difference  # training error, deep plain minus deep residual
    residual_depth: stats.Difference  # training error, deep residual minus shallow residual


def degradation(results: experiments.Results, ds: tuple[int, ...]) -> Degradation:
    """The training-error differences the verdicts rest on, between the variants named
    "plain D" and "residual D" at the shallowest and deepest of the depths ``ds``. C5.3's two
    (plain minus residual at the greatest depth; residual deep minus shallow) share the 5 %
    error rate."""
    if len(ds) < 2 or sorted(ds) != list(ds):
        raise ConfigError(f"depths must be at least two, in increasing order, e.g. (8, 20); "
                          f"got {ds!r}")
    shared = stats.shared_confidence(2)
    return Degradation(
        ds[0], ds[-1],
        train_error_difference(results, f"plain {ds[-1]}", f"plain {ds[0]}"),
        train_error_difference(results, f"plain {ds[-1]}", f"residual {ds[-1]}", shared),
        train_error_difference(results, f"residual {ds[-1]}", f"residual {ds[0]}", shared))


def _error(diff: stats.Difference) -> str:
    if diff.seeds < 2:
        return f"{100 * diff.mean:+.1f} points (one seed: no interval)"
    return (f"{100 * diff.mean:+.1f} points ({stats.percent(diff.confidence)} interval "
            f"{100 * diff.low:+.1f} to {100 * diff.high:+.1f}, {diff.seeds} seeds)")


def depths_reading(results: experiments.Results, ds: tuple[int, ...]) -> str:
    """A reading of the depth table: final training error of each kind at each depth."""
    def error(name: str) -> float:
        runs = results[name].runs
        return sum(r.final_train_error for r in runs) / len(runs)

    series = {kind: [error(f"{kind} {d}") for d in ds] for kind in ("plain", "residual")}

    def trend(values: list[float]) -> str:
        through = (" through " + ", ".join(f"{100 * v:.1f} %" for v in values[1:-1])
                   if len(values) > 2 else "")
        return (("falls" if values[-1] < values[0] else "rises")
                + f" from {100 * values[0]:.1f} %{through} to {100 * values[-1]:.1f} %")

    names = [f"{kind} {d}" for kind in ("plain", "residual") for d in ds]
    by_error = sorted(names, key=error)
    by_accuracy = sorted(names, key=lambda n: -results[n].test_accuracy)
    order = ("Test accuracy ranks the networks in the same order"
             if by_error == by_accuracy else "Test accuracy ranks the networks differently")
    return (f"Final training error (mean over the seeds each network trained) "
            f"{trend(series['plain'])} for the plain networks from {ds[0]} to {ds[-1]} layers, "
            f"and {trend(series['residual'])} for the residual ones. {order}; the verdicts use "
            f"training error, since degradation is about what a network can fit, not what it "
            f"generalises to.")


def verdict_c51(d: Degradation) -> stats.Verdict:
    """C5.1: the deeper plain net's final training error minus the shallower one's."""
    label = stats.label_difference(d.plain_gap, +1)
    text = (f"Final training error (unaugmented training images, final weights, after this "
            f"profile's training budget), {d.deep}-layer plain minus {d.shallow}-layer plain: "
            f"{_error(d.plain_gap)}.")
    if label == stats.INCONCLUSIVE:
        text += (" The run cannot decide at these depths; He et al. saw degradation from 20 to "
                 "56 layers, which the `full` profile trains.")
    text += stats.detectable_note(label, d.plain_gap)
    return stats.Verdict("C5.1", label, text, numbers={"difference": d.plain_gap,
                                                       **stats.detectable_numbers(d.plain_gap)})


def verdict_c52(c51: stats.Verdict, ratios_bn: list[float], ratios_raw: list[float]) -> stats.Verdict:
    """C5.2: are vanishing gradients the cause? With no degradation established (C5.1 not
    confirmed) there is nothing to explain: inconclusive. Otherwise refuted when the plain
    net's first layer gets at least a tenth of its last layer's gradient in every seed (with
    batch norm, as trained): the network degraded with its gradients intact. When gradients do
    vanish alongside the degradation the label stays inconclusive: co-occurrence, measured at
    initialisation, cannot show cause. So this rule never returns "confirmed"."""
    low, high = min(ratios_bn), max(ratios_bn)
    measured = (f"At initialisation the plain network's first layer receives {low:.2g} to "
                f"{high:.2g} times the gradient of its last layer with batch norm, "
                f"{min(ratios_raw):.2g} to {max(ratios_raw):.2g} without (He initialisation).")
    if c51.label != stats.CONFIRMED:
        return stats.Verdict("C5.2", stats.INCONCLUSIVE, measured + " Degradation was not "
                             "established here (C5.1), so this run cannot name its cause.",
                             numbers={"ratios_bn": ratios_bn, "ratios_no_bn": ratios_raw})
    if high < VANISHING:
        label, reading = stats.INCONCLUSIVE, ("Degradation and vanishing gradients appear "
                                              "together, which does not show that one causes "
                                              "the other.")
    elif low >= VANISHING:
        label, reading = stats.REFUTED, ("The network degraded with its gradients intact, as "
                                         "He et al. argued: vanishing is not the cause here.")
    else:
        label, reading = stats.INCONCLUSIVE, "The seeds disagree on whether gradients vanish."
    return stats.Verdict("C5.2", label, f"{measured} {reading}",
                         numbers={"ratios_bn": ratios_bn, "ratios_no_bn": ratios_raw})


def verdict_c53(d: Degradation) -> stats.Verdict:
    """C5.3, "skip connections let much deeper networks train", across depth in two parts:
    at the greatest depth the residual net reaches a lower final training error than the plain
    one (plain minus residual above 0), and the deeper residual net trains better than the
    shallow one (its deep minus shallow training error below 0: more layers, lower error). Each part is labelled
    from its interval; they combine (nuanced when they differ)."""
    gain, depth = (stats.label_difference(d.residual_gain, +1),
                   stats.label_difference(d.residual_depth, -1))
    beats = stats.Verdict("C5.3", gain,
                          f"final training error at {d.deep} layers, plain minus residual: "
                          f"{_error(d.residual_gain)}."
                          + stats.detectable_note(gain, d.residual_gain),
                          numbers={"difference": d.residual_gain,
                                   **stats.detectable_numbers(d.residual_gain)})
    deeper = stats.Verdict("C5.3", depth,
                           f"residual, {d.deep} layers minus {d.shallow}: "
                           f"{_error(d.residual_depth)}."
                           + stats.detectable_note(depth, d.residual_depth),
                           numbers={"difference": d.residual_depth,
                                    **stats.detectable_numbers(d.residual_depth)})
    v = stats.combine("C5.3", {"residual beats plain": beats,
                               "deeper residual trains better": deeper})
    if v.label != stats.CONFIRMED:
        v.text += (" He et al. trained residual networks of 110 and 1202 layers on CIFAR-10; "
                   "the `full` profile goes to 56.")
    v.numbers = {"difference": d.residual_gain, "residual_depth": d.residual_depth}
    return v


def one_minute(c51: stats.Verdict, c52: stats.Verdict, c53: stats.Verdict, d: Degradation) -> str:
    return (f"Plain networks, {d.deep} layers against {d.shallow}: training error "
            f"{100 * d.plain_gap.mean:+.1f} points (C5.1 {c51.label}). Vanishing gradients as the "
            f"cause: {c52.label}. Residual against plain at {d.deep} layers: training error "
            f"{-100 * d.residual_gain.mean:+.1f} points (C5.3 {c53.label}).")


# --- explorer -------------------------------------------------------------------------------

@labels(depth="depth (conv layers)", norm="batch norm")
def gradient_depth(depth: int = 20, norm: bool = True, width: int = 8, seed: int = 0) -> View:
    """Chapter 5: plain against residual CIFAR networks of ``depth`` at initialisation ->
    the RMS gradient reaching each conv layer on one batch of random images."""
    from convbook.gradients import first_to_last_ratio, layer_gradient_norms
    from convbook.nets import CifarResNet
    from convbook.viz.curves import plot_layer_norms

    check_positive("width", width)
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (64,), generator=generator)
    series = {}
    for name, skip in (("plain", False), ("residual", True)):
        torch.manual_seed(seed)
        model = CifarResNet(depth, width, skip=skip, norm=norm)
        series[name] = layer_gradient_norms(model, (images, labels), batches=1)
    figure, ax = plt.subplots(figsize=(5.2, 3.3))
    plot_layer_norms(series, ax=ax, boundaries=stage_boundaries(depth))
    ax.set_title(f"depth {depth}, {'with' if norm else 'without'} batch norm, at initialisation")
    figure.tight_layout()
    numbers = {f"first / last layer, {name}": f"{first_to_last_ratio(values):.2g}"
               for name, values in series.items()}
    return View(figure, numbers)
