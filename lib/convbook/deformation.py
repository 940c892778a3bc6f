"""Where a trained deformable layer reads: its sampling points on test images, their
"effective dilation" (DCNv1's mean distance between adjacent taps), the share of taps that land
on the feature map rather than in its zero padding (``taps_on_map``: chapter 10 judges nothing
on a network whose offsets throw most taps off the map), how far they gather on the object, and
a gallery of the points two stacked layers read (DCNv1's figure), for chapter 10.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from convbook.blocks import DeformableConv2d
from convbook.blocks.validate import check_positive
from convbook.errors import ConfigError
from convbook.synthetic import DIGIT_SIZE, DigitData, as_images

GALLERY_SCALES = (0.7, 1.0, 1.6)
POSITIONS = ("on the digit", "background")
LAYERS = ("first deformable layer (9 taps)", "both layers (81 points)")


_HORIZONTAL = ((0, 1), (1, 2), (3, 4), (4, 5), (6, 7), (7, 8))
_VERTICAL = ((0, 3), (3, 6), (1, 4), (4, 7), (2, 5), (5, 8))

def deformable_layers(model: nn.Module, least: int = 0) -> list[DeformableConv2d]:
    """The model's deformable layers in order; fewer than ``least`` is an error."""
    if not isinstance(model, nn.Module):
        raise ConfigError(f"expected a model (an nn.Module), got {type(model).__name__}")
    layers = [m for m in model.modules() if isinstance(m, DeformableConv2d)]
    if len(layers) < least:
        raise ConfigError(f"this needs a model with at least {least} DeformableConv2d layer"
                          f"{'s' if least > 1 else ''}, and {type(model).__name__} has "
                          f"{len(layers)}; build one with nets.deformable_cifar_net")
    return layers


def _check_points(points, what: str, taps: int | None = None) -> None:
    """Sampling points: a tensor whose last dimension holds (y, x) (and, when ``taps`` is
    given, whose last but one holds the taps)."""
    if not isinstance(points, torch.Tensor) or points.dim() < 1 or points.shape[-1] != 2:
        shape = tuple(points.shape) if isinstance(points, torch.Tensor) else type(points).__name__
        raise ConfigError(f"{what} takes points with (y, x) in the last dimension (... x 2), "
                          f"got {shape}")
    if taps is not None and (points.dim() < 2 or points.shape[-2] != taps):
        raise ConfigError(f"{what} takes the {taps} points of a 3×3 kernel (... x {taps} x 2), "
                          f"got {tuple(points.shape)}")


