"""How big each run is: ``smoke`` proves every cell runs, ``book`` builds the website on a CPU,
``full`` is for a reader with a GPU, ``auto`` picks ``full`` on a GPU and ``book`` elsewhere.

A profile fixes the data size, the base width of the small networks, the training recipe
(``train.Recipe``) and how many seeds every deciding comparison runs. Chapter-specific sizes
(depths, sample counts) live in the chapter's own module, not here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from convbook.errors import ConfigError
from convbook.train import RECIPE, Recipe


@dataclass(frozen=True)
class Profile:
    """Data size, network width, recipe and seeds of every experiment in a chapter.

    ``width`` is the base channel count of the small nets; chapters scale it, never replace it.
    ``seeds`` is how many seeds (0, 1, ...) each deciding comparison trains.
    """

    name: str
    train_size: int | None  # None: the whole training set
    test_size: int | None  # None: the whole test set
    width: int
    recipe: Recipe = field(default_factory=lambda: RECIPE)
    seeds: int = 3
    note: str = ""

    @property
    def epochs(self) -> int:
        return self.recipe.epochs

    @property
    def batch_size(self) -> int:
        return self.recipe.batch_size

    def seed_list(self, first: int = 0) -> list[int]:
        """The seeds a deciding comparison trains: ``first``, ``first + 1``, ..."""
        return list(range(first, first + self.seeds))

    def describe(self) -> str:
        train = "all" if self.train_size is None else f"{self.train_size:,}"
        test = "all" if self.test_size is None else f"{self.test_size:,}"
        return (f"profile '{self.name}': {train} training / {test} test images, "
                f"{self.epochs} epochs, base width {self.width}, {self.seeds} "
                f"seed{'s' if self.seeds != 1 else ''}")


PROFILES = {
    "smoke": Profile("smoke", 512, 256, 8, RECIPE.with_(epochs=1), seeds=1,
                     note="proves every cell runs; numbers mean nothing"),
    "book": Profile("book", 10_000, None, 16, RECIPE, seeds=5,
                    note="the website's build on 2 CPU cores"),
    "full": Profile("full", None, None, 32, RECIPE.with_(epochs=15, batch_size=128, lr=0.4),
                    seeds=5, note="a GPU run on the whole of CIFAR-10"),
}


def get(name: str = "auto", seeds: int | None = None) -> Profile:
    """The profile called ``name``; ``auto`` is ``full`` where CUDA is available, else ``book``.
    ``seeds`` lowers (or raises) the number of seeds, e.g. to save time on Colab."""
    if name == "auto":
        name = "full" if torch.cuda.is_available() else "book"
    if name not in PROFILES:
        raise ConfigError(
            f"unknown profile {name!r}; choose one of: auto, {', '.join(PROFILES)}"
        )
    profile = PROFILES[name]
    if seeds is not None:
        if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
            raise ConfigError(f"seeds must be a whole number >= 1 (3 or more for a verdict "
                              f"that can decide), got {seeds!r}")
        profile = replace(profile, seeds=seeds)
    return profile


def choose(table: dict, name: str, what: str = "this setting"):
    """``table[name]``: a chapter's value for profile ``name``. A profile the table does not
    name is an error that says which profiles it knows, never a silent fallback to another
    profile's value."""
    if name not in table:
        raise ConfigError(f"{what} has no value for profile {name!r}; it knows "
                          f"{', '.join(map(repr, table))}: add one for {name!r}")
    return table[name]


def scaled(profile: Profile, **changes) -> Profile:
    """A copy of ``profile`` with some fields changed (e.g. a chapter's own width)."""
    recipe_changes = {k: changes.pop(k) for k in list(changes) if k in Recipe.__dataclass_fields__}
    if recipe_changes:
        changes["recipe"] = profile.recipe.with_(**recipe_changes)
    unknown = set(changes) - set(Profile.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"unknown profile field(s) {sorted(unknown)}")
    return replace(profile, **changes)
