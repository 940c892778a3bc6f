"""Chapter 3 — one kernel size per layer? The Inception module.

- C3.1: multi-size features are better than single-size features.
- C3.2: the naive multi-branch module has far more parameters than a single-size layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
from torch import nn

from convbook import blocks, experiments, measure, stats, train
from convbook.blocks import Inception, NaiveInception
from convbook.blocks.validate import check_positive
from convbook.data import CifarData
from convbook.explore import View, labels
from convbook.tables import Table
from convbook.viz.style import legend_outside

CHAPTER = "03-inception"
MODULE_3A = {"in_channels": 192, "widths": (64, 128, 32)}  # GoogLeNet's module 3a, naive form
MIXED = "1x1 + 3x3 + 5x5"  # the multi-size network's name in the results


@dataclass(frozen=True)
class ModuleCosts:
    """Weights of the naive (3a) module, of one 3×3 layer with as many outputs as its
    convolutions (224), of one with its whole output width (416, pool channels included), and
    of GoogLeNet's module with 1×1 reductions."""

    naive: int
    same_conv_outputs: int
    same_width: int
    reduced: int


def module_costs() -> tuple[ModuleCosts, Table]:
    """Parameters (and MACs on 28×28) of the naive module at 3a's sizes, one 3×3 layer of its
    convolutions' width and of its full output width, and GoogLeNet's module with 1×1
    reductions."""
    naive = blocks.NaiveInception(MODULE_3A["in_channels"], MODULE_3A["widths"], (1, 3, 5))
    convs = sum(MODULE_3A["widths"])
    models = {
        "naive Inception (3a)": naive,
        f"one 3x3, 192 -> {convs}": nn.Conv2d(192, convs, 3, padding=1, bias=False),
        f"one 3x3, 192 -> {naive.out_channels}": nn.Conv2d(192, naive.out_channels, 3,
                                                           padding=1, bias=False),
        "Inception (3a) with 1x1 reductions": blocks.Inception(192, 64, 96, 128, 16, 32, 32,
                                                               kernel_size_5x5=5),
    }
    table = measure.compare_models(models, input_size=(192, 28, 28))
    counts = [measure.count_params(m) for m in models.values()]
    return ModuleCosts(*counts), table


@dataclass(frozen=True)
class StackCosts:
    """Parameters of naive (3a)-width modules stacked in a row, and of one plain 3×3 layer with
    each module's input and output widths."""

    naive: list[int]
    plain: list[int]
    table: Table

    @property
    def growth(self) -> float:
        return self.naive[-1] / self.naive[0]


def stacking(modules: int = 4) -> StackCosts:
    table = measure.stacked_inception_cost(192, widths=MODULE_3A["widths"], modules=modules,
                                           size=28)
    return StackCosts(table.column("parameters"),
                      table.column("one 3x3 layer, same widths: parameters"), table)


def inception_reading(results: experiments.Results) -> str:
    """A reading of the training table."""
    multi, single = results[MIXED], results["3x3 only"]
    gap = multi.test_accuracy - single.test_accuracy
    spread = max(multi.accuracy_sd, single.accuracy_sd)
    return (f"The multi-size network reaches {multi.accuracy_text()}, the 3×3 network "
            f"{single.accuracy_text()}, with the same parameters and MACs. "
            + ("The gap between the means is within one seed-to-seed standard deviation."
               if abs(gap) <= spread else
               "The gap between the means is larger than the seed-to-seed spread; the verdict "
               "below also counts the test images' sampling."))


def stacking_reading(stack: StackCosts) -> str:
    return (f"Each naive module is wider at its output than at its input, so the next one reads "
            f"more channels: by the fourth module the weights have grown "
            f"{stack.growth:.1f}-fold. A plain 3×3 layer asked to map the same widths would cost "
            f"{stack.plain[-1] / stack.naive[-1]:.1f}× the fourth module's weights: the module "
            f"itself is the cheap part; the width the pool branch forces is the expensive one.")


def verdict_c31(results: experiments.Results) -> stats.Verdict:
    """C3.1: test accuracy of the multi-size net minus the 3×3-only net, at equal parameters."""
    v = results.verdict("C3.1", "1x1 + 3x3 + 5x5", "3x3 only", "Test accuracy, 1×1 + 3×3 + 5×5 "
                        "units minus 3×3 units at equal parameters and MACs")
    multi, single = results["1x1 + 3x3 + 5x5"], results["3x3 only"]
    if multi.latency and single.latency:
        ratio = multi.latency["forward_backward"] / single.latency["forward_backward"]
        reading = ("three thin convolutions run slower than one wide one of the same MACs"
                   if ratio > 1.1 else "equal MACs, about equal time" if ratio > 0.9 else
                   "the thin branches ran faster here")
        v.text += (f" One training step of the multi-size network took {ratio:.2f}× the time of "
                   f"the 3×3 one: {reading}.")
    return v


