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
