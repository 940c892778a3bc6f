"""Which input channels can each output channel see? Computed from a real module, then drawn."""

from __future__ import annotations

import copy

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import nn

from convbook.viz.style import PALETTE


def connectivity(module: nn.Module, in_channels: int, size: int = 5) -> torch.Tensor:
    """Boolean matrix [out, in]: True where output channel o depends on input channel i.

    Read off gradients of a copy of ``module`` whose weights are all set to one (and batch norm
    to the identity), so no cancellation can hide a connection and ReLUs stay open: only the
    structure (groups, shuffles, branches) decides which entries are zero.
    """
    probe = copy.deepcopy(module).cpu().eval()
    with torch.no_grad():
        for m in probe.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
            for name, p in m.named_parameters(recurse=False):
                p.fill_(1.0 if name == "weight" else 0.0)
    x = torch.ones(1, in_channels, size, size, requires_grad=True)
    y = probe(x)
    rows = []
    for o in range(y.shape[1]):
        (grad,) = torch.autograd.grad(y[:, o].sum(), x, retain_graph=True)
        rows.append(grad.abs().sum(dim=(0, 2, 3)) > 0)
    return torch.stack(rows)


def plot_connectivity(matrix: torch.Tensor, title: str = "", ax=None,
                      kernel_size: int | None = None) -> Figure:
    """The matrix as a grid: a filled cell where output channel (row) sees input channel
    (column). With ``kernel_size`` k, each filled cell is drawn as the k × k weights that
    connection holds (a chequer of k × k squares), so a larger kernel shows as a finer grain."""
    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 3.2))
    m = matrix.numpy().astype(float)
    n_out, n_in = m.shape
    k = kernel_size or 1
    cells = np.kron(m, np.ones((k, k)))  # each connection as its k x k weights
    if k > 1:
        chequer = np.add.outer(np.arange(n_out * k), np.arange(n_in * k)) % 2
        cells = cells * (0.7 + 0.3 * chequer)
    ax.imshow(cells, cmap="Blues", vmin=0, vmax=1.25, interpolation="nearest",
              extent=(-0.5, n_in - 0.5, n_out - 0.5, -0.5))
    ax.set_xlabel("input channel" + (f" (a cell: {k}×{k} weights)" if kernel_size else ""))
    ax.set_ylabel("output channel")
    ax.set_title(title or f"{int(m.sum())} of {m.size} connections")
    ax.grid(False)
    for axis in (ax.xaxis, ax.yaxis):  # every channel up to 8, else a few (0, 4, 8, 12)
        axis.set_major_locator(MaxNLocator(nbins=8 if max(m.shape) <= 8 else 4, integer=True))
    ax.set_xticks(np.arange(-0.5, n_in), minor=True)
    ax.set_yticks(np.arange(-0.5, n_out), minor=True)
    ax.grid(which="minor", color="white", linewidth=0.8)
    ax.tick_params(which="minor", length=0)
    return ax.figure


def plot_wiring(matrix: torch.Tensor, groups: int = 1, ax=None) -> Figure:
    """The same matrix as wires from input channels (left) to output channels (right),
    coloured by the input channel's group."""
    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 3.2))
    n_out, n_in = matrix.shape
    ys_in = np.linspace(1, 0, n_in)
    ys_out = np.linspace(1, 0, n_out)
    per_group = max(n_in // max(groups, 1), 1)
    for o, i in torch.nonzero(matrix).tolist():
        color = PALETTE[(i // per_group) % len(PALETTE)]
        ax.plot([0, 1], [ys_in[i], ys_out[o]], color=color, alpha=0.55, linewidth=1)
    ax.scatter(np.zeros(n_in), ys_in, s=18, color="black", zorder=3)
    ax.scatter(np.ones(n_out), ys_out, s=18, color="black", zorder=3)
    ax.set_xticks([0, 1], ["input\nchannels", "output\nchannels"])
    ax.set_yticks([])
    ax.set_xlim(-0.15, 1.15)
    ax.grid(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    return ax.figure


def grouped_connectivity_figure(in_channels: int, out_channels: int, groups: list[int]) -> Figure:
    """Connectivity matrices of real grouped ``nn.Conv2d`` modules, one panel per group count
    (2.2 inches each: three fit the page's width on a desktop without being scaled down)."""
    figure, axes = plt.subplots(1, len(groups), figsize=(2.2 * len(groups), 2.7), squeeze=False)
    for ax, g in zip(axes[0], groups):
        conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, groups=g, bias=False)
        plot_connectivity(connectivity(conv, in_channels), ax=ax, title=f"groups = {g}")
    figure.tight_layout()
    return figure
