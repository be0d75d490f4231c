"""What every selector takes and gives: :class:`Prompt`, :class:`Selection`, and the checks on both."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inpaintstudio.core import maskops as masks
from inpaintstudio.io.common import InputError

__all__ = ["Prompt", "Selection", "SelectionError", "check_photo", "check_prompt", "finish", "describe"]

Box = tuple[int, int, int, int]
Point = tuple[int, int, bool]


class SelectionError(InputError):
    """A prompt or photo a selector cannot use; the message says why."""


@dataclass(frozen=True)
class Prompt:
    """A box and/or clicks in photo pixels.

    Args:
        box: ``(x0, y0, x1, y1)``, x1 and y1 exclusive; ``None`` for clicks only.
        points: ``(x, y, positive)`` clicks; positive adds to the object, negative removes.
    """

    box: Box | None = None
    points: tuple[Point, ...] = ()

    @property
    def positive(self) -> list[tuple[int, int]]:
        return [(x, y) for x, y, keep in self.points if keep]

    @property
    def negative(self) -> list[tuple[int, int]]:
        return [(x, y) for x, y, keep in self.points if not keep]


@dataclass(frozen=True)
class Selection:
    """A selected region: ``mask`` H x W bool (True = selected), the method that made it, a one-line note."""

    mask: np.ndarray
    method: str
    note: str
    seconds: float


def check_photo(rgb: np.ndarray) -> np.ndarray:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        shape = getattr(rgb, "shape", None)
        raise SelectionError(f"a selector takes an H x W x 3 uint8 RGB photo, got {type(rgb).__name__} {shape}")
    if min(rgb.shape[:2]) < 2:
        raise SelectionError(f"the photo is too small to select in ({rgb.shape[1]}x{rgb.shape[0]})")
    return rgb


def check_prompt(prompt: Prompt, size: tuple[int, int]) -> Prompt:
    """The prompt in whole pixels, its box clipped to the photo (``size`` = (height, width)); refuses what
    cannot work: nothing to go by, a box without area or outside the photo, a click outside the photo."""
    height, width = size
    if not isinstance(prompt, Prompt):
        raise SelectionError(f"expected a Prompt, got {type(prompt).__name__}")
    if prompt.box is None and not prompt.points:
        raise SelectionError("draw a box or click on the object: the prompt is empty")
    if any(len(point) != 3 for point in prompt.points):
        raise SelectionError(f"a click is (x, y, positive), got {prompt.points!r}")
    points = tuple((int(round(x)), int(round(y)), bool(keep)) for x, y, keep in prompt.points)
    for x, y, _ in points:
        if not (0 <= x < width and 0 <= y < height):
            raise SelectionError(f"click ({x}, {y}) is outside the {width}x{height} photo")
    if prompt.box is None:
        return Prompt(points=points)
    if len(prompt.box) != 4:
        raise SelectionError(f"a box is (x0, y0, x1, y1), got {prompt.box!r}")
    x0, y0, x1, y1 = (int(round(v)) for v in prompt.box)
    if x1 <= x0 or y1 <= y0:
        raise SelectionError(f"box {prompt.box} has no area: it needs x1 > x0 and y1 > y0")
    clipped = (max(x0, 0), max(y0, 0), min(x1, width), min(y1, height))
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        raise SelectionError(f"box {prompt.box} lies outside the {width}x{height} photo")
    return Prompt(box=clipped, points=points)


def describe(mask: np.ndarray, method_label: str, detail: str = "") -> str:
    """One line for a finished mask: what ran and how much it selected, or that nothing was selected."""
    if not mask.any():
        return f"{method_label}: nothing was selected; draw a larger box or click inside the object"
    share = 100.0 * float(mask.mean())
    return f"{method_label}: {share:.1f} % of the photo selected" + (f" ({detail})" if detail else "")


def finish(mask: np.ndarray, grow_px: int) -> np.ndarray:
    """Grow (positive) or shrink (negative) the mask by ``grow_px`` pixels."""
    if not isinstance(grow_px, (int, np.integer)) or isinstance(grow_px, bool):
        raise SelectionError(f"grow_px must be a whole number of pixels, got {grow_px!r}")
    return masks.grow(mask, int(grow_px)) if grow_px else mask
