"""The weight-free selector: OpenCV's GrabCut from a box, refined by clicks, cleaned up and snapped to edges.

Steps (:func:`grabcut_mask`):

1. The box (or, for clicks alone, a box around the positive clicks) is widened to take in every positive
   click; the photo is cropped to it plus a margin, so the cost follows the box, not the photo.
2. The crop is shrunk to at most :data:`WORK_PIXELS` pixels. GrabCut starts from a mask: outside the box
   "background", inside "probably foreground", positive clicks "foreground" and negative clicks
   "background" (discs a little larger than a fingertip).
3. The result is opened and closed, and only the components that matter are kept (the largest, and every
   one under a positive click).
4. Back at full resolution the mask is upsampled and snapped to the photo's edges with a guided filter whose
   radius matches the shrink factor, then thresholded.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from inpaintstudio.selection.types import Box, Prompt, SelectionError, check_prompt

__all__ = ["WORK_PIXELS", "grabcut_mask", "box_for_points"]

WORK_PIXELS = 360_000  # GrabCut's graph at about 600 x 600: well under a second on one core
ITERATIONS = 4


def box_for_points(points: list[tuple[int, int]], size: tuple[int, int]) -> Box:
    """A box around positive clicks: their bounding box widened by a quarter of its extent, and at least by
    an eighth of the photo's shorter side (so a single click selects an object of about that size)."""
    if not points:
        raise SelectionError("GrabCut needs a box, or at least one positive click to put a box around")
    height, width = size
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    extent = max(max(xs) - min(xs), max(ys) - min(ys))
    pad = int(max(0.125 * min(height, width), 0.25 * extent))
    return (max(min(xs) - pad, 0), max(min(ys) - pad, 0), min(max(xs) + pad + 1, width),
            min(max(ys) + pad + 1, height))


def _working_box(prompt: Prompt, size: tuple[int, int]) -> Box:
    box = prompt.box or box_for_points(prompt.positive, size)
    positive = prompt.positive
    if not positive:
        return box
    x0, y0, x1, y1 = box
    return (min([x0, *(x for x, _ in positive)]), min([y0, *(y for _, y in positive)]),
            max([x1, *(x + 1 for x, _ in positive)]), max([y1, *(y + 1 for _, y in positive)]))


def _crop_around(box: Box, size: tuple[int, int]) -> Box:
    height, width = size
    x0, y0, x1, y1 = box
    margin = max(8, int(0.1 * max(x1 - x0, y1 - y0)))
    return (max(x0 - margin, 0), max(y0 - margin, 0), min(x1 + margin, width), min(y1 + margin, height))


def _seed_mask(shape: tuple[int, int], box: Box, prompt: Prompt, origin: tuple[int, int], scale: float) -> np.ndarray:
    """GrabCut's starting labels at the working size (box and clicks in crop-and-scale coordinates)."""
    height, width = shape
    seeds = np.full(shape, cv2.GC_BGD, np.uint8)
    ox, oy = origin
    x0, y0, x1, y1 = (int(math.floor((box[0] - ox) * scale)), int(math.floor((box[1] - oy) * scale)),
                      int(math.ceil((box[2] - ox) * scale)), int(math.ceil((box[3] - oy) * scale)))
    seeds[max(y0, 0):min(y1, height), max(x0, 0):min(x1, width)] = cv2.GC_PR_FGD
    if not (seeds == cv2.GC_BGD).any():  # a box over the whole photo leaves no background to learn from
        seeds[[0, -1], :] = cv2.GC_PR_BGD
        seeds[:, [0, -1]] = cv2.GC_PR_BGD
    radius = max(2, round(0.008 * math.hypot(height, width)))
    for x, y, keep in prompt.points:
        centre = (int((x - ox) * scale), int((y - oy) * scale))
        cv2.circle(seeds, centre, radius, int(cv2.GC_FGD if keep else cv2.GC_BGD), thickness=-1)
    return seeds


def _clean(mask: np.ndarray, keep_points: list[tuple[int, int]]) -> np.ndarray:
    """Open and close, then keep the largest component and every component under a positive click."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    work = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, kernel)
    work = cv2.morphologyEx(work, cv2.MORPH_CLOSE, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(work, connectivity=8)
    if count <= 1:
        return work.astype(bool)
    keep = {1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))}
    h, w = labels.shape
    keep.update(int(labels[y, x]) for x, y in keep_points if 0 <= x < w and 0 <= y < h and labels[y, x])
    return np.isin(labels, list(keep))


def _snap(soft_small: np.ndarray, crop_rgb: np.ndarray, scale: float) -> np.ndarray:
    """Upsample a 0..1 mask to the crop's size and snap it to the crop's edges (guided filter)."""
    height, width = crop_rgb.shape[:2]
    soft = cv2.resize(soft_small.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    if scale >= 1.0:
        return soft > 0.5
    radius = max(2, int(round(1.5 / scale)))
    guide = cv2.cvtColor(crop_rgb, cv2.COLOR_RGB2GRAY)
    snapped = cv2.ximgproc.guidedFilter(guide, soft, radius, (0.08 * 255) ** 2)
    return snapped > 0.5


def grabcut_mask(rgb: np.ndarray, prompt: Prompt, *, iterations: int = ITERATIONS,
                 work_pixels: int = WORK_PIXELS) -> np.ndarray:
    """The selected region (H x W bool) of ``rgb`` (H x W x 3 uint8) for a box and/or clicks."""
    size = rgb.shape[:2]
    prompt = check_prompt(prompt, size)
    box = _working_box(prompt, size)
    cx0, cy0, cx1, cy1 = _crop_around(box, size)
    crop = rgb[cy0:cy1, cx0:cx1]
    scale = min(1.0, math.sqrt(work_pixels / crop.shape[0] / crop.shape[1]))
    small_size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    small = cv2.resize(crop, small_size, interpolation=cv2.INTER_AREA) if scale < 1.0 else crop
    scale_xy = small.shape[1] / crop.shape[1]
    seeds = _seed_mask(small.shape[:2], box, prompt, (cx0, cy0), scale_xy)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(np.ascontiguousarray(small), seeds, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    found = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)
    positive_small = [(int((x - cx0) * scale_xy), int((y - cy0) * scale_xy)) for x, y in prompt.positive]
    found = _clean(found, positive_small)
    mask = np.zeros(size, bool)
    mask[cy0:cy1, cx0:cx1] = _snap(found, crop, scale_xy)
    outside = np.ones(size, bool)  # nothing outside the (widened) box
    outside[box[1]:box[3], box[0]:box[2]] = False
    mask[outside] = False
    return mask
