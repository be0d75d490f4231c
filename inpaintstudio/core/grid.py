"""Side-by-side panels with labels (compare grids, before/after sheets) and mask previews."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ["outline_mask", "mask_preview", "labelled_grid"]

_LABEL_HEIGHT = 28


def outline_mask(
    image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], thickness: int, antialiased: bool = False
) -> np.ndarray:
    """A copy of ``image`` with the outer contours of the hole drawn in ``colour``."""
    out = image.copy()
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, colour, thickness, lineType=cv2.LINE_AA if antialiased else cv2.LINE_8)
    return out


def mask_preview(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int] = (255, 0, 80)) -> np.ndarray:
    """The image with the hole tinted in ``colour`` (half transparent) and outlined."""
    hole = mask.astype(bool)
    tinted = image.copy()
    tinted[hole] = (0.5 * tinted[hole] + 0.5 * np.array(colour)).astype(np.uint8)
    return outline_mask(tinted, hole, colour, max(1, round(max(image.shape[:2]) / 500)))


def _label(panel: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((_LABEL_HEIGHT, panel.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (6, _LABEL_HEIGHT - 9), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (20, 20, 20), 1, cv2.LINE_AA)
    return np.vstack([bar, panel])


def labelled_grid(
    panels: Sequence[tuple[str, np.ndarray]], columns: int | None = None, panel_height: int = 512, gap: int = 4
) -> np.ndarray:
    """Panels (label, H×W×3 uint8) scaled to one height, labelled, laid out in a grid (white gaps)."""
    if not panels:
        raise ValueError("no panels to lay out")
    columns = columns or min(len(panels), 4)
    height = min(panel_height, max(p.shape[0] for _, p in panels))
    scaled = []
    for text, panel in panels:
        width = max(1, round(panel.shape[1] * height / panel.shape[0]))
        interp = cv2.INTER_AREA if panel.shape[0] > height else cv2.INTER_LINEAR
        scaled.append(_label(cv2.resize(panel, (width, height), interpolation=interp), text))
    cell_w = max(p.shape[1] for p in scaled)
    cell_h = height + _LABEL_HEIGHT
    rows = (len(scaled) + columns - 1) // columns
    grid = np.full((rows * cell_h + (rows - 1) * gap, columns * cell_w + (columns - 1) * gap, 3), 255, np.uint8)
    for index, panel in enumerate(scaled):
        r, c = divmod(index, columns)
        y, x = r * (cell_h + gap), c * (cell_w + gap)
        grid[y : y + panel.shape[0], x : x + panel.shape[1]] = panel
    return grid
