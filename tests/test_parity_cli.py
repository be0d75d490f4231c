"""`inpaintstudio parity` over every fixture folder in one process, and its verdict when a fixture disagrees.

Each model's own test file checks its fixture in process (with tighter per-output bounds); this file checks the
command a researcher runs, once for all fixtures, so that the suite pays for the start-up only once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from inpaintstudio import registry
from inpaintstudio.cli import main
from inpaintstudio.errors import EXIT_BAD_INPUT, EXIT_FAILED
from tests.conftest import FIXTURES, REPO


def _fixture_folders() -> list[Path]:
    return sorted(path for path in FIXTURES.iterdir() if (path / "config.json").is_file())


def test_every_fixture_passes_through_the_command() -> None:
    folders = _fixture_folders()
    # every output a fixture's tolerances name must be produced and pass (read from the fixture, no list here)
    expected = {folder.name: list(json.loads((folder / "config.json").read_text())["tolerance"]["atol"])
                for folder in folders}
    known = {card.name for card in registry.builtin_cards()}
    assert set(expected) <= known and len(expected) >= 7
    done = subprocess.run([sys.executable, "-m", "inpaintstudio", "parity", *map(str, folders)], cwd=REPO,
                          capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    blocks = {block.splitlines()[0].split()[1]: block
              for block in done.stdout.split("\n\n") if block.startswith("parity:")}
    assert set(blocks) == set(expected)
    for model, rows in expected.items():
        lines = blocks[model].splitlines()
        assert lines[-1] == "PASS", blocks[model]
        for row in rows:
            assert any(line.startswith(row + " ") and line.endswith("ok") for line in lines), (row, blocks[model])
    assert done.stdout.rstrip().endswith(f"{len(folders)} of {len(folders)} fixtures pass")


def test_a_disagreeing_fixture_fails_with_exit_code_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = FIXTURES / "hint"
    tampered = tmp_path / "hint"
    shutil.copytree(source, tampered)
    outputs = load_file(str(source / "outputs.safetensors"))
    outputs["output_raw"] = outputs["output_raw"] + 1e-3  # ten times the tolerance
    save_file(outputs, str(tampered / "outputs.safetensors"))
    assert main(["parity", str(source), str(tampered)]) == EXIT_FAILED
    out = capsys.readouterr().out
    failing_block = out.split("\n\n")[1]
    assert "output_raw" in failing_block and "FAIL" in failing_block.splitlines()[2]
    assert out.rstrip().endswith("1 of 2 fixtures pass; failing: hint")


def test_model_option_takes_one_folder(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parity", str(FIXTURES / "hint"), str(FIXTURES / "lama"), "--model", "hint"]) == EXIT_BAD_INPUT
    assert "--model names the model of one folder" in capsys.readouterr().err
