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
import numbers
import os
import time
from dataclasses import asdict, dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

from convbook.blocks.validate import check_positive
from convbook.errors import ConfigError, NonFiniteError

# Per-channel mean and standard deviation of the CIFAR-10 training images (0-255 scale).
CIFAR_MEAN = (125.31, 122.95, 113.87)
CIFAR_STD = (62.99, 62.09, 66.70)


class DivergedError(ConfigError):
    """Training produced a loss that is not a finite number: the run is not a result."""


RECIPE_LR = 0.3

# Recipe's number fields: (what the value must be, when it is, a value that works)
_NUMBER_FIELDS = {
    "lr": ("lr must be a finite number > 0", lambda v: v > 0,
           f"{RECIPE_LR} suits the book's nets at batch 64"),
    "momentum": ("momentum must be in [0, 1)", lambda v: 0 <= v < 1, "try 0.9"),
    "weight_decay": ("weight_decay must be >= 0 and finite", lambda v: v >= 0,
                     "try 5e-4, or 0 for none"),
    "label_smoothing": ("label_smoothing must be in [0, 1)", lambda v: 0 <= v < 1,
                        "try 0.1, or 0 for none"),
    "warmup": ("warmup is a share of the steps in [0, 1)", lambda v: 0 <= v < 1, "try 0.1"),
    "ema": ("ema is the decay of a moving average of the weights, in [0, 1) (0: none)",
            lambda v: 0 <= v < 1, "try 0.99, or 0 for none"),
}
# Recipe's switches: what True and False mean
_FLAG_FIELDS = {
    "nesterov": "True (Nesterov momentum) or False (plain momentum)",
    "augment": "True (random crop + flip; random flips of image and labels in "
               "segmentation.fit_dense) or False (no augmentation)",
    "flip_tta": "True (average each test image's logits with its mirror image's) or False",
    "shift_tta": "True (also average the logits of the test image moved one pixel along the "
                 "diagonal each way, edges reflected) or False",
    "alternate_flip": "True (each image flipped in every other epoch, starting at random) or "
                      "False (flipped at random in each epoch)",
    "whiten": "True (the first convolution of the image starts as frozen whitening filters of "
              "the training patches) or False (its default initialisation, trained)",
}


def check_flag(name: str, value, meaning: str = "True or False", none: bool = False) -> None:
    """Refuse a switch that is not a bool: ``"no"`` or ``0`` would be read silently as a truth
    value. ``none`` also allows None (let the function decide)."""
    if not (isinstance(value, bool) or (none and value is None)):
        raise ConfigError(f"{name} must be {meaning}{' or None' if none else ''}, got {value!r}")


