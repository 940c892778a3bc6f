"""Run a comparison of model variants under one profile, cache finished runs, return a table.

Every variant is built from the same seed, trained by ``train.fit`` on the same data with the
same budget, and measured by ``measure``. A finished run is stored (figures, history and
weights) under ``cache_dir()/runs``, keyed by everything that decides its result, so running a
chapter again with the same configuration reuses it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

import convbook
from convbook import measure
from convbook.data import CifarData, cache_dir
from convbook.errors import ConfigError
from convbook.profiles import Profile
from convbook.tables import Table
from convbook.train import FitResult, fit, pick_device, seed_everything


@dataclass
class Run:
    """One trained variant: its cost, its result, and the trained model."""

    name: str
    params: int
    macs: int
    test_accuracy: float
    seconds_per_epoch: float
    history: list[dict]
    model: nn.Module
    cached: bool = False

    def row(self) -> dict:
        return {
            "variant": self.name,
            "test accuracy": f"{100 * self.test_accuracy:.1f}%",
            "parameters": f"{self.params:,}",
            "MACs / image": f"{self.macs / 1e6:.2f} M",
            "train s / epoch": f"{self.seconds_per_epoch:.2f}",
        }


@dataclass
class Results:
    """The runs of one comparison and the conditions they ran under (for the table's caption)."""

    runs: list[Run]
    profile: Profile
    data: str
    device: str
    seed: int

    def __getitem__(self, name: str) -> Run:
        for run in self.runs:
            if run.name == name:
                return run
        raise KeyError(f"no variant {name!r}; variants: {', '.join(r.name for r in self.runs)}")

    def __iter__(self):
        return iter(self.runs)

    def caption(self) -> str:
        p = self.profile
        return (f"{self.data}; {p.epochs} epochs at base width {p.width} (profile '{p.name}'); "
                f"device {self.device}; seed {self.seed}.")

    def rows(self) -> list[dict]:
        return [run.row() for run in self.runs]

    def table(self) -> Table:
        return Table(self.rows(), caption=self.caption())

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()

    def __repr__(self) -> str:
        return repr(self.table())


def accuracy_margin(accuracy: float, n_test: int) -> float:
    """Two standard errors of the difference between two accuracies near ``accuracy`` measured
    on ``n_test`` images each: differences smaller than this are test-set sampling noise."""
    p = min(max(accuracy, 1e-3), 1 - 1e-3)
    return 2 * math.sqrt(2 * p * (1 - p) / max(n_test, 1))


def judge(claimed_better: float, other: float, n_test: int) -> str:
    """Verdict on "A is more accurate than B": confirmed if A wins by more than the noise margin,
    refuted if it loses by more, nuanced if the difference is inside it."""
    margin = accuracy_margin((claimed_better + other) / 2, n_test)
    if claimed_better - other > margin:
        return "confirmed"
    if other - claimed_better > margin:
        return "refuted"
    return "nuanced"


def _key(name: str, model: nn.Module, profile: Profile, seed: int, data: CifarData,
         device: torch.device, fit_kwargs: dict) -> str:
    described = {
        "name": name,
        "model": repr(model),
        "profile": [profile.train_size, profile.test_size, profile.epochs, profile.batch_size],
        "seed": seed,
        "data": data.describe(),
        "device": device.type,
        "fit": sorted((k, repr(v)) for k, v in fit_kwargs.items()),
        "versions": [torch.__version__, convbook.__version__],
    }
    return hashlib.sha256(json.dumps(described).encode()).hexdigest()[:20]


def run_variant(
    name: str,
    build: Callable[[], nn.Module],
    data: CifarData,
    profile: Profile,
    seed: int = 0,
    cache: bool = True,
    device: str | torch.device | None = None,
    **fit_kwargs,
) -> Run:
    """Build one variant from ``seed``, train and measure it, or load it from the cache."""
    device = pick_device(device)
    seed_everything(seed)
    model = build()
    params = measure.count_params(model)
    macs = measure.count_macs(model, (3, 32, 32))
    path = cache_dir() / "runs" / f"{_key(name, model, profile, seed, data, device, fit_kwargs)}.pt"
    if cache and path.exists():
        stored = torch.load(path, map_location="cpu", weights_only=False)
        model.load_state_dict(stored["state_dict"])
        model.to(device)
        result = FitResult(**stored["result"])
        cached = True
    else:
        result = fit(model, data.train, data.test, epochs=profile.epochs,
                     batch_size=profile.batch_size, device=device, seed=seed, **fit_kwargs)
        cached = False
        if cache:
            path.parent.mkdir(parents=True, exist_ok=True)
            state = {k: v.cpu() for k, v in model.state_dict().items()}
            torch.save({"result": result.__dict__, "state_dict": state}, path)
    model.eval()
    return Run(name=name, params=params, macs=macs, test_accuracy=result.test_accuracy,
               seconds_per_epoch=result.seconds_per_epoch, history=result.history,
               model=model, cached=cached)


def compare(
    variants: dict[str, Callable[[], nn.Module]],
    data: CifarData,
    profile: Profile,
    seed: int = 0,
    cache: bool = True,
    device: str | torch.device | None = None,
    **fit_kwargs,
) -> Results:
    """Train every variant (name -> model factory) under the same conditions; return the table."""
    if not variants:
        raise ConfigError("compare needs at least one variant: {'name': lambda: model, ...}")
    device = pick_device(device)
    runs = [run_variant(name, build, data, profile, seed, cache, device, **fit_kwargs)
            for name, build in variants.items()]
    return Results(runs=runs, profile=profile, data=data.describe(), device=device.type, seed=seed)
