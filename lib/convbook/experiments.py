"""Run variants × seeds under one profile, cache finished runs, return typed results.

Every variant is built from each seed, trained by ``train.fit`` on the same data with the same
recipe, scored on every test image (the per-image correctness is kept, so comparisons are
paired), and measured by ``measure`` (parameters, MACs, latency). A finished run is stored
under ``cache_dir()/runs``, keyed by everything that shapes its result: the model's structure,
its initial weights and the code it runs, the recipe, the training code, the data's contents,
the seed, the device type, the thread count, the precision (amp) and the versions of torch,
torchvision and convbook. "The code it runs" (``code_digest``) is the source files of the
modules its classes come from and of the modules of ours those refer to, so editing a helper
a block calls changes the key; a class defined in a notebook counts by its bytecode and that
of the functions it calls. Cache files hold plain data, written atomically and read without
running code; one that cannot be read or does not fit the run (another model's weights, a
result with other fields) is reported, deleted and rebuilt; temporaries a killed writer left
are removed after ten minutes; a cache that cannot be written warns once and the run goes on
without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import numbers
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
from torch import nn

from convbook import measure, parallel, records, stats, timing
from convbook import train as train_module
from convbook.cache import load_checked, remove_stale_temporaries, save_atomic, warn_once
from convbook.code_digest import code_digest
from convbook.data import CifarData, cache_dir
from convbook.errors import ConfigError, ConvbookError
from convbook.explore import static_mode
from convbook.profiles import Profile
from convbook.tables import Table
from convbook.train import (
    FitResult,
    Recipe,
    default_amp,
    fit,
    pick_device,
    precision_text,
    seed_everything,
)


@dataclass(frozen=True)
class Task:
    """What the runs of a comparison learn and how each test image is scored: classification
    (``CLASSIFICATION``, scored right or wrong) and, in ``segmentation``, a label per pixel
    (scored by the image's mean IoU). ``compare`` trains every task the same way: one cache,
    one key, one results type, paired comparisons over seeds and test images.

    ``fit(model, data, recipe, seed, device, amp, measure_train_error)`` trains and returns a
    dataclass result; ``scores(result, data)`` gives one number per test image; ``code`` names
    (by their import names) the modules whose source shapes a run (part of the cache key);
    ``metric`` names the mean score in tables and prose. A task is plain data and module-level
    functions, so it travels to ``parallel``'s worker processes.
    """

    name: str
    metric: str
    fit: Callable
    result_type: type
    scores: Callable
    code: tuple = ()


def _fit_classification(model, data, recipe, seed, device, amp, measure_train_error):
    return fit(model, data.train, data.test, recipe, device=device, seed=seed,
               measure_train_error=measure_train_error, amp=amp)


def _right_or_wrong(result: FitResult, data: CifarData) -> torch.Tensor:
    return result.predictions.long() == data.test[1].cpu()


CLASSIFICATION = Task("classification", "test accuracy", _fit_classification, FitResult,
                      _right_or_wrong, ("convbook.train", "convbook.data"))


@dataclass
class Run:
    """One variant trained from one seed. ``test_accuracy`` is the mean of ``correct``, the
    per-image scores (for classification, 1 where the image was classified right; for another
    task, its ``Task.metric``); ``result`` is what the task's ``fit`` returned."""

    seed: int
    test_accuracy: float
    correct: torch.Tensor  # one score per test image
    history: list[dict]
    final_train_error: float | None
    model: nn.Module
    cached: bool = False
    result: object = None


@dataclass
class Variant:
    """One variant across seeds: its cost (measured once) and its runs."""

    name: str
    params: int
    macs: int
    runs: list[Run]
    latency: dict[str, float] = field(default_factory=dict)  # seconds per batch
    build: Callable[[], nn.Module] | None = None  # the factory every run started from

    def initial_model(self, seed: int) -> nn.Module:
        """The network exactly as run ``seed`` started: built from the same seed, untrained."""
        if self.build is None:
            raise ConfigError(f"variant {self.name!r} does not keep its factory")
        seed_everything(seed)
        return self.build()

    @property
    def accuracies(self) -> list[float]:
        return [run.test_accuracy for run in self.runs]

    @property
    def test_accuracy(self) -> float:
        """Mean test accuracy over seeds."""
        return sum(self.accuracies) / len(self.runs)

    @property
    def accuracy_sd(self) -> float:
        """Standard deviation of test accuracy across seeds (0 with one seed)."""
        return float(torch.tensor(self.accuracies).std()) if len(self.runs) > 1 else 0.0

    def accuracy_text(self) -> str:
        """Mean test accuracy for prose: "66.4 % (sd 0.4 over seeds)", or "(one seed)"."""
        spread = (f"sd {100 * self.accuracy_sd:.1f} over seeds" if len(self.runs) > 1
                  else "one seed")
        return f"{100 * self.test_accuracy:.1f} % ({spread})"

    @property
    def model(self) -> nn.Module:
        """The trained model of the first seed (for figures that look inside a network)."""
        return self.runs[0].model

    @property
    def history(self) -> list[dict]:
        return self.runs[0].history

    @property
    def correct(self) -> torch.Tensor:
        """seeds × test images, 1 where the run classified the image correctly."""
        return torch.stack([run.correct for run in self.runs]).float()

    def row(self, batch_size: int, metric: str = "test accuracy") -> dict:
        accuracy = f"{100 * self.test_accuracy:.1f}%"
        if len(self.runs) > 1:
            accuracy += f" ± {100 * self.accuracy_sd:.1f}"
        row = {"variant": self.name, metric: accuracy, "seeds": len(self.runs),
               "parameters": f"{self.params:,}", "MACs / image": f"{self.macs / 1e6:.2f} M"}
        if self.latency:
            row[f"forward ms (batch {batch_size})"] = f"{1000 * self.latency['forward']:.1f}"
            row["forward + backward ms"] = f"{1000 * self.latency['forward_backward']:.1f}"
        return row


class UnknownVariant(ConfigError, KeyError):
    """A name that is not one of the comparison's variants (a KeyError, as a mapping raises)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass
class Results:
    """The variants of one comparison and the conditions they ran under."""

    variants: list[Variant]
    profile: Profile
    recipe: Recipe
    data: str
    device: str
    seeds: tuple[int, ...]
    precision: str = ""  # e.g. "bfloat16 autocast on cpu" (book.precision_text)
    task: Task = CLASSIFICATION

    def __getitem__(self, name: str) -> Variant:
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise UnknownVariant(f"no variant {name!r}; variants: "
                       f"{', '.join(v.name for v in self.variants)}")

    def __iter__(self):
        return iter(self.variants)

    def __len__(self) -> int:
        return len(self.variants)

    def difference(self, a: str, b: str, confidence: float = 0.95) -> stats.Difference:
        """Test accuracy (the task's per-image score) of ``a`` minus that of ``b``, paired over
        the seeds both ran and the test images, with the interval of
        ``stats.paired_difference``."""
        va, vb = self[a], self[b]
        seeds = [s for s in (r.seed for r in va.runs) if s in {r.seed for r in vb.runs}]
        if not seeds:
            raise ConfigError(f"{a!r} and {b!r} share no seed, so they cannot be paired")

        def pick(variant: Variant) -> torch.Tensor:  # rows in seed order, so they pair
            runs = sorted((r for r in variant.runs if r.seed in seeds), key=lambda r: r.seed)
            return torch.stack([r.correct for r in runs]).float()
        return stats.paired_difference(pick(va), pick(vb), confidence)

    def verdict(self, claim: str, a: str, b: str, what: str, direction: int = +1,
                **options) -> stats.Verdict:
        """The verdict on "``a`` − ``b`` in test accuracy has the sign ``direction``", from
        their paired difference (``stats.verdict_on_difference``; ``options`` go there)."""
        return stats.verdict_on_difference(claim, self.difference(a, b), what, direction,
                                           **options)

    def caption(self) -> str:
        seeds = len(self.seeds)
        latency = ("; latency: median of repeated timed batches (torch.utils.benchmark), "
                   f"training batch size, {self.device}"
                   if any(v.latency for v in self.variants) else "")
        versions = records.versions()
        return (f"{self.data}; {self.recipe.epochs} epochs (recipe: see 'Training recipe'); "
                f"profile '{self.profile.name}'; device {self.device}, trained in "
                f"{self.precision or 'float32'} (torch {versions['torch']}, torchvision "
                f"{versions['torchvision']}); {self.task.metric} is the mean over {seeds} "
                f"seed{'s' if seeds > 1 else ''}"
                f"{' ± its standard deviation' if seeds > 1 else ''}{latency}.")

    def rows(self) -> list[dict]:
        return [v.row(self.recipe.batch_size, self.task.metric) for v in self.variants]

    def table(self) -> Table:
        return Table(self.rows(), caption=self.caption())

    def _repr_html_(self) -> str:
        html = self.table()._repr_html_()
        if static_mode():  # on the website, the recipe page sits beside every chapter
            html += ('<p class="convbook-recipe-link">How these networks were trained and how '
                     'the intervals are computed: <a href="recipe.html">Training recipe</a>.</p>')
        return html

    def __repr__(self) -> str:
        return repr(self.table())


# --- the cache key ---------------------------------------------------------------------------

def model_digest(model: nn.Module) -> dict:
    """Structure (repr, with every block's flags in its extra_repr), the initial weights, and
    the code (``code_digest``) of every module class the model is made of."""
    weights = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        weights.update(name.encode())
        weights.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    classes = sorted({type(m) for m in model.modules()},
                     key=lambda c: (c.__module__, c.__qualname__))
    return {"repr": repr(model), "init": weights.hexdigest(), "code": code_digest(classes)}


def run_key(model: nn.Module, recipe: Recipe, seed: int, data: CifarData, device: torch.device,
            extra: dict | None = None, task: Task = CLASSIFICATION) -> str:
    """The cache key of one run: a digest of everything that shapes its result."""
    described = {
        "task": task.name,
        "model": model_digest(model),
        "recipe": sorted(recipe.__dict__.items()),
        "seed": seed,
        "data": data.digest(),
        "device": device.type,
        "training code": code_digest([train_module,
                                      *(importlib.import_module(m) for m in task.code)]),
        "versions": sorted(records.versions().items()),
        "threads": torch.get_num_threads(),
        "extra": sorted((extra or {}).items()),
    }
    return hashlib.sha256(json.dumps(described, default=str).encode()).hexdigest()[:24]


def runs_dir() -> Path | None:
    """The run cache's folder, created if needed, with temporaries a killed writer left there
    removed (``cache.remove_stale_temporaries``); None (after one warning) if it cannot be."""
    folder = cache_dir() / "runs"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        warn_once(f"the run cache {folder} cannot be created ({exc}); runs are not cached. "
                   f"Set CONVBOOK_CACHE to a writable folder to keep them.")
        return None
    remove_stale_temporaries(folder)
    return folder


# --- planning: the work a comparison would do -------------------------------------------------

PLAN_ENV = "CONVBOOK_PLAN"  # a JSON file: compare records its work there and trains nothing
CIFAR10_TRAIN_IMAGES = 50_000


class PlanRecorded(ConvbookError):
    """Raised by ``compare`` in plan mode, after recording what it would have trained."""


def record_plan(path: Path, variants: dict, data, profile: Profile, recipe: Recipe,
                seeds: Sequence[int], secondary: Sequence[str] = (),
                measure_train_error: bool = False, record_as: str = "") -> None:
    """Add each variant's training work to the plan file ``path``: its MACs per image, the
    images, epochs and runs it would train, and the work in MACs (forward and backward counted
    as three forwards, plus the test set's forwards, doubled with flip test-time augmentation,
    and the training set's once more when the final training error is measured). A profile
    that asks for all of CIFAR-10 (train_size None) is counted at its 50,000 training images
    even where the local copy holds fewer (flagged "scaled")."""
    train_n, test_n = len(data.train[1]), len(data.test[1])
    scaled = (profile.train_size is None and data.describe().startswith("CIFAR-10")
              and train_n < CIFAR10_TRAIN_IMAGES)
    if scaled:
        train_n = CIFAR10_TRAIN_IMAGES
    input_size = tuple(data.test[0].shape[1:])
    for name, build in variants.items():
        seed_everything(seeds[0])
        macs = measure.count_macs(build(), input_size)
        runs = 1 if name in secondary else len(seeds)
        per_run = macs * (3 * train_n * recipe.epochs + recipe.test_passes * test_n
                          + (train_n if measure_train_error else 0))
        entry = {"chapter": records.chapter(), "variant": name, "profile": profile.name,
                 "macs": macs, "train_images": train_n, "scaled": scaled,
                 "epochs": recipe.epochs, "runs": runs, "work": runs * per_run}
        records.update(path, f"{entry['chapter']}|{record_as}|{name}", entry)


# --- running ----------------------------------------------------------------------------------

def _result_fields(result) -> dict:
    """A task's result as the cache stores it: its dataclass fields by name, plain data that
    ``torch.load(weights_only=True)`` reads back without running any class's code."""
    return {f.name: getattr(result, f.name) for f in fields(result)}


def _restore_run(stored: dict, model: nn.Module, data: CifarData, task: Task):
    """The result and scores of a cached run, its weights loaded into ``model``. Raises (so
    ``load_checked`` deletes the file and the run is computed again) when the file does not fit
    this run: a result with other fields than ``task.result_type``'s, scores that are not one
    per test image, or another model's weights. All is checked before ``model`` changes."""
    names = sorted(f.name for f in fields(task.result_type))
    held = stored["result"]
    if not isinstance(held, dict) or sorted(held) != names:
        found = sorted(held) if isinstance(held, dict) else type(held).__name__
        raise ValueError(f"its result holds {found}, not the fields of "
                         f"{task.result_type.__name__} {names}")
    result = task.result_type(**held)
    scores = task.scores(result, data)
    images = len(data.test[1])
    if not isinstance(scores, torch.Tensor) or tuple(scores.shape) != (images,):
        raise ValueError(f"its scores are not one per test image ({images})")
    _check_weights(model, stored["state_dict"])
    model.load_state_dict(stored["state_dict"])
    return result, scores


def _check_weights(model: nn.Module, state) -> None:
    """Raise unless ``state`` has exactly ``model``'s parameter names and shapes (checked
    first: ``load_state_dict`` may copy some tensors before it finds one that does not fit)."""
    expected = model.state_dict()
    if not isinstance(state, dict) or set(state) != set(expected):
        raise ValueError("its weights are another model's (other parameter names)")
    for name, tensor in expected.items():
        stored = state[name]
        if isinstance(tensor, torch.Tensor) and (not isinstance(stored, torch.Tensor)
                                                 or stored.shape != tensor.shape):
            raise ValueError(f"its weights are another model's ({name} has another shape)")


def train_run(
    build: Callable[[], nn.Module],
    data: CifarData,
    recipe: Recipe,
    seed: int = 0,
    cache: bool = True,
    device: str | torch.device | None = None,
    measure_train_error: bool = False,
    amp: bool | None = None,
    task: Task = CLASSIFICATION,
    name: str = "",
    threads: int | None = None,
) -> Run:
    """Build a model from ``seed``, train it by ``recipe`` for ``task`` and score it, or load
    the run from the cache. ``amp`` (default: ``train.default_amp`` for the device) is part of
    the key; ``name`` labels the run in a build's timings file. ``threads``: train (and key)
    the run at this many threads, as a worker of ``parallel`` does (default: this process's)."""
    with _threads(threads):
        return _train_run(build, data, recipe, seed, cache, device, measure_train_error, amp,
                          task, name)


@contextlib.contextmanager
def _threads(threads: int | None):
    """torch's intra-op threads set to ``threads`` for the block (None: left as they are)."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train_run(build, data, recipe, seed, cache, device, measure_train_error, amp, task,
               name) -> Run:
    device = pick_device(device)
    amp = default_amp(device) if amp is None else amp
    seed_everything(seed)
    model = build()
    if not isinstance(model, nn.Module):
        raise ConfigError(f"a variant's factory must return an nn.Module, got "
                          f"{type(model).__name__}; pass e.g. partial(nets.CifarNet, 16)")
    folder = runs_dir() if cache else None
    path = (folder / _file_name(model, recipe, seed, data, device, measure_train_error, amp,
                                task)) if folder else None
    found = path is not None and path.exists()
    label = {"run": name or type(model).__name__, "seed": seed}
    stored = None
    if found:
        with timing.timed(timing.CACHE_LOADS):
            stored = load_checked(path, {"result", "state_dict"},
                                  lambda stored: _restore_run(stored, model, data, task))
    if stored is not None:
        (result, scores), cached = stored, True
    else:
        if found:  # a refused file: start again from the untouched initial network
            seed_everything(seed)
            model = build()
        with timing.timed(timing.TRAINING, **label):
            result = task.fit(model, data, recipe, seed, device, amp, measure_train_error)
        scores, cached = task.scores(result, data), False
        if path is not None:
            state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            save_atomic({"result": _result_fields(result), "state_dict": state}, path)
    model.to(device).eval()
    return Run(seed=seed, test_accuracy=float(scores.float().mean()), correct=scores,
               history=result.history,
               final_train_error=getattr(result, "final_train_error", None),
               model=model, cached=cached, result=result)


def _train_in_workers(planned: list[dict], device: torch.device, jobs: int | None) -> int | None:
    """Train the planned runs the cache lacks in ``parallel``'s worker processes, when the
    machine (or ``jobs``/``CONVBOOK_JOBS``) asks for more than one and the runs can be sent
    there; they land in the run cache. Returns the threads each worker ran with (the runs'
    key), or None when everything is left to this process."""
    workers, threads = parallel.jobs_for(len(planned), device, jobs)
    if workers == 1 or runs_dir() is None:
        return None
    if not parallel.sendable(*(run["build"] for run in planned), planned[0]["task"]):
        return None  # a lambda or a notebook's class: this process trains them
    with _threads(threads):
        missing = [run for run in planned if not _cached(run)]
    if missing:
        with timing.timed(timing.TRAINING):
            seconds = parallel.train_ahead([{**run, "threads": threads} for run in missing],
                                           min(workers, len(missing)), threads)
        for run, spent in zip(missing, seconds):
            timing.note_run(timing.TRAINING, spent, run=run["name"], seed=run["seed"],
                            worker_threads=threads)
    return threads


def _cached(run: dict) -> bool:
    """True when the run cache holds a file under this run's key."""
    device = pick_device(run["device"])
    amp = default_amp(device) if run["amp"] is None else run["amp"]
    seed_everything(run["seed"])
    name = _file_name(run["build"](), run["recipe"], run["seed"], run["data"], device,
                      run["measure_train_error"], amp, run["task"])
    return (runs_dir() / name).exists()


def _file_name(model, recipe, seed, data, device, measure_train_error, amp, task) -> str:
    """The run cache's file for a run; mixed precision depends on the machine
    (train.default_amp), so it is part of what shapes a run."""
    extra = {"measure_train_error": measure_train_error, "amp": amp}
    return f"{run_key(model, recipe, seed, data, device, extra, task)}.pt"


def _checked_seeds(seeds) -> tuple[int, ...]:
    """The seeds as ints, refusing what would not give independent runs: a repeated seed
    retrains (or reloads) the same run, which the statistics would count as a second one."""
    try:
        seeds = tuple(seeds)
    except TypeError:
        raise ConfigError(f"seeds must be a list of whole numbers >= 0, e.g. [0, 1, 2]; got "
                          f"{seeds!r}") from None
    wrong = [s for s in seeds
             if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0]
    if wrong:
        raise ConfigError(f"seeds must be whole numbers >= 0, e.g. [0, 1, 2]; got "
                          f"{list(seeds)!r} (not one: {', '.join(map(repr, wrong))})")
    if not seeds:
        raise ConfigError("compare needs at least one seed, e.g. seeds=[0, 1, 2]")
    seeds = tuple(int(s) for s in seeds)
    repeated = sorted(s for s, n in Counter(seeds).items() if n > 1)
    if repeated:
        raise ConfigError(f"seeds {list(seeds)} repeat {repeated}: a repeated seed gives the "
                          f"same run again, which would be counted as an independent one; pass "
                          f"distinct seeds, e.g. {list(range(len(seeds)))}")
    return seeds


def compare(
    variants: dict[str, Callable[[], nn.Module]],
    data: CifarData,
    profile: Profile,
    seeds: Sequence[int] | None = None,
    cache: bool = True,
    device: str | torch.device | None = None,
    recipe: Recipe | None = None,
    latency: bool = True,
    secondary: Sequence[str] = (),
    measure_train_error: bool = False,
    record_as: str = "",
    amp: bool | None = None,
    task: Task = CLASSIFICATION,
    jobs: int | None = None,
    record: bool = True,
) -> Results:
    """Train every variant (name -> model factory) on every seed under the same conditions.

    ``seeds`` defaults to the profile's; variants named in ``secondary`` (those no verdict
    rests on) run the first seed only. ``latency`` times each variant's forward and
    forward+backward pass at the training batch size on the device. ``amp``: mixed precision
    (default: ``train.default_amp`` for the device), named in the table's caption. ``task``:
    what the runs learn and how each test image is scored (``CLASSIFICATION``, or e.g.
    ``segmentation.SEGMENTATION``). ``jobs``: worker processes for the runs the cache lacks
    (``parallel.jobs_for``; default ``CONVBOOK_JOBS`` or one per CPU core; 1: none).
    Inside a book build each
    variant is also added to the build's results file (``records``), its name followed by
    ``record_as`` when given (two comparisons of one chapter that reuse variant names), unless
    ``record`` is false (runs that only choose a setting, e.g. ``sweep.learning_rates``).
    """
    if not isinstance(variants, dict) or not variants:
        raise ConfigError("compare needs at least one variant: {'name': factory, ...}")
    for name, build in variants.items():
        if isinstance(build, nn.Module) or not callable(build):
            raise ConfigError(f"variant {name!r} must be a factory that builds a fresh model "
                              f"for each seed, got {type(build).__name__}; pass e.g. "
                              f"partial(nets.CifarNet, 16) or lambda: MyNet()")
    if not isinstance(profile, Profile):
        raise ConfigError(f"profile must be a Profile (profiles.get({profile!r}) or the "
                          f"setup's profile), got {type(profile).__name__}")
    if not all(hasattr(data, part) for part in ("train", "test", "digest", "describe")):
        raise ConfigError(f"data must be a CifarData-like object with .train and .test "
                          f"(data.load(...) or synthetic's), got {type(data).__name__}")
    unknown = set(secondary) - set(variants)
    if unknown:
        raise ConfigError(f"secondary names unknown variants {sorted(unknown)}")
    device = pick_device(device)
    amp = default_amp(device) if amp is None else amp
    recipe = recipe or profile.recipe
    seeds = _checked_seeds(profile.seed_list() if seeds is None else seeds)
    plan = records.path_from(PLAN_ENV)
    if plan is not None:  # count the work instead of doing it (ci/plan_full.py)
        record_plan(plan, variants, data, profile, recipe, seeds, secondary,
                    measure_train_error, record_as)
        raise PlanRecorded(f"planned {len(variants)} variants; {PLAN_ENV} is set, so nothing "
                           f"was trained")
    planned = [{"build": build, "data": data, "recipe": recipe, "seed": seed, "device": device,
                    "measure_train_error": measure_train_error, "amp": amp, "task": task, "name": name}
               for name, build in variants.items()
               for seed in (seeds[:1] if name in secondary else seeds)]
    threads = _train_in_workers(planned, device, jobs) if cache else None
    out = []
    for name, build in variants.items():
        runs = [train_run(**run, cache=cache, threads=threads) for run in planned
                if run["name"] == name]
        model = runs[0].model
        input_size = tuple(data.test[0].shape[1:])
        seconds = {}
        if latency:
            seconds = measure.train_latency(build(), recipe.batch_size, input_size, device=device)
        out.append(Variant(name, measure.count_params(model),
                           measure.count_macs(model, input_size), runs, seconds, build))
    results = Results(out, profile, recipe, data.describe(), device.type, seeds,
                      precision_text(device, amp), task)
    if record:
        records.record_results(results, record_as)  # for the reflections chapter's figure
    return results