@torch.no_grad()
def layer_inputs(model: nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    """The input each deformable layer of ``model`` receives for ``images`` (uint8, N x 3)."""
    from convbook.train import normalize

    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        raise ConfigError(f"layer_inputs takes images as uint8 (0..255, N x 3 x H x W), got "
                          f"{getattr(images, 'dtype', type(images).__name__)}")

    captured = []
    hooks = [layer.register_forward_hook(lambda m, args, out: captured.append(args[0].float()))
             for layer in deformable_layers(model)]
    try:
        model.eval()
        device = next(model.parameters()).device
        model(normalize(images.to(device)))
    finally:
        for hook in hooks:
            hook.remove()
    return captured


def effective_dilation(points: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """DCNv1's "effective dilation": the mean distance between adjacent taps of each output
    position (N x H x W from N x H x W x 9 x 2); a plain 3×3 kernel gives 1. With ``size``
    (the map's side), only pairs whose two taps both land on the map count (a tap in the zero
    padding reads nothing); NaN where no pair does."""
    _check_points(points, "effective_dilation", taps=9)
    pairs = _HORIZONTAL + _VERTICAL
    a = points[..., [i for i, _ in pairs], :]
    b = points[..., [j for _, j in pairs], :]
    distance = (a - b).norm(dim=-1)
    if size is None:
        return distance.mean(dim=-1)
    on_a, on_b = on_map(a, size), on_map(b, size)
    keep = (on_a & on_b).float()
    return (distance * keep).sum(-1) / keep.sum(-1)  # 0/0 = NaN where no pair is on the map


def on_map(points: torch.Tensor, size: int) -> torch.Tensor:
    """True where a (y, x) point lies where bilinear sampling reads at least one pixel of a
    ``size`` × ``size`` map."""
    _check_points(points, "on_map")
    check_positive("size", size)
    return ((points > -1) & (points < size)).all(-1)


def _on_layer_map(points: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """``on_map`` for a layer's sampling points on its input (N x C x H x W, H and W may
    differ): True where a point reads at least one pixel."""
    h, w = inputs.shape[-2:]
    y, x = points[..., 0], points[..., 1]
    return (y > -1) & (y < h) & (x > -1) & (x < w)


def _count_on_map(model: nn.Module, images: torch.Tensor) -> tuple[int, int]:
    """Taps on the map and taps in all, over every deformable layer and output position."""
    inside = total = 0
    for layer, x in zip(deformable_layers(model, least=1), layer_inputs(model, images)):
        hit = _on_layer_map(layer.sampling_points(x), x)
        inside += int(hit.sum())
        total += hit.numel()
    return inside, total


@torch.no_grad()
def taps_on_map(model: nn.Module, images: torch.Tensor, batch_size: int = 500) -> float:
    """The share of the taps of every deformable layer of ``model``, at every output position
    of ``images`` (uint8, N x 3 x H x W), that land on the layer's input map rather than in
    the zero padding around it (where they read nothing). A plain 3×3 kernel on an 8×8 map
    keeps 84 % of its taps there (the border positions' outer taps fall off)."""
    check_positive("batch_size", batch_size)
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or not len(images):
        raise ConfigError(f"taps_on_map takes a batch of images (N x 3 x H x W, uint8), got "
                          f"{tuple(getattr(images, 'shape', ())) or type(images).__name__}")
    inside = total = 0
    for start in range(0, len(images), batch_size):
        hit, count = _count_on_map(model, images[start:start + batch_size])
        inside, total = inside + hit, total + count
    return inside / total


def cell_masks(masks: torch.Tensor, stride: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Which positions of a ``size`` × ``size`` feature map (``stride`` image pixels each) lie
    on the object (a quarter or more of its pixels are ink) and which on background (no ink
    within one cell around it)."""
    ink = F.avg_pool2d(masks[:, None].float(), stride)[:, 0]
    near = F.max_pool2d(ink[:, None], 3, 1, 1)[:, 0]
    return ink >= 0.25, near == 0


def dilation_by_scale(model: nn.Module, data: DigitData) -> dict[str, dict[float, float]]:
    """For the first deformable layer and each test scale: mean effective dilation (pairs on
    the map only) at object and at background positions; the share of the taps at object
    positions that land on the map; and "focus", the share of the on-map taps at object
    positions that land on the object, minus that share for a plain 3×3 grid there. And
    ``on_map``: the share of the taps of every deformable layer, at every position, that land
    on the map (``taps_on_map`` at each scale)."""
    out = {"object": {}, "background": {}, "inside": {}, "focus": {}, "on_map": {}}
    layers = deformable_layers(model, least=1)
    for scale, (x, _, masks) in data.tests.items():
        captured = layer_inputs(model, as_images(x))
        hits = [_on_layer_map(layer.sampling_points(i), i) for layer, i in zip(layers, captured)]
        out["on_map"][scale] = (sum(int(h.sum()) for h in hits)
                                / sum(h.numel() for h in hits))
        layer, inputs = layers[0], captured[0]
        points = layer.sampling_points(inputs).cpu()
        size = inputs.shape[-1]
        stride = DIGIT_SIZE // size
        dilation = effective_dilation(points, size)
        obj, background = cell_masks(masks, stride, size)
        inside = on_map(points, size)
        out["object"][scale] = float(dilation[obj].nanmean()) if obj.any() else math.nan
        out["background"][scale] = (float(dilation[background].nanmean()) if background.any()
                                    else math.nan)
        out["inside"][scale] = float(inside.float().mean(-1)[obj].mean()) if obj.any() else math.nan
        out["focus"][scale] = _focus(points, inside, obj, size) if obj.any() else math.nan
    return out


def _focus(points: torch.Tensor, inside: torch.Tensor, obj: torch.Tensor, size: int) -> float:
    """Share of on-map taps (at object positions) whose nearest cell is an object cell, minus
    the same share for the plain grid at those positions."""
    n, h, w = obj.shape
    cells = points.round().clamp(0, size - 1).long()
    batch = torch.arange(n)[:, None, None, None].expand(-1, h, w, 9)
    hit = obj[batch, cells[..., 0], cells[..., 1]] & inside
    deformable = hit.float().sum(-1)[obj].sum() / inside.float().sum(-1)[obj].sum().clamp(min=1)
    ys = torch.arange(h)[None, :, None, None] + torch.tensor([-1, -1, -1, 0, 0, 0, 1, 1, 1])
    xs = torch.arange(w)[None, None, :, None] + torch.tensor([-1, 0, 1, -1, 0, 1, -1, 0, 1])
    ys, xs = ys.expand(n, h, w, 9), xs.expand(n, h, w, 9)
    plain_inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    plain_hit = obj[batch, ys.clamp(0, h - 1), xs.clamp(0, w - 1)] & plain_inside
    plain = plain_hit.float().sum(-1)[obj].sum() / plain_inside.float().sum(-1)[obj].sum()
    return float(deformable - plain)


def slope(values: dict[float, float]) -> float:
    """Least-squares slope of values against scale. Scales whose value is NaN (no tap pair on
    the map there) are left out; NaN when fewer than two remain."""
    if not isinstance(values, dict) or len(values) < 2:
        raise ConfigError(f"a slope needs values at two or more scales, got {values!r}")
    if sum(not math.isnan(y) for y in values.values()) < 2:
        return math.nan
    xs = torch.tensor(list(values), dtype=torch.float64)
    ys = torch.tensor(list(values.values()), dtype=torch.float64)
    keep = ~torch.isnan(ys)
    xs, ys = xs[keep], ys[keep]
    return float(((xs - xs.mean()) * (ys - ys.mean())).sum() / ((xs - xs.mean()) ** 2).sum())


@dataclass
class Gallery:
    """Sampling points of a trained network on a few test digits, in image pixels:
    ``points[(image, position, layer)]`` is a P x 2 tensor of (y, x); ``plain`` the same for a
    plain kernel; ``centre`` the output position's centre."""

    images: dict[str, torch.Tensor]
    points: dict[tuple[str, str, str], torch.Tensor]
    plain: dict[tuple[str, str, str], torch.Tensor]
    centre: dict[tuple[str, str], tuple[float, float]]
    dilation: dict[tuple[str, str], float]


def to_image(points: torch.Tensor, stride: int) -> torch.Tensor:
    """Feature-map coordinates to image pixels (the centre of each stride × stride cell)."""
    check_positive("stride", stride)
    return points * stride + (stride - 1) / 2


def _grid(y: int, x: int, reach: int) -> torch.Tensor:
    steps = torch.arange(-reach, reach + 1, dtype=torch.float32)
    return torch.stack(torch.meshgrid(y + steps, x + steps, indexing="ij"), -1).view(-1, 2)


@torch.no_grad()
def gallery(model: nn.Module, data: DigitData, scales: tuple[float, ...] = GALLERY_SCALES) -> Gallery:
    """The first test digit at each of ``scales``; for a position on the digit and one on the
    background, where the first deformable layer's 9 taps read, and the up to 81 points the two
    deformable layers read together (each of the second layer's taps, rounded to the nearest
    position, followed into the first layer), as in DCNv1's figure. Taps that land in the zero
    padding around the 8×8 map read nothing and are left out (so are the points behind them)."""
    first, second = deformable_layers(model, least=2)[:2]
    images, points, plain, centre, dilation = {}, {}, {}, {}, {}
    for scale in scales:
        if scale not in data.tests:
            raise ConfigError(f"no test digits at scale {scale}; scales are {list(data.tests)}")
        x, y, masks = data.tests[scale]
        name = f"a {int(y[0])} at scale {scale:g}"
        images[name] = x[0, 0]
        inputs = layer_inputs(model, as_images(x[:1]))
        one = first.sampling_points(inputs[0])[0].cpu()  # H x W x 9 x 2
        two = second.sampling_points(inputs[1])[0].cpu()
        size = one.shape[0]
        stride = DIGIT_SIZE // size
        _, background = cell_masks(masks[:1], stride, size)
        ys, xs = torch.nonzero(masks[0], as_tuple=True)
        cy = int(min(size - 1, float(ys.float().mean()) // stride))
        cx = int(min(size - 1, float(xs.float().mean()) // stride))
        far = torch.nonzero(background[0])
        if len(far):
            by, bx = far[((far - torch.tensor([cy, cx])) ** 2).sum(1).argmax()].tolist()
        else:
            by, bx = (0, 0)
        for position, (py, px) in zip(POSITIONS, ((cy, cx), (by, bx))):
            taps = one[py, px]
            points[(name, position, LAYERS[0])] = to_image(taps[on_map(taps, size)], stride)
            behind = []
            for ty, tx in two[py, px]:
                if not on_map(torch.stack([ty, tx]), size):
                    continue  # a tap in the zero padding reads nothing: nothing behind it
                qy = round(float(ty.clamp(0, size - 1)))
                qx = round(float(tx.clamp(0, size - 1)))
                behind.append(one[qy, qx][on_map(one[qy, qx], size)])
            behind_points = torch.cat(behind) if behind else torch.zeros(0, 2)
            points[(name, position, LAYERS[1])] = to_image(behind_points, stride)
            plain[(name, position, LAYERS[0])] = to_image(_grid(py, px, 1), stride)
            plain[(name, position, LAYERS[1])] = to_image(_grid(py, px, 2), stride)
            centre[(name, position)] = tuple(to_image(torch.tensor([py, px]).float(), stride).tolist())
            dilation[(name, position)] = float(effective_dilation(taps[None, None, None], size)[0, 0, 0])
    return Gallery(images, points, plain, centre, dilation)
