"""Fuzz suite: every command on a generated corpus of malformed inputs and slips (``tests/fuzz/corpus.py``).

Each case runs in-process through the CLI's ``main()`` (a sample also as a real subprocess) and must
end with the documented exit code, print no traceback (unless ``--debug``), leave every input file
byte for byte as it was, write what it promises and nothing it refuses, and keep the pixels outside
the hole identical in lossless results.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inpaintstudio import io as image_io
from tests.fuzz.corpus import Case
from tests.fuzz.session import CASES, REPO, ROOT, WEIGHTS, WORKING, run_in_process

SUBPROCESS_SAMPLE = ("bombs/image-ztxt.png", "paths/non-utf8-image", "batch/continues-past-bad-files",
                     "train/malformed.yaml")


def _digests(folder: Path) -> dict[str, str]:
    """sha256 of every regular file under ``folder`` (symlinks and FIFOs are not followed or read)."""
    found = {}
    for directory, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(directory, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            with open(path, "rb") as handle:
                found[path] = hashlib.sha256(handle.read()).hexdigest()
    return found


MATERIAL_BEFORE = _digests(ROOT / "material")


def _argv_inputs(case: Case) -> dict[str, str]:
    """Digests of the material files a case names (checked again right after it ran)."""
    material = str(ROOT / "material")
    digests: dict[str, str] = {}
    for arg in case.argv:
        if arg.startswith(material):
            digests.update({k: v for k, v in MATERIAL_BEFORE.items() if k == arg or k.startswith(arg + os.sep)})
    return digests


def _check(case: Case, code: int, stdout: str, stderr: str) -> None:
    expected = case.code if isinstance(case.code, tuple) else (case.code,)
    assert code in expected, f"exit {code}, expected {case.code}\nstdout: {stdout}\nstderr: {stderr}"
    if not case.traceback:
        assert "Traceback" not in stderr and "Traceback" not in stdout, stderr
    else:
        assert "Traceback" in stderr
    for text in case.stderr:
        assert text in stderr, f"{text!r} not in stderr: {stderr}"
    for path in case.creates:
        assert path.is_file(), f"{path} was not written\n{stderr}"
    for path in case.absent:
        assert not os.path.lexists(path) or path.read_bytes() == b"earlier result", f"{path} was written"
    for image, mask, output in case.lossless:
        source = image_io.load_image(image)
        hole = image_io.load_mask(mask, size=source.size, resize=True)
        result = image_io.load_image(output)
        assert result.size == source.size
        np.testing.assert_array_equal(result.rgb[~hole], source.rgb[~hole])


def test_corpus_is_large_and_covers_every_command() -> None:
    assert len(CASES) >= 300, len(CASES)
    commands = {case.argv[0] for case in CASES if case.argv and not case.argv[0].startswith("-")}
    assert {"inpaint", "compare", "eval", "parity", "train", "weights", "clinic", "models"} <= commands
    families = {case.family for case in CASES}
    assert {"truncated", "modes", "exif", "bombs", "junk", "paths", "outputs", "options", "slips", "batch",
            "mutations"} <= families


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_case(case: Case) -> None:
    before = _argv_inputs(case)
    code, stdout, stderr = run_in_process(case)
    _check(case, code, stdout, stderr)
    after = {path: digest for path, digest in _digests(ROOT / "material").items() if path in before}
    assert after == before, "an input file changed"


def test_no_input_changed_over_the_whole_run() -> None:
    assert _digests(ROOT / "material") == MATERIAL_BEFORE
    assert sorted(WORKING.iterdir()) == []  # nothing was written into the working folder


@pytest.mark.parametrize("case_id", SUBPROCESS_SAMPLE)
def test_subprocess_sample(case_id: str) -> None:
    case = next(c for c in CASES if c.id == case_id)
    for path in case.creates:  # the in-process run may have written them already
        if path.is_file():
            path.unlink()
    overwrite = ["--overwrite"] if case.argv[0] in ("inpaint", "compare") and case.code == 0 else []
    env = {**os.environ, **case.env, "INPAINTSTUDIO_WEIGHTS": str(WEIGHTS), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "inpaintstudio", *case.argv, *overwrite], capture_output=True,
                          text=True, errors="replace", timeout=120, env=env, cwd=WORKING)
    _check(case, done.returncode, done.stdout, done.stderr)
