"""The caches are safe and keyed by what runs: reading one never runs code, a file that does
not fit is replaced, the key follows the code a model calls, and killed writes are cleaned up."""

import importlib.util
import os
import pathlib
import pickle
import re
import subprocess
import sys
import textwrap
import time
import warnings
from functools import partial

import numpy as np
import pytest
import torch
from convbook import cache, data, experiments, nets, profiles, records
from convbook.code_digest import code_digest
from convbook.data import CLASSES
from convbook.errors import ConfigError
from PIL import Image
from test_experiments import _data, _net

PROFILE = profiles.scaled(profiles.get("smoke"), epochs=1, batch_size=32)


def _runs() -> set[pathlib.Path]:
    return set((data.cache_dir() / "runs").glob("*.pt"))


def _run_file(build) -> tuple[experiments.Run, pathlib.Path]:
    """Train one tiny run and return it with the cache file it wrote."""
    before = _runs()
    run = experiments.train_run(build, _data(), PROFILE.recipe, seed=0, device="cpu")
    (path,) = _runs() - before
    return run, path


def _key(model, **extra):
    return experiments.run_key(model, PROFILE.recipe, 0, _data(), torch.device("cpu"), extra)


# --- reading a cache never runs code ----------------------------------------------------------

class _Planted:
    """A pickle that, when unpickled the unsafe way, creates ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


@pytest.mark.parametrize("write", ["torch.save", "pickle.dump"])
def test_a_planted_pickle_is_refused_not_run(tmp_path, write):
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(_Planted(proof)))  # the payload is live: unpickling runs it
    assert proof.exists()

    variants = {"net": partial(_net, 4)}
    first = experiments.compare(variants, _data(), PROFILE, seeds=[0], device="cpu",
                                latency=False)
    (path,) = _runs()
    marker = tmp_path / "marker"
    with open(path, "wb") as handle:
        (torch.save if write == "torch.save" else pickle.dump)(_Planted(marker), handle)
    with pytest.warns(RuntimeWarning, match=re.escape(str(path)) + ".*computing again"):
        again = experiments.compare(variants, _data(), PROFILE, seeds=[0], device="cpu",
                                    latency=False)
    assert not marker.exists()
    run = again["net"].runs[0]
    assert not run.cached and run.test_accuracy == first["net"].runs[0].test_accuracy
    assert set(torch.load(path, weights_only=True)) == {"result", "state_dict"}
    third = experiments.compare(variants, _data(), PROFILE, seeds=[0], device="cpu",
                                latency=False)
    assert third["net"].runs[0].cached


def test_cached_files_are_plain_data(tmp_path):
    value = {"a": np.arange(3.0), "b": (np.float32(1.5), [np.int64(2), None, True]), "c": "x"}
    assert cache.save_atomic(value, tmp_path / "plain.pt")
    back = cache.load_checked(tmp_path / "plain.pt")
    assert isinstance(back["a"], np.ndarray) and back["a"].tolist() == [0.0, 1.0, 2.0]
    assert back["b"] == (1.5, [2, None, True]) and back["c"] == "x"
    cache._warned.clear()
    with pytest.warns(RuntimeWarning, match="not plain data"):
        assert not cache.save_atomic({"run": _Planted(tmp_path / "m")}, tmp_path / "obj.pt")
    assert not list(tmp_path.glob("obj.pt*"))


# --- a file that does not fit is replaced, not failed on at every run ------------------------

def _another_models_weights(path, other):
    torch.save(torch.load(other, weights_only=True), path)


def _other_result_fields(path, other):
    stored = torch.load(path, weights_only=True)
    stored["result"] = {"ious": torch.zeros(32, 10), "history": [], "train_seconds": 0.0}
    torch.save(stored, path)


def _scores_for_other_images(path, other):
    stored = torch.load(path, weights_only=True)
    stored["result"]["predictions"] = stored["result"]["predictions"][:5]
    torch.save(stored, path)


@pytest.mark.parametrize("spoil", [_another_models_weights, _other_result_fields,
                                   _scores_for_other_images])
def test_a_file_with_wrong_content_is_replaced(spoil):
    build = partial(nets.CifarNet, 4)
    first, path = _run_file(build)
    _, other = _run_file(partial(nets.CifarNet, 8))
    spoil(path, other)
    with pytest.warns(RuntimeWarning, match=re.escape(str(path)) + ".*computing again"):
        again = experiments.train_run(build, _data(), PROFILE.recipe, seed=0, device="cpu")
    assert not again.cached and again.test_accuracy == first.test_accuracy
    for name, value in first.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[name])
    third = experiments.train_run(build, _data(), PROFILE.recipe, seed=0, device="cpu")
    assert third.cached and third.test_accuracy == first.test_accuracy


def test_a_data_cache_file_with_wrong_content_is_decoded_again(tmp_path):
    root = tmp_path / "folder"
    for label, name in enumerate(CLASSES):
        (root / "train" / name).mkdir(parents=True)
        (root / "test" / name).mkdir(parents=True)
        pixels = np.full((32, 32, 3), label, dtype=np.uint8)
        Image.fromarray(pixels).save(root / "train" / name / "0.png")
    images, labels = data.cifar10("train", root=root, download=False)
    (path,) = (data.cache_dir() / "data").glob("imagefolder-train-*.pt")
    torch.save((labels, images), path)  # the right type, the wrong content
    with pytest.warns(RuntimeWarning, match=re.escape(str(path))):
        again = data.cifar10("train", root=root, download=False)
    assert torch.equal(again[0], images) and torch.equal(again[1], labels)
    assert torch.equal(torch.load(path, weights_only=True)[0].sort(0).values,
                       images.sort(0).values)


# --- the key covers the code a model runs -----------------------------------------------------

@pytest.fixture
def scratch_modules(tmp_path, monkeypatch):
    """A folder on sys.path for temporary modules, forgotten (with what was imported from
    it) after the test."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("cbtest_"):
            del sys.modules[name]


