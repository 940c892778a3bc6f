"""One training loop for every experiment in the book, and the recipe it follows.

Written in the spirit of airbench (Keller Jordan): the whole data set sits on the device as
uint8, batches are cut and augmented there (random crop with 4-pixel padding, horizontal flip),
the model runs in channels_last, and on CUDA under autocast (bfloat16, or float16 with loss
scaling before Ampere) with batch norm kept in float32. No framework, one function.

The recipe (``RECIPE``) is the book's: SGD with Nesterov momentum, a short linear warm-up and a
linear decay to zero, label smoothing, weight decay on weights only, and test-time flip
augmentation. ``ci/bench_fit.py`` measures what each part buys; the book's "Training recipe"
page states it for readers.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

from convbook.blocks.validate import check_positive
from convbook.errors import ConfigError

# Per-channel mean and standard deviation of the CIFAR-10 training images (0-255 scale).
CIFAR_MEAN = (125.31, 122.95, 113.87)
CIFAR_STD = (62.99, 62.09, 66.70)


class DivergedError(ConfigError):
    """Training produced a loss that is not a finite number: the run is not a result."""


@dataclass(frozen=True)
class Recipe:
    """Everything about optimisation that shapes a run's result (the cache key includes it).

    ``epochs`` passes over the training set at ``batch_size``; the learning rate rises
    linearly from 0 to ``lr`` over the first ``warmup`` share of steps, then falls linearly
    to 0. ``flip_tta`` averages the logits of each test image and its mirror image.
    """

    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.3
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    warmup: float = 0.1
    augment: bool = True
    flip_tta: bool = True

    def __post_init__(self) -> None:
        check_positive("epochs", self.epochs)
        check_positive("batch_size", self.batch_size)
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be a finite number > 0, got {self.lr!r}; "
                              f"{RECIPE_LR} suits the book's nets at batch 64")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1), got {self.momentum!r}; try 0.9")
        if self.nesterov and self.momentum == 0:
            raise ConfigError("Nesterov momentum needs momentum > 0: set momentum=0.9, "
                              "or nesterov=False")
        if not self.weight_decay >= 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay!r}; try 5e-4")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"label_smoothing must be in [0, 1), got "
                              f"{self.label_smoothing!r}; try 0.1, or 0 for none")
        if not 0 <= self.warmup < 1:
            raise ConfigError(f"warmup is a share of the steps in [0, 1), got {self.warmup!r}; "
                              f"try 0.1")

    def with_(self, **changes) -> Recipe:
        """A copy with some fields changed (e.g. more epochs for one experiment)."""
        unknown = set(changes) - set(asdict(self))
        if unknown:
            raise ConfigError(f"unknown recipe field(s) {sorted(unknown)}; fields: "
                              f"{', '.join(asdict(self))}")
        return replace(self, **changes)

    def describe(self) -> str:
        nesterov = "Nesterov " if self.nesterov else ""
        return (f"SGD ({nesterov}momentum {self.momentum}), batch {self.batch_size}, "
                f"{self.epochs} epochs, lr {self.lr} with {self.warmup:.0%} linear warm-up then "
                f"linear decay to 0, weight decay {self.weight_decay} (weights only), label "
                f"smoothing {self.label_smoothing}, "
                f"{'random crop + flip' if self.augment else 'no augmentation'}"
                f"{', flip test-time augmentation' if self.flip_tta else ''}")


RECIPE_LR = 0.3
RECIPE = Recipe()


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The given device (checked to exist), else CUDA, else Apple's MPS, else the CPU."""
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device {device!r} is not a device name ({exc}); use 'cpu', 'cuda' "
                          f"or 'mps', or None to pick the best available") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but this machine has no usable CUDA GPU; "
                          "use device=None (picks what exists) or 'cpu'")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None)
                                     and torch.backends.mps.is_available()):
        raise ConfigError("device 'mps' was asked for but Apple's MPS is not available here; "
                          "use device=None or 'cpu'")
    return device


