"""CIFAR-10 as uint8 tensors (N x 3 x 32 x 32) and int64 labels, ready to live on the device.

Where the data comes from, in this order:
1. the ``root`` argument, else the ``CONVBOOK_DATA`` environment variable, else
   ``~/.cache/convbook/cifar10``;
2. in that folder, torchvision's own layout (``cifar-10-batches-py/``), or an ImageFolder tree
   (``train/<class>/*.png|jpg`` and ``test/<class>/...``, classes in CIFAR-10's order);
3. if neither is there and ``download`` is true, torchvision downloads CIFAR-10 into it.
With no data and no network, a ``DataNotFoundError`` says what to set.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from convbook.cache import load_checked, save_atomic
from convbook.errors import ConfigError, DataNotFoundError

CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
SPLITS = ("train", "test")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
SHUFFLE_SEED = 2012  # the order every split is shuffled into on load


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder CIFAR-10 is read from: ``root``, else $CONVBOOK_DATA, else the user cache."""
    if root is None:
        root = os.environ.get("CONVBOOK_DATA") or Path.home() / ".cache" / "convbook" / "cifar10"
    return Path(root).expanduser()


def cache_dir() -> Path:
    """Where convbook keeps decoded data and finished runs: $CONVBOOK_CACHE or the user cache."""
    return Path(os.environ.get("CONVBOOK_CACHE") or Path.home() / ".cache" / "convbook").expanduser()


def layout(root: Path) -> str | None:
    """'torchvision' or 'imagefolder' for the layouts we read, None if the folder holds neither."""
    if (root / "cifar-10-batches-py" / "data_batch_1").exists():
        return "torchvision"
    if all((root / split).is_dir() for split in SPLITS):
        return "imagefolder"
    return None


