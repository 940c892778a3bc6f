"""Receptive fields: the analytic one of a chain of layers, and the effective one from gradients.

Analytic: a layer with kernel k, stride s and dilation d spans ``d*(k-1)+1`` input positions.
Going through layers in order, with ``jump`` the distance in input pixels between neighbouring
units of the current layer,

    size  <- size + (d*(k-1)) * jump
    start <- start + (d*(k-1)/2 - padding) * jump
    jump  <- jump * s

Effective (Luo et al., 2016, "Understanding the Effective Receptive Field in Deep Convolutional
Neural Networks", https://arxiv.org/abs/1701.04128): the gradient of one central output unit with
respect to the input shows how much each input pixel actually moves it. It is concentrated near
the centre and grows more slowly with depth than the analytic size.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from convbook.blocks.validate import check_positive
from convbook.errors import ConfigError


@dataclass(frozen=True)
class Layer:
    """Geometry of one sliding-window layer: a square kernel, its stride, dilation and padding."""

    kernel_size: int
    stride: int = 1
    dilation: int = 1
    padding: int = 0

    def __post_init__(self) -> None:
        check_positive("kernel_size", self.kernel_size)
        check_positive("stride", self.stride)
        check_positive("dilation", self.dilation)
        if (isinstance(self.padding, bool) or not isinstance(self.padding, int)
                or self.padding < 0):
            raise ConfigError(f"padding must be a whole number >= 0, got {self.padding!r}")

    @property
    def span(self) -> int:
        """Input positions between the first and last tap, inclusive."""
        return self.dilation * (self.kernel_size - 1) + 1


@dataclass(frozen=True)
class ReceptiveField:
    """size: side of the square of input pixels one unit sees; jump: input pixels between
    neighbouring units; start: input coordinate of the first unit's centre."""

    size: int
    jump: int
    start: float


def _square(value, name: str, module: nn.Module) -> int:
    if isinstance(value, tuple):
        if len(set(value)) != 1:
            raise ConfigError(
                f"{type(module).__name__} has a non-square {name} {value}; receptive_field "
                f"handles square kernels, strides and dilations only"
            )
        value = value[0]
    if isinstance(value, str):
        raise ConfigError(f"{type(module).__name__} uses padding={value!r}; give padding as integers")
    return int(value)


def layer_of(module: nn.Module) -> Layer | None:
    """The geometry of a conv or pooling module, or None for layers that keep positions
    (batch norm, activations, dropout)."""
    if isinstance(module, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d):
        dilation = getattr(module, "dilation", 1)
        return Layer(
            kernel_size=_square(module.kernel_size, "kernel_size", module),
            stride=_square(module.stride, "stride", module),
            dilation=_square(dilation, "dilation", module),
            padding=_square(module.padding, "padding", module),
        )
    return None


_NOT_2D = (nn.Conv1d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
           nn.MaxPool1d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool3d)
# layers that move positions in ways a (kernel, stride, dilation, padding) chain cannot say:
# adaptive pooling reads a window that depends on the input size, upsampling and pixel
# (un)shuffles change the grid's scale, fractional pooling is random
_UNMODELLED = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
               nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d, nn.LPPool1d,
               nn.LPPool2d, nn.PixelShuffle, nn.PixelUnshuffle, nn.Upsample,
               nn.UpsamplingNearest2d, nn.UpsamplingBilinear2d, nn.FractionalMaxPool2d,
               nn.MaxUnpool2d, nn.Unfold, nn.Fold)
_SPATIAL = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, *_NOT_2D, *_UNMODELLED)


def _has_spatial(module: nn.Module) -> bool:
    return any(isinstance(m, _SPATIAL) for m in module.modules())


def _layers(layers: Iterable[Layer | nn.Module] | nn.Module) -> list[Layer]:
    if isinstance(layers, nn.Module):
        layers = [layers]
    out: list[Layer] = []
    for item in layers:
        if isinstance(item, Layer):
            out.append(item)
        elif isinstance(item, _NOT_2D):
            raise ConfigError(
                f"receptive_field handles 2-D convolutions and pooling only, got "
                f"{type(item).__name__}; a transposed convolution grows the map and has no "
                f"receptive field in this sense")
        elif isinstance(item, _UNMODELLED):
            raise ConfigError(
                f"receptive_field does not model {type(item).__name__}: its window depends on "
                f"the input size or it changes the grid's scale, so no kernel/stride chain "
                f"describes it; pass the layers before it (e.g. a network's features without "
                f"its global pooling)")
        elif isinstance(item, nn.Module):
            children = list(item.children())
            if children and not isinstance(item, nn.Sequential) and _has_spatial(item):
                raise ConfigError(
                    f"receptive_field reads chains of layers, and {type(item).__name__} is not "
                    f"one (its forward may run branches in parallel or add a shortcut); pass the "
                    f"layers of one path as a list or an nn.Sequential")
            if children:
                out.extend(_layers(children))
            else:
                geometry = layer_of(item)
                if geometry is not None:
                    out.append(geometry)
        else:
            raise ConfigError(
                f"receptive_field takes Layer(...) objects or torch modules, got {type(item).__name__}"
            )
    return out


