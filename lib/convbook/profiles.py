"""How big each run is: ``smoke`` proves every cell runs, ``book`` builds the website on a CPU,
``full`` is for a reader with a GPU, ``auto`` picks ``full`` on a GPU and ``book`` elsewhere."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from convbook.errors import ConfigError


@dataclass(frozen=True)
class Profile:
    """Data size, training length and network width of every experiment in a chapter.

    ``width`` is the base channel count of the small nets; chapters scale it, never replace it.
    ``erf_samples`` is how many random inputs average an effective receptive field.
    """

    name: str
    train_size: int | None  # None: the whole training set
    test_size: int | None
    epochs: int
    width: int
    batch_size: int = 256
    erf_samples: int = 8
    depths: tuple[int, ...] = (8, 14, 20)  # chapter 5: plain against residual at these depths
    deep_epochs: int = 3  # chapter 5's deeper networks train this many epochs
    note: str = ""

    def describe(self) -> str:
        train = "all" if self.train_size is None else f"{self.train_size:,}"
        test = "all" if self.test_size is None else f"{self.test_size:,}"
        return (f"profile '{self.name}': {train} training / {test} test images, "
                f"{self.epochs} epochs, base width {self.width}")


PROFILES = {
    "smoke": Profile("smoke", 512, 256, 1, 8, batch_size=128, erf_samples=2, depths=(8, 14),
                     deep_epochs=1, note="proves every cell runs; numbers mean nothing"),
    "book": Profile("book", 10_000, 2_000, 5, 16, depths=(8, 14, 20), deep_epochs=3,
                    note="the website's build on 2 CPU cores: short runs, small nets"),
    "full": Profile("full", None, None, 15, 64, batch_size=512, erf_samples=32,
                    depths=(8, 20, 32, 56), deep_epochs=15,
                    note="a GPU run on the whole of CIFAR-10"),
}


def get(name: str = "auto") -> Profile:
    """The profile called ``name``; ``auto`` is ``full`` where CUDA is available, else ``book``."""
    if name == "auto":
        name = "full" if torch.cuda.is_available() else "book"
    if name not in PROFILES:
        raise ConfigError(
            f"unknown profile {name!r}; choose one of: auto, {', '.join(PROFILES)}"
        )
    return PROFILES[name]


def scaled(profile: Profile, **changes) -> Profile:
    """A copy of ``profile`` with some fields changed (for a chapter that needs, e.g., more epochs)."""
    return replace(profile, **changes)
