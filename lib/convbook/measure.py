"""What a model costs: parameters, multiply-accumulates (MACs), latency.

``count_macs`` runs the model once under ``torch.utils.flop_counter.FlopCounterMode`` and halves
its FLOP count (one MAC is one multiply and one add). The counter covers convolutions, matrix
products and attention; it ignores element-wise work (batch norm, activations, pooling), which is
also how papers count "FLOPs" of CNNs. The ``conv2d_*`` formulas give the same numbers by hand.
"""

from __future__ import annotations

import contextlib
import logging
import math
from fractions import Fraction

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from convbook import timing
from convbook.blocks.validate import check_groups, check_positive
from convbook.errors import ConfigError
from convbook.tables import Table


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters (weights and biases; BN's running statistics are buffers)."""
    if not isinstance(model, nn.Module):
        raise ConfigError(f"count_params needs a model instance (an nn.Module), got {model!r}; "
                          f"for a class, build it first: count_params(nets.CifarNet(16))")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _input_shape(input_size: tuple[int, ...]) -> tuple[int, ...]:
    if not isinstance(input_size, (tuple, list)):
        raise ConfigError(f"input_size must be a tuple such as (3, 32, 32), got {input_size!r}")
    shape = tuple(input_size)
    if len(shape) == 3:
        shape = (1, *shape)
    if len(shape) != 4 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1
                              for s in shape):
        raise ConfigError(
            f"input_size must be (channels, height, width) or (batch, channels, height, width) "
            f"with positive integers, got {input_size!r}; for CIFAR-10 use (3, 32, 32)"
        )
    return shape


