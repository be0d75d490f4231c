"""Mask operations (True = hole) and a deterministic irregular-mask generator.

Operations: :func:`binarise`, :func:`grow` / :func:`shrink` (elliptical structuring element,
``cv2.getStructuringElement(MORPH_ELLIPSE)``; the image border is not a mask edge, so a hole touching
it is not eaten away from that side), :func:`invert`, :func:`feather` (a blending alpha that ramps
from the hole's edge inwards and is exactly 0 outside the hole, so compositing with it never changes a
known pixel), :func:`components` (8-connected boxes through ``cv2.connectedComponentsWithStats``),
:func:`merge_boxes`, :func:`expand_box` and :func:`hole_ratio`. Boxes are ``(x0, y0, x1, y1)`` with
exclusive ends.

Irregular masks (:func:`irregular_mask`). The thesis' evaluation protocol uses
the irregular-mask test set of Liu et al., "Image Inpainting for Irregular Holes Using Partial
Convolutions", ECCV 2018 (https://nv-adlr.github.io/publication/partialconv-inpainting, masks licensed
CC BY-NC 4.0 by NVIDIA), grouped into the hole-ratio bins 0–20 %, 20–40 %, 40–60 %. Those masks were
made from occlusion/dis-occlusion maps between video frames; this module does NOT reproduce them. It
draws random free-form strokes (polylines of varying width with round joints, cv2 lines and circles, as
in the widely used free-form generators) and keeps adding strokes until the hole ratio reaches a
target drawn inside the requested bin; a stroke that would overshoot the bin is rejected and the next
strokes are drawn smaller. Everything comes from ``numpy.random.default_rng([seed, bin index])``, so a
seed always gives the same mask. Use these masks for tests, demos and training, never to compare with
numbers obtained on Liu et al.'s files. Bins are half-open intervals (lo, hi]; the generator never
goes below 1 % (Liu et al.'s smallest category starts at 1 %).

The thesis: S. Chen, PhD thesis, Durham University, 2025 (INCLG, HINT, M×T and SEM-Net are its chapters 3–5).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = [
    "Box",
    "RATIO_BINS",
    "binarise",
    "grow",
    "shrink",
    "invert",
    "feather",
    "components",
    "merge_boxes",
    "expand_box",
    "hole_ratio",
    "mask_ratio_bin",
    "irregular_mask",
]

Box = tuple[int, int, int, int]

RATIO_BINS: dict[str, tuple[float, float]] = {"0-20": (0.0, 0.2), "20-40": (0.2, 0.4), "40-60": (0.4, 0.6)}
_MIN_GENERATED_RATIO = 0.01
_MIN_GENERATED_SIDE = 32
_MAX_STROKES = 5_000


def _as_mask(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask must be a 2-D array, got shape {mask.shape}")
    return mask.astype(bool, copy=False)


def binarise(array: np.ndarray, threshold: float = 127) -> np.ndarray:
    """``array > threshold`` as a bool mask (0…255 scale; pass ``threshold=0.5`` for [0, 1] floats).

    A bool array is returned as a copy. For colour or RGBA masks use :func:`inpaintstudio.io.mask_from_array`.
    """
    values = np.asarray(array)
    if values.ndim != 2:
        raise ValueError(f"binarise expects a 2-D array, got shape {values.shape}")
    if values.dtype == bool:
        return values.copy()
    return values > threshold


def _ellipse(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def grow(mask: np.ndarray, px: int) -> np.ndarray:
    """Dilate the hole by ``px`` pixels with an elliptical kernel; a negative ``px`` shrinks it."""
    mask = _as_mask(mask)
    px = int(px)
    if px < 0:
        return shrink(mask, -px)
    if px == 0:
        return mask.copy()
    return cv2.dilate(mask.astype(np.uint8), _ellipse(px)).astype(bool)


def shrink(mask: np.ndarray, px: int) -> np.ndarray:
    """Erode the hole by ``px`` pixels with an elliptical kernel; a negative ``px`` grows it."""
    mask = _as_mask(mask)
    px = int(px)
    if px < 0:
        return grow(mask, -px)
    if px == 0:
        return mask.copy()
    return cv2.erode(mask.astype(np.uint8), _ellipse(px)).astype(bool)


def invert(mask: np.ndarray) -> np.ndarray:
    """Holes become known pixels and vice versa."""
    return ~_as_mask(mask)


def feather(mask: np.ndarray, px: float) -> np.ndarray:
    """Float32 alpha: 0 outside the hole, rising inside it to 1 at ``px`` pixels from its edge.

    alpha = clip(d / px, 0, 1), with d the Euclidean distance of a hole pixel to the nearest known
    pixel (1 on the hole's edge). The image border does not count as an edge. ``px <= 1`` gives the
    hard mask.
    """
    mask = _as_mask(mask)
    if px <= 1 or not mask.any():
        return mask.astype(np.float32)
    distance = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    alpha = np.clip(distance / float(px), 0.0, 1.0).astype(np.float32)
    alpha[~mask] = 0.0
    return alpha


def components(mask: np.ndarray, min_area: int = 1, connectivity: int = 8) -> list[Box]:
    """Bounding boxes (x0, y0, x1, y1), exclusive ends, of the hole's connected components.

    Components smaller than ``min_area`` pixels are skipped. Order: raster order of each component's
    first pixel (OpenCV's labelling order).
    """
    mask = _as_mask(mask)
    # label only inside the hole's bounding box: on a large photo with a small hole this is the
    # difference between labelling 24 MP and a few thousand pixels
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return []
    oy, ox = int(rows[0]), int(cols[0])
    window = mask[oy : int(rows[-1]) + 1, ox : int(cols[-1]) + 1]
    count, _, stats, _ = cv2.connectedComponentsWithStats(
        np.ascontiguousarray(window, dtype=np.uint8), connectivity=connectivity
    )
    boxes: list[Box] = []
    for label in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[label])
        if area >= min_area:
            boxes.append((ox + x, oy + y, ox + x + w, oy + y + h))
    return boxes


def _check_box(box: Box) -> Box:
    x0, y0, x1, y1 = (int(v) for v in box)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"a box must have x0 < x1 and y0 < y1, got {box}")
    return x0, y0, x1, y1


def _touch(a: Box, b: Box) -> bool:
    """Overlapping or sharing an edge or a corner (exclusive ends: a.x1 == b.x0 is adjacency)."""
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def _union(a: Box, b: Box) -> Box:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def merge_boxes(boxes: list[Box]) -> list[Box]:
    """Merge overlapping or touching boxes, repeatedly, until no two boxes touch. Sorted by (y0, x0)."""
    pending = [_check_box(box) for box in boxes]
    changed = True
    while changed:
        changed = False
        merged: list[Box] = []
        for box in pending:
            for index, other in enumerate(merged):
                if _touch(box, other):
                    merged[index] = _union(box, other)
                    changed = True
                    break
            else:
                merged.append(box)
        pending = merged
    return sorted(pending, key=lambda box: (box[1], box[0], box[3], box[2]))


def expand_box(box: Box, margin: int, size: tuple[int, int]) -> Box:
    """``box`` grown by ``margin`` on every side, clipped to an image of ``size`` = (width, height)."""
    x0, y0, x1, y1 = _check_box(box)
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    width, height = size
    return max(0, x0 - margin), max(0, y0 - margin), min(int(width), x1 + margin), min(int(height), y1 + margin)


def hole_ratio(mask: np.ndarray) -> float:
    """Fraction of hole pixels (0.0 for an empty array)."""
    mask = _as_mask(mask)
    return float(np.count_nonzero(mask)) / mask.size if mask.size else 0.0


def mask_ratio_bin(mask: np.ndarray) -> str | None:
    """The :data:`RATIO_BINS` name whose interval (lo, hi] holds the hole ratio; ``None`` if empty or > 60 %."""
    ratio = hole_ratio(mask)
    for name, (low, high) in RATIO_BINS.items():
        if low < ratio <= high:
            return name
    return None


# -------------------------------------------------------------------------------- irregular masks
def _draw_stroke(canvas: np.ndarray, rng: np.random.Generator, scale: float) -> None:
    """One free-form stroke: a polyline of 4–12 segments, turning and changing width at each joint."""
    height, width = canvas.shape
    side = min(width, height)
    min_width = max(1.0, 0.02 * side * scale)
    max_width = max(min_width + 1.0, 0.09 * side * scale)
    x, y = rng.uniform(0, width), rng.uniform(0, height)
    angle = rng.uniform(0, 2 * math.pi)
    stroke_width = rng.uniform(min_width, max_width)
    for _ in range(int(rng.integers(4, 13))):
        angle += rng.uniform(-0.4 * math.pi, 0.4 * math.pi)
        length = rng.uniform(0.03, 0.15) * side * scale + 1.0
        next_x = float(np.clip(x + length * math.cos(angle), 0, width - 1))
        next_y = float(np.clip(y + length * math.sin(angle), 0, height - 1))
        stroke_width = float(np.clip(stroke_width * rng.uniform(0.7, 1.3), min_width, max_width))
        thickness = max(1, round(stroke_width))
        start, end = (round(x), round(y)), (round(next_x), round(next_y))
        cv2.line(canvas, start, end, 255, thickness, lineType=cv2.LINE_8)
        cv2.circle(canvas, end, thickness // 2, 255, thickness=-1, lineType=cv2.LINE_8)
        x, y = next_x, next_y


def irregular_mask(size: int | tuple[int, int], ratio_bin: str, seed: int) -> np.ndarray:
    """A deterministic free-form mask (bool H×W, True = hole) whose hole ratio lies in ``ratio_bin``.

    Args:
        size: side of a square mask, or (width, height); each side at least 32.
        ratio_bin: a key of :data:`RATIO_BINS` (``"0-20"``, ``"20-40"``, ``"40-60"``).
        seed: non-negative integer; the same (size, bin, seed) always gives the same mask.
    """
    if ratio_bin not in RATIO_BINS:
        raise ValueError(f"unknown ratio bin {ratio_bin!r}; choose one of {', '.join(RATIO_BINS)}")
    width, height = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if min(width, height) < _MIN_GENERATED_SIDE:
        raise ValueError(f"irregular masks need sides of at least {_MIN_GENERATED_SIDE} px, got {width}×{height}")
    low, high = RATIO_BINS[ratio_bin]
    low = max(low, _MIN_GENERATED_RATIO)
    rng = np.random.default_rng([int(seed), list(RATIO_BINS).index(ratio_bin)])
    margin = 0.1 * (high - low)
    target = rng.uniform(low + margin, high - margin)
    total = width * height
    canvas = np.zeros((height, width), np.uint8)
    holes = 0
    rejected = 0
    for _ in range(_MAX_STROKES):
        if holes / total >= target:
            return canvas.astype(bool)
        candidate = canvas.copy()
        _draw_stroke(candidate, rng, scale=1.0 / (1 + rejected))
        candidate_holes = int(np.count_nonzero(candidate))
        if candidate_holes / total > high:
            rejected += 1
            continue
        canvas, holes = candidate, candidate_holes
    raise RuntimeError(f"no {ratio_bin} mask reached after {_MAX_STROKES} strokes (size {width}×{height})")
