"""Chapter 3 — one kernel size per layer? The Inception module.

- C3.1: multi-size features are better than single-size features.
- C3.2: the naive multi-branch module has far more parameters than a single-size layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import matplotlib.pyplot as plt
import torch
from torch import nn

from convbook import blocks, experiments, measure, nets, stats, train
from convbook.blocks import Inception, NaiveInception
from convbook.blocks.validate import check_positive
from convbook.data import CifarData
from convbook.errors import ConfigError
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
    of GoogLeNet's module with 1×1 reductions; that module's count split into convolution
    weights, batch-norm parameters, and its convolutions' output channels (one bias each in
    the 2014 network, which had no batch norm)."""

    naive: int
    same_conv_outputs: int
    same_width: int
    reduced: int
    reduced_weights: int = 0
    reduced_norm: int = 0
    reduced_outputs: int = 0


GOOGLENET_3A = 159_000  # GoogLeNet's Table 1: inception (3a), "params 159K"


def _split_count(module: nn.Module) -> tuple[int, int, int]:
    """Convolution weights, batch-norm parameters and convolution output channels of
    ``module``."""
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
    return (sum(m.weight.numel() for m in convs),
            sum(p.numel() for m in norms for p in m.parameters()),
            sum(m.out_channels for m in convs))


def module_costs() -> tuple[ModuleCosts, Table]:
    """Parameters (and MACs on 28×28) of the naive module at 3a's sizes, one 3×3 layer of its
    convolutions' width and of its full output width, and GoogLeNet's module with 1×1
    reductions."""
    naive = blocks.NaiveInception(MODULE_3A["in_channels"], MODULE_3A["widths"], (1, 3, 5))
    convs = sum(MODULE_3A["widths"])
    reduced = blocks.Inception(192, 64, 96, 128, 16, 32, 32, kernel_size_5x5=5)
    models = {
        "naive Inception (3a)": naive,
        f"one 3x3, 192 -> {convs}": nn.Conv2d(192, convs, 3, padding=1, bias=False),
        f"one 3x3, 192 -> {naive.out_channels}": nn.Conv2d(192, naive.out_channels, 3,
                                                           padding=1, bias=False),
        "Inception (3a) with 1x1 reductions": reduced,
    }
    table = measure.compare_models(models, input_size=(192, 28, 28))
    counts = [measure.count_params(m) for m in models.values()]
    return ModuleCosts(*counts, *_split_count(reduced)), table


def module_reading(costs: ModuleCosts) -> str:
    """Where the reduced module's count comes from, against GoogLeNet's 159K."""
    biased = costs.reduced_weights + costs.reduced_outputs
    return (f"The module with 1×1 reductions counts {costs.reduced:,} parameters here: "
            f"{costs.reduced_weights:,} convolution weights and {costs.reduced_norm:,} batch-norm "
            f"scales and shifts (two per output channel of its {costs.reduced_outputs} "
            f"convolution outputs). GoogLeNet had no batch norm; with one bias per output "
            f"channel instead it would count {biased:,}. GoogLeNet's Table 1 lists "
            f"{GOOGLENET_3A // 1000}K: the weights alone are "
            f"{100 * (costs.reduced_weights / GOOGLENET_3A - 1):.1f} % above that, so neither "
            f"biases nor batch norm explain the gap (both add parameters), and the table does "
            f"not show its arithmetic.")


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


RANDOM_DRAWS = 3  # random channel sets per share and seed in the ablation's control
ABLATION_IMAGES = 5000  # test images the ablation scores (every k-th of the test set)


@dataclass(frozen=True)
class Ablation:
    """Test accuracy of each seed's trained multi-size network intact, with one kernel size's
    branches held at their mean in every unit, and, as the control, with as many randomly
    chosen channels of every unit held at their mean (several draws)."""

    intact: list[float]
    silenced: dict[int, list[float]]  # kernel size -> accuracy per seed
    shares: dict[int, Fraction]  # kernel size -> its share of each unit's channels
    random: dict[Fraction, list[list[float]]]  # share -> per seed, each draw's accuracy
    images: int = 0  # test images scored

    def drops(self, k: int) -> list[float]:
        return [a - b for a, b in zip(self.intact, self.silenced[k])]

    def random_drops(self, share: Fraction) -> list[float]:
        """Per seed, the mean drop over the random draws at ``share``."""
        return [a - sum(draws) / len(draws) for a, draws in zip(self.intact, self.random[share])]

    @property
    def confidence(self) -> float:
        """Each branch's comparison with the control shares one 5 % error rate with the
        others (Bonferroni: 98.3 % for three kernel sizes)."""
        return stats.shared_confidence(len(self.shares))

    def excess(self, k: int) -> stats.Difference:
        """Per seed, the drop from silencing the k×k branches minus the drop from silencing
        as many random channels; its mean and t-interval over seeds (at ``confidence``)."""
        return stats.mean_interval([d - r for d, r in zip(self.drops(k),
                                                          self.random_drops(self.shares[k]))],
                                   self.confidence)


