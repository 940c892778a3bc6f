"""Dense prediction: a label for every pixel. Per-class IoU, and a short training loop.

``train.fit`` classifies whole images; a segmentation-style task (chapter 9's rings) needs a
label per pixel, crops and flips that move labels with pixels, and IoU instead of accuracy.
``SEGMENTATION`` is the task ``experiments.compare`` trains such networks for, with the same
cache, results and paired statistics as classification. The loop shares ``train``'s recipe,
optimiser and schedule
(``sgd_schedule``: SGD with Nesterov momentum, linear warm-up then linear decay, weight decay on
weights only) and its autocast and float16 loss scaling.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from convbook.blocks.validate import check_positive
from convbook.errors import ConfigError, NonFiniteError
from convbook.experiments import Task
from convbook.train import (
    Recipe,
    _autocast,
    _keep_norm_fp32,
    batch_count,
    check_finite_weights,
    check_flag,
    check_model,
    check_recipe,
    check_seed,
    default_amp,
    diverged,
    forward_loss,
    grad_scaler,
    layer_met_nonfinite,
    memory_format_for,
    pick_device,
    seed_everything,
    sgd_schedule,
    step_on,
    synchronize,
)


def check_label_maps(name: str, labels: torch.Tensor, classes: int) -> None:
    """Label maps must be int64 with every label in 0..classes-1 (there is no ignore index): a
    label outside would be skipped by IoU (a NaN mean IoU) and crash the loss."""
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64:
        raise ConfigError(f"{name} must be an int64 tensor of class labels, got "
                          f"{getattr(labels, 'dtype', type(labels).__name__)}; use .long()")
    if labels.numel() and (labels.min() < 0 or labels.max() >= classes):
        low, high = int(labels.min()), int(labels.max())
        bad = low if low < 0 else high
        raise ConfigError(f"{name} holds label {bad} (labels run {low}..{high}); with "
                          f"classes={classes} every label must lie in 0..{classes - 1}")


def iou_per_image(predicted: torch.Tensor, target: torch.Tensor, classes: int) -> torch.Tensor:
    """Intersection over union of each class in each image: N x classes, NaN where a class is
    in neither the prediction nor the target of that image (nothing to score)."""
    if (not isinstance(predicted, torch.Tensor) or not isinstance(target, torch.Tensor)
            or predicted.shape != target.shape or predicted.dim() != 3):
        raise ConfigError(f"predicted and target must both be N x H x W label maps, got "
                          f"{tuple(getattr(predicted, 'shape', ()))} and "
                          f"{tuple(getattr(target, 'shape', ()))}")
    check_positive("classes", classes)
    check_label_maps("predicted", predicted, classes)
    check_label_maps("target", target, classes)
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


# The book's recipe for dense prediction: the classification recipe's shape (SGD with Nesterov
# momentum, warm-up then linear decay, weight decay on weights only) at a smaller batch and
# learning rate, no label smoothing, random horizontal and vertical flips of image and labels
# together (``augment``), and no test-time flips.
DENSE_RECIPE = Recipe(epochs=8, batch_size=32, lr=0.05, label_smoothing=0.0, flip_tta=False)


def describe_recipe(recipe: Recipe) -> str:
    """How ``fit_dense`` trains with ``recipe``, in words (for captions)."""
    return (f"SGD ({'Nesterov ' if recipe.nesterov else ''}momentum {recipe.momentum}), batch "
            f"{recipe.batch_size}, {recipe.epochs} epoch{'s' if recipe.epochs != 1 else ''}, lr "
            f"{recipe.lr} with {recipe.warmup:.0%} warm-up then linear decay, weight decay "
            f"{recipe.weight_decay:g}" + (", random flips" if recipe.augment else "")
            + (f", label smoothing {recipe.label_smoothing}" if recipe.label_smoothing else ""))


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
    device = check_model(model)
    _check_images("images", images)
    check_positive("batch_size", batch_size)
    check_flag("amp", amp)
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].to(device).contiguous(memory_format=memory_format_for(device))
        with _autocast(device, amp):
            out.append(model(x).argmax(1).cpu())
    return torch.cat(out)


def _check_images(name: str, x) -> None:
    """Float N x C x H x W images, all finite: uint8 would fail inside the first convolution,
    and a NaN pixel would read as a diverged run."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() != 4:
        raise ConfigError(f"{name} must be float N x C x H x W images (as synthetic.rings "
                          f"returns), got {getattr(x, 'dtype', type(x).__name__)} of shape "
                          f"{tuple(getattr(x, 'shape', ()))}; uint8 pixels: x.float() / 255, "
                          f"one image: x[None]")
    if not bool(torch.isfinite(x).all()):
        raise ConfigError(f"{name} holds NaN or infinite pixels: fix the data (e.g. "
                          f"torch.nan_to_num) before training")


def _check_split(name: str, split, classes: int) -> None:
    """A split is (images N x C x H x W, labels N x H x W) with labels in 0..classes-1."""
    if isinstance(split, torch.Tensor) or not isinstance(split, (tuple, list)) or len(split) != 2:
        raise ConfigError(f"{name} must be a pair (images N x C x H x W, labels N x H x W), got "
                          f"{type(split).__name__}")
    x, y = split
    _check_images(f"{name} images", x)
    if not isinstance(y, torch.Tensor) or y.dim() != 3 or len(x) != len(y) or x.shape[2:] != y.shape[1:]:
        raise ConfigError(f"{name} must be (images N x C x H x W, labels N x H x W), got "
                          f"{tuple(x.shape)} and {tuple(getattr(y, 'shape', ()))}")
    if len(x) == 0:
        raise ConfigError(f"{name} holds no images")
    check_label_maps(f"{name} labels", y, classes)


