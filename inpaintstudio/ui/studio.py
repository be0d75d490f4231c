"""The whole studio: Edit, Clinic and Models tabs in one Blocks, launched with private defaults.

Privacy: bound to 127.0.0.1 (``$GRADIO_SERVER_NAME`` overrides it, as a Space sets it), no share
link, no analytics, no run history, no monitoring endpoint, an upload size limit, Gradio's file
cache swept every 10 minutes (files older than an hour) and deleted at shutdown, and each session's
images and files forgotten when its browser tab closes.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from inpaintstudio.ui import security
from inpaintstudio.ui.edit_tab import build_edit_tab
from inpaintstudio.ui.models_tab import build_models_tab
from inpaintstudio.ui.session import StudioConfig

__all__ = [
    "EXAMPLES_DIR",
    "DEFAULT_PORT",
    "example_photos",
    "build_studio",
    "launch",
    "launch_options",
    "resolve_port",
    "free_port",
    "serve_in_background",
]

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
DEFAULT_PORT = 7860
CACHE_SWEEP = (600, 3600)  # every 10 minutes, delete cached files older than an hour; all at shutdown

_CSS = """
#status, #clinic-status {min-height: 3em}
"""


def example_photos() -> list[str]:
    """The example photos shipped in ``examples/`` (masks are named ``*_mask.png`` and left out)."""
    if not EXAMPLES_DIR.is_dir():
        return []
    return [str(p) for p in sorted(EXAMPLES_DIR.glob("*.png")) if not p.stem.endswith("_mask")]


def _clinic_available() -> bool:
    return importlib.util.find_spec("inpaintstudio.clinic") is not None


def build_studio(config: StudioConfig | None = None, startup_notes: list[str] | None = None) -> gr.Blocks:
    """The studio's Blocks (not launched). Each call gets its own temp folder, removed at exit."""
    config = config or StudioConfig()
    root = Path(tempfile.mkdtemp(prefix="inpaintstudio-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    with gr.Blocks(title="InpaintStudio", analytics_enabled=False, delete_cache=CACHE_SWEEP) as demo:
        gr.Markdown(
            "# InpaintStudio\nRemove things from photos with several models at once. Processing is local: "
            "photos stay on this machine and nothing is kept after the session."
        )
        with gr.Tabs():
            with gr.Tab("Edit", id="edit"):
                edit = build_edit_tab(config, root, example_photos())
            if _clinic_available():
                with gr.Tab("Clinic", id="clinic"):
                    from inpaintstudio.ui.clinic_tab import build_clinic_tab

                    build_clinic_tab(config, root)
            with gr.Tab("Models", id="models"):
                build_models_tab(edit.models, startup_notes)
    demo.queue(default_concurrency_limit=4)
    return demo


def resolve_port(port: int | None = None) -> int:
    """``port``, else ``$GRADIO_SERVER_PORT``, else 7860."""
    if port is not None:
        return int(port)
    raw = os.environ.get("GRADIO_SERVER_PORT", "").strip()
    return int(raw) if raw else DEFAULT_PORT


def launch_options(config: StudioConfig, port: int | None = None, host: str | None = None) -> dict[str, Any]:
    """The private ``launch`` keywords (see the module docstring)."""
    return {
        "server_name": host or os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        "server_port": resolve_port(port),
        "share": False,
        "run_history": False,
        "enable_monitoring": False,
        "max_file_size": config.max_file_size,
        "ssr_mode": False,
        "mcp_server": False,
        "show_error": True,
        "footer_links": ["api"],
        "css": _CSS,
    }


def launch(
    port: int | None = None,
    host: str | None = None,
    config: StudioConfig | None = None,
    startup_notes: list[str] | None = None,
    **overrides: Any,
) -> Any:
    """Build and launch the studio; ``overrides`` go to ``Blocks.launch`` (e.g. ``prevent_thread_lock``)."""
    config = config or StudioConfig()
    demo = build_studio(config, startup_notes)
    options = launch_options(config, port, host)
    options.update(overrides)
    demo.launch(**security.install(options))  # 403 for a foreign Host or Origin
    return demo


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (for tests and ``--port 0``)."""
    import socket

    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def serve_in_background(config: StudioConfig | None = None, port: int | None = None) -> tuple[gr.Blocks, str]:
    """Launch the studio on 127.0.0.1 without blocking; returns ``(demo, url)``. Close with ``demo.close()``."""
    port = port or free_port()
    demo = launch(port=port, host="127.0.0.1", config=config, prevent_thread_lock=True, quiet=True)
    return demo, f"http://127.0.0.1:{port}/"
