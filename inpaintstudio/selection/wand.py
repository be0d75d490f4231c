"""The magic wand: the connected region around a click whose colours lie within a tolerance of the click's."""

from __future__ import annotations

import time

import cv2
import numpy as np

from inpaintstudio.selection.types import Selection, SelectionError, check_photo, describe, finish

__all__ = ["magic_wand", "wand_mask"]


def wand_mask(rgb: np.ndarray, x: int, y: int, tolerance: int = 32) -> np.ndarray:
    """H x W bool: pixels 8-connected to (x, y) whose every channel is within ``tolerance`` of the click's colour."""
    rgb = check_photo(rgb)
    height, width = rgb.shape[:2]
    if not (0 <= x < width and 0 <= y < height):
        raise SelectionError(f"click ({x}, {y}) is outside the {width}x{height} photo")
    if isinstance(tolerance, bool) or not 0 <= tolerance <= 255:
        raise SelectionError(f"tolerance is a colour distance from 0 to 255, got {tolerance!r}")
    flood = np.zeros((height + 2, width + 2), np.uint8)
    diff = (int(tolerance),) * 3
    # FIXED_RANGE compares with the clicked colour, not the neighbour, so the region cannot creep across a gradient
    flags = 8 | cv2.FLOODFILL_FIXED_RANGE | cv2.FLOODFILL_MASK_ONLY | (255 << 8)
    cv2.floodFill(np.ascontiguousarray(rgb), flood, (int(x), int(y)), (0, 0, 0), diff, diff, flags)
    return flood[1:-1, 1:-1] > 0


def magic_wand(rgb: np.ndarray, x: int, y: int, tolerance: int = 32, grow_px: int = 0) -> Selection:
    """Flood fill by colour tolerance from a click, grown by ``grow_px`` pixels."""
    start = time.perf_counter()
    mask = finish(wand_mask(rgb, x, y, tolerance), grow_px)
    note = describe(mask, "magic wand", f"tolerance {tolerance}" + (f", grown {grow_px} px" if grow_px else ""))
    return Selection(mask=mask, method="magic_wand", note=note, seconds=time.perf_counter() - start)
