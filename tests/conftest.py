"""Shared test helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
