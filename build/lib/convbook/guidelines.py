"""ShuffleNet V2's four guidelines for fast networks, measured at fixed MACs.

Ma et al. (2018, arXiv 1807.11164) argued that MACs ("FLOPs") do not set the speed of a network
and backed four guidelines with small benchmarks, each a stack of ten identical blocks whose
configurations cost (nearly) the same MACs:

- **G1** equal channel width minimises memory access: two 1x1 convolutions c1 -> c2 -> c1 at
  ratios c1:c2 = 1:1, 1:2, 1:6, 1:12, with c1·c2 held fixed.
- **G2** excessive group convolution increases memory access: one 1x1 convolution with 1, 2, 4, 8
  groups, widened so that hw·c²/g stays fixed.
- **G3** network fragmentation reduces parallelism: the same MACs spent in 1, 2 or 4 smaller 1x1
  convolutions, one after another (series) or side by side (parallel).
- **G4** element-wise operations are non-negligible: a ResNet bottleneck with and without its
  ReLUs and its shortcut, which change no MACs at all.

``configurations`` builds each guideline's models, ``guideline_table`` times them on this machine
(images per second and speed relative to the first configuration) and ``PAPER`` holds the
paper's own figures to print beside ours. The paper measured on a GPU and an ARM phone at a
larger map; the defaults here (28x28, 96 channels) keep all four benchmarks within seconds on a
laptop CPU. Every convolution is 1x1 or 3x3 without bias, and there is no batch norm (at inference
it folds into the convolution), so the only element-wise work is what G4 switches on and off.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
from torch import nn

from convbook.blocks.validate import check_positive
from convbook.errors import ConfigError
from convbook.measure import count_macs, count_params, latency
from convbook.tables import Table

GUIDELINES = {
    "G1": "equal channel width minimises memory access",
    "G2": "excessive group convolution increases memory access",
    "G3": "network fragmentation reduces the degree of parallelism",
    "G4": "element-wise operations are non-negligible",
}

PAPER = {
    "G1": "GTX 1080Ti, batches/s at c1:c2 = 1:1, 1:2, 1:6, 1:12 (c1 = 128 at 1:1): "
          "1480, 1296, 876, 748 (Table 1)",
    "G2": "GTX 1080Ti, batches/s at g = 1, 2, 4, 8: 2451, 1725, 1026, 634 (Table 2)",
    "G3": "see Table 3 of the paper",
    "G4": "removing the ReLUs and the shortcut: about 20 % faster on GPU and ARM (Table 4)",
}

MAX_MACS_SPREAD = 0.03  # configurations of one guideline should differ in MACs by at most 3 %


@dataclass
class Configuration:
    """One benchmark of a guideline: its name, its widths in words, the input channels its
    stack takes, and the stack itself."""

    name: str
    channels: str
    in_channels: int
    model: nn.Module


def pointwise(in_channels: int, out_channels: int, groups: int = 1) -> nn.Conv2d:
    """A 1x1 convolution without bias."""
    return nn.Conv2d(in_channels, out_channels, 1, groups=groups, bias=False)


def stack(make_block, blocks: int) -> nn.Sequential:
    """``blocks`` fresh blocks from ``make_block()``, one after another."""
    check_positive("blocks", blocks)
    return nn.Sequential(*(make_block() for _ in range(blocks)))


# --- G1: two 1x1 convolutions c1 -> c2 -> c1 at fixed c1·c2 -----------------------------------

def g1_widths(channels: int, ratio: int) -> tuple[int, int]:
    """Widths (c1, c2) with c2/c1 close to ``ratio`` and c1·c2 close to channels²: c1 is
    channels/sqrt(ratio) rounded down or up (whichever puts c2/c1 nearer the ratio) and
    c2 = round(channels² / c1), so the MACs hw·2·c1·c2 stay within half a channel of fixed."""
    check_positive("channels", channels)
    check_positive("ratio", ratio)
    exact = channels / math.sqrt(ratio)
    candidates = {max(1, math.floor(exact)), max(1, math.ceil(exact))}
    pairs = [(c1, max(1, round(channels**2 / c1))) for c1 in sorted(candidates)]
    return min(pairs, key=lambda p: abs(math.log(p[1] / p[0] / ratio)))


def g1_block(c1: int, c2: int) -> nn.Sequential:
    """G1's block: a 1x1 convolution c1 -> c2 and one back, c2 -> c1."""
    return nn.Sequential(pointwise(c1, c2), pointwise(c2, c1))


