"""Shared fixtures: tests never touch the network or the user's cache."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


def load_ci_script(name: str):
    """Import one of the pipeline scripts in ci/ as a module."""
    spec = importlib.util.spec_from_file_location(f"ci_{name}", ROOT / "ci" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def pytest_collection_modifyitems(items):
    """Whatever needs the executed book is slow: `make check` (-m "not slow") leaves it out."""
    for item in items:
        if "built_book" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVBOOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CONVBOOK_PROGRESS", "0")
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """The whole book executed by papermill in the smoke profile and built with -W, once."""
    out = tmp_path_factory.mktemp("book")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVBOOK_CACHE", str(out / "_build" / "cache"))
        assert load_ci_script("book").main(["--profile", "smoke", "--output", str(out)]) == 0
    return out / "_build"


@pytest.fixture
def timings_file(tmp_path, monkeypatch):
    """A build's timings file for chapter 07-shuffle, as ci/book.py names it to the kernels."""
    from convbook import records, timing

    path = tmp_path / "parts.json"
    monkeypatch.setenv(timing.ENV, str(path))
    monkeypatch.setenv(records.CHAPTER_ENV, "07-shuffle")
    monkeypatch.setattr(timing, "_totals", {})
    monkeypatch.setattr(timing, "_runs", [])
    return path
