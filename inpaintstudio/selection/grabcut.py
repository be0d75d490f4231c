"""The weight-free selector: OpenCV's GrabCut from a box, refined by clicks, cleaned up and snapped to edges.

Steps (:func:`grabcut_mask`):

1. The box (or, for clicks alone, a box around the positive clicks) is widened to take in every positive
   click outside it and its surroundings; the photo is cropped to it plus a margin, so the cost follows the
   box, not the photo.
2. The crop is shrunk to at most :data:`WORK_PIXELS` pixels. GrabCut starts from a mask: outside the box
   "background", inside "probably foreground", positive clicks "foreground" and negative clicks
   "background": a small disc, and the patch of nearly the same colour around it.
3. The result is opened and closed; specks are dropped (components under 5 % of the largest one's
   area, unless a positive click is on them), and so is every component under a negative click alone.
4. Back at full resolution the mask is upsampled and snapped to the photo's edges with a guided filter whose
   radius matches the shrink factor, then thresholded.
"""

from __future__ import annotations

import math
import time

import cv2
import numpy as np

from inpaintstudio.selection.types import Box, Prompt, SelectionError, check_prompt

__all__ = ["WORK_PIXELS", "grabcut_mask", "box_for_points"]

WORK_PIXELS = 360_000  # GrabCut's graph at about 600 x 600: well under a second on one core
ITERATIONS = 4
BUDGET_SECONDS = 1.5  # GrabCut's iterations stop starting after this (the whole selection stays under ~3 s)
SEED_TOLERANCE = 20  # colour distance (per channel) of the patch a click seeds


def box_for_points(points: list[tuple[int, int]], size: tuple[int, int]) -> Box:
    """A box around positive clicks: their bounding box widened by a quarter of its extent, and at least by
    a quarter of the photo's shorter side (a single click: an object up to half that side across)."""
    if not points:
        raise SelectionError("GrabCut needs a box, or at least one positive click to put a box around")
    height, width = size
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    extent = max(max(xs) - min(xs), max(ys) - min(ys))
    pad = int(max(0.25 * min(height, width), 0.25 * extent))
    return (max(min(xs) - pad, 0), max(min(ys) - pad, 0), min(max(xs) + pad + 1, width),
            min(max(ys) + pad + 1, height))


def _working_box(prompt: Prompt, size: tuple[int, int]) -> Box:
    """The box, widened to take in each positive click outside it with the surroundings a click alone gets."""
    box = prompt.box or box_for_points(prompt.positive, size)
    for x, y in prompt.positive:
        if not (box[0] <= x < box[2] and box[1] <= y < box[3]):
            around = box_for_points([(x, y)], size)
            box = (min(box[0], around[0]), min(box[1], around[1]), max(box[2], around[2]), max(box[3], around[3]))
    return box


def _crop_around(box: Box, size: tuple[int, int]) -> Box:
    height, width = size
    x0, y0, x1, y1 = box
    margin = max(8, int(0.1 * max(x1 - x0, y1 - y0)))
    return (max(x0 - margin, 0), max(y0 - margin, 0), min(x1 + margin, width), min(y1 + margin, height))


def _seed_mask(small: np.ndarray, box: Box, prompt: Prompt, origin: tuple[int, int], scale: float) -> np.ndarray:
    """GrabCut's starting labels for the working image ``small`` (box and clicks in crop-and-scale coordinates)."""
    height, width = shape = small.shape[:2]
    seeds = np.full(shape, cv2.GC_BGD, np.uint8)
    ox, oy = origin
    x0, y0, x1, y1 = (int(math.floor((box[0] - ox) * scale)), int(math.floor((box[1] - oy) * scale)),
                      int(math.ceil((box[2] - ox) * scale)), int(math.ceil((box[3] - oy) * scale)))
    seeds[max(y0, 0):min(y1, height), max(x0, 0):min(x1, width)] = cv2.GC_PR_FGD
    if not (seeds == cv2.GC_BGD).any():  # a box over the whole photo: its rim stands in for the background
        rim = max(1, round(0.02 * min(height, width)))
        seeds[:rim, :] = seeds[-rim:, :] = cv2.GC_PR_BGD
        seeds[:, :rim] = seeds[:, -rim:] = cv2.GC_PR_BGD
    diagonal = math.hypot(height, width)
    radius = max(2, round(0.008 * diagonal))
    reach = max(radius, round(0.08 * diagonal))
    for x, y, keep in sorted(prompt.points, key=lambda point: point[2]):  # positive clicks last: they win
        centre = (int((x - ox) * scale), int((y - oy) * scale))
        label = cv2.GC_FGD if keep else cv2.GC_BGD
        seeds[_nearby_same_colour(small, centre, reach)] = label
        cv2.circle(seeds, centre, radius, int(label), thickness=-1)
    return seeds


