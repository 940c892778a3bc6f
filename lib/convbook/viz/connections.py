"""Figures of learned connections between layers (chapter 11's Q1): training error per
epoch, each learned weight per block, and the weights of a learned sum of earlier blocks."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch

from convbook.viz.style import family_colour, integer_ticks, legend_outside


def plot_training_error(with_norm, without_norm, reference: str = "identity"):
    """Training error per epoch (augmented batches, mean over seeds) of every variant of two
    comparisons (``experiments.Results``), one panel per setting; ``reference`` dashed."""
    figure, axes = plt.subplots(1, 2, figsize=(9.6, 3.4), sharey=True)
    for ax, (title, results) in zip(axes, (("with batch norm", with_norm),
                                           ("without batch norm", without_norm))):
        for variant in results:
            curves = [[1 - h["train_accuracy"] for h in run.history] for run in variant.runs]
            mean = [100 * sum(v) / len(v) for v in zip(*curves)]
            ax.plot(range(1, len(mean) + 1), mean, marker="o", markersize=3,
                    label=variant.name, color=family_colour(variant.name),
                    linestyle="--" if variant.name == reference else "-")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        integer_ticks(ax)
    axes[0].set_ylabel("training error (%, running,\naugmented batches)")
    legend_outside(axes[1])
    figure.tight_layout()
    return figure


def plot_learned_weights(with_norm: dict[str, list[float]], without_norm: dict[str, list[float]],
                         starts: dict[str, float]):
    """Each learned connection's value per block, as distance from where it started
    (``starts``: name -> starting value)."""
    figure, axes = plt.subplots(1, 2, figsize=(9.6, 3.4), sharey=True)
    for ax, (title, values) in zip(axes, (("with batch norm", with_norm),
                                          ("without batch norm", without_norm))):
        for name, per_block in values.items():
            start = starts[name]
            ax.plot(range(1, len(per_block) + 1), [v - start for v in per_block], marker="o",
                    markersize=4, label=name, color=family_colour(name))
        ax.axhline(0, color="0.4", linewidth=1, linestyle=":")
        ax.set_title(title)
        ax.set_xlabel("block (first stage to last)")
        integer_ticks(ax)
    axes[0].set_ylabel("value − starting value")
    handles = {}
    for ax in axes:  # one legend for both panels (zero-init γ runs with batch norm only)
        handles.update(zip(*reversed(ax.get_legend_handles_labels())))
    axes[1].legend(list(handles.values()), list(handles), loc="upper left",
                   bbox_to_anchor=(1.02, 1), borderaxespad=0)
    figure.tight_layout()
    return figure


def plot_dense_weights(matrices: list[torch.Tensor]):
    """The weighted sum's learned weights: row = the block (or stage output) that reads,
    column = the output it reads from; 1 on the newest and 0 elsewhere is where they started."""
    figure, axes = plt.subplots(1, len(matrices), figsize=(3.1 * len(matrices), 2.9))
    axes = list(axes) if len(matrices) > 1 else [axes]
    limit = max(float(m.nan_to_num(0).abs().max()) for m in matrices)
    for stage, (ax, matrix) in enumerate(zip(axes, matrices), start=1):
        image = ax.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit)
        rows, cols = matrix.shape
        first = "in" if cols > rows else None
        names = ([first] if first else []) + [f"b{k + 1}" for k in range(rows)]
        ax.set_xticks(range(cols), names)
        readers = [f"input of b{k + 2}" for k in range(rows - 1)] + ["stage output"]
        ax.set_yticks(range(rows), readers if stage == 1 else [""] * rows)
        ax.set_xlabel("output of")
        for r in range(rows):
            for c in range(cols):
                if not math.isnan(matrix[r, c]):
                    value = float(matrix[r, c])
                    ax.text(c, r, f"{value:.2f}", ha="center", va="center", fontsize=9,
                            color="white" if abs(value) > 0.55 * limit else "black")
        ax.set_title(f"stage {stage}")
        ax.grid(False)
    figure.colorbar(image, ax=axes, shrink=0.8, label="weight")
    return figure