def check_seed(seed) -> None:
    """Seeds are whole numbers (torch's generators take nothing else)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ConfigError(f"seed must be a whole number, got {seed!r}; e.g. seed=0")


@dataclass(frozen=True)
class Recipe:
    """Everything about optimisation that shapes a run's result (the cache key includes it).

    ``epochs`` passes over the training set at ``batch_size``; the learning rate rises
    linearly from 0 to ``lr`` over the first ``warmup`` share of steps, then falls linearly
    to 0. ``flip_tta`` averages the logits of each test image and its mirror image. ``ema``
    (when > 0) keeps an exponential moving average of the weights and batch-norm statistics,
    updated after every step with this decay, and ends the run with it. Every
    field is checked on creation (type, finiteness, range), so a recipe that exists can train.
    """

    epochs: int = 10
    batch_size: int = 64
    lr: float = RECIPE_LR
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    warmup: float = 0.1
    augment: bool = True
    flip_tta: bool = True
    ema: float = 0.0
    low_res_epochs: int = 0
    low_res: int = 20
    alternate_flip: bool = False
    whiten: bool = False
    shift_tta: bool = False

    def __post_init__(self) -> None:
        check_positive("epochs", self.epochs)
        check_positive("low_res", self.low_res)
        if (isinstance(self.low_res_epochs, bool) or not isinstance(self.low_res_epochs, int)
                or not 0 <= self.low_res_epochs < self.epochs):
            raise ConfigError(f"low_res_epochs is how many of the first epochs train on "
                              f"smaller images, from 0 to epochs - 1, got {self.low_res_epochs!r}")
        check_positive("batch_size", self.batch_size)
        for name, (must, within, hint) in _NUMBER_FIELDS.items():
            value = getattr(self, name)
            number = (not isinstance(value, bool) and isinstance(value, numbers.Real)
                      and math.isfinite(value))
            if not (number and within(value)):
                raise ConfigError(f"{must}, got {value!r}; {hint}")
        for name, meaning in _FLAG_FIELDS.items():
            check_flag(name, getattr(self, name), meaning)
        if self.nesterov and self.momentum == 0:
            raise ConfigError("Nesterov momentum needs momentum > 0: set momentum=0.9, "
                              "or nesterov=False")

    @property
    def test_passes(self) -> int:
        """Forward passes per test image: 1, doubled by ``flip_tta``, tripled by ``shift_tta``
        (``predict``'s views; cost estimates count them)."""
        return (2 if self.flip_tta else 1) * (3 if self.shift_tta else 1)

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
                f"{', flip test-time augmentation' if self.flip_tta else ''}"
                f"{', one-pixel shifts at test time' if self.shift_tta else ''}"
                f"{f', weights averaged (EMA, decay {self.ema})' if self.ema else ''}"
                f"{', flips alternating by epoch' if self.alternate_flip else ''}"
                f"{', whitened first convolution (frozen)' if self.whiten else ''}")


RECIPE = Recipe()


def check_recipe(recipe, example: str = "train.RECIPE") -> None:
    """A recipe passed to a training loop must be a ``Recipe`` (whose fields are checked): a
    dict or a profile would fail later, deep inside, or be half read."""
    if not isinstance(recipe, Recipe):
        hint = f"; for a dict use {example}.with_(**settings)" if isinstance(recipe, dict) else ""
        raise ConfigError(f"recipe must be a train.Recipe (e.g. {example}), got "
                          f"{type(recipe).__name__}{hint}")


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
    check_seed(seed)
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


def augment(images: torch.Tensor, generator: torch.Generator, pad: int = 4,
            flip: torch.Tensor | None = None) -> torch.Tensor:
    """Random crop (after ``pad`` pixels of zero padding) and horizontal flip, per image, done
    on the images' own device: at random, or where the boolean ``flip`` (one per image) says."""
    n, _, h, w = images.shape
    device = images.device
    padded = F.pad(images, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=generator.device).to(device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=generator.device).to(device)
    rows = (dy[:, None] + torch.arange(h, device=device))[:, :, None]
    cols = (dx[:, None] + torch.arange(w, device=device))[:, None, :]
    batch = torch.arange(n, device=device)[:, None, None]
    cropped = padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)
    if flip is None:
        flip = torch.rand(n, generator=generator, device=generator.device).to(device) < 0.5
    return torch.where(flip.to(device)[:, None, None, None], cropped.flip(3), cropped)