def _nearby_same_colour(small: np.ndarray, centre: tuple[int, int], reach: int) -> np.ndarray:
    """Pixels within ``reach`` of a click, connected to it and of nearly its colour: a click stands for the
    patch of colour it lands on, which seeds GrabCut far more firmly than a fingertip-sized disc."""
    height, width = small.shape[:2]
    x, y = min(max(centre[0], 0), width - 1), min(max(centre[1], 0), height - 1)
    x0, y0, x1, y1 = max(x - reach, 0), max(y - reach, 0), min(x + reach + 1, width), min(y + reach + 1, height)
    window = np.ascontiguousarray(small[y0:y1, x0:x1])
    flood = np.zeros((y1 - y0 + 2, x1 - x0 + 2), np.uint8)
    flags = 8 | cv2.FLOODFILL_FIXED_RANGE | cv2.FLOODFILL_MASK_ONLY | (1 << 8)
    cv2.floodFill(window, flood, (x - x0, y - y0), (0, 0, 0), (SEED_TOLERANCE,) * 3, (SEED_TOLERANCE,) * 3, flags)
    found = np.zeros((height, width), bool)
    found[y0:y1, x0:x1] = flood[1:-1, 1:-1] > 0
    return found


def _clean(mask: np.ndarray, keep_points: list[tuple[int, int]], drop_points: list[tuple[int, int]]) -> np.ndarray:
    """Open and close, then drop specks (components under 5 % of the largest one's area, unless a positive
    click is on them) and every component under a negative click but no positive one."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    work = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, kernel)
    work = cv2.morphologyEx(work, cv2.MORPH_CLOSE, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(work, connectivity=8)
    if count <= 1:
        return work.astype(bool)
    areas = stats[:, cv2.CC_STAT_AREA]
    keep = {label for label in range(1, count) if areas[label] >= 0.05 * areas[1:].max()}
    h, w = labels.shape
    under = {int(labels[y, x]) for x, y in keep_points if 0 <= x < w and 0 <= y < h and labels[y, x]}
    keep -= {int(labels[y, x]) for x, y in drop_points if 0 <= x < w and 0 <= y < h}
    keep |= under
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


def _segment(small: np.ndarray, seeds: np.ndarray, iterations: int, budget_seconds: float) -> None:
    """GrabCut on ``seeds`` in place, one iteration at a time: later iterations are skipped once the budget is
    spent. A min-cut's cost depends on the content (a box over texture with no distinct object took 2.6 s per
    four iterations at 0.36 MP, an object in a box 0.7 s), and the first iterations do most of the work."""
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    start = time.perf_counter()
    cv2.grabCut(small, seeds, None, bgd, fgd, 1, cv2.GC_INIT_WITH_MASK)
    for _ in range(iterations - 1):
        spent = time.perf_counter() - start
        if spent * (1 + 1 / max(1, _ + 1)) > budget_seconds:  # another iteration costs about the mean so far
            break
        cv2.grabCut(small, seeds, None, bgd, fgd, 1, cv2.GC_EVAL)


def grabcut_mask(rgb: np.ndarray, prompt: Prompt, *, iterations: int = ITERATIONS,
                 work_pixels: int = WORK_PIXELS, budget_seconds: float = BUDGET_SECONDS) -> np.ndarray:
    """The selected region (H x W bool) of ``rgb`` (H x W x 3 uint8) for a box and/or clicks."""
    size = rgb.shape[:2]
    prompt = check_prompt(prompt, size)
    box = _working_box(prompt, size)
    cx0, cy0, cx1, cy1 = _crop_around(box, size)
    crop = rgb[cy0:cy1, cx0:cx1]
    box_area = (box[2] - box[0]) * (box[3] - box[1])
    if box_area > 0.9 * crop.shape[0] * crop.shape[1]:
        # with (almost) no sure background GrabCut's min-cut grows much faster than the pixel count (4.8 s
        # against 0.8 s at 0.36 MP here); a quarter of the pixels costs a tenth, the edge snap restores detail
        work_pixels //= 4
    scale = min(1.0, math.sqrt(work_pixels / crop.shape[0] / crop.shape[1]))
    small_size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    small = cv2.resize(crop, small_size, interpolation=cv2.INTER_AREA) if scale < 1.0 else crop
    scale_xy = small.shape[1] / crop.shape[1]
    seeds = _seed_mask(small, box, prompt, (cx0, cy0), scale_xy)
    found = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)
    if found.any() and not found.all():  # GrabCut needs samples of both; a tiny photo may leave none outside
        _segment(np.ascontiguousarray(small), seeds, iterations, budget_seconds)
        found = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)
    def to_small(points: list[tuple[int, int]]) -> list[tuple[int, int]]:
        return [(int((x - cx0) * scale_xy), int((y - cy0) * scale_xy)) for x, y in points]

    found = _clean(found, to_small(prompt.positive), to_small(prompt.negative))
    mask = np.zeros(size, bool)
    mask[cy0:cy1, cx0:cx1] = _snap(found, crop, scale_xy)
    outside = np.ones(size, bool)  # nothing outside the (widened) box
    outside[box[1]:box[3], box[0]:box[2]] = False
    mask[outside] = False
    return mask