@torch.no_grad()
def _check_outputs(model: nn.Module, x: torch.Tensor, classes: int) -> None:
    """The model must score every pixel for every class: N x classes x H x W."""
    model.eval()
    out = model(x)
    want = (1, classes, *x.shape[2:])
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != want:
        raise ConfigError(f"the model must return N x classes x H x W scores, {want} for one "
                          f"image with classes={classes}, got "
                          f"{tuple(getattr(out, 'shape', ())) or type(out).__name__}")


def fit_dense(model: nn.Module, train: tuple[torch.Tensor, torch.Tensor],
              test: tuple[torch.Tensor, torch.Tensor], classes: int,
              recipe: Recipe = DENSE_RECIPE, *, seed: int = 0,
              device: torch.device | None = None, amp: bool | None = None) -> DenseResult:
    """Train ``model`` (images N x C x H x W -> scores N x classes x H x W) on ``train`` with
    per-pixel cross-entropy, then score every ``test`` image's per-class IoU. ``recipe`` is a
    ``train.Recipe``; its ``augment`` means random flips of image and labels together, and
    test-time flips (``flip_tta``) do not apply to label maps. Labels lie in 0..classes-1 (no
    ignore index). As in ``train.fit``, a last batch of a single image is dropped
    (``train.batch_count``) and a loss that stops being finite raises ``train.DivergedError``."""
    check_model(model)
    check_recipe(recipe, "segmentation.DENSE_RECIPE")
    if recipe.ema:
        raise ConfigError("fit_dense does not average weights: use recipe.with_(ema=0.0)")
    if recipe.flip_tta:
        raise ConfigError("flip_tta averages a classifier's logits over mirrored images; a "
                          "label map would have to be mirrored back: use "
                          "recipe.with_(flip_tta=False)")
    check_positive("classes", classes)
    check_seed(seed)
    check_flag("amp", amp, none=True)
    _check_split("train", train, classes)
    _check_split("test", test, classes)
    check_finite_weights(model)
    device = pick_device(device) if device is not None else next(model.parameters()).device
    amp = default_amp(device) if amp is None else amp
    seed_everything(seed)
    generator = torch.Generator().manual_seed(seed)
    fmt = memory_format_for(device)
    model.to(device).to(memory_format=fmt)
    _check_outputs(model, train[0][:1].to(device).contiguous(memory_format=fmt), classes)
    _keep_norm_fp32(model)
    x_all, y_all = train
    per_epoch = batch_count(len(x_all), recipe.batch_size)
    total = per_epoch * recipe.epochs
    optimizer, scheduler = sgd_schedule(model, recipe, total)
    scaler = grad_scaler(device, amp)
    history, start, step = [], time.perf_counter(), 0
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        order = torch.randperm(len(x_all), generator=generator)
        running, seen = 0.0, 0
        for i in range(0, per_epoch * recipe.batch_size, recipe.batch_size):
            index = order[i:i + recipe.batch_size]
            x, y = x_all[index].clone(), y_all[index].clone()
            if recipe.augment:
                x, y = _flip(x, y, generator)
            x = x.to(device).contiguous(memory_format=fmt)
            y = y.to(device)
            try:
                _, loss = forward_loss(model, x, y, partial(
                    F.cross_entropy, label_smoothing=recipe.label_smoothing), device, amp)
            except NonFiniteError as exc:
                raise diverged(layer_met_nonfinite(exc), epoch, step + 1, recipe.lr,
                               first_step=step == 0, batch=x) from None
            if not torch.isfinite(loss):
                raise diverged(f"the loss became {loss.item()}", epoch, step + 1, recipe.lr,
                               first_step=step == 0, batch=x)
            step_on(loss, optimizer, scaler, scheduler)
            step += 1
            running += loss.item() * len(index)
            seen += len(index)
        history.append({"epoch": epoch, "train_loss": running / seen})
    synchronize(device)
    seconds = time.perf_counter() - start
    predicted = predict_labels(model, test[0], amp=amp)
    return DenseResult(iou_per_image(predicted, test[1].cpu(), classes), history, seconds)


def _fit_task(model: nn.Module, data, recipe: Recipe, seed: int, device: torch.device,
              amp: bool, measure_train_error: bool) -> DenseResult:
    if measure_train_error:
        raise ConfigError("measure_train_error is for classification; a segmentation run "
                          "reports its training loss per epoch in its history")
    return fit_dense(model, data.train, data.test, len(data.classes), recipe, seed=seed,
                     device=device, amp=amp)


# What experiments.compare trains for a task with a label per pixel: each test image scored by
# its mean IoU over the classes present in its prediction or target.
def _image_scores(result: DenseResult, data) -> torch.Tensor:
    return mean_iou(result.ious).float()


SEGMENTATION = Task("segmentation", "mean IoU", _fit_task, DenseResult, _image_scores,
                    (__name__,))
