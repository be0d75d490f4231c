"""One request -> one result. The only path every front end (CLI, UI, evaluation) uses.

Steps: check the inputs -> plan regions (crop around the mask, merged so nothing is filled twice)
-> per region choose how to run it (directly, in overlapping tiles, or resized to the working
size) -> pad to the model's multiple -> run the engine -> unpad -> blend tiles with smooth weights
-> composite so that every pixel outside the mask is byte-identical to the input.

Strategies:
    full    the whole image is one region.
    crop    one region per mask component, with a context margin; overlapping regions are merged.
    tile    like crop, and a region larger than the model's tile size runs in overlapping tiles;
            only tiles that touch the hole are computed.
    resize  like crop, and a region larger than the model's working size is downscaled to it,
            filled, upscaled, and pasted inside the hole only.
    refine  like resize, and the upscaled fill's texture is then rebuilt level by level up to full
            resolution from the region's own pixels (inpaintstudio.classical.multiscale).
    auto    crop; a region larger than the tile size is tiled when its largest hole component fits
            in one tile, else filled at the card's largest size (tile or fixed size) and refined at
            full resolution. Fixed-size networks always see exactly their size.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import cv2
import numpy as np

from inpaintstudio import registry
from inpaintstudio.classical.multiscale import refine_at_full_resolution
from inpaintstudio.core import loading
from inpaintstudio.core import maskops as mask_ops
from inpaintstudio.core.engines import PRECISIONS, Engine, EngineOutput, Precision, select_device
from inpaintstudio.errors import BadInputError
from inpaintstudio.modelcard import ModelCard

__all__ = [
    "STRATEGIES",
    "MIN_TILE_SIZE",
    "OptionError",
    "check_options",
    "min_tile_size",
    "Box",
    "RegionPlan",
    "InpaintOptions",
    "InpaintResult",
    "get_engine",
    "plan_regions",
    "inpaint",
    "tile_positions",
    "blend_weights",
]

Strategy = Literal["auto", "full", "crop", "tile", "resize", "refine"]
STRATEGIES: tuple[str, ...] = ("auto", "full", "crop", "tile", "resize", "refine")
Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive ends)
MIN_TILE_SIZE = 64  # smaller tiles give no context and thousands of runs
CROP_FALLBACK_FRACTION = 0.5  # crop hands a region to auto when the hole covers more than this of it
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class InpaintOptions:
    """Knobs of one request. Unknown names are an error, never silently ignored.

    Args:
        strategy: one of :data:`STRATEGIES`.
        margin: context around each hole in pixels (default: the card's ``context_margin``).
        tile_size: tile side for ``tile`` (default: the card's ``tile_size``).
        tile_overlap: overlap between tiles (default: the card's ``tile_overlap``).
        device: ``auto``/``None``, ``cpu``, ``cuda``, ``cuda:1``, ``mps``.
        precision: ``fp32`` (default) or ``bf16`` (bfloat16 autocast of deep networks; meant for CUDA).
    """

    strategy: Strategy = "auto"
    margin: int | None = None
    tile_size: int | None = None
    tile_overlap: int | None = None
    device: str | None = None
    precision: Precision = "fp32"

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> InpaintOptions:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(unknown)}; known options: {', '.join(sorted(known))}")
        return cls(**values)


@dataclass
class RegionPlan:
    """How one region of the image is filled (``notice``: why the plan differs from the strategy asked)."""

    box: Box
    mode: Literal["direct", "tile", "resize", "refine"]
    tiles: int = 1
    scale: float = 1.0
    notice: str = ""


class OptionError(BadInputError, ValueError):
    """An option value that cannot be used; ``cli_message`` names the command-line flag instead."""

    def __init__(self, message: str, *, cli_message: str | None = None) -> None:
        super().__init__(message)
        self.cli_message = cli_message or message


def min_tile_size(card: ModelCard) -> int:
    """The smallest tile side worth running ``card``'s model on."""
    return max(MIN_TILE_SIZE, card.input.min_size, card.input.pad_multiple)


def _whole_number(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_options(options: InpaintOptions | dict[str, Any], card: ModelCard) -> InpaintOptions:
    """Refuse option values that cannot work (before any pixel is touched); returns the options.

    Raises:
        OptionError: unknown strategy, negative margin or overlap, tile size below :func:`min_tile_size`.
    """
    if isinstance(options, dict):
        options = InpaintOptions.from_dict(options)
    if options.strategy not in STRATEGIES:
        raise OptionError(f"unknown strategy {options.strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if options.precision not in PRECISIONS:
        raise OptionError(f"unknown precision {options.precision!r}; choose one of {', '.join(PRECISIONS)}",
                          cli_message=f"--precision {options.precision} cannot be used: {', '.join(PRECISIONS)}")
    checks = (
        ("margin", "--margin", options.margin, 0, "pixels of context, 0 or more"),
        ("tile_size", "--tile-size", options.tile_size, min_tile_size(card),
         f"at least {min_tile_size(card)} pixels for {card.name}"),
        ("tile_overlap", "--tile-overlap", options.tile_overlap, 0, "0 or more pixels"),
    )
    for name, flag, value, lowest, wanted in checks:
        if value is not None and (not _whole_number(value) or value < lowest):
            raise OptionError(f"{name}={value!r} cannot be used: {wanted}",
                              cli_message=f"{flag} {value} cannot be used: {wanted}")
    return options


@dataclass
class InpaintResult:
    """``image``: the composite, uint8 H×W×3. ``image01``: the same composite in float32 [0, 1] with the
    engine's fill not yet rounded to uint8, only when ``inpaint(..., keep_float=True)`` (evaluation scores it)."""

    image: np.ndarray
    model: str
    strategy: str
    device: str
    regions: list[RegionPlan] = field(default_factory=list)
    landmarks: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    image01: np.ndarray | None = None


# ------------------------------------------------------------------------------------------ engines
_ENGINES: dict[tuple[str, str, str], Engine] = {}
_ENGINES_LOCK = threading.Lock()


def get_engine(model: str | ModelCard, device: str | None = None, precision: Precision = "fp32") -> Engine:
    """A loaded engine, cached per (model, device, precision) so front ends do not reload weights per request."""
    # a card is taken as it is: resolving it again would only re-read its weight status from disk
    card = model if isinstance(model, ModelCard) else loading.resolve_model(model).card
    resolved = "cpu" if card.kind == "classical" else select_device(device)
    precision = "fp32" if card.kind == "classical" else precision
    key = (card.name, resolved, precision)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            options = {"precision": precision} if card.kind == "deep" else {}
            engine = loading.load(card, device=resolved, **options)
            _ENGINES[key] = engine
        return engine


def forget_engines(model: str | None = None) -> None:
    """Drop cached engines (all, or one model's), e.g. after new weights were imported."""
    with _ENGINES_LOCK:
        base = None if model is None else model.partition(":")[0]
        for key in [k for k in _ENGINES if base is None or k[0] == model or k[0].partition(":")[0] == base]:
            del _ENGINES[key]


# -------------------------------------------------------------------------------------------- checks
def check_inputs(image: np.ndarray, mask: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", None)
        raise ValueError(f"image must be an H×W×3 uint8 RGB array, got shape {shape} dtype {dtype}")
    if not isinstance(mask, np.ndarray) or mask.shape != image.shape[:2]:
        raise ValueError(
            f"mask size {getattr(mask, 'shape', None)} does not match image size {image.shape[:2]} (H, W)"
        )


# ------------------------------------------------------------------------------------------ planning
def _fit_box(box: Box, min_w: int, min_h: int, width: int, height: int) -> Box:
    """Grow ``box`` symmetrically to at least ``min_w × min_h``, shifted to stay inside the image."""
    x0, y0, x1, y1 = box

    def grow(lo: int, hi: int, need: int, limit: int) -> tuple[int, int]:
        need = min(need, limit)
        extra = need - (hi - lo)
        if extra <= 0:
            return lo, hi
        lo -= extra // 2
        hi += extra - extra // 2
        if lo < 0:
            hi, lo = hi - lo, 0
        if hi > limit:
            lo, hi = max(0, lo - (hi - limit)), limit
        return lo, hi

    x0, x1 = grow(x0, x1, min_w, width)
    y0, y1 = grow(y0, y1, min_h, height)
    return x0, y0, x1, y1


def plan_regions(mask: np.ndarray, card: ModelCard, options: InpaintOptions) -> list[RegionPlan]:
    """The regions to fill and how. Regions never overlap, so no pixel is filled twice."""
    height, width = mask.shape
    conv = card.input
    tile = options.tile_size or card.tile_size
    fixed = conv.fixed_size
    if options.strategy == "full":
        boxes: list[Box] = [(0, 0, width, height)]
    else:
        margin = card.context_margin if options.margin is None else options.margin
        boxes = [mask_ops.expand_box(b, margin, (width, height)) for b in mask_ops.components(mask)]
        if card.kind == "deep":
            # deep models were trained on working_size context: give them at least that much
            side = fixed or card.working_size
            boxes = [_fit_box(b, side, side, width, height) for b in boxes]
        boxes = mask_ops.merge_boxes(boxes)
    plans = []
    for box in boxes:
        x0, y0, x1, y1 = box
        w, h = x1 - x0, y1 - y0
        limit = fixed or tile
        fits = w <= limit and h <= limit if fixed else max(w, h) <= limit
        mode: Literal["direct", "tile", "resize", "refine"]
        if options.strategy == "full":
            mode = "resize" if (fixed and (w, h) != (fixed, fixed)) else "direct"
        elif fits:
            mode = "direct"
        elif options.strategy == "tile":
            mode = "tile"
        elif options.strategy in ("resize", "refine"):
            mode = options.strategy
        elif options.strategy == "crop" and (fixed or mask[y0:y1, x0:x1].mean() <= CROP_FALLBACK_FRACTION):
            mode = "resize" if fixed else "direct"
        else:  # auto, or crop on a region too large to run whole that is mostly hole
            mode = "tile" if _largest_hole_fits(mask[y0:y1, x0:x1], limit, options, card) else "refine"
        plan = RegionPlan(box=box, mode=mode)
        if options.strategy == "crop" and mode != "direct" and not fixed:
            plan.notice = (f"crop: the {w}×{h} region is mostly hole and larger than {card.name}'s {limit}-pixel "
                           f"tiles, so it was filled as auto would ({mode})")
        if mode in ("resize", "refine"):
            # resize and refine ask for the working size; auto for the largest size the card runs
            target = fixed or (card.working_size if options.strategy in ("resize", "refine") else limit)
            plan.scale = min(1.0, target / max(w, h)) if not fixed else target / max(w, h)
        plans.append(plan)
    return plans


def _largest_hole_fits(region_mask: np.ndarray, tile: int, options: InpaintOptions, card: ModelCard) -> bool:
    overlap = card.tile_overlap if options.tile_overlap is None else options.tile_overlap
    usable = tile - 2 * min(overlap, tile // 4)
    return all(max(b[2] - b[0], b[3] - b[1]) <= usable for b in mask_ops.components(region_mask))


# ------------------------------------------------------------------------------------------- tiling
def tile_positions(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of side ``tile`` covering ``[0, length)`` with at least ``overlap``."""
    if length <= tile:
        return [0]
    stride = max(1, tile - overlap)
    count = int(np.ceil((length - tile) / stride)) + 1
    starts = np.linspace(0, length - tile, count)
    return [int(round(s)) for s in starts]


def blend_weights(size: int, overlap: int, at_start: bool, at_end: bool) -> np.ndarray:
    """1-D blending ramp: raised cosine over ``overlap`` pixels at inner edges, flat at region edges."""
    weights = np.ones(size, np.float32)
    ramp_len = min(overlap, size // 2)
    if ramp_len > 0:
        t = (np.arange(ramp_len, dtype=np.float32) + 0.5) / ramp_len
        ramp = 0.5 - 0.5 * np.cos(np.pi * t)
        if not at_start:
            weights[:ramp_len] = ramp
        if not at_end:
            weights[-ramp_len:] = np.minimum(weights[-ramp_len:], ramp[::-1])
    return weights


# ------------------------------------------------------------------------------------------ running
def _pad_amounts(h: int, w: int, card: ModelCard) -> tuple[int, int]:
    conv = card.input
    if conv.fixed_size:
        return max(0, conv.fixed_size - h), max(0, conv.fixed_size - w)
    multiple = max(1, conv.pad_multiple)
    th = max(conv.min_size, int(np.ceil(h / multiple)) * multiple)
    tw = max(conv.min_size, int(np.ceil(w / multiple)) * multiple)
    return th - h, tw - w


def _pad(array: np.ndarray, pad_h: int, pad_w: int, mode: str) -> np.ndarray:
    if not pad_h and not pad_w:
        return array
    widths = [(0, pad_h), (0, pad_w)] + [(0, 0)] * (array.ndim - 2)
    if mode == "reflect" and (pad_h >= array.shape[0] or pad_w >= array.shape[1]):
        mode = "symmetric"  # reflect needs the pad to be shorter than the side
    if mode == "symmetric" and (pad_h > array.shape[0] or pad_w > array.shape[1]):
        mode = "wrap"
    return np.pad(array, widths, mode=mode)


def _run_padded(engine: Engine, image: np.ndarray, mask: np.ndarray) -> EngineOutput:
    """Pad to the card's multiple (or fixed size), run, crop back."""
    h, w = mask.shape
    pad_h, pad_w = _pad_amounts(h, w, engine.card)
    mode = engine.card.input.pad_mode
    out = engine.run(_pad(image, pad_h, pad_w, mode), _pad(mask, pad_h, pad_w, mode))
    out.image = out.image[:h, :w]
    return out


def _run_resized(engine: Engine, image: np.ndarray, mask: np.ndarray, scale: float) -> EngineOutput:
    h, w = mask.shape
    fixed = engine.card.input.fixed_size
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    if fixed:
        sw, sh = min(sw, fixed), min(sh, fixed)
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(mask.astype(np.uint8), (sw, sh), interpolation=cv2.INTER_AREA) > 0
    # a hole must stay a hole at the lower resolution, or thin strokes vanish
    small_mask |= cv2.resize(mask.astype(np.uint8), (sw, sh), interpolation=cv2.INTER_NEAREST) > 0
    out = _run_padded(engine, small, small_mask)
    out.image = cv2.resize(out.image, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    if out.landmarks is not None:
        out.landmarks = out.landmarks * np.array([w / sw, h / sh], np.float32)
    return out


def _run_refined(engine: Engine, image: np.ndarray, mask: np.ndarray, scale: float) -> EngineOutput:
    """Fill at ``scale`` like :func:`_run_resized`, then rebuild the texture at full resolution."""
    h, w = mask.shape
    coarse_runs: list[tuple[EngineOutput, tuple[int, int]]] = []

    def coarse(small: np.ndarray, small_mask: np.ndarray) -> np.ndarray:
        out = _run_padded(engine, small, small_mask)
        coarse_runs.append((out, small_mask.shape))
        return out.image

    out = EngineOutput(image=refine_at_full_resolution(image, mask, round(max(h, w) * scale), coarse))
    first, (sh, sw) = coarse_runs[0] if coarse_runs else (None, (h, w))
    if first is not None and first.landmarks is not None:
        out.landmarks = first.landmarks * np.array([w / sw, h / sh], np.float32)
    return out


def _run_tiled(
    engine: Engine,
    image: np.ndarray,
    mask: np.ndarray,
    tile: int,
    overlap: int,
    progress: Progress | None,
) -> tuple[EngineOutput, int]:
    h, w = mask.shape
    fixed = engine.card.input.fixed_size
    if fixed:
        tile = fixed
    overlap = min(overlap, tile // 2)
    ys, xs = tile_positions(h, tile, overlap), tile_positions(w, tile, overlap)
    jobs = [(y, x) for y in ys for x in xs if mask[y : y + tile, x : x + tile].any()]
    acc = np.zeros((h, w, 3), np.float32)
    weight = np.zeros((h, w), np.float32)
    for index, (y, x) in enumerate(jobs):
        y1, x1 = min(y + tile, h), min(x + tile, w)
        part = _run_padded(engine, image[y:y1, x:x1], mask[y:y1, x:x1])
        wy = blend_weights(y1 - y, overlap, y == 0, y1 == h)
        wx = blend_weights(x1 - x, overlap, x == 0, x1 == w)
        tile_weight = np.outer(wy, wx)
        acc[y:y1, x:x1] += part.image * tile_weight[..., None]
        weight[y:y1, x:x1] += tile_weight
        if progress is not None:
            progress((index + 1) / len(jobs), f"tile {index + 1}/{len(jobs)}")
    filled = np.where(weight[..., None] > 0, acc / np.maximum(weight, 1e-12)[..., None], image)
    return EngineOutput(image=filled.astype(np.float32)), len(jobs)


def _is_cuda_oom(error: BaseException) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return isinstance(error, torch.cuda.OutOfMemoryError)


def _fill_region(
    engine: Engine,
    pixels: np.ndarray,
    mask: np.ndarray,
    plan: RegionPlan,
    options: InpaintOptions,
    progress: Progress | None,
) -> EngineOutput:
    """``pixels``: float32 [0, 1], or uint8 for a direct region of an engine that ``takes_uint8``."""
    card = engine.card
    tile = options.tile_size or card.tile_size
    overlap = card.tile_overlap if options.tile_overlap is None else options.tile_overlap
    while True:
        try:
            if plan.mode == "direct":
                return _run_padded(engine, pixels, mask)
            if plan.mode == "resize":
                return _run_resized(engine, pixels, mask, plan.scale)
            if plan.mode == "refine":
                return _run_refined(engine, pixels, mask, plan.scale)
            out, plan.tiles = _run_tiled(engine, pixels, mask, tile, overlap, progress)
            return out
        except Exception as error:
            if not _is_cuda_oom(error) or tile <= 64:
                raise
            import torch

            torch.cuda.empty_cache()
            tile = max(64, tile // 2)  # CUDA ran out of memory: retry with smaller tiles
            plan.mode = "tile"


def inpaint(
    image: np.ndarray,
    mask: np.ndarray,
    model: str | ModelCard = registry.DEFAULT_MODEL,
    options: InpaintOptions | dict[str, Any] | None = None,
    progress: Progress | None = None,
    engine: Engine | None = None,
    keep_float: bool = False,
) -> InpaintResult:
    """Fill ``mask`` (H×W, True/nonzero = hole) in ``image`` (H×W×3 uint8 RGB) with ``model`` (a name or
    a card resolved by the caller).

    The input arrays are never modified. Pixels outside the mask are byte-identical to ``image``.
    """
    timings: dict[str, float] = {}
    start = time.perf_counter()
    if options is None:
        options = InpaintOptions()
    elif isinstance(options, dict):
        options = InpaintOptions.from_dict(options)
    check_inputs(image, mask)
    hole = mask.astype(bool, copy=False)
    resolved = loading.resolve_model(model) if engine is None else None
    card = resolved.card if resolved is not None else engine.card
    options = check_options(options, card)
    result = InpaintResult(image=image.copy(), model=card.name, strategy=options.strategy, device="cpu")
    if resolved is not None and resolved.note:
        result.notices.append(resolved.note)
    if keep_float:
        result.image01 = image.astype(np.float32) / 255.0
    if not hole.any():
        result.notices.append("the mask is empty: the image is returned unchanged")
        timings["total"] = time.perf_counter() - start
        result.timings = timings
        return result

    t = time.perf_counter()
    if engine is None:
        engine = get_engine(card, options.device, options.precision)
    result.device = engine.device
    timings["load"] = time.perf_counter() - t

    t = time.perf_counter()
    result.regions = plan_regions(hole, card, options)
    result.notices.extend(plan.notice for plan in result.regions if plan.notice)
    timings["plan"] = time.perf_counter() - t

    t = time.perf_counter()
    landmark_area = -1
    for index, plan in enumerate(result.regions):
        x0, y0, x1, y1 = plan.box
        region_hole = hole[y0:y1, x0:x1]
        region = image[y0:y1, x0:x1]
        if not (plan.mode == "direct" and getattr(engine, "takes_uint8", False)):
            region = region.astype(np.float32) / 255.0  # 8-bit engines run direct regions on the bytes themselves

        def region_progress(fraction: float, text: str, index: int = index) -> None:
            if progress is not None:
                progress((index + fraction) / len(result.regions), f"region {index + 1}/{len(result.regions)}: {text}")

        out = _fill_region(engine, region, region_hole, plan, options, region_progress)
        if out.image.dtype == np.uint8:
            filled, filled01 = out.image, None
        else:
            filled01 = np.clip(out.image, 0.0, 1.0)
            filled = np.rint(filled01 * 255.0).astype(np.uint8)
        target = result.image[y0:y1, x0:x1]
        target[region_hole] = filled[region_hole]
        if result.image01 is not None:
            hole_values = filled[region_hole] / np.float32(255) if filled01 is None else filled01[region_hole]
            result.image01[y0:y1, x0:x1][region_hole] = hole_values
        area = int(region_hole.sum())
        if out.landmarks is not None and plan.mode != "tile" and area > landmark_area:
            result.landmarks = out.landmarks + np.array([x0, y0], np.float32)
            landmark_area = area
        if progress is not None:
            progress((index + 1) / len(result.regions), f"region {index + 1}/{len(result.regions)} done")
    timings["inpaint"] = time.perf_counter() - t
    # outside the hole the result is the input byte for byte: only hole pixels were ever written
    timings["total"] = time.perf_counter() - start
    result.timings = timings
    return result
