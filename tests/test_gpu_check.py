"""scripts/gpu_check.sh without a GPU: a clear message and an immediate exit, no report."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch

from tests.conftest import REPO


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: run scripts/gpu_check.sh itself")
def test_gpu_check_exits_at_once_without_a_gpu(tmp_path) -> None:
    start = time.perf_counter()
    done = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh"), str(tmp_path / "report")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHON": sys.executable})
    assert done.returncode == 2
    assert "gpu_check: no CUDA GPU is visible to torch" in done.stderr
    assert "nothing to check" in done.stderr
    assert time.perf_counter() - start < 90  # one torch import, nothing else (slow only on a loaded machine)
    assert not (tmp_path / "report").exists()


def test_gpu_check_report_renders_sections() -> None:
    """The markdown report of a finished run: one heading per section, tables of its rows, failures listed."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    report = {
        "environment": {"gpu": "NVIDIA H200", "torch": "2.13.0", "cuda": "12.8", "triton": "3.9.0",
                        "mamba_ssm": "absent"},
        "seconds": 312.0, "ok": False,
        "sections": {
            "tests": {"ok": False, "summary": "1 failed, 9 passed in 40.0s", "failures": ["FAILED tests/x.py::t"]},
            "scan": {"ok": True, "rows": [{"path": "triton", "forward_ms": 1.25, "max_abs_difference": 3.1e-06}]},
            "pipeline_12mp": {"skipped": True, "ok": False},
        },
    }
    text = module._markdown(report)
    assert text.startswith("# GPU check (NVIDIA H200, torch 2.13.0, CUDA 12.8, triton 3.9.0, mamba-ssm absent)")
    assert "**Some sections failed**" in text
    assert "## tests: FAILED" in text and "- FAILED tests/x.py::t" in text
    assert "## scan: ok" in text and "| path | forward_ms | max_abs_difference |" in text
    assert "| triton | 1.25 | 3.1e-06 |" in text
    assert "## pipeline_12mp: skipped (time budget)" in text
