"""Runs in worker processes give the numbers the same runs give one after another."""

import json
from functools import partial

import pytest
import torch
from convbook import experiments, nets, parallel, profiles
from convbook.errors import ConfigError
from test_experiments import _data

PROFILE = profiles.scaled(profiles.get("smoke"), epochs=2, batch_size=16)
VARIANTS = {"narrow": partial(nets.CifarNet, 4, stages=2),
            "wide": partial(nets.CifarNet, 8, stages=2)}


def _same(a, b):
    for va, vb in zip(a, b):
        assert va.accuracies == vb.accuracies and va.history == vb.history
        for ra, rb in zip(va.runs, vb.runs):
            assert torch.equal(ra.correct, rb.correct)
            for key, value in ra.model.state_dict().items():
                assert torch.equal(value, rb.model.state_dict()[key]), key


def test_workers_give_the_numbers_of_runs_in_turn(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVBOOK_CACHE", str(tmp_path / "side-by-side"))
    side_by_side = experiments.compare(VARIANTS, _data(), PROFILE, seeds=[0, 1], device="cpu",
                                       latency=False, jobs=2)
    assert all(r.cached for v in side_by_side for r in v.runs)  # trained by the workers
    monkeypatch.setenv("CONVBOOK_CACHE", str(tmp_path / "in-turn"))
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' threads: 2 cores / 2 workers
    try:
        in_turn = experiments.compare(VARIANTS, _data(), PROFILE, seeds=[0, 1], device="cpu",
                                      latency=False, jobs=1)
    finally:
        torch.set_num_threads(before)
    assert not any(r.cached for v in in_turn for r in v.runs)
    _same(side_by_side, in_turn)


def test_a_parallel_batch_is_timed_once_and_its_runs_listed(timings_file):
    experiments.compare(VARIANTS, _data(), PROFILE, seeds=[0], device="cpu", latency=False,
                        jobs=2)
    entry = json.loads(timings_file.read_text())["07-shuffle"]
    assert entry["seconds"]["training"] > 0
    trained = [r for r in entry["runs"] if r["kind"] == "training"]
    assert sorted(r["run"] for r in trained) == ["narrow", "wide"]
    assert all(r["seconds"] > 0 and r["worker_threads"] == "1" for r in trained)


def test_what_cannot_be_sent_trains_here():
    lambdas = {"narrow": lambda: nets.CifarNet(4, stages=2)}
    results = experiments.compare(lambdas, _data(), PROFILE, seeds=[0, 1], device="cpu",
                                  latency=False, jobs=2)
    assert not any(r.cached for r in results["narrow"].runs)


def test_the_number_of_workers(monkeypatch):
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(parallel, "cores", lambda: 4)
    monkeypatch.delenv(parallel.JOBS_ENV, raising=False)
    assert parallel.jobs_for(10, cpu) == (4, 1)
    assert parallel.jobs_for(2, cpu) == (2, 2)  # fewer runs than cores: threads share the rest
    assert parallel.jobs_for(10, gpu)[0] == 1
    assert parallel.jobs_for(10, cpu, jobs=1)[0] == 1
    monkeypatch.setenv(parallel.JOBS_ENV, "3")
    assert parallel.jobs_for(10, cpu) == (3, 1)
    monkeypatch.setenv(parallel.JOBS_ENV, "many")
    with pytest.raises(ConfigError, match="CONVBOOK_JOBS must be a whole number"):
        parallel.jobs_for(10, cpu)
    with pytest.raises(ConfigError, match="jobs must be a whole number"):
        parallel.jobs_for(10, cpu, jobs=0)