def seed_everything(seed: int) -> None:
    """Seed torch's CPU and CUDA generators (model initialisation draws from them)."""
    torch.manual_seed(seed)


_NORM_CONSTANTS: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}


def _norm_constants(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and 1/std on ``device``, made once per device (no host-to-device copy per batch)."""
    if device not in _NORM_CONSTANTS:
        mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1).to(device)
        inv_std = (1 / torch.tensor(CIFAR_STD)).view(1, 3, 1, 1).to(device)
        _NORM_CONSTANTS[device] = (mean, inv_std)
    return _NORM_CONSTANTS[device]


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float, centred and scaled per channel."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ConfigError(f"images must be N x 3 x H x W (channels first), got shape "
                          f"{tuple(images.shape)}; for N x H x W x 3 use images.permute(0, 3, 1, 2)")
    mean, inv_std = _norm_constants(images.device)
    return (images.float() - mean) * inv_std


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
    """bfloat16 where the GPU computes it natively (Ampere and newer) and on the CPU, else
    float16 (T4, V100)."""
    if device.type == "cuda" and torch.cuda.get_device_capability(device)[0] < 8:
        return torch.float16
    return torch.bfloat16


def native_bf16_cpu() -> bool:
    """True when this CPU computes bfloat16 natively (AVX512-BF16 or AMX): autocast to bfloat16
    then trains the book's small nets about 1.6x faster (measured in ci/bench_fit.py); on other
    CPUs it would be slower, so it stays off there."""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = handle.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def default_amp(device: torch.device) -> bool:
    """Mixed precision by default on CUDA and on CPUs with native bfloat16."""
    return device.type == "cuda" or (device.type == "cpu" and native_bf16_cpu())


def precision_text(device: torch.device, amp: bool) -> str:
    """The arithmetic training runs in, for captions and records: "bfloat16 autocast on cpu",
    "float16 autocast on cuda", "float32 on mps"."""
    if amp:
        return f"{str(amp_dtype(device)).replace('torch.', '')} autocast on {device.type}"
    return f"float32 on {device.type}"


def _autocast(device: torch.device, enabled: bool):
    if not enabled:  # older torch refuses autocast(device_type="mps", enabled=False)
        return torch.autocast("cpu", enabled=False)
    return torch.autocast(device_type=device.type, dtype=amp_dtype(device))


def memory_format_for(device: torch.device) -> torch.memory_format:
    """channels_last where convolutions run faster in it: CUDA, and the CPU (oneDNN), where it
    measured about 1.4x faster for dense and 2x for grouped convolutions in ci/bench_fit.py's
    setting."""
    return torch.channels_last if device.type in ("cuda", "cpu") else torch.contiguous_format


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work (CUDA or MPS), so that a timer measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _check_data(name: str, data: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Refuse what would train or score silently wrong: the message says what fits."""
    try:
        images, labels = data
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a pair (uint8 images, int64 labels), as "
                          f"convbook.data.cifar10 returns") from None
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
        raise ConfigError(
            f"{name} images must be uint8 N x 3 x H x W (as convbook.data.cifar10 returns), got "
            f"{getattr(images, 'dtype', type(images).__name__)} of shape "
            f"{tuple(getattr(images, 'shape', ()))}")
    if images.shape[1] != 3:
        raise ConfigError(f"{name} images must have 3 channels first (N x 3 x H x W), got shape "
                          f"{tuple(images.shape)}; HWC images need .permute(0, 3, 1, 2)")
    if len(images) == 0:
        raise ConfigError(f"{name} holds no images: pass at least one")
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64 or labels.dim() != 1:
        raise ConfigError(f"{name} labels must be a 1-D int64 tensor, got "
                          f"{getattr(labels, 'dtype', type(labels).__name__)}; use labels.long()")
    if len(labels) != len(images):
        raise ConfigError(f"{name} has {len(images)} images but {len(labels)} labels: "
                          f"they must pair one to one")