@dataclass(frozen=True)
class Ablation:
    """Test accuracy of each seed's trained multi-size network intact and with one kernel
    size's branches held at their mean."""

    intact: list[float]
    silenced: dict[int, list[float]]  # kernel size -> accuracy per seed

    def drops(self, k: int) -> list[float]:
        return [a - b for a, b in zip(self.intact, self.silenced[k])]


def branch_ablation(results: experiments.Results, data: CifarData, name: str = MIXED) -> Ablation:
    """Silence one kernel size's branches in every unit of the trained multi-size networks and
    measure test accuracy again, each seed's network on the same test images (no flip
    averaging). A silenced branch outputs each channel's mean over the batch and the map: it
    carries no information about the image, but the layers after it still see the mean they
    were trained on (zeros would also shift every batch norm downstream, which costs accuracy
    whatever the branch did)."""
    runs = results[name].runs

    def accuracy(model: nn.Module, silenced: int | None) -> float:
        def silence(module, inputs, output):
            return output.mean(dim=(0, 2, 3), keepdim=True).expand_as(output)
        hooks = [m.register_forward_hook(silence) for name, m in model.named_modules()
                 if silenced is not None and name.endswith(f"conv{silenced}x{silenced}")]
        try:
            return train.evaluate(model, data.test)
        finally:
            for hook in hooks:
                hook.remove()

    return Ablation([accuracy(run.model, None) for run in runs],
                    {k: [accuracy(run.model, k) for run in runs] for k in (1, 3, 5)})


def ablation_table(ablation: Ablation, split: tuple[int, int, int]) -> Table:
    """The ablation per kernel size; ``split``: the units' channel shares of 1×1, 3×3, 5×5."""
    seeds = len(ablation.intact)
    mean = lambda values: sum(values) / len(values)
    rows = [{"branch silenced": "none", "share of each unit's channels": "—",
             "test accuracy": f"{100 * mean(ablation.intact):.1f}%", "drop (points)": "—"}]
    shares = dict(zip((1, 3, 5), split))
    for k, share in shares.items():
        drops = [100 * d for d in ablation.drops(k)]
        rows.append({"branch silenced": f"{k}×{k}",
                     "share of each unit's channels": f"{share}/{sum(split)}",
                     "test accuracy": f"{100 * mean(ablation.silenced[k]):.1f}%",
                     "drop (points)": f"{mean(drops):.1f} ({min(drops):.1f} to {max(drops):.1f})"})
    return Table(rows, caption=f"The trained multi-size networks with one kernel size's branches "
                               f"held at their mean in every unit (mean over {seeds} seed"
                               f"{'s' if seeds > 1 else ''}; the drop's range across seeds in "
                               f"brackets); chance is 10%. No flip averaging, so the intact "
                               f"accuracy differs a little from the results table.")


def ablation_reading(ablation: Ablation) -> str:
    """Which silenced branch costs the most accuracy, and which the least, from the numbers."""
    drops = {k: sum(ablation.drops(k)) / len(ablation.intact) for k in (1, 3, 5)}
    most, least = max(drops, key=drops.get), min(drops, key=drops.get)
    intact = sum(ablation.intact) / len(ablation.intact)
    floor = intact - 0.10  # what a drop to chance would be
    used = [k for k, d in drops.items() if d > 0.02]
    return (f"Holding the {most}×{most} branches at their mean costs the most "
            f"({100 * drops[most]:.1f} points on average), the {least}×{least} branches the "
            f"least ({100 * drops[least]:.1f}); a drop to chance would be {100 * floor:.1f}. "
            + ("The trained network relies on all three kernel sizes: holding any one at its "
               "mean costs "
               + ("most of the way to chance. " if min(drops.values()) > floor / 2 else
                  "more than 2 points. ") if len(used) == 3 else
               f"Only the {' and '.join(f'{k}×{k}' for k in used)} branches cost more than 2 "
               f"points when silenced. " if used else
               "No branch costs more than 2 points when silenced: the others make up for it. ")
            + "The drops are not shares of credit: a branch's channels also feed every later "
              "unit, which learned to read them.")


FAR_MORE = 2.0  # "far more parameters": at least twice as many


