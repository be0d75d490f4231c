"""Shared test helpers."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("INPAINTSTUDIO_FIXTURES", REPO / "tests" / "fixtures" / "parity"))

if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    # Several workers share the cores: one intra-op thread each (and in the commands they start). Two OpenMP
    # threads per worker leave idle threads spinning on cores the other workers need, and the networks' many small
    # ops then wait on each other: the tiny parity networks ran 10x slower than alone.
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"


def parity_dir(model: str) -> Path:
    """The parity fixture folder of ``model`` (tests/fixtures/parity/<model>)."""
    folder = FIXTURES / model
    assert (folder / "config.json").is_file(), f"parity fixture missing: {folder}"
    return folder


def fixture_tensors_of(folder: Path) -> dict[str, dict[str, torch.Tensor]]:
    """A parity fixture's ``weights``, ``inputs`` and ``outputs`` files, each as name -> tensor."""
    from safetensors.torch import load_file

    return {name: load_file(str(folder / f"{name}.safetensors")) for name in ("weights", "inputs", "outputs")}


def fixture_net(module: ModuleType, config: Any, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """``module.build(config)`` with ``state`` loaded strictly, in eval mode."""
    from inpaintstudio import weights

    net = module.build(config)
    weights.load_strict(net, state)
    return net.eval()


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


# Modules that take longest (a studio server, training runs, subprocesses), in decreasing order. Run first, they let
# pytest-xdist's workers (--dist loadscope: a module stays on one worker) finish together instead of one worker
# starting a long module while the other has nothing left.
LONGEST_MODULES = ("test_ui_studio", "test_training", "test_ui_cleanup", "test_training_ddp", "test_models_pipeline",
                   "test_scan_kernels", "test_fetch", "test_fuzz", "test_tsgl", "test_eval")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: index for index, name in enumerate(LONGEST_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable: file order otherwise
