"""The whole-book figure: every network a build trained, accuracy against cost."""

from __future__ import annotations

import matplotlib.pyplot as plt

from convbook.errors import ConfigError
from convbook.viz.style import log_ticks


def plot_book(points: list[dict], titles: dict[str, str]):
    """Every CIFAR-10 network the build trained (``summary.book_points``): test accuracy
    against MACs and against forward latency; colour = chapter (named by ``titles``), marker =
    size of the training set."""
    if not points:
        raise ConfigError("plot_book needs the recorded networks of a build (summary.book_points)")
    chapters = sorted({p["chapter"] for p in points})
    colours = plt.get_cmap("tab20").colors
    colour = {ch: colours[(2 * i) % 20 + (i // 10)] for i, ch in enumerate(chapters)}
    sizes = sorted({p["train_images"] for p in points if p["train_images"]}, reverse=True)
    markers = dict(zip(sizes, "osD^vP*X"))
    figure, axes = plt.subplots(1, 2, figsize=(10.5, 4.0), sharey=True)
    for ax, key, label in ((axes[0], "macs", "MACs per image"),
                           (axes[1], "forward_ms", "forward latency (ms per batch)")):
        for p in points:
            if p.get(key):
                ax.scatter(p[key], 100 * p["test_accuracy"], s=22, alpha=0.85,
                           color=colour[p["chapter"]], marker=markers.get(p["train_images"], "o"),
                           edgecolors="none")
        log_ticks(ax, "x")
        ax.set_xlabel(label)
    axes[0].set_ylabel("test accuracy (%)")
    handles = [plt.Line2D([], [], color=colour[ch], marker="o", linestyle="",
                          label=titles.get(ch, ch)) for ch in chapters]
    handles += [plt.Line2D([], [], color="0.3", marker=markers[s], linestyle="",
                           label=f"{s:,} training images") for s in sizes]
    axes[1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1),
                   borderaxespad=0, fontsize=9)
    figure.tight_layout()
    return figure