def _read_batches(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Read torchvision's ``cifar-10-batches-py`` pickles (the format CIFAR-10 ships in)."""
    import pickle

    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    images, labels = [], []
    for name in names:
        path = folder / name
        if not path.exists():
            raise DataNotFoundError(f"{path} is missing; the folder looks incomplete. Delete it "
                                    f"to download again, or point CONVBOOK_DATA elsewhere.")
        try:
            with open(path, "rb") as handle:
                batch = pickle.load(handle, encoding="bytes")
            data = torch.as_tensor(batch[b"data"], dtype=torch.uint8).reshape(-1, 3, 32, 32)
            batch_labels = torch.as_tensor(batch[b"labels"], dtype=torch.int64)
        except Exception as exc:  # noqa: BLE001 -- truncated or foreign file: say which
            raise DataNotFoundError(
                f"{path} cannot be read as a CIFAR-10 batch ({type(exc).__name__}: {exc}); it "
                f"is probably truncated. Delete {folder} to download again, or point "
                f"CONVBOOK_DATA at a complete copy.") from None
        if len(batch_labels) != len(data):
            raise DataNotFoundError(f"{path} holds {len(data)} images but {len(batch_labels)} "
                                    f"labels; delete {folder} to download again")
        _check_labels(batch_labels, path)
        images.append(data)
        labels.append(batch_labels)
    return torch.cat(images), torch.cat(labels)


def _check_labels(labels: torch.Tensor, where: Path) -> None:
    if len(labels) and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise DataNotFoundError(f"{where} has labels {int(labels.min())}..{int(labels.max())}; "
                                f"CIFAR-10's are 0..{len(CLASSES) - 1}. Is this CIFAR-100 or "
                                f"another data set?")


def _download(root: Path) -> None:
    """Let torchvision fetch and unpack CIFAR-10 into ``root`` (checks its checksums). A failed
    attempt removes what it created, so a half-downloaded folder never looks like data."""
    import shutil

    from torchvision.datasets import CIFAR10

    created = [p for p in (root, *root.parents) if not p.exists()]
    before = set(root.iterdir()) if root.exists() else set()
    try:
        CIFAR10(str(root), train=True, download=True)
    except BaseException:
        if root.exists():
            for path in set(root.iterdir()) - before:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink()
        for path in created:  # innermost first
            if path.exists() and not any(path.iterdir()):
                path.rmdir()
        raise


def _from_imagefolder(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    import numpy as np
    from PIL import Image

    folder = root / split
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if tuple(classes) != CLASSES:
        raise DataNotFoundError(
            f"{folder} should hold one folder per CIFAR-10 class ({', '.join(CLASSES)}), "
            f"found {classes or 'none'}"
        )
    files = [
        (path, label)
        for label, name in enumerate(classes)
        for path in sorted((folder / name).iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]
    counts = {name: sum(1 for _, label in files if label == k) for k, name in enumerate(classes)}
    empty = [name for name, count in counts.items() if count == 0]
    if empty:
        raise DataNotFoundError(f"{folder} has no images in {', '.join(empty)} (looked for "
                                f"{', '.join(sorted(IMAGE_SUFFIXES))} files); every class needs "
                                f"its images")
    listing = hashlib.sha256()  # names, sizes and times: a moved (relabelled) file changes it
    for path, label in files:
        stat = path.stat()
        listing.update(f"{path.relative_to(folder)}|{label}|{stat.st_size}|{stat.st_mtime_ns}\n"
                       .encode())
    key = hashlib.sha256(f"{folder.resolve()}|{listing.hexdigest()}".encode()).hexdigest()[:16]
    cached = cache_dir() / "data" / f"imagefolder-{split}-{key}.pt"
    stored = load_checked(cached, check=_decoded_images)
    if stored is not None:
        return stored

    def read(path: Path) -> torch.Tensor:
        try:
            with Image.open(path) as image:
                pixels = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)
        except Exception as exc:  # noqa: BLE001 -- name the file, whatever PIL raised
            raise DataNotFoundError(f"{path} cannot be read as an image ({type(exc).__name__}: "
                                    f"{exc}); replace or delete it") from None
        if pixels.shape != (3, 32, 32):
            raise DataNotFoundError(f"{path} is {pixels.shape[2]}x{pixels.shape[1]} pixels; "
                                    f"CIFAR-10 images are 32x32 (resize it or remove it)")
        return pixels

    images = torch.stack([read(p) for p, _ in files])
    labels = torch.tensor([label for _, label in files], dtype=torch.int64)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        save_atomic((images, labels), cached)
    except OSError:
        pass  # a read-only cache only costs time
    return images, labels


def _check_count(name: str, n) -> None:
    """A subset size is a whole number >= 1, or None for all images."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ConfigError(f"{name} must be a positive whole number or None (all images), got "
                          f"{n!r}")


def _decoded_images(stored) -> tuple[torch.Tensor, torch.Tensor]:
    """The (images, labels) pair a folder's cache file holds; raises on anything else, so that
    ``load_checked`` deletes the file and the folder is decoded again."""
    if not (isinstance(stored, tuple) and len(stored) == 2
            and all(isinstance(t, torch.Tensor) for t in stored)):
        raise ValueError("not an (images, labels) pair of tensors")
    images, labels = stored
    if images.dtype != torch.uint8 or images.shape[1:] != (3, 32, 32) \
            or labels.shape != (len(images),):
        raise ValueError(f"images {tuple(images.shape)} and labels {tuple(labels.shape)} are "
                         f"not N 32x32 RGB images with N labels")
    return images, labels


def _stratified(labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Indices of ``n`` samples with classes as balanced as possible, chosen by ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=generator)
    per_class = [order[labels[order] == c] for c in range(int(labels.max()) + 1)]
    picked = torch.stack(
        [idx[i] for i in range(max(map(len, per_class))) for idx in per_class if i < len(idx)]
    )
    return picked[:n].sort().values


def cifar10(
    split: str = "train",
    root: str | os.PathLike | None = None,
    n: int | None = None,
    device: str | torch.device | None = None,
    download: bool = True,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 images (uint8, N x 3 x 32 x 32) and labels (int64, 0-9).

    Args:
        split: "train" or "test".
        root: data folder (see the module docstring for the order of look-up).
        n: keep a class-balanced subset of this many images, chosen by ``seed``.
        device: move both tensors there (e.g. "cuda").
        download: let torchvision download CIFAR-10 when the folder holds no data.
    """
    if split not in SPLITS:
        raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
    _check_count("n", n)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed must be a whole number, got {seed!r}; e.g. seed=0")
    if device is not None:
        from convbook.train import pick_device

        pick_device(device)  # a misspelt device fails here, not after reading every image
    folder = data_root(root)
    kind = layout(folder)
    if kind is None and download:
        try:
            _download(folder)
            kind = layout(folder)
        except (OSError, RuntimeError, ValueError) as exc:  # offline, proxy, full disk, bad file
            raise DataNotFoundError(
                f"CIFAR-10 is not in {folder} and could not be downloaded ({type(exc).__name__}: "
                f"{exc}). Set CONVBOOK_DATA (or pass root=) to a folder holding "
                f"'cifar-10-batches-py/' or 'train/<class>/' and 'test/<class>/' images."
            ) from None
    if kind == "torchvision":
        images, labels = _read_batches(folder / "cifar-10-batches-py", split)
    elif kind == "imagefolder":
        images, labels = _from_imagefolder(folder, split)
    else:
        raise DataNotFoundError(
            f"CIFAR-10 is not in {folder}. Set CONVBOOK_DATA (or pass root=) to a folder holding "
            f"'cifar-10-batches-py/' or 'train/<class>/' and 'test/<class>/' images, "
            f"or pass download=True where there is internet."
        )
    if n is not None and n > len(labels):
        raise ConfigError(f"asked for {n:,} {split} images (n / {split}_size), but {folder} "
                          f"holds {len(labels):,}; ask for at most {len(labels):,}, or None for "
                          f"all of them")
    if n is not None and n < len(labels):
        keep = _stratified(labels, n, seed)
        images, labels = images[keep], labels[keep]
    # Files come in class order (an ImageFolder tree is sorted by class): shuffle once, with a
    # fixed generator, so that any slice ("the first batches", "five test images") mixes the
    # classes, and every chapter sees the same order.
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SHUFFLE_SEED))
    images, labels = images[order], labels[order]
    if device is not None:
        images, labels = images.to(device), labels.to(device)
    return images, labels


