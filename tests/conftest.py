"""Shared test helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("INPAINTSTUDIO_FIXTURES", REPO / "tests" / "fixtures" / "parity"))


def parity_dir(model: str) -> Path:
    """The parity fixture folder of ``model`` (tests/fixtures/parity/<model>)."""
    folder = FIXTURES / model
    assert (folder / "config.json").is_file(), f"parity fixture missing: {folder}"
    return folder


@pytest.fixture
def fixtures_root() -> Path:
    return FIXTURES


@pytest.fixture(scope="module")
def single_thread():
    """One intra-op thread for a module: tests that issue many small ops (scans, tiny networks) run far
    slower with two contended threads on a shared 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
