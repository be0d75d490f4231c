"""Launch defaults: private by default, port from --port / $GRADIO_SERVER_PORT / 7860. No server started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from inpaintstudio.ui.session import StudioConfig


def test_analytics_off_before_gradio_is_imported() -> None:
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_ANALYTICS_ENABLED"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    code = "import os, sys, inpaintstudio.ui; print(os.environ['GRADIO_ANALYTICS_ENABLED'], 'gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_private_launch_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    from inpaintstudio.ui.studio import launch_options

    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    options = launch_options(StudioConfig())
    assert options["server_name"] == "127.0.0.1"
    assert options["server_port"] == 7860
    assert options["share"] is False
    assert options["run_history"] is False
    assert options["enable_monitoring"] is False
    assert options["max_file_size"] == "100mb"


def test_port_from_argument_then_environment_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from inpaintstudio.ui.studio import resolve_port

    monkeypatch.setenv("GRADIO_SERVER_PORT", "7999")
    assert resolve_port(8123) == 8123
    assert resolve_port() == 7999
    monkeypatch.delenv("GRADIO_SERVER_PORT")
    assert resolve_port() == 7860


def test_app_py_passes_port_and_host(monkeypatch: pytest.MonkeyPatch) -> None:
    import app

    seen: dict = {}
    monkeypatch.setattr(app, "launch", lambda **kwargs: seen.update(kwargs))
    monkeypatch.setattr(app, "fetch_hub_weights", lambda: ["note"])
    monkeypatch.setattr(sys, "argv", ["app.py", "--port", "8111", "--max-pixels", "1000"])
    app.main()
    assert seen["port"] == 8111 and seen["host"] is None
    assert seen["config"].max_pixels == 1000 and seen["startup_notes"] == ["note"]


def test_blocks_are_built_without_analytics_and_with_their_own_temp_folder() -> None:
    from inpaintstudio.ui.studio import build_studio

    demo = build_studio(StudioConfig())
    assert demo.analytics_enabled is False
    space = demo.temp_space
    assert os.environ["GRADIO_TEMP_DIR"] == str(space.cache) and space.cache.parent == space.root
    assert any(dep.get("targets") and dep["targets"][0][1] == "unload" for dep in demo.config["dependencies"])
    space.remove()
    assert not space.root.exists()
    names = {dep.get("api_name") for dep in demo.config["dependencies"]}
    assert {"open_image", "run", "compare", "use_result", "undo", "upload_mask", "export_mask", "models_table",
            "import_weights", "clinic_open", "clinic_run"} <= names
    assert "hub_download" not in names  # only a Space with $INPAINTSTUDIO_HF_REPO gets that endpoint