def g1_configurations(channels: int, blocks: int,
                      ratios: tuple[int, ...] = (1, 2, 6, 12)) -> list[Configuration]:
    """Stacks of ``g1_block`` at c1:c2 = 1:ratio, c1·c2 ≈ channels² (the paper's Table 1)."""
    configs = []
    for ratio in ratios:
        c1, c2 = g1_widths(channels, ratio)
        configs.append(Configuration(f"c1:c2 = 1:{ratio}", f"{c1}→{c2}→{c1}", c1,
                                     stack(lambda c1=c1, c2=c2: g1_block(c1, c2), blocks)))
    return configs


# --- G2: a 1x1 group convolution widened so that hw·c²/g stays fixed --------------------------

def g2_width(channels: int, groups: int) -> int:
    """The multiple of ``groups`` whose c²/groups is nearest channels² (about channels·sqrt(g)),
    so that a c -> c 1x1 convolution with ``groups`` groups costs the MACs of a dense one of
    ``channels`` channels."""
    check_positive("channels", channels)
    check_positive("groups", groups)
    per_group = channels * math.sqrt(groups) / groups
    candidates = {groups * max(1, math.floor(per_group)), groups * max(1, math.ceil(per_group))}
    return min(sorted(candidates), key=lambda c: abs(c * c / groups - channels**2))


def g2_configurations(channels: int, blocks: int,
                      groups: tuple[int, ...] = (1, 2, 4, 8)) -> list[Configuration]:
    """Stacks of c -> c 1x1 group convolutions, c = ``g2_width`` (the paper's Table 2)."""
    configs = []
    for g in groups:
        c = g2_width(channels, g)
        configs.append(Configuration(f"g = {g}", f"{c}→{c}, {c // g} per group", c,
                                     stack(lambda c=c, g=g: pointwise(c, c, groups=g), blocks)))
    return configs


# --- G3: the same MACs in more, smaller pieces ------------------------------------------------

def series_width(channels: int, fragments: int) -> int:
    """The width c whose ``fragments`` c -> c 1x1 convolutions in series cost the MACs of one
    ``channels`` -> ``channels`` convolution as nearly as whole channels allow (about
    channels/sqrt(fragments))."""
    check_positive("channels", channels)
    check_positive("fragments", fragments)
    exact = channels / math.sqrt(fragments)
    candidates = {max(1, math.floor(exact)), max(1, math.ceil(exact))}
    return min(sorted(candidates), key=lambda c: abs(fragments * c * c - channels**2))