def _device_of(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


@contextlib.contextmanager
def _eval_mode(model: nn.Module):
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def count_macs(model: nn.Module, input_size: tuple[int, ...] = (3, 32, 32)) -> int:
    """Multiply-accumulates of one forward pass for one input of ``input_size`` (C, H, W).

    A 4-tuple (N, C, H, W) counts the whole batch of N. Modules whose op the counter cannot
    see (``DeformableConv2d``) add their own count through an ``extra_macs(input, output)``
    method.
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(f"count_macs needs a model instance (an nn.Module), got {model!r}; "
                          f"for a class, build it first: count_macs(nets.CifarNet(16))")
    x = torch.zeros(_input_shape(input_size), device=_device_of(model))
    extra = []  # ops FlopCounterMode counts as 0 (deform_conv2d): the module says its MACs

    def add_extra(module, inputs, output):
        extra.append(module.extra_macs(inputs[0], output))

    hooks = [m.register_forward_hook(add_extra) for m in model.modules()
             if callable(getattr(m, "extra_macs", None))]
    try:
        with _eval_mode(model), FlopCounterMode(display=False) as counter:
            model(x)
    except RuntimeError as exc:  # torch's shape errors: say which argument to change
        raise ConfigError(f"the model cannot run on input_size={tuple(input_size)} (its "
                          f"channels and size must match the model's first layer): "
                          f"{str(exc).splitlines()[0]}") from exc
    finally:
        for hook in hooks:
            hook.remove()
    return counter.get_total_flops() // 2 + sum(extra)


def check_run_time(min_run_time) -> None:
    """The timer repeats until ``min_run_time`` seconds have passed: NaN or infinity would
    never stop it, and 0 or less would time nothing."""
    if (isinstance(min_run_time, bool) or not isinstance(min_run_time, (int, float))
            or not math.isfinite(min_run_time) or not 0 < min_run_time <= 600):
        raise ConfigError(f"min_run_time is the seconds spent timing, a number in (0, 600], "
                          f"got {min_run_time!r}; 0.3 is the default")


def _timer_median(fn, min_run_time: float) -> float:
    # torch.utils.benchmark imports cpp_extension, which warns about a missing CUDA toolkit on
    # CPU-only machines even though nothing is compiled; that warning is noise on the page.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    from torch.utils import benchmark

    fn()  # warm-up: one-off costs (allocations, cuDNN's algorithm search) never count
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn})
    return timer.blocked_autorange(min_run_time=min_run_time).median


def latency(
    model: nn.Module,
    input_size: tuple[int, ...] = (3, 32, 32),
    device: str | torch.device | None = None,
    min_run_time: float = 0.3,
    backward: bool = False,
) -> float:
    """Median seconds of one pass over an input of ``input_size`` ((C, H, W) is a batch of
    one; (N, C, H, W) a batch of N), measured by torch.utils.benchmark after a warm-up.

    Forward only (eval mode, no grad) by default; ``backward=True`` times forward and
    backward in training mode. The model is moved to ``device`` (default: where its
    parameters are); the input is channels_last and under autocast exactly where
    ``train.fit`` uses them. CUDA is synchronised by the timer, MPS by us.
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(f"latency needs an nn.Module instance, got {model!r}")
    check_run_time(min_run_time)
    with timing.timed(timing.LATENCY):
        return _latency(model, input_size, device, min_run_time, backward)


def _latency(model: nn.Module, input_size: tuple[int, ...], device, min_run_time: float,
             backward: bool) -> float:
    from convbook.train import _autocast, default_amp, memory_format_for, pick_device, synchronize

    device = pick_device(device) if device is not None else _device_of(model)
    memory_format = memory_format_for(device)
    model = model.to(device=device, memory_format=memory_format)
    shape = _input_shape(input_size)
    x = torch.randn(shape, device=device).contiguous(
        memory_format=memory_format if len(shape) == 4 else torch.contiguous_format)
    amp = default_amp(device)
    was_training = model.training

    def forward():
        with torch.no_grad(), _autocast(device, amp):
            model(x)
        synchronize(device) if device.type == "mps" else None

    def forward_backward():
        with _autocast(device, amp):
            out = model(x)
        out.float().sum().backward()
        synchronize(device) if device.type == "mps" else None

    try:
        model.train(backward)
        seconds = _timer_median(forward_backward if backward else forward, min_run_time)
    finally:
        model.train(was_training)
        model.zero_grad(set_to_none=True)
    return seconds


def train_latency(model: nn.Module, batch_size: int, input_size: tuple[int, ...] = (3, 32, 32),
                  device: str | torch.device | None = None,
                  min_run_time: float = 0.3) -> dict[str, float]:
    """Median seconds of a forward pass and of a forward + backward pass on one training batch
    (``batch_size`` inputs of ``input_size``), as ``latency`` measures them."""
    check_positive("batch_size", batch_size)
    shape = (batch_size, *input_size)
    return {"forward": latency(model, shape, device, min_run_time),
            "forward_backward": latency(model, shape, device, min_run_time, backward=True)}


def conv2d_params(
    in_channels: int, out_channels: int, kernel_size: int, groups: int = 1, bias: bool = False
) -> int:
    """Weights of a k x k convolution: k*k * (C_in / g) * C_out, plus C_out biases."""
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("kernel_size", kernel_size)):
        check_positive(name, value)
    check_groups(in_channels, out_channels, groups)
    return kernel_size**2 * (in_channels // groups) * out_channels + (out_channels if bias else 0)


def conv2d_macs(
    in_channels: int, out_channels: int, kernel_size: int, out_height: int, out_width: int,
    groups: int = 1,
) -> int:
    """MACs of a k x k convolution: one weight-times-input per weight per output position."""
    check_positive("out_height", out_height)
    check_positive("out_width", out_width)
    return conv2d_params(in_channels, out_channels, kernel_size, groups) * out_height * out_width


def group_sweep(in_channels: int, out_channels: int, kernel_size: int, size: int,
                groups: list[int]) -> Table:
    """Parameters and MACs of one convolution at several group counts: counted on real
    ``nn.Conv2d`` modules and by formula, side by side."""
    rows = []
    for g in groups:
        check_groups(in_channels, out_channels, g)
        conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                         groups=g, bias=False)
        rows.append({
            "groups": g,
            "parameters (measured)": count_params(conv),
            "parameters (formula)": conv2d_params(in_channels, out_channels, kernel_size, g),
            "MACs (measured)": count_macs(conv, (in_channels, size, size)),
            "MACs (formula)": conv2d_macs(in_channels, out_channels, kernel_size, size, size, g),
        })
    caption = (f"A {kernel_size}x{kernel_size} convolution, {in_channels} -> {out_channels} "
               f"channels, on a {size}x{size} map, no bias.")
    return Table(rows, caption)


