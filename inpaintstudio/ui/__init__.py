"""The InpaintStudio web UI (Gradio Blocks). Gradio is imported only in this package and ``app.py``.

Privacy defaults are set here, before any Gradio import: no analytics. ``build_studio`` and
``launch`` live in :mod:`inpaintstudio.ui.studio`; :mod:`inpaintstudio.ui.session` holds the
per-session state without Gradio.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

__all__ = ["build_studio", "launch"]


def __getattr__(name: str):  # lazy: importing the package must not import Gradio
    if name in __all__:
        from inpaintstudio.ui import studio

        return getattr(studio, name)
    raise AttributeError(name)