@dataclass
class CifarData:
    """Training and test tensors plus a one-line account of where they came from."""

    train: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    source: str

    def __post_init__(self) -> None:
        # checked where user tensors come in: floats (0-1 or 0-255) would be trained on as if
        # they were uint8 pixels, and only fail, or mislead, much later
        from convbook.train import _check_data

        _check_data("train", self.train)
        _check_data("test", self.test)

    def describe(self) -> str:
        return (f"{self.source}: {len(self.train[1]):,} training / {len(self.test[1]):,} test images")

    def digest(self) -> str:
        """A digest of the tensors' contents (the run cache's key for the data): another
        subset, a relabelled file or another order gives another digest."""
        if getattr(self, "_digest", None) is None:
            h = hashlib.sha256()
            for tensor in (*self.train, *self.test):
                h.update(str((tensor.dtype, tuple(tensor.shape))).encode())
                h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
            self._digest = h.hexdigest()
        return self._digest


def load(
    train_size: int | None,
    test_size: int | None,
    root: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
) -> CifarData:
    """Both splits at the sizes a profile asks for, with a description for tables and captions."""
    _check_count("train_size", train_size)
    _check_count("test_size", test_size)
    folder = data_root(root)
    train = cifar10("train", folder, n=train_size, device=device, seed=seed)
    test = cifar10("test", folder, n=test_size, device=device, seed=seed)
    return CifarData(train=train, test=test, source=describe_source(folder))


def count_text(n: int) -> str:
    """A count for prose: "10k" when it is whole thousands, else exact ("600-image",
    "1,500-image"): rounding 600 down to "0k" would misstate the data."""
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else f"{n:,}-image"


def describe_source(root: str | os.PathLike | None = None) -> str:
    """How a results table names its data: the real CIFAR-10, or which local copy of it."""
    folder = data_root(root)
    if layout(folder) != "imagefolder":
        return "CIFAR-10"
    files = [p for p in (folder / "train").rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
    jpeg = any(p.suffix.lower() in {".jpg", ".jpeg"} for p in files[:10])
    size = (f"{count_text(len(files))} training subset" if len(files) < 50_000
            else "full training set")
    return f"CIFAR-10 ({'JPEG copy, ' if jpeg else ''}{size})"
