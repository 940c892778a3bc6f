"""The whole-book figure: the networks a build trained alike, accuracy against MACs."""

from __future__ import annotations

import matplotlib.pyplot as plt

from convbook.errors import ConfigError
from convbook.viz.style import log_ticks


def plot_book(points: list[dict], titles: dict[str, str]):
    """CIFAR-10 networks trained on one budget (``summary.alike_points``): test accuracy
    against MACs per image, colour = chapter (named by ``titles``). Points trained on other
    budgets are refused: their accuracies would not compare."""
    if not points:
        raise ConfigError("plot_book needs the recorded networks of a build (summary.alike_points)")
    trained = {(p["data"], p.get("epochs"), p.get("batch_size")) for p in points}
    if len(trained) > 1:
        raise ConfigError(f"plot_book shows networks trained alike, but these come from "
                          f"{len(trained)} budgets (data, epochs, batch size); pass "
                          f"summary.alike_points(results)")
    chapters = sorted({p["chapter"] for p in points})
    colours = plt.get_cmap("tab20").colors
    colour = {ch: colours[(2 * i) % 20 + (i // 10)] for i, ch in enumerate(chapters)}
    figure, ax = plt.subplots(figsize=(7.6, 4.0))
    for p in points:
        ax.scatter(p["macs"], 100 * p["test_accuracy"], s=26, alpha=0.85,
                   color=colour[p["chapter"]], edgecolors="none")
    log_ticks(ax, "x")
    ax.set_xlabel("MACs per image")
    ax.set_ylabel("test accuracy (%, mean over seeds)")
    handles = [plt.Line2D([], [], color=colour[ch], marker="o", linestyle="",
                          label=titles.get(ch, ch)) for ch in chapters]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0,
              fontsize=9)
    figure.tight_layout()
    return figure