def compare_models(models: dict[str, nn.Module], input_size: tuple[int, ...] = (3, 224, 224),
                   parts: tuple[str, ...] = (),
                   input_sizes: dict[str, tuple[int, ...]] | None = None) -> Table:
    """Parameters and MACs of several models; ``parts`` names submodules (e.g. "features")
    whose share of the parameters gets a column each; ``input_sizes`` overrides
    ``input_size`` for the models it names."""
    if not models:
        raise ConfigError("compare_models needs models: a dict of name -> model instance")
    input_sizes = input_sizes or {}
    rows = []
    for name, model in models.items():
        total = count_params(model)
        size = input_sizes.get(name, input_size)
        row = {"model": name, "parameters": total, "MACs": count_macs(model, size)}
        for part in parts:
            row[f"share in {part}"] = f"{100 * count_params(getattr(model, part)) / total:.1f}%"
        rows.append(row)
    sizes = {"x".join(map(str, s)) for s in [input_size, *input_sizes.values()]}
    return Table(rows, caption=f"Input {' or '.join(sorted(sizes))}; MACs of one input.")


def stacked_inception_cost(in_channels: int, widths: tuple[int, ...], modules: int,
                           size: int = 28, kernel_sizes: tuple[int, ...] = (1, 3, 5)) -> Table:
    """Naive Inception modules with fixed branch widths stacked one after another: the pool
    branch passes its input on, so each module's input is wider than the last one's."""
    from convbook.blocks.inception import NaiveInception

    rows, channels = [], in_channels
    for i in range(modules):
        module = NaiveInception(channels, widths, kernel_sizes)
        plain = nn.Conv2d(channels, module.out_channels, 3, padding=1, bias=False)
        rows.append({"module": i + 1, "input channels": channels,
                     "output channels": module.out_channels,
                     "parameters": count_params(module),
                     "MACs": count_macs(module, (channels, size, size)),
                     "one 3x3 layer, same widths: parameters": count_params(plain)})
        channels = module.out_channels
    return Table(rows, caption=f"Naive modules with branch widths {tuple(widths)} for kernel "
                               f"sizes {tuple(kernel_sizes)}, one after another, on {size}x{size}; "
                               f"beside each, one plain 3x3 convolution from its input width to "
                               f"its output width.")