def split_channels(channels: int, parts: int) -> list[int]:
    """``channels`` split into ``parts`` near-equal whole widths that add up to it."""
    check_positive("parts", parts)
    if parts > channels:
        raise ConfigError(f"cannot split {channels} channels into {parts} parallel fragments of "
                          f"at least one channel each; use channels >= {parts}")
    return [channels // parts + (1 if i < channels % parts else 0) for i in range(parts)]


def series_fragments(channels: int, fragments: int) -> nn.Sequential:
    """G3's series block: ``fragments`` 1x1 convolutions of ``series_width`` channels, one after
    another (1 fragment: a single ``channels`` -> ``channels`` convolution)."""
    c = series_width(channels, fragments)
    return nn.Sequential(*(pointwise(c, c) for _ in range(fragments)))


class ParallelFragments(nn.Module):
    """G3's parallel block: ``fragments`` 1x1 convolutions side by side on the same input, each
    making a share of the ``channels`` outputs, concatenated. Its weights are exactly those of
    one ``channels`` -> ``channels`` convolution cut into pieces, so its MACs are the same; only
    the number of separate operations (and the concatenation) differs."""

    def __init__(self, channels: int, fragments: int):
        super().__init__()
        check_positive("channels", channels)
        self.branches = nn.ModuleList(pointwise(channels, width)
                                      for width in split_channels(channels, fragments))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


def g3_configurations(channels: int, blocks: int) -> list[Configuration]:
    """1-fragment, then 2 and 4 fragments in series and in parallel (the paper's Table 3):
    series fragments narrow to ``series_width`` so that k layers cost one layer's MACs,
    parallel fragments split one layer's outputs into k branches."""
    configs = [Configuration("1-fragment", f"one {channels}→{channels}", channels,
                             stack(lambda: series_fragments(channels, 1), blocks))]
    for k in (2, 4):
        c = series_width(channels, k)
        widths = "+".join(map(str, split_channels(channels, k)))
        configs += [
            Configuration(f"{k}-fragment, series", f"{k} × {c}→{c}", c,
                          stack(lambda k=k: series_fragments(channels, k), blocks)),
            Configuration(f"{k}-fragment, parallel", f"{channels}→{widths}, concatenated",
                          channels, stack(lambda k=k: ParallelFragments(channels, k), blocks)),
        ]
    return configs


# --- G4: a ResNet bottleneck with and without its element-wise operations ---------------------

class Bottleneck(nn.Module):
    """A ResNet bottleneck unit, 1x1 (``channels`` -> ``channels // 4``), 3x3, 1x1 back to
    ``channels``, with a ReLU after each convolution (the last after the sum) when ``relu`` and
    the identity shortcut added when ``shortcut``. Switching either off changes no MACs."""

    def __init__(self, channels: int, relu: bool = True, shortcut: bool = True):
        super().__init__()
        check_positive("channels", channels)
        if channels < 4:
            raise ConfigError(f"a bottleneck needs channels >= 4 (its middle is channels // 4 "
                              f"wide), got {channels}; for example channels=64")
        mid = channels // 4
        self.reduce = pointwise(channels, mid)
        self.conv = nn.Conv2d(mid, mid, 3, padding=1, bias=False)
        self.expand = pointwise(mid, channels)
        self.relu = nn.ReLU(inplace=True) if relu else nn.Identity()
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.reduce(x))
        out = self.relu(self.conv(out))
        out = self.expand(out)
        if self.shortcut:
            out += x
        return self.relu(out)


def g4_configurations(channels: int, blocks: int) -> list[Configuration]:
    """Bottlenecks with ReLU and shortcut, without either, without both (the paper's Table 4)."""
    mid = channels // 4
    widths = f"{channels}→{mid}→{mid}→{channels}"
    configs = []
    for name, relu, shortcut in (("ReLU and shortcut", True, True),
                                 ("shortcut, no ReLU", False, True),
                                 ("ReLU, no shortcut", True, False),
                                 ("neither", False, False)):
        configs.append(Configuration(name, widths, channels, stack(
            lambda relu=relu, shortcut=shortcut: Bottleneck(channels, relu, shortcut), blocks)))
    return configs


_BUILDERS = {"G1": g1_configurations, "G2": g2_configurations,
             "G3": g3_configurations, "G4": g4_configurations}


def check_guideline(guideline: str) -> str:
    """Return ``guideline`` if it names one of ``GUIDELINES``, else raise ConfigError."""
    if guideline not in GUIDELINES:
        raise ConfigError(f"unknown guideline {guideline!r}; ShuffleNet V2 has "
                          f"{', '.join(GUIDELINES)} (for example guideline='G2')")
    return guideline


def configurations(guideline: str, channels: int = 96, blocks: int = 10) -> list[Configuration]:
    """The benchmark stacks of one guideline, the reference (first) configuration first.

    ``channels`` is the reference width: c1 = c2 for G1, the dense layer's width for G2, the
    1-fragment's width for G3, the bottleneck's outer width for G4. 96 lets whole channel counts
    hold every guideline's MACs within 0.4 %; other widths may spread more (the table says so).
    """
    check_positive("channels", channels)
    check_positive("blocks", blocks)
    return _BUILDERS[check_guideline(guideline)](channels, blocks)


def macs_spread(macs: list[int]) -> float:
    """The largest relative difference of any entry from the first one (0.01 is 1 %)."""
    return max(abs(m / macs[0] - 1) for m in macs)


