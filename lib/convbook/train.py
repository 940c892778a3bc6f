"""One training loop for every experiment in the book.

Written in the spirit of airbench (Keller Jordan): the whole data set sits on the device as
uint8, batches are cut and augmented there (random crop with 4-pixel padding, horizontal flip),
the model runs in channels_last, and on CUDA under autocast (bfloat16, or float16 with loss
scaling before Ampere). No framework, one function.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from convbook.blocks.validate import check_positive
from convbook.errors import ConfigError

# Per-channel mean and standard deviation of the CIFAR-10 training images (0-255 scale).
CIFAR_MEAN = (125.31, 122.95, 113.87)
CIFAR_STD = (62.99, 62.09, 66.70)


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The given device, else CUDA, else Apple's MPS, else the CPU."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed torch's CPU and CUDA generators (model initialisation draws from them)."""
    torch.manual_seed(seed)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float, centred and scaled per channel."""
    mean = torch.tensor(CIFAR_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() - mean) / std


def augment(images: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop (after ``pad`` pixels of zero padding) and random horizontal flip, per image,
    done on the images' own device."""
    n, _, h, w = images.shape
    device = images.device
    padded = F.pad(images, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=generator.device).to(device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=generator.device).to(device)
    rows = (dy[:, None] + torch.arange(h, device=device))[:, :, None]
    cols = (dx[:, None] + torch.arange(w, device=device))[:, None, :]
    batch = torch.arange(n, device=device)[:, None, None]
    cropped = padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)
    flip = torch.rand(n, generator=generator, device=generator.device).to(device) < 0.5
    return torch.where(flip[:, None, None, None], cropped.flip(3), cropped)


def amp_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 where the GPU computes it natively (Ampere and newer), else float16 (T4, V100)."""
    if device.type == "cuda" and torch.cuda.get_device_capability(device)[0] < 8:
        return torch.float16
    return torch.bfloat16


def _autocast(device: torch.device, enabled: bool):
    return torch.autocast(device_type=device.type, dtype=amp_dtype(device), enabled=enabled)


def memory_format_for(device: torch.device) -> torch.memory_format:
    """channels_last where convolutions run faster in it: CUDA, and the CPU (oneDNN), where it
    measured about 1.4x faster for dense and 2x for grouped convolutions in ci/bench_fit.py's
    setting."""
    return torch.channels_last if device.type in ("cuda", "cpu") else torch.contiguous_format


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor],
    batch_size: int = 1000,
    device: str | torch.device | None = None,
) -> float:
    """Accuracy (0-1) of ``model`` on ``data`` = (uint8 images, labels), in eval mode."""
    device = pick_device(device) if device is not None else next(model.parameters()).device
    images, labels = data
    was_training = model.training
    model.eval()
    correct = 0
    amp = device.type == "cuda"
    memory_format = memory_format_for(device)
    for i in range(0, len(labels), batch_size):
        x = normalize(images[i : i + batch_size].to(device)).contiguous(memory_format=memory_format)
        with _autocast(device, amp):
            logits = model(x)
        correct += (logits.argmax(1) == labels[i : i + batch_size].to(device)).sum().item()
    model.train(was_training)
    return correct / max(len(labels), 1)


@dataclass
class FitResult:
    """What ``fit`` returns: per-epoch history and the final figures."""

    history: list[dict] = field(default_factory=list)
    test_accuracy: float = 0.0
    train_seconds: float = 0.0
    device: str = "cpu"

    @property
    def seconds_per_epoch(self) -> float:
        return self.train_seconds / max(len(self.history), 1)


def _progress_enabled(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    return os.environ.get("CONVBOOK_PROGRESS", "1") != "0"


def fit(
    model: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
    *,
    epochs: int = 10,
    batch_size: int = 256,
    lr: float = 0.2,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    label_smoothing: float = 0.1,
    warmup: float = 0.2,
    augment_data: bool = True,
    device: str | torch.device | None = None,
    seed: int = 0,
    amp: bool | None = None,
    progress: bool | None = None,
) -> FitResult:
    """Train ``model`` on ``train`` = (uint8 N x 3 x 32 x 32 images, labels) and test it.

    SGD with Nesterov momentum; the learning rate rises linearly for the first ``warmup``
    share of steps, then falls linearly to zero. ``amp`` (autocast to bfloat16, or float16
    before Ampere) defaults to on for CUDA; the model runs channels_last on CUDA and the CPU. The progress bar shows unless ``progress=False`` or the
    environment sets CONVBOOK_PROGRESS=0 (as the book's build does).
    Returns a ``FitResult``; the model is trained in place.
    """
    check_positive("epochs", epochs)
    check_positive("batch_size", batch_size)
    if lr <= 0:
        raise ConfigError(f"lr must be > 0, got {lr}; 0.2 suits the book's nets at batch 256")
    images, labels = train
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ConfigError(
            f"train images must be uint8 N x C x H x W (as convbook.data.cifar10 returns), "
            f"got {images.dtype} of shape {tuple(images.shape)}"
        )
    device = pick_device(device)
    amp = device.type == "cuda" if amp is None else amp
    memory_format = memory_format_for(device)
    model.to(device=device, memory_format=memory_format)
    images, labels = images.to(device), labels.to(device)
    generator = torch.Generator(device=device if device.type == "cuda" else "cpu").manual_seed(seed)

    steps_per_epoch = math.ceil(len(labels) / batch_size)
    total_steps = epochs * steps_per_epoch
    warmup_steps = max(1, int(warmup * total_steps))

    def schedule(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / (total_steps - warmup_steps))

    decay, no_decay = [], []
    for p in model.parameters():
        (decay if p.dim() > 1 else no_decay).append(p)
    optimizer = torch.optim.SGD(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0}],
        lr=lr, momentum=momentum, nesterov=True,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    # float16 needs loss scaling to keep small gradients; bfloat16 does not.
    scaler = torch.amp.GradScaler(device.type, enabled=amp and amp_dtype(device) == torch.float16)

    result = FitResult(device=str(device))
    bar = None
    if _progress_enabled(progress):
        from tqdm.auto import tqdm

        bar = tqdm(total=total_steps, desc=type(model).__name__, leave=False)
    for epoch in range(epochs):
        model.train()
        _sync(device)
        start = time.perf_counter()
        order = torch.randperm(len(labels), generator=generator, device=generator.device).to(device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.int64)
        for i in range(0, len(labels), batch_size):
            idx = order[i : i + batch_size]
            batch = images[idx]
            if augment_data:
                batch = augment(batch, generator)
            x = normalize(batch).contiguous(memory_format=memory_format)
            y = labels[idx]
            with _autocast(device, amp):
                logits = model(x)
                loss = criterion(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            loss_sum += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
            if bar is not None:
                bar.update(1)
        _sync(device)
        seconds = time.perf_counter() - start
        result.train_seconds += seconds
        record = {
            "epoch": epoch + 1,
            "train_loss": loss_sum.item() / len(labels),
            "train_accuracy": correct.item() / len(labels),
            "seconds": seconds,
        }
        if test is not None:
            record["test_accuracy"] = evaluate(model, test, device=device)
        result.history.append(record)
        if bar is not None:
            bar.set_postfix(loss=f"{record['train_loss']:.3f}")
    if bar is not None:
        bar.close()
    if test is not None:
        result.test_accuracy = result.history[-1]["test_accuracy"]
    return result