def _units(model: nn.Module) -> list[tuple[nn.Module, list[int]]]:
    """The multi-size units of ``model`` and, for each, the kernel size of every output
    channel (branches concatenate in order)."""
    units = []
    for module in model.modules():
        if isinstance(module, nets.MixedUnit):
            kernels = []
            for branch in module.children():
                conv = branch[0]
                kernels += [conv.kernel_size[0]] * conv.out_channels
            units.append((module, kernels))
    if not units:
        raise ConfigError("the branch ablation needs a network of multi-size units "
                          "(nets.mixed_unit); this one has none")
    return units


def random_masks(units: list[tuple[nn.Module, list[int]]], share: Fraction,
                 generator: torch.Generator) -> dict[nn.Module, torch.Tensor]:
    """For each unit, ``share`` of its output channels chosen at random across its branches."""
    masks = {}
    for unit, kernels in units:
        mask = torch.zeros(len(kernels), dtype=torch.bool)
        mask[torch.randperm(len(kernels), generator=generator)[:int(share * len(kernels))]] = True
        masks[unit] = mask
    return masks


def ablation_images(test: tuple[torch.Tensor, torch.Tensor],
                    most: int = ABLATION_IMAGES) -> tuple[torch.Tensor, torch.Tensor]:
    """At most ``most`` of the test images, every k-th one, so that the classes keep their
    shares in whatever order the test set comes."""
    check_positive("most", most)
    images, labels = test
    step = -(-len(labels) // most)  # ceiling division
    return images[::step], labels[::step]


def _silenced_accuracy(model: nn.Module, test: tuple[torch.Tensor, torch.Tensor],
                       masks: dict[nn.Module, torch.Tensor]) -> float:
    """Test accuracy with the channels ``masks`` marks in each unit's output replaced by
    their mean over the batch and the map (no flip averaging)."""
    def hook_for(mask: torch.Tensor):
        def silence(module, inputs, output):
            mean = output.mean(dim=(0, 2, 3), keepdim=True).expand_as(output)
            return torch.where(mask.to(output.device).view(1, -1, 1, 1), mean, output)
        return silence

    hooks = [unit.register_forward_hook(hook_for(mask)) for unit, mask in masks.items()]
    try:
        return train.evaluate(model, test)
    finally:
        for hook in hooks:
            hook.remove()


def branch_ablation(results: experiments.Results, data: CifarData, name: str = MIXED,
                    draws: int = RANDOM_DRAWS, images: int = ABLATION_IMAGES) -> Ablation:
    """Silence one kernel size's branches in every unit of the trained multi-size networks and
    measure test accuracy again, each seed's network on the same ``images`` test images
    (``ablation_images``; no flip averaging). A silenced channel outputs its mean over the batch and the map: it carries no
    information about the image, but the layers after it still see the mean they were trained
    on (zeros would also shift every batch norm downstream, which costs accuracy whatever the
    branch did).

    The control: silence the same share of each unit's channels chosen at random across its
    branches (``draws`` sets per share and seed, each from its own seeded generator), so that
    a branch's drop can be told from what losing that much width costs any set of channels."""
    check_positive("draws", draws)
    test = ablation_images(data.test, images)
    intact, silenced, random = [], {}, {}
    shares: dict[int, Fraction] = {}
    for run in results[name].runs:
        units = _units(run.model)
        kernels = units[0][1]
        shares = {k: Fraction(kernels.count(k), len(kernels)) for k in sorted(set(kernels))}
        intact.append(_silenced_accuracy(run.model, test, {}))
        for k in shares:
            masks = {unit: torch.tensor([x == k for x in ks]) for unit, ks in units}
            silenced.setdefault(k, []).append(_silenced_accuracy(run.model, test, masks))
        for share in sorted(set(shares.values()), reverse=True):
            accuracies = []
            for draw in range(draws):
                generator = torch.Generator().manual_seed(1000 * run.seed + draw)
                masks = random_masks(units, share, generator)
                accuracies.append(_silenced_accuracy(run.model, test, masks))
            random.setdefault(share, []).append(accuracies)
    return Ablation(intact, silenced, shares, random, len(test[1]))


def _share_text(share: Fraction, total: int) -> str:
    """A share as a count of ``total`` parts: 1/4 of an 8-part split is "2/8"."""
    return f"{share * total}/{total}"


def _excess_text(diff: stats.Difference) -> str:
    if diff.seeds < 2:
        return f"{100 * diff.mean:+.1f} (one seed: no interval)"
    return f"{100 * diff.mean:+.1f} ({100 * diff.low:+.1f} to {100 * diff.high:+.1f})"


def ablation_table(ablation: Ablation, split: tuple[int, int, int]) -> Table:
    """The ablation per kernel size, each share followed by its random-channel control;
    ``split``: the units' channel shares of 1×1, 3×3, 5×5."""
    seeds = len(ablation.intact)
    total = sum(split)
    mean = lambda values: sum(values) / len(values)
    draws = len(next(iter(ablation.random.values()))[0]) if ablation.random else 0
    rows = [{"channels held at their mean": "none", "share of each unit's channels": "—",
             "test accuracy": f"{100 * mean(ablation.intact):.1f}%", "drop (points)": "—",
             "drop minus random channels' (points)": "—"}]
    for share in sorted(ablation.random, reverse=True):
        for k in (k for k, s in ablation.shares.items() if s == share):
            drops = [100 * d for d in ablation.drops(k)]
            rows.append({"channels held at their mean": f"the {k}×{k} branches",
                         "share of each unit's channels": _share_text(share, total),
                         "test accuracy": f"{100 * mean(ablation.silenced[k]):.1f}%",
                         "drop (points)": f"{mean(drops):.1f} ({min(drops):.1f} to "
                                          f"{max(drops):.1f})",
                         "drop minus random channels' (points)": _excess_text(ablation.excess(k))})
        drops = [100 * d for d in ablation.random_drops(share)]
        accuracy = mean([mean(draws_) for draws_ in ablation.random[share]])
        rows.append({"channels held at their mean": "random channels (control)",
                     "share of each unit's channels": _share_text(share, total),
                     "test accuracy": f"{100 * accuracy:.1f}%",
                     "drop (points)": f"{mean(drops):.1f} ({min(drops):.1f} to {max(drops):.1f})",
                     "drop minus random channels' (points)": "—"})
    return Table(rows, caption=f"The trained multi-size networks with one kernel size's branches "
                               f"held at their mean in every unit, and, as the control, the same "
                               f"share of each unit's channels chosen at random across its "
                               f"branches ({draws} draws per seed, averaged), scored on "
                               f"{ablation.images:,} test images spread over the test set. Mean "
                               f"over {seeds} "
                               f"seed{'s' if seeds > 1 else ''}, the drop's range across seeds in "
                               f"brackets; last column: the branch's drop minus the random "
                               f"channels' drop, mean and {stats.percent(ablation.confidence)} "
                               f"interval over seeds (the kernel sizes share a 5% error rate). "
                               f"Chance is 10%. "
                               f"No flip averaging, so the intact accuracy differs a little from "
                               f"the results table.")


def _against_random(diff: stats.Difference) -> str:
    """How a branch's drop compares with random channels' drop of the same share."""
    if diff.seeds < 2:
        return "untested"
    if diff.low > 0:
        return "more"
    if diff.high < 0:
        return "less"
    return "same"


def _listed(items: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def ablation_reading(ablation: Ablation) -> str:
    """What silencing each kernel size costs, against silencing as many random channels."""
    mean = lambda values: sum(values) / len(values)
    kernels = sorted(ablation.shares)
    drops = {k: mean(ablation.drops(k)) for k in kernels}
    random = {share: mean(ablation.random_drops(share)) for share in ablation.random}
    intact = mean(ablation.intact)
    costs = [f"the {k}×{k} branches ({ablation.shares[k]} of each unit's channels) cost "
             f"{100 * drops[k]:.1f} points" for k in kernels]
    controls = [f"{100 * random[share]:.1f} points at {share}"
                for share in sorted(random, reverse=True)]
    text = (f"Held at their mean in every unit, {_listed(costs)}; as many random channels "
            f"cost {_listed(controls)} (intact {100 * intact:.1f} %, chance 10 %). A drop "
            f"alone does not show that the network relies on a kernel size, since losing that "
            f"much width costs any channels something; the drop beside the random channels' "
            f"does. ")
    verdicts = {k: _against_random(ablation.excess(k)) for k in kernels}
    level = f"{stats.percent(ablation.confidence)} intervals over seeds, sharing a 5% error rate"
    if all(v == "untested" for v in verdicts.values()):
        return text + ("With one seed there is no interval for that comparison, so it is "
                       "reported, not read.")
    more = [k for k in kernels if verdicts[k] == "more"]
    less = [k for k in kernels if verdicts[k] == "less"]
    same = [k for k in kernels if verdicts[k] == "same"]
    if len(more) == len(kernels):
        text += ("Every kernel size's branches cost more than random channels of the same "
                 f"share ({level}): the trained network relies on "
                 f"{'all three' if len(kernels) == 3 else f'all {len(kernels)}'} kernel sizes "
                 f"beyond their share of the width. ")
    elif not more and not less:
        text += ("No kernel size's branches cost clearly more or less than random channels of "
                 f"the same share ({level}, include zero): the drops "
                 f"measure the "
                 "width lost, not a reliance on one kernel size. ")
    else:
        sizes = lambda ks: _listed([f"{k}×{k}" for k in ks])
        parts = []
        if more:
            parts.append(f"the {sizes(more)} branches cost more than random channels of the "
                         f"same share")
        if less:
            parts.append(f"the {sizes(less)} branches cost less")
        if same:
            parts.append(f"the {sizes(same)} branches cannot be told from random channels")
        text += (f"Against the control ({level}), " + "; ".join(parts)
                 + ": the network leans on "
                 + (f"its {sizes(more)} channels more than on the rest. " if more else
                    "its other channels more than on these. "))
    return text + ("The drops are not shares of credit: a branch's channels also feed every "
                   "later unit, which learned to read them.")


FAR_MORE = 2.0  # "far more parameters": at least twice as many


def scope_text(label: str, costs: ModuleCosts, stack: StackCosts) -> str:
    """One line on what C3.2's label covers: the single module against a single-size layer,
    not the growth of a stack of naive modules."""
    ratio = costs.naive / costs.same_width
    if label == stats.CONFIRMED:
        return (f"Confirmed for one module: it holds {ratio:.2f}× the weights of a single-size "
                f"layer of its output width, and stacking multiplies that ({stack.growth:.1f}× "
                f"by the fourth module).")
    return (f"What is refuted: that one naive module holds far more weights than a single-size "
            f"layer of its output width (it holds {ratio:.2f}× as many). What is not: that naive "
            f"modules grow costly when stacked (the fourth holds {stack.growth:.1f}× the "
            f"first's weights), which is the cost GoogLeNet's 1×1 reductions remove.")


def verdict_c32(costs: ModuleCosts, stack: StackCosts) -> stats.Verdict:
    """C3.2 is a count: confirmed when the naive module holds at least ``FAR_MORE`` times the
    weights of one 3×3 layer of the same output width, refuted otherwise (never inconclusive:
    a count has no noise). The stack shows where the real cost lies: in the width the pool
    branch forces, which a plain 3×3 layer at the same widths pays too."""
    naive, same = costs.naive, costs.same_width
    label = stats.CONFIRMED if naive >= FAR_MORE * same else stats.REFUTED
    cheaper = all(n < p for n, p in zip(stack.naive, stack.plain))
    reduced = (f"{costs.reduced_weights:,} convolution weights ({costs.reduced:,} parameters "
               f"with its batch norms; GoogLeNet's Table 1 lists {GOOGLENET_3A // 1000}K)"
               if costs.reduced_weights else f"{costs.reduced:,} parameters")
    text = (scope_text(label, costs, stack) + " "
            f"One naive module at (3a) sizes holds {naive:,} weights, {naive / same:.2f}× the "
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
            + f". GoogLeNet's 1×1 reductions cut the (3a) module to {reduced}.")
    return stats.Verdict("C3.2", label, text, numbers={
        "naive": naive, "one_3x3": same, "reduced": costs.reduced,
        "reduced_weights": costs.reduced_weights, "reduced_norm": costs.reduced_norm,
        "growth": stack.growth, "stack_naive": stack.naive, "stack_plain": stack.plain})


def one_minute(c31: stats.Verdict, c32: stats.Verdict) -> str:
    single = ("costlier" if c32.label == stats.CONFIRMED else "not costlier")
    return (f"At equal weights and MACs, mixing 1×1, 3×3 and 5×5 branches against 3×3 only: "
            f"{c31.numbers['difference']} (C3.1 {c31.label}). A single naive module is "
            f"{single} than a 3×3 layer of its output width (C3.2 {c32.label}, a claim about "
            f"the single module); stacked, naive modules still grow "
            f"{c32.numbers['growth']:.1f}-fold in weights by the fourth, the cost GoogLeNet's "
            f"1×1 reductions remove.")


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
