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
