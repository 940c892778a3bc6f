"""Training curves and side-by-side bars for a comparison's results."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from convbook.viz.style import family_colour, integer_ticks, legend_outside, log_ticks


def plot_history(results, key: str = "train_loss", ax=None) -> Figure:
    """One line per variant (its first seed): ``key`` of the training history against epoch.
    Training loss by default; test accuracy is measured once, at the end."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.3))
    for run in results:
        epochs = [h["epoch"] for h in run.history]
        values = [100 * h[key] if "accuracy" in key else h[key] for h in run.history]
        ax.plot(epochs, values, marker="o", markersize=3, label=run.name,
                color=family_colour(run.name))
    ax.set_xlabel("epoch")
    integer_ticks(ax)
    label = key.replace("_", " ").replace("train ", "training ")
    ax.set_ylabel(label + (" (%, augmented batches)" if "accuracy" in key else ""))
    legend_outside(ax)
    return ax.figure


def plot_bars(labels: list[str], series: dict[str, list[float]], ylabel: str, log: bool = False,
              ax=None, errors: dict[str, list[float]] | None = None) -> Figure:
    """Grouped bars: one group per label, one bar per series; ``errors`` (same shape as
    ``series``, e.g. standard deviations over seeds, 0 where unmeasured) as error bars."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.3))
    n = len(series)
    width = 0.8 / max(n, 1)
    for k, (name, values) in enumerate(series.items()):
        xs = [i + (k - (n - 1) / 2) * width for i in range(len(labels))]
        yerr = (errors or {}).get(name)
        ax.bar(xs, values, width=width, label=name, yerr=yerr, capsize=3 if yerr else 0,
               color=family_colour(name) if n > 1 else None)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylabel(ylabel)
    if log:
        log_ticks(ax, "y")
    if n > 1:
        legend_outside(ax)
    return ax.figure


def plot_table_column(table, x: str, y: str, ylabel: str | None = None, log: bool = False,
                      ax=None) -> Figure:
    """Bars of one column of a ``convbook.tables.Table`` against another (e.g. parameters
    against groups)."""
    figure = plot_bars([str(v) for v in table.column(x)], {y: table.column(y)},
                       ylabel=ylabel or y, log=log, ax=ax)
    figure.axes[0].set_xlabel(x)
    return figure


def plot_layer_norms(series: dict[str, list[float]], ylabel: str = "RMS gradient per weight",
                     ax=None, boundaries: tuple[float, ...] = (), style=None) -> Figure:
    """One line per network: a per-layer quantity against layer index, log scale; dotted
    vertical lines at ``boundaries`` (e.g. between stages, where the width doubles).
    ``style(name)`` gives each line's plot options (colour, line style); by default the colour
    of the name's family."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.3))
    for x in boundaries:
        ax.axvline(x, color="#999999", linestyle=":", linewidth=1)
    for name, values in series.items():
        options = style(name) if style is not None else {"color": family_colour(name)}
        ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=name,
                **options)
    log_ticks(ax, "y")
    integer_ticks(ax)
    ax.set_xlabel("conv layer (input side first)")
    ax.set_ylabel(ylabel)
    legend_outside(ax)
    return ax.figure


def _mean_sd(values: list[float]) -> tuple[float, float]:
    """Mean and standard deviation (0 for one value) of ``values``."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5


def plot_families_by_depth(results, families: tuple[str, ...], depths: tuple[int, ...]) -> Figure:
    """Final training error (unaugmented training images, final weights) and test error against
    depth for variants named "<family> <depth>": the mean over seeds, with error bars of one
    standard deviation over seeds (none for a depth trained from one seed)."""
    figure, axes = plt.subplots(1, 2, figsize=(8.4, 3.3), sharey=False)
    for family in families:
        runs = [results[f"{family} {d}"] for d in depths]
        colour = family_colour(family)
        for ax, error in ((axes[0], lambda run: run.final_train_error),
                          (axes[1], lambda run: 1 - run.test_accuracy)):
            spread = [_mean_sd([100 * error(run) for run in variant.runs]) for variant in runs]
            ax.errorbar(depths, [m for m, _ in spread], yerr=[sd for _, sd in spread],
                        marker="o", capsize=3, label=family, color=colour)
    for ax, title in zip(axes, ("training error", "test error")):
        ax.set_xlabel("depth (layers)")
        ax.set_ylabel(f"{title} (%)")
        ax.set_xticks(list(depths))
    figure.tight_layout()
    legend_outside(axes[1])
    return figure


def plot_latency_vs_macs(table, group_key: str = "layer type", ax=None) -> Figure:
    """Measured latency against MACs, one colour per layer type (rows of a Table with
    "MACs", "latency (ms)" and ``group_key``)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.3))
    groups: dict[str, list] = {}
    for row in table.rows:
        groups.setdefault(row[group_key], []).append(row)
    for name, rows in groups.items():
        xs, ys = [r["MACs"] for r in rows], [r["latency (ms)"] for r in rows]
        ax.plot(xs, ys, marker="o", label=name, color=family_colour(name))
        for x, y, row in zip(xs, ys, rows):  # each point named by what differs: "C=64"
            tag = str(row.get("layer", "")).split(", ")[-1]
            ax.annotate(tag, (x, y), textcoords="offset points", xytext=(4, -10), fontsize=9,
                        color=family_colour(name))
    log_ticks(ax, "x")
    log_ticks(ax, "y")
    ax.set_xlabel("MACs")
    ax.set_ylabel("latency (ms)")
    legend_outside(ax)
    return ax.figure
