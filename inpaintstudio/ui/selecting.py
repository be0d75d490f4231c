"""The editor's Select tool on the server: a click or a box (photo pixels) -> ``inpaintstudio.selection``
-> a mask the editor combines with its own (replace, Shift = add, Alt = subtract). No Gradio here.

The :class:`~inpaintstudio.selection.Selector` lives with the photo: one per session and base, so its
cached embedding serves every click on that photo.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from inpaintstudio import io as image_io
from inpaintstudio.ui.session import EditSession

__all__ = ["MODES", "Picked", "prompt_parts", "select"]

MODES = ("replace", "add", "subtract")


@dataclass(frozen=True)
class Picked:
    """What a selection did: how the editor combines it, and the status line."""

    mode: str
    status: str
    pixels: int


def _clamp(value: Any, limit: int) -> int:
    return int(min(max(int(round(float(value))), 0), limit - 1))


def prompt_parts(event: dict[str, Any], size: tuple[int, int]) -> tuple[tuple[int, int, int, int] | None,
                                                                          tuple[tuple[int, int, bool], ...], str]:
    """(box, points, mode) of an editor event, clamped to the photo of ``size`` = (w, h)."""
    width, height = size
    mode = event.get("mode") if event.get("mode") in MODES else "replace"
    if event.get("kind") == "box" and len(event.get("box") or ()) == 4:
        x0, y0, x1, y1 = event["box"]
        box = (_clamp(min(x0, x1), width), _clamp(min(y0, y1), height),
               _clamp(max(x0, x1), width), _clamp(max(y0, y1), height))
        return box, (), mode
    if event.get("kind") == "point" and len(event.get("point") or ()) == 2:
        x, y = event["point"]
        return None, ((_clamp(x, width), _clamp(y, height), bool(event.get("positive", True))),), mode
    raise image_io.InputError("the Select tool sent neither a click nor a box")


def _api() -> Any:
    """The selection package, imported on the first Select click (the studio starts without it)."""
    from inpaintstudio import selection

    return selection


def _selector(session: EditSession) -> Any:
    Selector = _api().Selector  # noqa: N806 - the API's class
    if session.selector is None or session.selector_key != session.base_key:
        session.selector = Selector(session.require_image())
        session.selector_key = session.base_key
    return session.selector


def select(session: EditSession, event: dict[str, Any]) -> Picked:
    """Run the selection for ``event`` and hold its mask in ``session`` (the editor gets it as a server mask)."""
    box, points, mode = prompt_parts(event, session.size)
    selector = _selector(session)
    selection = selector.select(_api().Prompt(box=box, points=points))
    mask = np.asarray(selection.mask, bool)
    if mask.shape != session.require_image().shape[:2]:
        raise image_io.InputError(f"the selection's mask is {mask.shape[1]}×{mask.shape[0]}, not the photo's size")
    session.set_mask(mask)
    pixels = int(mask.sum())
    where = f"box {box}" if box else f"click at {points[0][:2]}"
    status = (f"Selected {pixels:,} px ({mode}) from the {where} with {selection.method} in {selection.seconds:.2f} s."
              f"\n\n{selector.method_note}")
    return Picked(mode=mode, status=status, pixels=pixels)
