"""Argument checks shared by the blocks: each failure says what was wrong and what would work."""

from __future__ import annotations

from convbook.errors import ConfigError


def divisors(n: int) -> list[int]:
    """All positive divisors of ``n`` in increasing order."""
    return [d for d in range(1, n + 1) if n % d == 0]


def check_positive(name: str, value: int) -> int:
    """Return ``value`` if it is an integer >= 1, else raise ConfigError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
    if value < 1:
        raise ConfigError(f"{name} must be >= 1, got {value}; for example {name}=1")
    return value


def check_groups(in_channels: int, out_channels: int, groups: int) -> int:
    """Check that ``groups`` divides both channel counts; the error lists the values that would."""
    check_positive("groups", groups)
    if in_channels % groups or out_channels % groups:
        common = [d for d in divisors(in_channels) if out_channels % d == 0]
        raise ConfigError(
            f"groups={groups} must divide both in_channels={in_channels} and "
            f"out_channels={out_channels}; values that work: {', '.join(map(str, common))}"
        )
    return groups


def check_odd_kernel(kernel_size: int) -> int:
    """A same-padded layer keeps the map's size only with an odd kernel: refuse an even one."""
    check_positive("kernel_size", kernel_size)
    if kernel_size % 2 == 0:
        raise ConfigError(f"kernel_size must be odd for 'same' padding (an even kernel shifts "
                          f"and resizes the map), got {kernel_size}; use {kernel_size - 1} or "
                          f"{kernel_size + 1}, or pass padding explicitly")
    return kernel_size


def check_activation(activation) -> None:
    """An activation is given as a factory (``nn.ReLU``), called once per layer."""
    from torch import nn

    if isinstance(activation, nn.Module):
        raise ConfigError(f"activation must be a class or factory such as nn.ReLU, not an "
                          f"instance ({type(activation).__name__}()): pass "
                          f"activation={type(activation).__name__}")
    if activation is not None and not callable(activation):
        raise ConfigError(f"activation must be a module class such as nn.ReLU, or None; got "
                          f"{activation!r}")


def expect_input(module, channels: int, min_size: int = 1) -> None:
    """Check each call's input at ``module``'s boundary (a forward pre-hook): a batch
    N x ``channels`` x H x W of floats, at least ``min_size`` pixels on a side, so a wrong
    input is named there rather than by batch norm's ``running_mean`` two layers down."""
    from functools import partial

    module.register_forward_pre_hook(partial(_check_input, channels, min_size))


def _check_input(channels: int, min_size: int, module, args) -> None:
    import torch

    name = type(module).__name__
    x = args[0] if args else None
    expected = f"a batch N x {channels} x H x W"
    if not isinstance(x, torch.Tensor):
        raise ConfigError(f"{name} takes {expected} tensor, got {type(x).__name__}")
    if x.dim() == 3:
        raise ConfigError(f"{name} takes {expected}, got one unbatched image of shape "
                          f"{tuple(x.shape)}; pass x[None] for a batch of one")
    if x.dim() != 4:
        raise ConfigError(f"{name} takes {expected}, got shape {tuple(x.shape)}")
    if x.shape[1] != channels:
        raise ConfigError(f"{name} expects {channels} channels ({expected}), got "
                          f"{x.shape[1]} (shape {tuple(x.shape)})")
    if not x.is_floating_point():
        raise ConfigError(f"{name} takes float tensors, got {x.dtype}; images stored as uint8 "
                          f"go through convbook.train.normalize first")
    if min(x.shape[2:]) < min_size:
        raise ConfigError(f"{name} halves the map on the way down: an input of "
                          f"{x.shape[2]}×{x.shape[3]} is too small, it needs at least "
                          f"{min_size}×{min_size}")


def check_classes(name: str, value: int) -> int:
    """A classifier needs at least two classes to choose between."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise ConfigError(f"{name} must be a whole number >= 2 (the classes to choose between), "
                          f"got {value!r}; CIFAR-10 has {name}=10")
    return value
