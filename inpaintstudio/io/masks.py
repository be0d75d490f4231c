"""Masks: "white or opaque = hole", binarised at a threshold, and the size check against the photo."""

from __future__ import annotations

import cv2
import numpy as np

from inpaintstudio.io.common import (
    EMPTY_MASK_NOTICE,
    ImageSource,
    InputError,
    LoadedImage,
    MaskSizeError,
)
from inpaintstudio.io.read import _array_to_rgb_alpha, _quote, _source_name, load_image


# --------------------------------------------------------------------------------------------- masks
def _hole_from_rgb_alpha(rgb: np.ndarray, alpha: np.ndarray | None, threshold: int) -> np.ndarray:
    """White or opaque = hole: alpha > threshold when alpha is not fully opaque, else luminance > threshold."""
    if alpha is not None and alpha.size and alpha.min() < 255:
        return alpha > threshold
    luminance = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    return luminance > threshold


def _fit_mask(hole: np.ndarray, size: tuple[int, int] | None, resize: bool, label: str) -> np.ndarray:
    if size is None:
        return hole
    width, height = int(size[0]), int(size[1])
    mask_size = (int(hole.shape[1]), int(hole.shape[0]))
    if mask_size == (width, height):
        return hole
    if not resize:
        raise MaskSizeError(
            f"the mask {label} is {mask_size[0]}×{mask_size[1]} pixels but the image is {width}×{height}; "
            "use a mask of the same size or allow resizing (resize=True)",
            mask_size=mask_size,
            image_size=(width, height),
            cli_message=f"the mask {label} is {mask_size[0]}×{mask_size[1]} pixels but the image is "
            f"{width}×{height}; use a mask of the same size or pass --resize-mask",
        )
    resized = cv2.resize(hole.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST_EXACT)
    return resized.astype(bool)


def _check_threshold(threshold: int) -> int:
    if not 0 <= int(threshold) < 255:
        raise InputError(f"the mask threshold must lie in 0…254, got {threshold}")
    return int(threshold)


def mask_from_array(
    array: np.ndarray,
    size: tuple[int, int] | None = None,
    *,
    resize: bool = False,
    threshold: int = 127,
    name: str | None = None,
) -> np.ndarray:
    """A boolean hole mask (H×W, True = hole) from an in-memory array.

    Accepts bool, integer 0/1 (any integer array whose values are all 0 or 1 is read as 0/1), 0…255,
    uint16, float [0, 1], grey, grey+alpha, RGB and RGBA; then the "white or opaque = hole" rule.
    ``size`` = (width, height) of the image it belongs to; see :func:`load_mask` for ``resize``.
    """
    threshold = _check_threshold(threshold)
    label = _quote(_source_name(array, name))
    values = np.asarray(array)
    if values.dtype == bool and values.ndim == 2:
        return _fit_mask(values.copy(), size, resize, label)
    if np.issubdtype(values.dtype, np.integer) and values.size and values.min() >= 0 and values.max() <= 1:
        values = values.astype(np.uint8) * 255
    rgb, alpha = _array_to_rgb_alpha(values, label)
    return _fit_mask(_hole_from_rgb_alpha(rgb, alpha, threshold), size, resize, label)


def load_mask(
    src: ImageSource,
    size: tuple[int, int] | None = None,
    *,
    resize: bool = False,
    threshold: int = 127,
    max_pixels: int | None = None,
    name: str | None = None,
) -> np.ndarray:
    """Load a mask as a boolean H×W array (True = hole) by the rule "white or opaque = hole".

    If the mask has an alpha channel that is not fully opaque, the hole is alpha > ``threshold``;
    otherwise it is the luminance > ``threshold``. EXIF orientation is applied as for images.

    Args:
        src: anything :func:`load_image` accepts (arrays go through :func:`mask_from_array`).
        size: (width, height) of the image; ``None`` skips the size check.
        resize: rescale a mask of another size (nearest neighbour) instead of refusing it.
        threshold: binarisation threshold on the 0…255 scale (hole = value > threshold).

    Raises:
        MaskSizeError: the mask's size differs from ``size`` and ``resize`` is false.
        ImageReadError, ImageTooLargeError: as :func:`load_image`.
    """
    if isinstance(src, np.ndarray):
        return mask_from_array(src, size, resize=resize, threshold=threshold, name=name)
    threshold = _check_threshold(threshold)
    loaded = load_image(src, max_pixels=max_pixels, name=name)
    hole = _hole_from_rgb_alpha(loaded.rgb, loaded.alpha, threshold)
    return _fit_mask(hole, size, resize, _quote(loaded.source_name))


def mask_from_loaded(
    loaded: LoadedImage, size: tuple[int, int] | None = None, *, resize: bool = False, threshold: int = 127
) -> np.ndarray:
    """The hole mask of an already loaded mask image (same rule and checks as :func:`load_mask`)."""
    threshold = _check_threshold(threshold)
    hole = _hole_from_rgb_alpha(loaded.rgb, loaded.alpha, threshold)
    return _fit_mask(hole, size, resize, _quote(loaded.source_name))


def _near_binary_grey(rgb: np.ndarray) -> np.ndarray:
    """Pixels that are grey (R = G = B within 8) and near black or white (within 24)."""
    values = rgb.astype(np.int16)
    grey = (values.max(axis=2) - values.min(axis=2)) <= 8
    level = values.mean(axis=2)
    return grey & ((level <= 24) | (level >= 231))


def _sample(rgb: np.ndarray, side: int = 256) -> np.ndarray:
    step = max(1, max(rgb.shape[:2]) // side)
    return rgb[::step, ::step]


def looks_like_mask(rgb: np.ndarray, alpha: np.ndarray | None = None) -> bool:
    """Whether an image looks like a hole mask: nine pixels in ten black or white grey, some of each
    (or a transparency plane that does the same on top of a flat colour)."""
    small = _sample(np.asarray(rgb))
    binary = _near_binary_grey(small)
    if binary.mean() < 0.9:
        return False
    level = small.astype(np.int16).mean(axis=2)[binary]
    return bool((level >= 231).any() and (level <= 24).any())


def looks_like_photo(rgb: np.ndarray) -> bool:
    """Whether an image looks like a photo rather than a mask: a good share of mid-tone or coloured pixels."""
    small = _sample(np.asarray(rgb))
    return bool((~_near_binary_grey(small)).mean() > 0.25 and len(np.unique(small.reshape(-1, 3), axis=0)) > 64)


def check_mask(mask: np.ndarray) -> str | None:
    """:data:`EMPTY_MASK_NOTICE` when nothing is masked, else ``None``."""
    return EMPTY_MASK_NOTICE if not np.any(mask) else None
