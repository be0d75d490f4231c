"""What the browser tests share: how Chromium is launched and where screenshots go."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TIMEOUT_MS = 120_000
# `make screenshots` points this at docs/; otherwise screenshots go to a temporary folder
SCREENSHOTS_ENV = "INPAINTSTUDIO_SCREENSHOTS"


def require_chromium() -> None:
    if not Path(CHROMIUM).is_file() or shutil.which("chromium") is None:
        pytest.fail("Debian Chromium is not installed: run scripts/install_browser.sh (make test does)")


def screenshot_dir() -> Path:
    """``$INPAINTSTUDIO_SCREENSHOTS`` when set (``make screenshots``), else a fresh temporary folder."""
    target = os.environ.get(SCREENSHOTS_ENV, "").strip()
    folder = Path(target) if target else Path(tempfile.mkdtemp(prefix="inpaintstudio-shots-"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder
