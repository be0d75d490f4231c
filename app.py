"""InpaintStudio web UI: ``python app.py [--port N] [--host ADDR]`` (default 127.0.0.1:7860).

The port comes from ``--port``, else ``$GRADIO_SERVER_PORT``, else 7860. On a Hugging Face Space,
``$INPAINTSTUDIO_HF_REPO`` (+ ``$INPAINTSTUDIO_HF_REVISION``) names a repository whose checkpoints
are fetched at start-up, and ``$INPAINTSTUDIO_FETCH`` lists ``model:variant`` pairs to fetch (from that
repository first, else from the authors' location), with progress in the log.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before Gradio is imported anywhere

from inpaintstudio.ui.session import StudioConfig  # noqa: E402
from inpaintstudio.ui.studio import launch  # noqa: E402
from inpaintstudio.ui.tabs.models import fetch_hub_weights  # noqa: E402
from inpaintstudio.weights.fetch import fetch_listed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description="InpaintStudio web UI (local, private by default)")
    parser.add_argument("--port", type=int, default=None, help="port (default: $GRADIO_SERVER_PORT, else 7860)")
    parser.add_argument("--host", default=None, help="address to bind (default: $GRADIO_SERVER_NAME, else 127.0.0.1)")
    parser.add_argument("--max-pixels", type=int, default=None, help="largest image accepted (default 60 MP)")
    args = parser.parse_args()
    notes = [*fetch_listed(), *fetch_hub_weights()]
    launch(port=args.port, host=args.host, config=StudioConfig(max_pixels=args.max_pixels), startup_notes=notes)


if __name__ == "__main__":
    main()
