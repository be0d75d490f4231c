"""scripts/gpu_check.sh without a GPU: a clear message and an immediate exit, no report."""

from __future__ import annotations

import json
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
    sys.modules[spec.name] = module  # its dataclasses look their module up there
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


def test_gpu_check_cpu_dry_run_runs_every_section(tmp_path) -> None:
    """The whole check on the CPU at tiny sizes, through the same code as on a GPU, with the same report files:
    a stale call in any section fails here instead of on the one GPU run there is."""
    done = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh"), str(tmp_path / "report"), "--cpu-dry-run"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "report" / "gpu_check.json").read_text())
    sections = report["sections"]
    assert list(sections) == ["tests", "scan", "models_256", "training_step", "pipeline_12mp"]
    assert all(section["ok"] for section in sections.values()), sections
    assert report["environment"]["dry_run"] and report["environment"]["gpu"] == "CPU (dry run)"
    assert sections["tests"]["counts"].get("skipped", 0) >= 1  # the GPU tests were collected (and skip here)
    scan = {row["path"]: row for row in sections["scan"]["rows"]}
    assert scan["chunked"]["max_abs_difference"] < 1e-4 and scan["auto"]["worst_gradient_error_relative"] < 1e-4
    networks = {row["model"] for row in sections["models_256"]["rows"]}
    assert {"sem_net", "mxt", "hint", "inclg", "tsgl", "tsgl_512", "lama", "csfc"} <= networks
    assert not any(":" in name for name in networks)  # one row per network, not per variant
    assert {row["dtype"] for row in sections["models_256"]["rows"]} == {"fp32", "bf16"}
    assert [row["model"] for row in sections["training_step"]["rows"]] == ["sem_net", "mxt", "hint"]
    assert all(row["unchanged_outside"] for row in sections["pipeline_12mp"]["rows"])
    text = (tmp_path / "report" / "gpu_check.md").read_text()
    assert text.startswith("# GPU check, CPU dry run (CPU (dry run), torch ")