def receptive_fields(layers: Iterable[Layer | nn.Module] | nn.Module) -> list[ReceptiveField]:
    """The receptive field after each sliding-window layer of a chain, in order.

    Modules are read in registration order, so pass a chain (an ``nn.Sequential`` of layers),
    not a network with parallel branches.
    """
    size, jump, start = 1, 1, 0.0
    fields = []
    for layer in _layers(layers):
        size += (layer.span - 1) * jump
        start += ((layer.span - 1) / 2 - layer.padding) * jump
        jump *= layer.stride
        fields.append(ReceptiveField(size=size, jump=jump, start=start))
    return fields


def receptive_field(layers: Iterable[Layer | nn.Module] | nn.Module) -> ReceptiveField:
    """The receptive field of the last unit of a chain of layers (size 1 for an empty chain)."""
    fields = receptive_fields(layers)
    return fields[-1] if fields else ReceptiveField(size=1, jump=1, start=0.0)


def effective_receptive_field(
    model: nn.Module,
    input_size: tuple[int, int, int] = (3, 64, 64),
    samples: int = 8,
    seed: int = 0,
) -> torch.Tensor:
    """Mean |d y_centre / d x| over ``samples`` random inputs: an H x W map, largest value 1.

    ``y_centre`` is the sum over channels of the output unit at the centre of the output map.
    The model runs in eval mode so batch norm acts per image; its mode is restored afterwards.
    """
    check_positive("samples", samples)
    if len(input_size) != 3:
        raise ConfigError(f"input_size must be (channels, height, width), got {input_size!r}")
    device = next(iter(model.parameters()), torch.empty(0)).device
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn((samples, *input_size), generator=generator).to(device).requires_grad_(True)
    was_training = model.training
    model.eval()
    try:
        y = model(x)
        if y.dim() != 4:
            raise ConfigError("effective_receptive_field needs a model whose output is N x C x H x W")
        y[:, :, y.shape[2] // 2, y.shape[3] // 2].sum().backward()
    finally:
        model.train(was_training)
    grad = x.grad.abs().sum(dim=(0, 1)).cpu()
    peak = grad.max()
    return grad / peak if peak > 0 else grad


def support_size(erf: torch.Tensor, threshold: float = 0.0) -> int:
    """Side of the bounding box of pixels whose gradient exceeds ``threshold`` (the largest side)."""
    _check_map(erf, "support_size")
    rows = torch.nonzero(erf.amax(dim=1) > threshold).flatten()
    cols = torch.nonzero(erf.amax(dim=0) > threshold).flatten()
    if len(rows) == 0:
        return 0
    return int(max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1))


def _check_map(erf, what: str) -> None:
    """A gradient map: a 2-D tensor (H x W) of finite numbers."""
    if not isinstance(erf, torch.Tensor) or erf.dim() != 2:
        shape = tuple(erf.shape) if isinstance(erf, torch.Tensor) else type(erf).__name__
        raise ConfigError(f"{what} needs a 2-D map (H x W), got {shape}")
    if not bool(torch.isfinite(erf).all()):
        raise ConfigError(f"{what} got a map holding NaN or infinite values; the gradients it "
                          f"came from diverged")


def effective_size(erf: torch.Tensor, mass: float = 0.9) -> int:
    """Side of the smallest square around the gradient's centroid that holds ``mass`` of it.

    A single number to set beside the analytic size: how wide the region that carries most
    of the output unit's sensitivity really is.
    """
    if not 0 < mass <= 1:
        raise ConfigError(f"mass must be in (0, 1], got {mass}; 0.9 is a common choice")
    _check_map(erf, "effective_size")
    h, w = erf.shape
    total = erf.sum()
    if total <= 0:
        return 0
    ys = torch.arange(h, dtype=erf.dtype)
    xs = torch.arange(w, dtype=erf.dtype)
    cy = round(float((erf.sum(dim=1) * ys).sum() / total))
    cx = round(float((erf.sum(dim=0) * xs).sum() / total))
    for r in range(max(h, w)):
        box = erf[max(cy - r, 0) : cy + r + 1, max(cx - r, 0) : cx + r + 1]
        if box.sum() >= mass * total:
            return 2 * r + 1
    return max(h, w)


def sampled_offsets(layers: Iterable[Layer | nn.Module] | nn.Module) -> list[int]:
    """Input offsets (along one axis, relative to the first tap) that one unit actually reads.

    For dense kernels this is every position of the receptive field; dilated kernels skip some
    (the holes of chapter 9, and the "gridding" of stacked dilations). The 2-D set is the
    product of this list with itself.
    """
    offsets, jump = {0}, 1
    for layer in _layers(layers):
        taps = [t * layer.dilation * jump for t in range(layer.kernel_size)]
        offsets = {o + t for o in offsets for t in taps}
        jump *= layer.stride
    return sorted(offsets)