def verdict_c32(costs: ModuleCosts, stack: StackCosts) -> stats.Verdict:
    """C3.2 is a count: confirmed when the naive module holds at least ``FAR_MORE`` times the
    weights of one 3×3 layer of the same output width, refuted otherwise (never inconclusive:
    a count has no noise). The stack shows where the real cost lies: in the width the pool
    branch forces, which a plain 3×3 layer at the same widths pays too."""
    naive, same = costs.naive, costs.same_width
    label = stats.CONFIRMED if naive >= FAR_MORE * same else stats.REFUTED
    cheaper = all(n < p for n, p in zip(stack.naive, stack.plain))
    text = (f"One naive module at (3a) sizes holds {naive:,} weights, {naive / same:.2f}× the "
            f"{same:,} of one 3×3 layer with the same output width, and "
            f"{naive / costs.same_conv_outputs:.2f}× those of one with as many outputs as its "
            f"convolutions. What grows is the width: the pool branch passes every input channel "
            f"on, so the fourth naive module in a row holds {stack.growth:.1f}× the weights of "
            f"the first, yet "
            + (f"at every step it holds fewer than one 3×3 layer with its input and output "
               f"widths ({stack.naive[-1]:,} against {stack.plain[-1]:,} at the fourth)"
               if cheaper else
               f"at the fourth it holds {stack.naive[-1]:,} against {stack.plain[-1]:,} for one "
               f"3×3 layer with its input and output widths")
            + f". GoogLeNet's 1×1 reductions cut the (3a) module to {costs.reduced:,} weights.")
    return stats.Verdict("C3.2", label, text, numbers={
        "naive": naive, "one_3x3": same, "reduced": costs.reduced, "growth": stack.growth,
        "stack_naive": stack.naive, "stack_plain": stack.plain})


def one_minute(c31: stats.Verdict, c32: stats.Verdict) -> str:
    return (f"At equal weights and MACs, mixing 1×1, 3×3 and 5×5 branches against 3×3 only: "
            f"{c31.numbers['difference']} (C3.1 {c31.label}). A single naive module is "
            f"{'costlier' if c32.label == stats.CONFIRMED else 'not costlier'} than a 3×3 layer "
            f"of its output width; stacking them multiplies the cost (C3.2 {c32.label}).")


# --- explorer -------------------------------------------------------------------------------

@labels(width_3x3="width of the 3×3 branch", width_5x5="width of the 5×5 branch",
        reduce="1×1 reductions before the 3×3 and 5×5")
def inception_cost(width_3x3: int = 128, width_5x5: int = 32, reduce: bool = False,
                   in_channels: int = 192, width_1x1: int = 64, pool_proj: int = 32,
                   size: int = 28) -> View:
    """Chapter 3: an Inception module's branches -> parameters, MACs and output channels,
    beside one 3x3 convolution of the same output width. ``reduce`` adds GoogLeNet's 1x1
    reductions (to 96 and 16 channels, and ``pool_proj`` after the pool)."""
    for name, value in (("width_3x3", width_3x3), ("width_5x5", width_5x5),
                        ("in_channels", in_channels), ("width_1x1", width_1x1)):
        check_positive(name, value)
    if reduce:
        module = Inception(in_channels, width_1x1, 96, width_3x3, 16, width_5x5, pool_proj,
                           kernel_size_5x5=5)
        labels = ["1x1", "1x1 -> 3x3", "1x1 -> 5x5", "pool -> 1x1"]
    else:
        module = NaiveInception(in_channels, (width_1x1, width_3x3, width_5x5), (1, 3, 5))
        labels = ["1x1", "3x3", "5x5", "pool"]
    branches = list(module.children())
    params = [measure.count_params(b) for b in branches]
    single = nn.Conv2d(in_channels, module.out_channels, 3, padding=1, bias=False)
    figure, ax = plt.subplots(figsize=(5.2, 3.2))
    ax.bar(labels, params, color="#3b6ea5")
    ax.axhline(measure.count_params(single), color="#e07b39", linestyle="--",
               label=f"one 3x3 conv, {in_channels} -> {module.out_channels}")
    ax.set_ylabel("parameters")
    ax.set_title("reduced Inception module" if reduce else "naive Inception module")
    legend_outside(ax)
    figure.tight_layout()
    numbers = {
        "output channels": f"{module.out_channels}",
        "parameters": f"{sum(params):,}",
        f"MACs on a {size}×{size} map": f"{measure.count_macs(module, (in_channels, size, size)):,}",
        "one 3×3 conv of the same width": f"{measure.count_params(single):,} parameters",
    }
    return View(figure, numbers)
