"""The fuzz corpus of this test process, built once (``test_fuzz`` and ``test_cli_robust`` both use it), and the
in-process runner of its cases."""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import shutil
import tempfile
from pathlib import Path

from inpaintstudio.cli import main
from tests.fuzz.corpus import Case, build_corpus

REPO = Path(__file__).resolve().parent.parent.parent
FIXTURES = Path(os.environ.get("INPAINTSTUDIO_FIXTURES", REPO / "tests" / "fixtures" / "parity"))
ROOT = Path(tempfile.mkdtemp(prefix="inpaintstudio-fuzz-"))
atexit.register(shutil.rmtree, ROOT, ignore_errors=True)
CASES = build_corpus(ROOT, FIXTURES)
WEIGHTS = ROOT / "no-weights"  # every deep model's weights are missing here
WORKING = ROOT / "cwd"  # the working folder of every run


@contextlib.contextmanager
def _environment(values: dict[str, str]):
    saved = {key: os.environ.get(key) for key in [*values, "INPAINTSTUDIO_WEIGHTS"]}
    os.environ["INPAINTSTUDIO_WEIGHTS"] = str(WEIGHTS)
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_in_process(case: Case) -> tuple[int, str, str]:
    """``main(case.argv)`` in the corpus's working folder (relative paths never reach the repository)."""
    out, err = io.StringIO(), io.StringIO()
    with _environment(case.env), contextlib.chdir(WORKING), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        try:
            code = main(case.argv)
        except SystemExit as stop:  # argparse's own exit on a usage error
            code = stop.code if isinstance(stop.code, int) else 2
    return int(code), out.getvalue(), err.getvalue()
