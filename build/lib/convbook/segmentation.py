"""Dense prediction: a label for every pixel. Per-class IoU, and a short training loop.

``train.fit`` classifies whole images; a segmentation-style task (chapter 9's rings) needs a
label per pixel, crops and flips that move labels with pixels, and IoU instead of accuracy.
The loop is the book's recipe in miniature, sharing ``train``'s optimiser and schedule
(``sgd_schedule``: SGD with Nesterov momentum, linear warm-up then linear decay, weight decay on
weights only) and its autocast and float16 loss scaling.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from convbook.blocks.validate import check_positive
from convbook.errors import ConfigError
from convbook.train import (
    DivergedError,
    _autocast,
    _keep_norm_fp32,
    default_amp,
    grad_scaler,
    memory_format_for,
    seed_everything,
    sgd_schedule,
    synchronize,
)


def iou_per_image(predicted: torch.Tensor, target: torch.Tensor, classes: int) -> torch.Tensor:
    """Intersection over union of each class in each image: N x classes, NaN where a class is
    in neither the prediction nor the target of that image (nothing to score)."""
    if predicted.shape != target.shape or predicted.dim() != 3:
        raise ConfigError(f"predicted and target must both be N x H x W label maps, got "
                          f"{tuple(predicted.shape)} and {tuple(target.shape)}")
    check_positive("classes", classes)
    out = torch.empty(len(target), classes, dtype=torch.float64)
    for c in range(classes):
        p, t = predicted == c, target == c
        inter = (p & t).flatten(1).sum(1).double()
        union = (p | t).flatten(1).sum(1).double()
        out[:, c] = torch.where(union > 0, inter / union.clamp(min=1), torch.nan)
    return out


def mean_iou(ious: torch.Tensor) -> torch.Tensor:
    """Per-image mean over the classes present (rows of ``iou_per_image``)."""
    return ious.nanmean(dim=1)


@dataclass(frozen=True)
class DenseRecipe:
    """How a dense-prediction network is trained (chapter 9 states it beside its results)."""

    epochs: int = 8
    batch_size: int = 32
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    warmup: float = 0.1
    flip: bool = True  # random horizontal and vertical flips of image and labels together

    def __post_init__(self) -> None:
        check_positive("epochs", self.epochs)
        check_positive("batch_size", self.batch_size)
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be a positive number, got {self.lr!r}")
        if not 0 <= self.warmup < 1:
            raise ConfigError(f"warmup must be a share of the steps in [0, 1), got {self.warmup}")

    def describe(self) -> str:
        return (f"SGD (Nesterov {self.momentum}), batch {self.batch_size}, {self.epochs} "
                f"epoch{'s' if self.epochs != 1 else ''}, "
                f"lr {self.lr} with {self.warmup:.0%} warm-up then linear decay, weight decay "
                f"{self.weight_decay:g}" + (", random flips" if self.flip else ""))


@dataclass
class DenseResult:
    """A trained dense-prediction network's scores on every test image."""

    ious: torch.Tensor  # test images x classes, NaN where a class is absent
    history: list[dict] = field(default_factory=list)  # epoch, train_loss
    train_seconds: float = 0.0

    @property
    def miou(self) -> float:
        return float(mean_iou(self.ious).nanmean())

    def class_iou(self, c: int) -> float:
        return float(self.ious[:, c].nanmean())


def _flip(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
    for dim in (-1, -2):
        mask = torch.rand(len(x), generator=generator) < 0.5
        x[mask] = x[mask].flip(dim)
        y[mask] = y[mask].flip(dim)
    return x, y


@torch.no_grad()
def predict_labels(model: nn.Module, images: torch.Tensor, batch_size: int = 256,
                   amp: bool = False) -> torch.Tensor:
    """The most likely class of every pixel: N x H x W (on the CPU)."""
    device = next(model.parameters()).device
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].to(device).contiguous(memory_format=memory_format_for(device))
        with _autocast(device, amp):
            out.append(model(x).argmax(1).cpu())
    return torch.cat(out)


def fit_dense(model: nn.Module, train: tuple[torch.Tensor, torch.Tensor],
              test: tuple[torch.Tensor, torch.Tensor], classes: int,
              recipe: DenseRecipe = DenseRecipe(), *, seed: int = 0,
              device: torch.device | None = None, amp: bool | None = None) -> DenseResult:
    """Train ``model`` (images N x C x H x W -> scores N x classes x H x W) on ``train`` with
    per-pixel cross-entropy, then score every ``test`` image's per-class IoU."""
    for name, (x, y) in (("train", train), ("test", test)):
        if x.dim() != 4 or y.dim() != 3 or x.shape[0] != y.shape[0] or x.shape[2:] != y.shape[1:]:
            raise ConfigError(f"{name} must be (images N x C x H x W, labels N x H x W), got "
                              f"{tuple(x.shape)} and {tuple(y.shape)}")
        if len(x) == 0:
            raise ConfigError(f"{name} holds no images")
    device = device or next(model.parameters()).device
    amp = default_amp(device) if amp is None else amp
    seed_everything(seed)
    generator = torch.Generator().manual_seed(seed)
    fmt = memory_format_for(device)
    model.to(device).to(memory_format=fmt)
    _keep_norm_fp32(model)
    x_all, y_all = train
    total = math.ceil(len(x_all) / recipe.batch_size) * recipe.epochs
    optimizer, scheduler = sgd_schedule(model, recipe, total)
    scaler = grad_scaler(device, amp)
    history, start = [], time.perf_counter()
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        order = torch.randperm(len(x_all), generator=generator)
        running, seen = 0.0, 0
        for i in range(0, len(order), recipe.batch_size):
            index = order[i:i + recipe.batch_size]
            x, y = x_all[index].clone(), y_all[index].clone()
            if recipe.flip:
                x, y = _flip(x, y, generator)
            x = x.to(device).contiguous(memory_format=fmt)
            y = y.to(device)
            with _autocast(device, amp):
                loss = F.cross_entropy(model(x).float(), y)
            if not torch.isfinite(loss):
                raise DivergedError(f"the loss became {loss.item()} in epoch {epoch}; lower lr "
                                    f"(now {recipe.lr})")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            running += loss.item() * len(index)
            seen += len(index)
        history.append({"epoch": epoch, "train_loss": running / seen})
    synchronize(device)
    seconds = time.perf_counter() - start
    predicted = predict_labels(model, test[0], amp=amp)
    return DenseResult(iou_per_image(predicted, test[1].cpu(), classes), history, seconds)
