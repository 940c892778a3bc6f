"""Chapter 3 — one kernel size per layer? The Inception module.

- C3.1: multi-size features are better than single-size features.
- C3.2: the naive multi-branch module has far more parameters than a single-size layer.
"""

from __future__ import annotations

from functools import partial

from torch import nn

from convbook import blocks, experiments, measure, nets, stats
from convbook.book import Setup
from convbook.data import CifarData
from convbook.tables import Table

CHAPTER = "03-inception"
MODULE_3A = {"in_channels": 192, "widths": (64, 128, 32)}  # GoogLeNet's module 3a, naive form


def module_costs() -> tuple[dict[str, int], Table]:
    """Parameters (and MACs on 28×28) of the naive module at 3a's sizes, one 3×3 layer of its
    branch width and of its full output width, and GoogLeNet's module with 1×1 reductions."""
    naive = blocks.NaiveInception(MODULE_3A["in_channels"], MODULE_3A["widths"], (1, 3, 5))
    models = {
        "naive Inception (3a)": naive,
        "one 3x3, 192 -> 224": nn.Conv2d(192, 224, 3, padding=1, bias=False),
        f"one 3x3, 192 -> {naive.out_channels}": nn.Conv2d(192, naive.out_channels, 3,
                                                           padding=1, bias=False),
        "Inception (3a) with 1x1 reductions": blocks.Inception(192, 64, 96, 128, 16, 32, 32,
                                                               kernel_size_5x5=5),
    }
    table = measure.compare_models(models, input_size=(192, 28, 28))
    return {name: measure.count_params(m) for name, m in models.items()}, table


def stacking(modules: int = 4) -> Table:
    return measure.stacked_inception_cost(192, widths=MODULE_3A["widths"], modules=modules,
                                          size=28)


def run_inception(setup: Setup, data: CifarData) -> experiments.Results:
    """The plain network with 3×3 units against the same network with 1×1 + 3×3 + 5×5 units
    in the shares 2:5:1 (equal parameters and MACs)."""
    width = setup.profile.width
    return experiments.compare(
        {"3x3 only": partial(nets.CifarNet, width),
         "1x1 + 3x3 + 5x5": partial(nets.CifarNet, width,
                                    unit=nets.mixed_unit((1, 3, 5), (2, 5, 1)))},
        data, setup.profile, seeds=setup.seeds, device=setup.device)


def verdict_c31(results: experiments.Results) -> stats.Verdict:
    """C3.1: test accuracy of the multi-size net minus the 3×3-only net, at equal parameters."""
    diff = results.difference("1x1 + 3x3 + 5x5", "3x3 only")
    v = stats.verdict_on_difference("C3.1", diff, "Test accuracy, 1×1 + 3×3 + 5×5 units minus "
                                    "3×3 units at equal parameters and MACs", +1)
    multi, single = results["1x1 + 3x3 + 5x5"], results["3x3 only"]
    if multi.latency and single.latency:
        ratio = multi.latency["forward_backward"] / single.latency["forward_backward"]
        v.text += (f" One training step of the multi-size network took {ratio:.2f}× the time of "
                   f"the 3×3 one: three thin convolutions run slower than one wide one.")
    return v


def verdict_c32(params: dict[str, int], growth: float) -> stats.Verdict:
    """C3.2 is a count: confirmed when the naive module holds more weights than one 3×3 layer
    of the same output width, refuted when it holds fewer (never inconclusive)."""
    naive = params["naive Inception (3a)"]
    same = next(v for k, v in params.items() if k.startswith("one 3x3") and not k.endswith("224"))
    reduced = params["Inception (3a) with 1x1 reductions"]
    label = stats.CONFIRMED if naive > same else stats.REFUTED
    text = (f"One naive module at (3a) sizes holds {naive:,} weights, "
            f"{'more' if naive > same else 'fewer'} than the {same:,} of one 3×3 layer with the "
            f"same output width. The cost grows in stacking: the pool branch passes every input "
            f"channel on, so the fourth naive module in a row holds {growth:.1f}× the weights of "
            f"the first. GoogLeNet's 1×1 reductions cut the (3a) module to {reduced:,} weights.")
    return stats.Verdict("C3.2", label, text, numbers={"naive": naive, "one_3x3": same,
                                                       "reduced": reduced, "growth": growth})


def one_minute(c31: stats.Verdict, c32: stats.Verdict) -> str:
    return (f"At equal weights and MACs, mixing 1×1, 3×3 and 5×5 branches against 3×3 only: "
            f"{c31.numbers['difference']} (C3.1 {c31.label}). A single naive module is "
            f"{'costlier' if c32.label == stats.CONFIRMED else 'not costlier'} than a 3×3 layer "
            f"of its output width; stacking them multiplies the cost (C3.2 {c32.label}).")
