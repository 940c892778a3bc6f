"""Shared fixtures: tests never touch the network or the user's cache."""

import pytest
import torch


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVBOOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CONVBOOK_PROGRESS", "0")
    torch.manual_seed(0)