def _import_file(path: pathlib.Path, name: str):
    for stale in [m for m in sys.modules if m.startswith("cbtest_")]:
        del sys.modules[stale]
    importlib.invalidate_caches()
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


HELPER_MODEL = """
from torch import nn


def helper(x):
    return x {op}


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(helper(x))
"""


def _model_key(module):
    torch.manual_seed(0)
    return _key(module.Net())


def test_editing_a_helper_the_model_calls_changes_the_key(scratch_modules):
    path = scratch_modules / "cbtest_helper_model.py"
    path.write_text(HELPER_MODEL.format(op="* 2"))
    base = _model_key(_import_file(path, "cbtest_helper_model"))
    assert _model_key(_import_file(path, "cbtest_helper_model")) == base
    path.write_text(HELPER_MODEL.format(op="* 3"))
    assert _model_key(_import_file(path, "cbtest_helper_model")) != base


def test_editing_a_module_of_ours_the_model_refers_to_changes_the_key(scratch_modules):
    dependency = scratch_modules / "cbtest_dependency.py"
    model = scratch_modules / "cbtest_model.py"
    dependency.write_text("def act(x):\n    return x.relu()\n")
    model.write_text(HELPER_MODEL.replace("from torch import nn",
                                          "from torch import nn\nimport cbtest_dependency")
                     .format(op=""), encoding="utf-8")
    model.write_text(model.read_text().replace("helper(x))", "cbtest_dependency.act(x))"))
    base = _model_key(_import_file(model, "cbtest_model"))
    dependency.write_text("def act(x):\n    return x.tanh()\n")
    assert _model_key(_import_file(model, "cbtest_model")) != base


NOTEBOOK_CELL = """
from torch import nn

FACTOR = {factor}


def scale(x):
    return x {helper}


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return scale(self.fc(x)) {forward} * FACTOR
"""


def _notebook_net(factor=1, helper="+ 1", forward="+ 0"):
    """A class as a notebook defines it: in ``__main__``, with no source file."""
    namespace = {"__name__": "__main__"}
    source = NOTEBOOK_CELL.format(factor=factor, helper=helper, forward=forward)
    exec(compile(source, "<notebook cell>", "exec"), namespace)  # noqa: S102
    torch.manual_seed(0)
    return namespace["Net"]()


def test_notebook_classes_are_keyed_by_their_code():
    base = _notebook_net()
    assert _key(_notebook_net()) == _key(base)  # the same code defined again
    for changed in ({"forward": "- 1"}, {"helper": "* 2"}, {"factor": 2}):
        other = _notebook_net(**changed)
        assert repr(other) == repr(base)
        assert _key(other) != _key(base), changed


def test_the_code_digest_is_the_same_in_another_process():
    script = textwrap.dedent(f"""
        import torch
        from convbook import nets
        from convbook.code_digest import code_digest
        namespace = {{"__name__": "__main__"}}
        exec(compile({NOTEBOOK_CELL.format(factor=1, helper="+ 1", forward="+ 0")!r},
                     "<another cell>", "exec"), namespace)
        print(code_digest([namespace["Net"], nets.CifarNet]))
    """)
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, check=True).stdout.strip()
    here = code_digest([type(_notebook_net()), nets.CifarNet])
    assert out == here


def test_the_key_holds_threads_precision_and_versions():
    assert {"torch", "torchvision", "convbook"} <= set(records.versions())
    model = _net(4)
    assert _key(model, amp=True) != _key(model, amp=False)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _key(model)
        torch.set_num_threads(2)
        assert _key(model) != one
    finally:
        torch.set_num_threads(threads)


# --- killed writes, repeated seeds ------------------------------------------------------------

def test_opening_the_run_cache_removes_old_temporaries_only():
    folder = data.cache_dir() / "runs"
    folder.mkdir(parents=True)
    old, young, kept = folder / "a.pt1234.tmp", folder / "b.pt5678.tmp", folder / "c.pt"
    for path in (old, young, kept):
        path.write_bytes(b"x")
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    os.utime(kept, (hour_ago, hour_ago))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert experiments.runs_dir() == folder
    assert not old.exists() and young.exists() and kept.exists()


def test_compare_refuses_repeated_or_invalid_seeds():
    variants = {"net": partial(_net, 4)}
    with pytest.raises(ConfigError, match=r"repeat \[0\].*distinct seeds, e\.g\. \[0, 1\]"):
        experiments.compare(variants, _data(), PROFILE, seeds=[0, 0], device="cpu")
    with pytest.raises(ConfigError, match=r"\[1, 2\]"):
        experiments.compare(variants, _data(), PROFILE, seeds=[1, 2, 1, 2], device="cpu")
    for wrong in ([True], [-1], [0.5], ["1"], [0, None]):
        with pytest.raises(ConfigError, match=r"whole numbers >= 0, e\.g\. \[0, 1, 2\]"):
            experiments.compare(variants, _data(), PROFILE, seeds=wrong, device="cpu")
    with pytest.raises(ConfigError, match="whole numbers >= 0"):
        experiments.compare(variants, _data(), PROFILE, seeds=3, device="cpu")
    assert experiments._checked_seeds([np.int64(2), 0]) == (2, 0)
    assert not _runs()  # nothing was trained