@torch.no_grad()
def predict(
    model: nn.Module,
    images: torch.Tensor,
    batch_size: int = 200,
    flip_tta: bool = False,
    amp: bool | None = None,
) -> torch.Tensor:
    """Predicted class of each image (uint8 N x 3 x H x W), in eval mode; with ``flip_tta``
    the logits of each image and its mirror image are averaged."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    amp = default_amp(device) if amp is None else amp
    memory_format = memory_format_for(device)
    out = []
    for i in range(0, len(images), batch_size):
        x = normalize(images[i : i + batch_size].to(device)).contiguous(memory_format=memory_format)
        with _autocast(device, amp):
            logits = model(x).float()
            if flip_tta:
                logits = logits + model(x.flip(3)).float()
        out.append(logits.argmax(1))
    model.train(was_training)
    return torch.cat(out)


def evaluate(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor],
    batch_size: int = 200,
    flip_tta: bool = False,
) -> float:
    """Accuracy (0-1) of ``model`` on ``data`` = (uint8 images, labels), in eval mode."""
    _check_data("data", data)
    images, labels = data
    predicted = predict(model, images, batch_size, flip_tta)
    return (predicted.cpu() == labels.cpu()).float().mean().item()


@dataclass
class FitResult:
    """What ``fit`` returns: per-epoch history, the final figures, and the test predictions
    (one predicted class per test image, in the test set's order) that paired comparisons use."""

    history: list[dict] = field(default_factory=list)
    test_accuracy: float = 0.0
    train_seconds: float = 0.0
    device: str = "cpu"
    predictions: torch.Tensor | None = None
    final_train_error: float | None = None

    @property
    def steps(self) -> int:
        return sum(record["steps"] for record in self.history)


def _progress_enabled(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    return os.environ.get("CONVBOOK_PROGRESS", "1") != "0"


def _keep_norm_fp32(model: nn.Module) -> None:
    """Batch norm's statistics and affine parameters stay float32 (autocast runs it in fp32)."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.float()


def sgd_schedule(model: nn.Module, recipe, total_steps: int):
    """The recipe's optimiser and learning-rate schedule: SGD (momentum, Nesterov as the
    recipe says), weight decay on weights only (not biases or norms), the rate rising linearly
    over the first ``warmup`` share of ``total_steps``, then falling linearly to 0. ``recipe``
    is a ``Recipe`` (classification's, or ``segmentation.DENSE_RECIPE``)."""
    warmup_steps = int(recipe.warmup * total_steps)

    def schedule(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return (total_steps - step) / (total_steps - warmup_steps)

    decay, no_decay = [], []
    for p in model.parameters():
        (decay if p.dim() > 1 else no_decay).append(p)
    optimizer = torch.optim.SGD(
        [{"params": decay, "weight_decay": recipe.weight_decay},
         {"params": no_decay, "weight_decay": 0}],
        lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov,
    )
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def step_on(loss: torch.Tensor, optimizer, scaler: torch.amp.GradScaler, scheduler) -> None:
    """One optimiser step on ``loss``: gradients (scaled where float16 needs it), the update,
    and the learning-rate schedule's next step. Every training loop of the book takes it."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()


def grad_scaler(device: torch.device, amp: bool) -> torch.amp.GradScaler:
    """Loss scaling where autocast runs in float16 (GPUs without bfloat16), which needs it to
    keep small gradients; bfloat16 does not."""
    return torch.amp.GradScaler(device.type, enabled=amp and amp_dtype(device) == torch.float16)


def fit(
    model: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
    recipe: Recipe = RECIPE,
    *,
    device: str | torch.device | None = None,
    seed: int = 0,
    amp: bool | None = None,
    progress: bool | None = None,
    measure_train_error: bool = False,
    **changes,
) -> FitResult:
    """Train ``model`` on ``train`` = (uint8 N x 3 x 32 x 32 images, labels) by ``recipe``
    (fields can be overridden by keyword, e.g. ``epochs=3``) and test it once at the end.

    ``amp`` (autocast to bfloat16, or float16 before Ampere) defaults to on for CUDA and for
    CPUs with native bfloat16 (``default_amp``). The model runs channels_last on CUDA and the CPU.
    ``measure_train_error`` adds the error on the unaugmented training images with the final
    weights (what "a network trains worse" is about). A loss that stops being finite raises
    ``DivergedError``: a diverged run is never returned as a result. The progress bar shows
    unless ``progress=False`` or CONVBOOK_PROGRESS=0 (as the book's build sets).
    """
    recipe = recipe.with_(**changes) if changes else recipe
    _check_data("train", train)
    if test is not None:
        _check_data("test", test)
    images, labels = train
    n_classes = _n_outputs(model)
    for name, part in (("train", train), ("test", test)):
        if part is not None and n_classes and (part[1].min() < 0 or part[1].max() >= n_classes):
            raise ConfigError(f"{name} labels must lie in 0..{n_classes - 1} (the model has "
                              f"{n_classes} outputs), found {int(part[1].min())}.."
                              f"{int(part[1].max())}")
    device = pick_device(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    amp = default_amp(device) if amp is None else amp
    memory_format = memory_format_for(device)
    model.to(device=device, memory_format=memory_format)
    if amp:
        _keep_norm_fp32(model)
    images, labels = images.to(device), labels.to(device)
    generator = torch.Generator(device=device if device.type == "cuda" else "cpu").manual_seed(seed)

    steps_per_epoch = math.ceil(len(labels) / recipe.batch_size)
    total_steps = recipe.epochs * steps_per_epoch
    optimizer, scheduler = sgd_schedule(model, recipe, total_steps)
    criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    scaler = grad_scaler(device, amp)

    result = FitResult(device=str(device))
    bar = None
    if _progress_enabled(progress):
        from tqdm.auto import tqdm

        bar = tqdm(total=total_steps, desc=type(model).__name__, leave=False)
    step = 0
    for epoch in range(recipe.epochs):
        model.train()
        synchronize(device)
        start = time.perf_counter()
        order = torch.randperm(len(labels), generator=generator, device=generator.device).to(device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.int64)
        for i in range(0, len(labels), recipe.batch_size):
            idx = order[i : i + recipe.batch_size]
            batch = images[idx]
            if recipe.augment:
                batch = augment(batch, generator)
            x = normalize(batch).contiguous(memory_format=memory_format)
            y = labels[idx]
            with _autocast(device, amp):
                logits = model(x)
                loss = criterion(logits.float(), y)
            step_on(loss, optimizer, scaler, scheduler)
            loss_sum += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
            step += 1
            if bar is not None:
                bar.update(1)
        synchronize(device)
        seconds = time.perf_counter() - start
        result.train_seconds += seconds
        mean_loss = loss_sum.item() / len(labels)
        if not math.isfinite(mean_loss):
            if bar is not None:
                bar.close()
            raise DivergedError(
                f"the training loss became {mean_loss} in epoch {epoch + 1} (by step {step}) at "
                f"lr {recipe.lr}: the run diverged and is not a result. Try a smaller lr "
                f"(e.g. {recipe.lr / 4:g}) or a longer warm-up.")
        result.history.append({
            "epoch": epoch + 1,
            "steps": steps_per_epoch,
            "train_loss": mean_loss,
            "train_accuracy": correct.item() / len(labels),
        })
        if bar is not None:
            bar.set_postfix(loss=f"{mean_loss:.3f}")
    if bar is not None:
        bar.close()
    if test is not None:
        predicted = predict(model, test[0], flip_tta=recipe.flip_tta, amp=amp).cpu()
        result.predictions = predicted.to(torch.int16)
        result.test_accuracy = (predicted == test[1].cpu()).float().mean().item()
    if measure_train_error:
        train_predicted = predict(model, train[0], amp=amp).cpu()
        result.final_train_error = (train_predicted != train[1].cpu()).float().mean().item()
    return result


def _n_outputs(model: nn.Module) -> int | None:
    """The number of classes the model's last linear layer predicts, if it has one."""
    last = None
    for module in model.modules():
        if isinstance(module, nn.Linear):
            last = module
    return last.out_features if last is not None else None
