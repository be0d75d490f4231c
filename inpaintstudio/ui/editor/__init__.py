"""The mask editor both tabs use: a ``gr.HTML`` whose ``js_on_load`` is the bundle in ``dist/``.

The editor keeps the mask in the browser. The server talks to it through the component's value, one
message at a time (:meth:`inpaintstudio.ui.session.EditSession.message`); the browser answers only when
asked: :func:`with_mask` is the ``js`` of an event that needs the mask (a run, a mask download) and puts
one PNG of it into that event's inputs. Selection clicks and boxes arrive as the component's ``click``
event, in photo pixels. Sources are in ``src/``; ``make editor`` rebuilds ``dist/``.
"""

from __future__ import annotations

import json
from functools import lru_cache

import gradio as gr

from inpaintstudio.ui.editor.build import DIST

__all__ = ["mask_editor", "bundle", "with_mask", "call", "EMPTY"]

EMPTY: dict = {"seq": 0}
_HOST = '<div class="ie-host"></div>'


@lru_cache(maxsize=1)
def bundle() -> tuple[str, str]:
    """(JavaScript, CSS) of the committed build."""
    return (DIST / "editor.js").read_text(), (DIST / "editor.css").read_text()


def mask_editor(elem_id: str, run_button: str, brush_size: int, height: str | None = None) -> gr.HTML:
    """An editor with ``elem_id``; Ctrl+Enter clicks the button ``run_button``; ``height`` is CSS."""
    script, css = bundle()
    if height:
        css += f"\n.ie-stage {{ height: {height}; }}\n"
    return gr.HTML(
        EMPTY,
        html_template=_HOST,
        css_template=css,
        js_on_load=script,
        elem_id=elem_id,
        editor_id=elem_id,
        run_button=run_button,
        brush_size=brush_size,
        apply_default_css=False,
        container=False,
    )


def _editor(elem_id: str) -> str:
    return f"(window.inpaintEditors || {{}})[{json.dumps(elem_id)}]"


def with_mask(elem_id: str, position: int) -> str:
    """``js`` for an event: the editor's mask PNG (a data URL, "" without a photo) replaces input ``position``."""
    return (f"(...args) => {{ const e = {_editor(elem_id)}; "
            f"args[{position}] = e ? e.exportMask() : ''; return args; }}")


def call(elem_id: str, method: str, *args: str) -> str:
    """``js`` that calls ``editor.method(args...)`` (args are JavaScript expressions of the inputs) and passes
    the inputs on unchanged."""
    arguments = ", ".join(args)
    return (f"(...args) => {{ const e = {_editor(elem_id)}; if (e) e.{method}({arguments}); "
            "return args; }")
