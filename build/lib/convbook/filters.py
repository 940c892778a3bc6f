"""What first-layer filters respond to: colour against luminance, and whether towers differ.

Krizhevsky et al. (2012) report of AlexNet's two towers that "the kernels on GPU 1 are largely
color-agnostic, while the kernels on GPU 2 are largely color-specific". To test that, split
each RGB filter w (3 x k x k) into its grey part g (the mean over the three colour planes, the
same in each plane) and the rest, w - g, which responds to colour contrast. The *colour share*
of a filter is ||w - g||^2 / ||w||^2: 0 for a filter that sees only brightness, 1 for one
that sees only colour differences.
"""

from __future__ import annotations

import torch

from convbook.errors import ConfigError


def colour_share(weight: torch.Tensor) -> torch.Tensor:
    """Colour share of each filter of a conv weight N x 3 x k x k (values in [0, 1])."""
    if weight.dim() != 4 or weight.shape[1] != 3:
        raise ConfigError(f"colour_share needs first-layer weights N x 3 x k x k, got {tuple(weight.shape)}")
    w = weight.detach().float().cpu()
    grey = w.mean(dim=1, keepdim=True)
    total = w.pow(2).sum(dim=(1, 2, 3)).clamp_min(1e-12)
    return (w - grey).pow(2).sum(dim=(1, 2, 3)) / total


def tower_gap(shares: torch.Tensor, towers: list[int] | torch.Tensor) -> float:
    """Difference of mean colour share between tower 1 and tower 0."""
    towers = torch.as_tensor(towers)
    if set(towers.tolist()) != {0, 1}:
        raise ConfigError("tower_gap compares exactly two towers, labelled 0 and 1")
    return float(shares[towers == 1].mean() - shares[towers == 0].mean())


def permutation_p_value(shares: torch.Tensor, towers: list[int] | torch.Tensor,
                        permutations: int = 10_000, seed: int = 0) -> float:
    """How often a random split of the same filters into two equal towers gives a gap at least
    as large (in absolute value) as the real one: small values mean the towers really differ."""
    towers = torch.as_tensor(towers)
    observed = abs(tower_gap(shares, towers))
    generator = torch.Generator().manual_seed(seed)
    count = 0
    for _ in range(permutations):
        shuffled = towers[torch.randperm(len(towers), generator=generator)]
        count += abs(tower_gap(shares, shuffled)) >= observed - 1e-12
    return (count + 1) / (permutations + 1)