def _check_batch_sizes(batch_sizes) -> tuple[int, ...]:
    sizes = tuple(batch_sizes) if isinstance(batch_sizes, (tuple, list)) else ()
    if not sizes:
        raise ConfigError(f"batch_sizes must be a non-empty tuple of whole numbers, got "
                          f"{batch_sizes!r}; for example batch_sizes=(1, 32)")
    for b in sizes:
        check_positive("each batch size", b)
    return sizes


def guideline_table(guideline: str, size: int = 28, batch_sizes: tuple[int, ...] = (1, 32),
                    channels: int = 96, blocks: int = 10,
                    device: str | torch.device | None = None,
                    min_run_time: float = 0.2) -> Table:
    """One guideline's benchmark, measured here: per configuration its widths, MACs and
    parameters, and for each batch size the images per second of a forward pass (median
    ``measure.latency``: eval, no grad, after a warm-up) and the speed relative to the first
    configuration ("1.00×"). ``speed_ratios`` reads the relative speeds back as numbers."""
    check_positive("size", size)
    batch_sizes = _check_batch_sizes(batch_sizes)
    configs = configurations(guideline, channels, blocks)
    macs = [count_macs(c.model, (c.in_channels, size, size)) for c in configs]
    rows = []
    for config, config_macs in zip(configs, macs):
        rows.append({"configuration": config.name, "channels": config.channels,
                     "MACs per image (M)": round(config_macs / 1e6, 2),
                     "MACs vs reference": f"{100 * (config_macs / macs[0] - 1):+.1f}%",
                     "parameters": count_params(config.model)})
        for b in batch_sizes:
            seconds = latency(config.model, (b, config.in_channels, size, size), device=device,
                              min_run_time=min_run_time)
            rows[-1][f"images/s (batch {b})"] = round(b / seconds, 1)
    for b in batch_sizes:
        reference = rows[0][f"images/s (batch {b})"]
        for row in rows:
            row[f"speed vs reference (batch {b})"] = f"{row[f'images/s (batch {b})'] / reference:.2f}×"
    where = str(device) if device is not None else str(next(configs[0].model.parameters()).device)
    spread = macs_spread(macs)
    caption = (f"ShuffleNet V2's {guideline}: {GUIDELINES[guideline]}. {blocks} stacked blocks on "
               f"a {size}x{size} map; MACs per image within {100 * spread:.1f}% of the first "
               f"row's. Forward passes (eval, no grad) on {where} in training's dtype and memory "
               f"format, median after a warm-up; speed relative to the first row.")
    if spread > MAX_MACS_SPREAD:
        caption += (f" Whole channel counts could not hold the MACs within "
                    f"{100 * MAX_MACS_SPREAD:.0f}% at channels={channels}: compare speeds with "
                    f"care, or use channels=96.")
    return Table(rows, caption)


def all_guidelines(size: int = 28, batch_sizes: tuple[int, ...] = (1, 32), channels: int = 96,
                   blocks: int = 10, device: str | torch.device | None = None,
                   min_run_time: float = 0.2) -> dict[str, Table]:
    """``guideline_table`` for G1 to G4, keyed by guideline."""
    return {g: guideline_table(g, size, batch_sizes, channels, blocks, device, min_run_time)
            for g in GUIDELINES}


_IMAGES_PER_SECOND = re.compile(r"images/s \(batch (\d+)\)")


def speed_ratios(table: Table) -> dict[str, dict[int, float]]:
    """Each configuration's speed relative to the first row, per batch size, as numbers:
    ``{"g = 8": {1: 0.71, 32: 0.45}, ...}`` for a ``guideline_table``."""
    if not table.rows or "configuration" not in table.rows[0]:
        raise ConfigError("speed_ratios needs a table made by guideline_table (rows with a "
                          "'configuration' column); for example "
                          "speed_ratios(guideline_table('G2'))")
    batches = [int(m.group(1)) for key in table.rows[0]
               if (m := _IMAGES_PER_SECOND.fullmatch(key))]
    if not batches:
        raise ConfigError("speed_ratios found no 'images/s (batch N)' columns; pass a table "
                          "made by guideline_table")
    reference = table.rows[0]
    return {row["configuration"]: {b: row[f"images/s (batch {b})"]
                                   / reference[f"images/s (batch {b})"] for b in batches}
            for row in table.rows}