def coverage(layers: Iterable[Layer | nn.Module] | nn.Module) -> float:
    """Share of the 2-D receptive field that one unit actually reads: (positions read per axis
    / field size)². 1 for dense kernels; 9/49 for one 3×3 kernel at dilation 3; about 0.29 for
    three 3×3 layers at dilation 2 (the "gridding" of stacked equal rates)."""
    offsets = sampled_offsets(layers)
    span = offsets[-1] - offsets[0] + 1
    return (len(offsets) / span) ** 2


def read_grid(layers: Iterable[Layer | nn.Module] | nn.Module) -> torch.Tensor:
    """The receptive field as a square boolean grid: True at the input positions one unit
    reads (the product of ``sampled_offsets`` with itself)."""
    offsets = torch.tensor(sampled_offsets(layers))
    line = torch.zeros(int(offsets[-1] - offsets[0]) + 1, dtype=torch.bool)
    line[offsets - offsets[0]] = True
    return line[:, None] & line[None, :]


def dilated_stack(rates: Iterable[int], kernel_size: int = 3, channels: int = 8,
                  relu: bool = False) -> nn.Sequential:
    """Same-padded k × k convolutions, one per dilation rate (random weights, no bias): the
    stack whose holes and effective receptive field chapter 9 draws. Linear by default, so the
    gradient shows exactly which pixels the stack can reach."""
    rates = list(rates)
    if not rates:
        raise ConfigError("dilated_stack needs at least one dilation rate, e.g. (1, 2, 3)")
    layers: list[nn.Module] = []
    for i, rate in enumerate(rates):
        check_positive("dilation rate", rate)
        layers.append(nn.Conv2d(3 if i == 0 else channels, channels, kernel_size,
                                padding=rate * (kernel_size - 1) // 2, dilation=rate, bias=False))
        if relu and i < len(rates) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def conv_stack(kernel_size: int, depth: int, channels: int = 8, dilation: int = 1,
               relu: bool = True) -> nn.Sequential:
    """``depth`` same-padded k x k convolutions (random init, no bias), ReLU between them: the
    network whose receptive field the chapter measures."""
    check_positive("depth", depth)
    check_positive("channels", channels)
    layers: list[nn.Module] = []
    for i in range(depth):
        layers.append(nn.Conv2d(3 if i == 0 else channels, channels, kernel_size,
                                padding=dilation * (kernel_size - 1) // 2, dilation=dilation,
                                bias=False))
        if relu and i < depth - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def erf_versus_depth(kernel_size: int, depths: list[int], channels: int = 8, input_size: int = 65,
                     samples: int = 8, seed: int = 0) -> dict[str, list]:
    """Analytic size, effective size (90% of gradient mass) and the ERF maps of conv stacks."""
    analytic, effective, maps = [], [], []
    for depth in depths:
        torch.manual_seed(seed)
        stack = conv_stack(kernel_size, depth, channels)
        erf = effective_receptive_field(stack, (3, input_size, input_size), samples, seed)
        analytic.append(receptive_field(stack).size)
        effective.append(effective_size(erf))
        maps.append(erf)
    return {"depth": list(depths), "analytic": analytic, "effective": effective, "maps": maps}


def expected_erf(kernel_size: int, depth: int, weights: str = "random") -> torch.Tensor:
    """The gradient map a stack of ``depth`` k x k stride-1 layers has in expectation, from
    counting paths: an input pixel reaches the centre output through as many paths as the
    ``depth``-fold convolution of a k x k box gives it (Luo et al. 2016, section 2).

    ``weights="uniform"`` (every weight 1, no non-linearity): the map is that path count.
    ``weights="random"`` (independent zero-mean weights): the paths' contributions add in
    variance, so the expected magnitude grows as the square root of the count, which is what
    ``effective_receptive_field`` measures on random stacks. Largest value 1, side
    ``depth * (k - 1) + 1``."""
    check_positive("kernel_size", kernel_size)
    check_positive("depth", depth)
    if weights not in ("random", "uniform"):
        raise ConfigError(f"weights must be 'random' or 'uniform', got {weights!r}")
    line = torch.ones(1, dtype=torch.float64)
    box = torch.ones(kernel_size, dtype=torch.float64)
    for _ in range(depth):
        line = torch.nn.functional.conv1d(line[None, None], box[None, None],
                                          padding=kernel_size - 1)[0, 0]
    paths = torch.outer(line, line)
    grid = paths.sqrt() if weights == "random" else paths
    return (grid / grid.max()).float()


def central_mass(erf: torch.Tensor, size: int) -> float:
    """Share of the gradient mass inside the centred square of side ``size`` (odd; a square
    larger than the map holds all of it)."""
    check_positive("size", size)
    if size % 2 == 0:
        raise ConfigError(f"size must be odd so the square has a centre pixel, got {size}; "
                          f"use {size - 1} or {size + 1}")
    _check_map(erf, "central_mass")
    h, w = erf.shape
    cy, cx, r = h // 2, w // 2, size // 2
    total = float(erf.sum())
    window = erf[max(cy - r, 0) : cy + r + 1, max(cx - r, 0) : cx + r + 1]
    return float(window.sum()) / total if total > 0 else 0.0
