"""The whole studio: Edit, Clinic and Models tabs in one Blocks, launched with private defaults.

Privacy: bound to 127.0.0.1 (``$GRADIO_SERVER_NAME`` overrides it, as a Space sets it), no share
link, no analytics, no run history, no monitoring endpoint, an upload size limit. Every file lives
in one folder per process (:class:`inpaintstudio.ui.cleanup.TempSpace`, Gradio's cache included): a
session's images and files are forgotten when its browser tab closes, the browser's uploads a few
minutes after they arrive, and the whole folder on exit, SIGTERM or SIGINT (and at the next start,
if the process was killed).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gradio as gr

from inpaintstudio.ui import security
from inpaintstudio.ui.cleanup import TempSpace, install_signal_handlers, release_memory
from inpaintstudio.ui.session import StudioConfig
from inpaintstudio.ui.tabs.edit import build_edit_tab
from inpaintstudio.ui.tabs.models import build_models_tab

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

_CSS = """
#status, #clinic-status {min-height: 3em}
#gallery .caption-label, #clinic-gallery .caption-label {opacity: 1}
#header h1 {font-size: 1.3em; margin: 0 0 2px 0} #header p {margin: 0; font-size: 0.9em}
.gradio-container {padding-top: 4px !important}
.more-model {gap: 6px; align-items: center}
"""


def example_photos() -> list[str]:
    """The example photos shipped in ``examples/`` (masks are named ``*_mask.png`` and left out)."""
    if not EXAMPLES_DIR.is_dir():
        return []
    return [str(p) for p in sorted(EXAMPLES_DIR.glob("*.png")) if not p.stem.endswith("_mask")]


def build_studio(config: StudioConfig | None = None, startup_notes: list[str] | None = None) -> gr.Blocks:
    """The studio's Blocks (not launched), with its own :class:`TempSpace` (``demo.temp_space``).

    Gradio's cache moves into that folder, so build and launch one studio at a time.
    """
    config = config or StudioConfig()
    space = TempSpace()
    space.use_for_gradio()
    root = space.cache
    with gr.Blocks(title="InpaintStudio", analytics_enabled=False) as demo:
        gr.Markdown(
            "# InpaintStudio\nRemove things from photos with several models at once. Processing is local: "
            "photos stay on this machine and nothing is kept after the session.",
            elem_id="header",
        )
        with gr.Tabs():
            with gr.Tab("Edit", id="edit"):
                edit = build_edit_tab(config, root, example_photos())
            with gr.Tab("Clinic", id="clinic"):
                from inpaintstudio.ui.tabs.clinic import build_clinic_tab

                build_clinic_tab(config, root)
            with gr.Tab("Models", id="models"):
                build_models_tab(edit.models, edit.variants, startup_notes)

        def end_session(request: gr.Request) -> None:
            """The tab closed: drop this session's state now (its delete callbacks remove its files)."""
            holder = getattr(demo, "state_holder", None)
            if holder is not None and request.session_hash:
                holder.delete_state(request.session_hash)
            release_memory()

        demo.unload(end_session)
    demo.queue(default_concurrency_limit=4)
    demo.temp_space = space  # type: ignore[attr-defined]
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
    if not options.get("prevent_thread_lock"):
        install_signal_handlers(before_stop=lambda: _drop_open_connections(demo))
    try:
        demo.launch(**security.install(options))  # 403 for a foreign Host or Origin
    finally:
        if not options.get("prevent_thread_lock"):
            demo.temp_space.remove()
    return demo


def _drop_open_connections(demo: gr.Blocks) -> None:
    """Let the server stop without waiting for open connections: a browser tab's event stream never closes by
    itself, and the server then waited 5 s before the process could exit. The requests cut short would each log a
    CancelledError traceback: the server's error log is silenced for the shutdown."""
    import logging

    server = getattr(demo, "server", None)
    if server is not None:
        logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
        server.force_exit = True


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