def separable_sweep(channels: list[int], kernel_sizes: list[int]) -> Table:
    """Weights of a standard k x k convolution (C -> C) against depthwise k x k + pointwise
    1x1, counted on real modules, with the ratio set beside the formula 1/C + 1/k^2."""
    from convbook.blocks.separable import DepthwiseSeparable

    if not channels or not kernel_sizes:
        raise ConfigError(f"separable_sweep needs channels and kernel_sizes to sweep, got "
                          f"channels={channels!r}, kernel_sizes={kernel_sizes!r}")
    rows = []
    for c in channels:
        for k in kernel_sizes:
            standard = count_params(nn.Conv2d(c, c, k, padding=k // 2, bias=False))
            separable = sum(count_params(unit[0]) for unit in DepthwiseSeparable(c, c, k))
            rows.append({"channels C": c, "kernel k": k, "standard": standard,
                         "separable": separable, "ratio (measured)": f"{separable / standard:.4f}",
                         "1/C + 1/k² (formula)": f"{float(Fraction(1, c) + Fraction(1, k**2)):.4f}"})
    return Table(rows, caption="Convolution weights only (batch norm excluded), C -> C channels.")


def latency_table(layers: dict[str, nn.Module], input_sizes: dict[str, tuple[int, ...]],
                  device: str | torch.device | None = None, min_run_time: float = 0.2) -> Table:
    """MACs and measured latency (median, torch.utils.benchmark, after a warm-up) of several
    layers: the forward pass ("latency (ms)") and forward + backward, at the batch size the
    input sizes give, in the dtype and memory format training uses."""
    rows = []
    for name, layer in layers.items():
        size = input_sizes[name]
        forward = latency(layer, size, device=device, min_run_time=min_run_time)
        both = latency(layer, size, device=device, min_run_time=min_run_time, backward=True)
        rows.append({"layer": name, "MACs": count_macs(layer, size),
                     "latency (ms)": round(1000 * forward, 3),
                     "forward + backward (ms)": round(1000 * both, 3)})
    where = str(device or _device_of(next(iter(layers.values()))))
    return Table(rows, caption=f"Median of repeated timed runs on {where} after a warm-up; "
                               f"training's dtype and memory format.")


def add_ratios(table: Table, against: str, decimals: int = 2) -> Table:
    """Add each row's forward and forward + backward latency as a multiple of the first row's
    (columns "forward vs <against>" and "forward + backward vs <against>"), in place."""
    base = table.rows[0]
    for row in table.rows:
        row[f"forward vs {against}"] = f"{row['latency (ms)'] / base['latency (ms)']:.{decimals}f}×"
        row[f"forward + backward vs {against}"] = (
            f"{row['forward + backward (ms)'] / base['forward + backward (ms)']:.{decimals}f}×")
    return table


def separable_latency(channels: list[int], kernel_size: int = 3, size: int = 32, batch: int = 64,
                      device: str | torch.device | None = None) -> Table:
    """MACs and measured latency of a standard k x k convolution (C -> C) and its depthwise
    separable counterpart, for each channel count."""
    layers, sizes, kinds = {}, {}, {}
    for c in channels:
        pad = kernel_size // 2
        for kind, layer in (
            ("standard", nn.Conv2d(c, c, kernel_size, padding=pad, bias=False)),
            ("separable", nn.Sequential(
                nn.Conv2d(c, c, kernel_size, padding=pad, groups=c, bias=False),
                nn.Conv2d(c, c, 1, bias=False))),
        ):
            name = f"{kind}, C={c}"
            layers[name], sizes[name], kinds[name] = layer, (batch, c, size, size), kind
    table = latency_table(layers, sizes, device=device)
    for row in table.rows:
        row["layer type"] = kinds[row["layer"]]
    table.caption += f" Batch of {batch}, {size}x{size}, {kernel_size}x{kernel_size} kernels."
    return table


def grouped_latency_at_equal_macs(base_channels: int, groups: list[int], size: int = 28,
                                  batch: int = 64, device: str | torch.device | None = None) -> Table:
    """ShuffleNet V2's guideline G2, measured: 1x1 grouped convolutions whose channel count
    grows with sqrt(groups) so that MACs stay (nearly) constant, and their latency."""
    layers, sizes = {}, {}
    for g in groups:
        channels = max(g, round(base_channels * g**0.5 / g) * g)  # a multiple of g
        name = f"g={g}, C={channels}"
        layers[name] = nn.Conv2d(channels, channels, 1, groups=g, bias=False)
        sizes[name] = (batch, channels, size, size)
    table = latency_table(layers, sizes, device=device)
    table.caption += f" 1x1 convolutions, batch of {batch}, {size}x{size}."
    return table


def se_overhead(channels: list[int], reductions: list[int]) -> Table:
    """Parameters of one squeeze-and-excitation block, counted and by formula
    2·C·s + s + C with s = max(C // r, 1) hidden units (the block never has fewer than one)."""
    from convbook.blocks.se import SqueezeExcitation

    if not channels or not reductions:
        raise ConfigError(f"se_overhead needs channels and reductions, got channels="
                          f"{channels!r}, reductions={reductions!r}")
    for c in channels:
        check_positive("channels", c)
    for r in reductions:
        check_positive("reduction", r)
    rows = []
    for c in channels:
        for r in reductions:
            s = max(c // r, 1)
            rows.append({"channels C": c, "reduction r": r,
                         "parameters (measured)": count_params(SqueezeExcitation(c, r)),
                         "2Cs + s + C, s = max(C/r, 1) (formula)": 2 * c * s + s + c})
    return Table(rows, caption="One SE block (two 1x1 layers with biases; s hidden units).")
