"""Where a chapter's time goes: what convbook.timing adds up inside a build's kernels."""

import json

import pytest
from convbook import experiments, profiles, timing
from test_experiments import _data, _net

PROFILE = profiles.scaled(profiles.get("smoke"), epochs=1)


def test_a_comparison_records_training_then_cache_loads_and_latency(timings_file):
    variants = {"narrow": lambda: _net(4)}
    experiments.compare(variants, _data(), PROFILE, seeds=[0, 1], device="cpu")
    first = json.loads(timings_file.read_text())["07-shuffle"]
    assert first["seconds"]["training"] > 0 and first["seconds"]["latency"] > 0
    assert "cache loads" not in first["seconds"]
    assert [(r["kind"], r["run"], r["seed"]) for r in first["runs"]] == [
        ("training", "narrow", "0"), ("training", "narrow", "1")]
    experiments.compare(variants, _data(), PROFILE, seeds=[0, 1], device="cpu", latency=False)
    second = json.loads(timings_file.read_text())["07-shuffle"]
    assert second["seconds"]["training"] == first["seconds"]["training"]  # nothing retrained
    assert second["seconds"]["cache loads"] >= 0


def test_nested_blocks_count_once_in_the_outermost(timings_file):
    with timing.timed(timing.FRAMES), timing.timed(timing.LATENCY):
        pass
    seconds = json.loads(timings_file.read_text())["07-shuffle"]["seconds"]
    assert set(seconds) == {timing.FRAMES}


def test_nothing_is_written_outside_a_build(tmp_path, monkeypatch):
    monkeypatch.delenv(timing.ENV, raising=False)
    with timing.timed(timing.TRAINING):
        pass
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind must be one of"), timing.timed("coffee"):
        pass