def first_image_conv(model: nn.Module) -> nn.Conv2d | None:
    """The model's first dense convolution of the 3-channel image (its stem), or None."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and module.in_channels == 3 and module.groups == 1:
            return module
    return None


@torch.no_grad()
def whiten_stem(model: nn.Module, images: torch.Tensor, eps: float = 5e-4,
                patches: int = 50_000, seed: int = 0) -> nn.Conv2d | None:
    """Set the stem's weights to whitening filters of the images' patches and freeze them
    (airbench's patch-whitening initialisation, for any kernel size and dilation).

    The patches the stem sees (its kernel and dilation, ``patches`` of them drawn at random
    from normalised ``images``) give a covariance; its eigenvectors with the largest
    eigenvalues, each divided by the square root of its eigenvalue (+ ``eps``), become the
    filters, each with its negative beside it, so that a ReLU after the stem keeps both signs.
    Filters beyond twice the patch dimension keep their default (random) initialisation; the
    whole stem is frozen.
    Returns the stem, or None when the model has no dense convolution of the image."""
    conv = first_image_conv(model)
    if conv is None:
        return None
    generator = torch.Generator().manual_seed(seed)
    x = normalize(images[: min(len(images), 1_000)].cpu())  # ~0.1 GB of 3x3 patches, then sampled
    cols = F.unfold(x, conv.kernel_size, dilation=conv.dilation)  # N x (3 k k) x L
    cols = cols.transpose(1, 2).reshape(-1, cols.shape[1]).double()
    cols = cols[torch.randperm(len(cols), generator=generator)[:patches]]
    values, vectors = torch.linalg.eigh(torch.cov(cols.T))  # ascending eigenvalues
    order = values.flip(0).clamp(min=0)
    filters = (vectors.flip(1) / (order + eps).sqrt()).T  # rows: largest eigenvalue first
    pairs = min(conv.out_channels // 2, len(filters))
    weight = conv.weight.detach().clone()
    whitened = torch.stack([filters[:pairs], -filters[:pairs]], 1).reshape(2 * pairs, -1)
    weight[: 2 * pairs] = whitened.view(2 * pairs, *weight.shape[1:]).to(weight)
    conv.weight.copy_(weight)
    conv.weight.requires_grad_(False)  # fit turns it back on when the run ends
    return conv


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


def check_model(model) -> torch.device:
    """The device of ``model``'s weights; refuses a class (not an instance) or a model with no
    weights, which would fail later with a bare StopIteration."""
    if not isinstance(model, nn.Module):
        hint = (f"; call it to build one, e.g. {model.__name__}(...)"
                if isinstance(model, type) and issubclass(model, nn.Module) else "")
        raise ConfigError(f"model must be an nn.Module instance, got "
                          f"{getattr(model, '__name__', type(model).__name__)}{hint}")
    first = next(model.parameters(), None)
    if first is None:
        raise ConfigError(f"model ({type(model).__name__}) has no parameters: there is nothing "
                          f"to train, and no device to run it on")
    return first.device


def _check_images(name: str, images) -> None:
    """uint8 N x 3 x H x W, as ``data.cifar10`` returns: floats would be normalised as if they
    were 0-255 pixels, so [0, 1] images would read as almost black."""
    noun = "images" if name == "images" else f"{name} images"
    what = f"{noun} must be uint8 N x 3 x H x W (as convbook.data.cifar10 returns)"
    if not isinstance(images, torch.Tensor):
        raise ConfigError(f"{what}, got {type(images).__name__}")
    if images.is_floating_point():
        raise ConfigError(f"{what}, got {images.dtype}: convert [0, 1] floats with "
                          f"(x * 255).round().to(torch.uint8), 0-255 floats with "
                          f"x.round().to(torch.uint8)")
    if images.dim() == 3:
        raise ConfigError(f"{what}, got one image of shape {tuple(images.shape)}: add the batch "
                          f"dimension, images[None] (or images.unsqueeze(0))")
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ConfigError(f"{what}, got {images.dtype} of shape {tuple(images.shape)}")
    if images.shape[1] != 3:
        raise ConfigError(f"{noun} must have 3 channels first (N x 3 x H x W), got shape "
                          f"{tuple(images.shape)}; HWC images need .permute(0, 3, 1, 2)")
    if len(images) == 0:
        raise ConfigError(f"{'the batch' if name == 'images' else name} holds no images: "
                          f"pass at least one")


def _check_data(name: str, data: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Refuse what would train or score silently wrong: the message says what fits."""
    if isinstance(data, torch.Tensor) or not isinstance(data, (tuple, list)) or len(data) != 2:
        if hasattr(data, name):
            hint = f"; pass its .{name}"
        elif isinstance(data, (tuple, list)) and data and isinstance(data[0], (tuple, list)):
            hint = ("; a list of (image, label) samples needs stacking: (torch.stack(images), "
                    "torch.tensor(labels))")
        else:
            hint = ""
        raise ConfigError(f"{name} must be a tuple (uint8 images N x 3 x H x W, int64 labels), "
                          f"as convbook.data.cifar10 returns, got {type(data).__name__}"
                          f"{f' of length {len(data)}' if isinstance(data, (tuple, list)) else ''}"
                          f"{hint}")
    images, labels = data
    _check_images(name, images)
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64 or labels.dim() != 1:
        raise ConfigError(f"{name} labels must be a 1-D int64 tensor, got "
                          f"{getattr(labels, 'dtype', type(labels).__name__)} of shape "
                          f"{tuple(getattr(labels, 'shape', ()))}; use labels.long()")
    if len(labels) != len(images):
        raise ConfigError(f"{name} has {len(images)} images but {len(labels)} labels: "
                          f"they must pair one to one")


def batch_count(n: int, batch_size: int) -> int:
    """Training batches per epoch over ``n`` examples. Incomplete batches are kept (a smaller
    training set still trains every example), except a last batch of a single example when
    there are earlier ones: batch norm cannot normalise one value per channel (after pooling),
    and one image makes a step of pure noise. So an epoch sees ``n - 1`` examples then."""
    full, rest = divmod(n, batch_size)
    return full + (rest > 1 or n == 1)


def nonfinite_weight(model: nn.Module) -> str | None:
    """The name of the first parameter or buffer holding NaN or infinity, None if none does."""
    for name, tensor in (*model.named_parameters(), *model.named_buffers()):
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return name
    return None


def check_finite_weights(model: nn.Module) -> None:
    """Refuse to train weights that are already NaN or infinite: no lr could help."""
    name = nonfinite_weight(model)
    if name is not None:
        raise ConfigError(f"the model's weights are not finite before training ({name} holds "
                          f"NaN or infinity): no loss can be finite whatever the lr; rebuild the "
                          f"model, or check the weights it loaded")


def diverged(what: str, epoch: int, step: int, lr: float, *, first_step: bool,
             batch: torch.Tensor | None = None) -> DivergedError:
    """The error for a loss (or a layer) that stopped being finite, with advice that blames the
    lr only when it can be to blame: not when the batch itself holds NaN or infinity, and not
    at the first step, before any update (the weights were checked finite at the start)."""
    if batch is not None and batch.is_floating_point() and not bool(torch.isfinite(batch).all()):
        advice = "The input batch itself holds NaN or infinity: fix the data (not the lr)."
    elif first_step:
        advice = ("It happened at the first step, before any update, with finite weights and "
                  "data: the lr is not the cause; look for an overflow, a log or a division by "
                  "zero in the model's forward pass.")
    else:
        advice = f"Try a smaller lr (e.g. {lr / 4:g}) or a longer warm-up."
    return DivergedError(f"{what} in epoch {epoch} (by step {step}) at lr {lr}: the run "
                         f"diverged and is not a result. {advice}")


def layer_met_nonfinite(exc: Exception) -> str:
    """What a NonFiniteError says happened, without its own advice (``diverged`` gives it)."""
    return f"a layer met NaN or infinity ({str(exc).split(';')[0]})"


def forward_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn,
                 device: torch.device, amp: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores and loss of one training batch under autocast. Batch norm's refusal of a batch
    with one value per channel becomes a ConfigError that says what to change."""
    try:
        with _autocast(device, amp):
            logits = model(x)
            return logits, loss_fn(logits.float(), y)
    except ValueError as exc:
        if isinstance(exc, ConfigError) or "more than 1 value per channel" not in str(exc):
            raise
        raise ConfigError(f"batch norm cannot normalise a batch of {len(x)} image(s) with one "
                          f"value per channel (maps pooled to 1x1): use batch_size >= 2 and at "
                          f"least 2 training images") from None


def _views_logits(model: nn.Module, x: torch.Tensor, flip: bool) -> torch.Tensor:
    """The model's logits for ``x``, plus those of its mirror image when ``flip``."""
    logits = model(x).float()
    return logits + model(x.flip(3)).float() if flip else logits


@torch.no_grad()
def predict(
    model: nn.Module,
    images: torch.Tensor,
    batch_size: int = 200,
    flip_tta: bool = False,
    amp: bool | None = None,
    shift_tta: bool = False,
) -> torch.Tensor:
    """Predicted class of each image (uint8 N x 3 x H x W), in eval mode; with ``flip_tta``
    the logits of each image and its mirror image are averaged. ``shift_tta`` adds two views
    of each image moved by one pixel along the diagonal, one each way (the edge reflected),
    each with its mirror when ``flip_tta``: the unshifted views weigh one half, the shifted the
    other. Images under two pixels a side have no shifted views (reflection needs two)."""
    device = check_model(model)
    _check_images("images", images)
    check_positive("batch_size", batch_size)
    check_flag("flip_tta", flip_tta)
    check_flag("shift_tta", shift_tta)
    check_flag("amp", amp, none=True)
    was_training = model.training
    model.eval()
    amp = default_amp(device) if amp is None else amp
    memory_format = memory_format_for(device)
    out = []
    for i in range(0, len(images), batch_size):
        x = normalize(images[i : i + batch_size].to(device)).contiguous(memory_format=memory_format)
        with _autocast(device, amp):
            logits = _views_logits(model, x, flip_tta)
            if shift_tta and min(x.shape[2:]) > 1:  # reflection needs two pixels a side
                padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
                shifted = (_views_logits(model, padded[:, :, :-2, :-2], flip_tta)
                           + _views_logits(model, padded[:, :, 2:, 2:], flip_tta))
                logits = logits + shifted / 2
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
    (one predicted class per test image, in the test set's order) that paired comparisons use.
    ``test_accuracy`` and ``predictions`` are None when ``fit`` had no test set: 0.0 would read
    as a result."""

    history: list[dict] = field(default_factory=list)
    test_accuracy: float | None = None
    train_seconds: float = 0.0
    device: str = "cpu"
    predictions: torch.Tensor | None = None
    final_train_error: float | None = None

    @property
    def steps(self) -> int:
        return sum(record["steps"] for record in self.history)

    def describe(self) -> str:
        """One line for a log: the test accuracy, or that there was no test set."""
        tested = ("no test set" if self.test_accuracy is None
                  else f"{100 * self.test_accuracy:.1f} % test accuracy")
        loss = f", final training loss {self.history[-1]['train_loss']:.3f}" if self.history else ""
        return f"{tested} after {len(self.history)} epochs ({self.train_seconds:.1f} s{loss})"


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
    is a ``Recipe`` (classification's, or ``segmentation.DENSE_RECIPE``).

    A parameter may carry ``lr_multiplier`` (set by the block that owns it, e.g. a deformable
    layer's offset branch, which DCNv2 trains at a tenth of the rate; DCNv1 leaves the factor
    at 1 by default): it trains at
    ``recipe.lr`` times that, on the same schedule. It must be a finite number > 0."""
    check_recipe(recipe)
    check_positive("total_steps", total_steps)
    warmup_steps = int(recipe.warmup * total_steps)

    def schedule(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return (total_steps - step) / (total_steps - warmup_steps)

    groups: dict[tuple[bool, float], list] = {}
    for p in model.parameters():
        multiplier = getattr(p, "lr_multiplier", 1.0)
        if (isinstance(multiplier, bool) or not isinstance(multiplier, numbers.Real)
                or not math.isfinite(multiplier) or multiplier <= 0):
            raise ConfigError(f"a parameter's lr_multiplier must be a finite number > 0, got "
                              f"{multiplier!r}")
        groups.setdefault((p.dim() > 1, float(multiplier)), []).append(p)
    optimizer = torch.optim.SGD(
        [{"params": params, "lr": recipe.lr * multiplier,
          "weight_decay": recipe.weight_decay if decays else 0}
         for (decays, multiplier), params in sorted(groups.items(), key=lambda g: (-g[0][0], g[0][1]))],
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


def _check_fit_arguments(model, train, test, recipe, seed, amp, progress,
                         measure_train_error) -> None:
    """Everything ``fit`` is given, checked before anything moves or trains."""
    check_model(model)
    if isinstance(test, Recipe):
        raise ConfigError("the third argument of fit is the test set: pass the recipe by name, "
                          "fit(model, train, test, recipe=...) or fit(model, train, recipe=...)")
    check_recipe(recipe)
    check_seed(seed)
    check_flag("amp", amp, none=True)
    check_flag("progress", progress, none=True)
    check_flag("measure_train_error", measure_train_error)
    _check_data("train", train)
    if test is not None:
        _check_data("test", test)
    check_finite_weights(model)


@torch.no_grad()
def _check_outputs(model: nn.Module, train, test, device: torch.device) -> None:
    """The model must score each image for every class its labels use: its output for one
    image is N x classes (a map of scores per pixel belongs to ``segmentation.fit_dense``)."""
    was_training = model.training
    model.eval()
    image = normalize(train[0][:1].to(device)).contiguous(memory_format=memory_format_for(device))
    out = model(image)
    model.train(was_training)
    parts = [("train", train[1])] + ([("test", test[1])] if test is not None else [])
    need = max(int(labels.max()) for _, labels in parts) + 1
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        wanted = f" (N x {need} for labels up to {need - 1})" if need > 0 else ""
        raise ConfigError(f"fit trains classifiers: the model must return N x classes scores"
                          f"{wanted}, got "
                          f"{tuple(getattr(out, 'shape', ())) or type(out).__name__}; for "
                          f"a label per pixel use segmentation.fit_dense")
    classes = out.shape[1]
    wider = f"; labels up to {need - 1} need {need} outputs" if need > classes else ""
    for name, labels in parts:
        if labels.min() < 0 or labels.max() >= classes:
            raise ConfigError(f"{name} labels must lie in 0..{classes - 1} (the model has "
                              f"{classes} outputs), found {int(labels.min())}.."
                              f"{int(labels.max())}{wider}")


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
    (fields can be overridden by keyword, e.g. ``epochs=3``) and test it once at the end
    (without ``test``, the result's ``test_accuracy`` is None).

    ``amp`` (autocast to bfloat16, or float16 before Ampere) defaults to on for CUDA and for
    CPUs with native bfloat16 (``default_amp``). The model runs channels_last on CUDA and the CPU.
    ``measure_train_error`` adds the error on the unaugmented training images with the final
    weights (what "a network trains worse" is about). A loss that stops being finite raises
    ``DivergedError``: a diverged run is never returned as a result. A last batch of a single
    image is dropped (``batch_count``). The progress bar shows unless ``progress=False`` or
    CONVBOOK_PROGRESS=0 (as the book's build sets).
    """
    _check_fit_arguments(model, train, test, recipe, seed, amp, progress, measure_train_error)
    recipe = recipe.with_(**changes) if changes else recipe
    images, labels = train
    device = pick_device(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    amp = default_amp(device) if amp is None else amp
    memory_format = memory_format_for(device)
    model.to(device=device, memory_format=memory_format)
    _check_outputs(model, train, test, device)
    if amp:
        _keep_norm_fp32(model)
    images, labels = images.to(device), labels.to(device)
    generator = torch.Generator(device=device if device.type == "cuda" else "cpu").manual_seed(seed)

    steps_per_epoch = batch_count(len(labels), recipe.batch_size)
    seen = min(steps_per_epoch * recipe.batch_size, len(labels))  # images per epoch
    total_steps = recipe.epochs * steps_per_epoch
    stem = None
    optimizer, scheduler = sgd_schedule(model, recipe, total_steps)
    criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    scaler = grad_scaler(device, amp)

    result = FitResult(device=str(device))
    averaged = None
    if recipe.ema:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(recipe.ema),
                                 use_buffers=True)
    bar = None
    if _progress_enabled(progress):
        from tqdm.auto import tqdm

        bar = tqdm(total=total_steps, desc=type(model).__name__, leave=False)
    step = 0
    first_loss = None
    flips = None
    if recipe.alternate_flip:  # each image's flip in the first epoch, at random
        flips = torch.rand(len(labels), generator=generator, device=generator.device) < 0.5
    try:
        if recipe.whiten:  # part of training: its time counts
            start = time.perf_counter()
            stem = whiten_stem(model, images, seed=seed)
            result.train_seconds += time.perf_counter() - start
        for epoch in range(recipe.epochs):
            model.train()
            synchronize(device)
            start = time.perf_counter()
            order = torch.randperm(len(labels), generator=generator,
                                   device=generator.device).to(device)
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.int64)
            for i in range(0, seen, recipe.batch_size):
                idx = order[i : i + recipe.batch_size]
                batch = images[idx]
                if recipe.augment:
                    flip = None if flips is None else flips[idx.to(flips.device)] ^ bool(epoch % 2)
                    batch = augment(batch, generator, flip=flip)
                x = normalize(batch)
                if epoch < recipe.low_res_epochs:  # early epochs on smaller images: cheaper
                    x = F.interpolate(x, size=recipe.low_res, mode="bilinear",
                                      antialias=True, align_corners=False)
                x = x.contiguous(memory_format=memory_format)
                y = labels[idx]
                try:
                    logits, loss = forward_loss(model, x, y, criterion, device, amp)
                except NonFiniteError as exc:
                    raise diverged(layer_met_nonfinite(exc), epoch + 1, step + 1, recipe.lr,
                                   first_step=step == 0, batch=x) from None
                first_loss = loss.detach() if first_loss is None else first_loss
                step_on(loss, optimizer, scaler, scheduler)
                if averaged is not None:
                    averaged.update_parameters(model)
                loss_sum += loss.detach() * len(y)
                correct += (logits.argmax(1) == y).sum()
                step += 1
                if bar is not None:
                    bar.update(1)
            synchronize(device)
            seconds = time.perf_counter() - start
            result.train_seconds += seconds
            mean_loss = loss_sum.item() / seen
            if not math.isfinite(mean_loss):
                raise diverged(f"the training loss became {mean_loss}", epoch + 1, step,
                               recipe.lr, first_step=not bool(torch.isfinite(first_loss)))
            result.history.append({
                "epoch": epoch + 1,
                "steps": steps_per_epoch,
                "train_loss": mean_loss,
                "train_accuracy": correct.item() / seen,
            })
            if bar is not None:
                bar.set_postfix(loss=f"{mean_loss:.3f}")
    finally:
        if bar is not None:
            bar.close()
        if stem is not None:
            stem.weight.requires_grad_(True)  # the trained model is an ordinary model again
    if averaged is not None:  # the run ends with the averaged weights
        model.load_state_dict(averaged.module.state_dict())
    if test is not None:
        predicted = predict(model, test[0], flip_tta=recipe.flip_tta, amp=amp,
                            shift_tta=recipe.shift_tta).cpu()
        result.predictions = predicted.to(torch.int16)
        result.test_accuracy = (predicted == test[1].cpu()).float().mean().item()
    if measure_train_error:
        train_predicted = predict(model, train[0], amp=amp).cpu()
        result.final_train_error = (train_predicted != train[1].cpu()).float().mean().item()
    return result
