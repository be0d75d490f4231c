"""Weight-free engines: OpenCV Telea and Navier–Stokes, and exemplar-based PatchMatch.

PatchMatch comes from ``pypatchmatch`` (MIT, a prebuilt C++ library), chosen over
``patchmatch-cython`` (BSD-3-Clause) and OpenCV-contrib's ``xphoto`` (shift-map, FSR) by
``benchmarks/engines_compare.py``; the README records the figures. It fills holes with texture
copied from the photo (detail close to the photo's own, where Telea/NS blur), came closest to the
true content of the candidates with texture, and stayed fastest on large holes. The pipeline keeps
its cost independent of the photo size (crop around the mask). Regions up to
:data:`DIRECT_SIDE` pixels are filled by pypatchmatch directly; larger ones are filled at
:data:`COARSE_SIDE` and refined level by level up to full resolution
(:mod:`inpaintstudio.classical.multiscale`), so a big hole gets the photo's full-resolution texture.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from inpaintstudio.classical.multiscale import MultiscaleConfig, multiscale_fill
from inpaintstudio.core.engines import EngineOutput
from inpaintstudio.modelcard import ModelCard

__all__ = ["ClassicalEngine", "make_engine", "telea", "navier_stokes", "patchmatch", "pypatchmatch", "DIRECT_SIDE",
           "COARSE_SIDE", "MAX_SIDE"]


def _to_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def telea(image: np.ndarray, mask: np.ndarray, radius: int = 5) -> np.ndarray:
    """OpenCV's fast-marching inpainting (Telea 2004). uint8 RGB in and out."""
    return cv2.inpaint(image, mask.astype(np.uint8) * 255, radius, cv2.INPAINT_TELEA)


def navier_stokes(image: np.ndarray, mask: np.ndarray, radius: int = 5) -> np.ndarray:
    """OpenCV's Navier–Stokes based inpainting (Bertalmío et al. 2001). uint8 RGB in and out."""
    return cv2.inpaint(image, mask.astype(np.uint8) * 255, radius, cv2.INPAINT_NS)


_PATCHMATCH_LOCK = threading.Lock()


# Above this many hole pixels the patch radius drops from 3 to 2: about 1.5x faster, and such holes are
# large regions whose coarse level this fills before the multi-scale refinement, where 7x7 patches buy
# little (benchmarks/engines_compare.py: radius 3 vs 2 = 18.96 vs 18.41 dB on small holes).
LARGE_HOLE_PIXELS = 40_000


# Regions up to this side are filled by pypatchmatch at full resolution; larger ones multi-scale.
DIRECT_SIDE = 768
# The coarsest level of the multi-scale fill, filled by pypatchmatch.
COARSE_SIDE = 384
# The largest region the multi-scale fill takes in one piece (memory about 60 bytes per pixel);
# the pipeline tiles or downsizes larger regions to this.
MAX_SIDE = 3072


def patchmatch(image: np.ndarray, mask: np.ndarray, patch_size: int | None = None, seed: int = 0,
               multiscale: bool = True) -> np.ndarray:
    """Exemplar-based fill, seeded so equal inputs give equal results.

    Regions up to :data:`DIRECT_SIDE` pixels (or all, with ``multiscale=False``) are filled by
    pypatchmatch directly; larger ones by :func:`inpaintstudio.classical.multiscale.multiscale_fill`, which
    lets pypatchmatch fill the region at :data:`COARSE_SIDE` and refines that fill up to full
    resolution with the region's own pixels.
    """
    if multiscale and max(mask.shape) > DIRECT_SIDE:
        def coarse(small: np.ndarray, small_mask: np.ndarray) -> np.ndarray:
            return pypatchmatch(small, small_mask, patch_size=patch_size, seed=seed)

        return multiscale_fill(image, mask, coarse, MultiscaleConfig(coarse_side=COARSE_SIDE, seed=seed))
    return pypatchmatch(image, mask, patch_size=patch_size, seed=seed)


def pypatchmatch(image: np.ndarray, mask: np.ndarray, patch_size: int | None = None, seed: int = 0) -> np.ndarray:
    """pypatchmatch's fill of the whole image, seeded so equal inputs give equal results.

    ``patch_size`` is pypatchmatch's patch *radius* (patches span (2r+1)² pixels); by default 3, or 2
    for holes larger than :data:`LARGE_HOLE_PIXELS`. The library keeps its seed globally, so seeding
    and filling happen under one lock.
    """
    from patchmatch import patch_match

    if not patch_match.patchmatch_available:  # pragma: no cover - the wheel ships the library
        raise RuntimeError("pypatchmatch's native library could not be loaded on this platform")
    hole = mask.astype(bool)
    if patch_size is None:
        patch_size = 3 if int(hole.sum()) <= LARGE_HOLE_PIXELS else 2
    with _PATCHMATCH_LOCK:
        patch_match.set_random_seed(seed)
        return patch_match.inpaint(np.ascontiguousarray(image), hole.astype(np.uint8) * 255, patch_size=patch_size)


_FILLERS: dict[str, Callable[..., np.ndarray]] = {
    "opencv_telea": telea,
    "opencv_ns": navier_stokes,
    "patchmatch": patchmatch,
}


@dataclass
class ClassicalEngine:
    """A classical filler. It works on 8-bit pixels: given uint8 it answers uint8 (no float round trip);
    given float [0, 1] (tiles, resized and coarse runs) it answers float."""

    card: ModelCard
    device: str = "cpu"
    options: dict[str, Any] | None = None
    takes_uint8: bool = True

    def run(self, image: np.ndarray, mask: np.ndarray) -> EngineOutput:
        filled = _FILLERS[self.card.family](_to_uint8(image), mask.astype(bool), **(self.options or {}))
        if image.dtype == np.uint8:
            return EngineOutput(image=filled)
        return EngineOutput(image=filled.astype(np.float32) / 255.0)


def make_engine(card: ModelCard, device: str | None = None, **options: Any) -> ClassicalEngine:
    return ClassicalEngine(card=card, device="cpu", options=options or None)
