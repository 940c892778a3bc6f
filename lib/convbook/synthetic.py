"""Synthetic tasks the book makes itself (no download): images whose labels a chapter's
question decides.

- ``rings``: 32×32 noise images with one thin ring, every pixel labelled outside, ring or
  inside (chapter 9): inside and outside look the same up close, so only a network that sees
  far enough can tell them apart.
- ``digits``: the ten digits drawn with Pillow's built-in font at a chosen scale, anywhere on
  a noisy 32×32 canvas (chapter 10): trained at one range of sizes and tested at others, so
  geometry varies between training and test.
"""

from __future__ import annotations

import hashlib
import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from convbook.blocks.validate import check_positive
from convbook.data import CifarData
from convbook.errors import ConfigError

RING_CLASSES = ("outside", "ring", "inside")
RING_SEED = 909  # the rings are the same for every run; a run's seed changes weights and batches

DIGIT_SIZE = 32  # the canvas
BASE_HEIGHT = 14  # pixels of a digit's height at scale 1
TRAIN_SCALES = (0.9, 1.1)
TEST_SCALES = (0.5, 0.7, 0.9, 1.0, 1.2, 1.4, 1.6)
DIGIT_SEED = 1010


def rings(count: int, size: int = 32, seed: int = RING_SEED, noise: float = 0.6,
          thickness: float = 0.8) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` images (N x 1 x size x size) of Gaussian noise with one ring of brighter pixels,
    and their labels (N x size x size): 0 outside, 1 ring, 2 inside. Radii run from 4 pixels to
    a third of the image, every ring lies wholly inside its image."""
    check_positive("count", count)
    check_positive("size", size)
    if size < 16:
        raise ConfigError(f"size must be at least 16 pixels for rings to fit, got {size}")
    _check_amount("noise", noise, "the noise's standard deviation, e.g. 0.6, or 0 for none")
    _check_amount("thickness", thickness, "the ring's half-width in pixels, e.g. 0.8",
                  positive=True)
    g = torch.Generator().manual_seed(seed)
    radius = 4 + torch.rand(count, generator=g) * (size / 3 - 4)
    low, high = radius + 2, size - radius - 3
    cy = low + torch.rand(count, generator=g) * (high - low)
    cx = low + torch.rand(count, generator=g) * (high - low)
    grid = torch.arange(size, dtype=torch.float32)
    distance = ((grid[None, :, None] - cy[:, None, None]) ** 2
                + (grid[None, None, :] - cx[:, None, None]) ** 2).sqrt()
    on_ring = (distance - radius[:, None, None]).abs() <= thickness
    labels_ = torch.zeros(count, size, size, dtype=torch.long)
    labels_[distance < radius[:, None, None] - thickness] = 2
    labels_[on_ring] = 1
    images = noise * torch.randn(count, 1, size, size, generator=g) + on_ring[:, None].float()
    return images, labels_


def _check_amount(name: str, value, what: str, positive: bool = False) -> None:
    """A finite number >= 0 (> 0 when ``positive``): NaN noise would make every image NaN."""
    number = not isinstance(value, bool) and isinstance(value, numbers.Real)
    if not (number and math.isfinite(value) and (value > 0 if positive else value >= 0)):
        raise ConfigError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, "
                          f"got {value!r}: {what}")


@dataclass(frozen=True)
class RingData:
    """Training and test rings (test images drawn after the training ones, never the same):
    images N x 1 x H x W, labels N x H x W (``RING_CLASSES``)."""

    train: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    classes: tuple[str, ...] = RING_CLASSES

    def digest(self) -> str:
        h = hashlib.sha256()
        for t in (*self.train, *self.test):
            h.update(t.numpy().tobytes())
        return h.hexdigest()[:16]

    def describe(self) -> str:
        size = self.test[0].shape[-1]
        return (f"rings ({size}×{size}, synthetic): {len(self.train[0]):,} training / "
                f"{len(self.test[0]):,} test images")


def ring_data(train: int, test: int, size: int = 32, seed: int = RING_SEED) -> RingData:
    """``train`` training and ``test`` test ring images, drawn from one stream."""
    check_positive("train", train)
    check_positive("test", test)
    images, targets = rings(train + test, size, seed)
    return RingData((images[:train], targets[:train]), (images[train:], targets[train:]))


# --- digits (chapter 10) ----------------------------------------------------------------------

_GLYPHS: dict[int, torch.Tensor] = {}


def glyphs() -> dict[int, torch.Tensor]:
    """The ten digits drawn once, large, with Pillow's built-in font, cropped to their ink:
    {digit: H x W tensor in [0, 1]}."""
    if _GLYPHS:
        return _GLYPHS
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.load_default(size=64)
    except TypeError:  # Pillow < 10.1: a small bitmap font, scaled up below
        font = ImageFont.load_default()
    for digit in range(10):
        canvas = Image.new("L", (96, 96), 0)
        ImageDraw.Draw(canvas).text((12, 4), str(digit), fill=255, font=font)
        array = torch.from_numpy(np.asarray(canvas, dtype=np.float32) / 255.0)
        rows = torch.nonzero(array.amax(1) > 0.1).flatten()
        cols = torch.nonzero(array.amax(0) > 0.1).flatten()
        _GLYPHS[digit] = array[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    return _GLYPHS


def digits(count: int, scales: tuple[float, float], seed: int = DIGIT_SEED,
           noise: float = 0.15) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``count`` images (N x 1 x 32 x 32): a random digit at a random scale in ``scales``
    (height ``scale`` × 14 pixels), at a random position wholly inside the canvas, plus noise.
    Returns images, labels and the digits' masks (N x 32 x 32, True on ink)."""
    check_positive("count", count)
    _check_amount("noise", noise, "the noise's standard deviation, e.g. 0.15, or 0 for none")
    if not (isinstance(scales, (tuple, list)) and len(scales) == 2
            and all(isinstance(s, numbers.Real) and not isinstance(s, bool) for s in scales)):
        raise ConfigError(f"scales must be a pair (low, high) of numbers, got {scales!r}; e.g. "
                          f"{TRAIN_SCALES}")
    low, high = scales
    if not 0.2 <= low <= high <= 2.0:
        raise ConfigError(f"scales must lie between 0.2 and 2.0 with low <= high, got {scales}")
    g = torch.Generator().manual_seed(seed)
    shapes = glyphs()
    labels_ = torch.randint(0, 10, (count,), generator=g)
    scale = low + torch.rand(count, generator=g) * (high - low)
    images = torch.zeros(count, 1, DIGIT_SIZE, DIGIT_SIZE)
    masks = torch.zeros(count, DIGIT_SIZE, DIGIT_SIZE, dtype=torch.bool)
    for n in range(count):
        glyph = shapes[int(labels_[n])]
        h = max(3, round(float(scale[n]) * BASE_HEIGHT))
        w = max(2, round(glyph.shape[1] * h / glyph.shape[0]))
        small = F.interpolate(glyph[None, None], size=(h, w), mode="bilinear",
                              align_corners=False, antialias=True)[0, 0].clamp(0, 1)
        y = int(torch.randint(0, DIGIT_SIZE - h + 1, (1,), generator=g))
        x = int(torch.randint(0, DIGIT_SIZE - w + 1, (1,), generator=g))
        images[n, 0, y:y + h, x:x + w] = small
        masks[n, y:y + h, x:x + w] = small > 0.3
    images += noise * torch.randn(images.shape, generator=g)
    return images, labels_, masks


@dataclass(frozen=True)
class DigitData:
    """Digits for chapter 10: training images (N x 1 x 32 x 32, labels) at ``train_scales``,
    and for each test scale its images, labels and ink masks."""

    train: tuple[torch.Tensor, torch.Tensor]
    tests: dict[float, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]  # scale -> x, y, mask
    train_scales: tuple[float, float] = TRAIN_SCALES

    def describe(self) -> str:
        per_scale = len(next(iter(self.tests.values()))[0])
        return (f"{len(self.train[0]):,} training digits at scales {self.train_scales[0]}–"
                f"{self.train_scales[1]}, {per_scale:,} test digits at each of the scales "
                f"{', '.join(map(str, self.tests))}")

    def scale_slices(self) -> dict[float, slice]:
        """Where each test scale's images lie in ``digits_for_training``'s test set."""
        out, start = {}, 0
        for scale, (x, _, _) in self.tests.items():
            out[scale] = slice(start, start + len(x))
            start += len(x)
        return out

    def digest(self) -> str:
        h = hashlib.sha256()
        for t in self.train:
            h.update(t.numpy().tobytes())
        for x, y, _ in self.tests.values():
            h.update(x.numpy().tobytes())
            h.update(y.numpy().tobytes())
        return h.hexdigest()[:16]


def digit_data(train: int, test_per_scale: int, train_scales: tuple[float, float] = TRAIN_SCALES,
               test_scales: tuple[float, ...] = TEST_SCALES, seed: int = DIGIT_SEED) -> DigitData:
    """``train`` digits at ``train_scales`` and ``test_per_scale`` at each of ``test_scales``
    (each scale its own stream, so the tests never repeat a training image)."""
    check_positive("train", train)
    check_positive("test_per_scale", test_per_scale)
    if not isinstance(test_scales, (tuple, list)) or not test_scales:
        raise ConfigError(f"test_scales must be a non-empty tuple of scales, got "
                          f"{test_scales!r}; e.g. {TEST_SCALES}")
    x, y, _ = digits(train, train_scales, seed=seed)
    tests = {s: digits(test_per_scale, (s, s), seed=seed + 1 + i)
             for i, s in enumerate(test_scales)}
    return DigitData((x, y), tests, tuple(train_scales))


def as_images(x: torch.Tensor) -> torch.Tensor:
    """Grey digits in [0, 1] (N x 1 x H x W) as the uint8 3-channel images ``train.fit`` takes.
    Values outside [0, 1] (the noise) are clipped. Pixels already on the 0-255 scale would clip
    to black or white, so they are refused, as are uint8 images (already converted)."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 1:
        raise ConfigError(f"as_images takes grey images N x 1 x H x W, got "
                          f"{tuple(getattr(x, 'shape', ())) or type(x).__name__}")
    if not x.is_floating_point():
        raise ConfigError(f"as_images takes float images in [0, 1], got {x.dtype}; uint8 "
                          f"pixels are converted already: x.expand(-1, 3, -1, -1)")
    if not bool(torch.isfinite(x).all()):
        raise ConfigError("as_images got NaN or infinite pixels: fix the images first")
    if x.numel() and x.max() > 1 and bool((x == x.round()).all()):
        raise ConfigError(f"as_images takes floats in [0, 1], but these are whole numbers up to "
                          f"{int(x.max())} (0-255 pixels): use "
                          f"x.round().to(torch.uint8).expand(-1, 3, -1, -1), or pass x / 255")
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()


def digits_for_training(data: DigitData) -> CifarData:
    """The digits as ``experiments.compare`` trains on them (uint8, 3 channels, like CIFAR-10):
    every test scale in one test set, scale after scale (``DigitData.scale_slices`` finds
    each)."""
    tests = list(data.tests.values())
    test_x = torch.cat([as_images(x) for x, _, _ in tests])
    test_y = torch.cat([y for _, y, _ in tests])
    return CifarData((as_images(data.train[0]), data.train[1]), (test_x, test_y),
                     f"digits ({data.describe()})")
