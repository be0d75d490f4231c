"""Safe image and mask input/output for every front end (CLI, UI, Python API).

Reading (:func:`load_image`, :func:`load_mask`, :func:`mask_from_array`):

* Sources: a path, ``bytes``, a binary file-like, a PIL image or a numpy array. Files are opened
  with Pillow restricted to :data:`READ_FORMATS` (no Ghostscript-backed EPS/PS, no exotic plugins;
  multi-picture phone JPEGs (MPO) open through the JPEG reader; multi-frame files give their first frame).
* The pixel limit (default :data:`DEFAULT_MAX_PIXELS` = 60 MP; argument ``max_pixels``, else the
  environment variable ``INPAINTSTUDIO_MAX_PIXELS``) is checked on the header size, before any pixel
  is decoded. Pillow's own decompression-bomb error is reported as the same :class:`ImageTooLargeError`
  and its warning is silenced, because our limit is the one that applies.
* EXIF orientation is applied exactly once (``ImageOps.exif_transpose``); the loaded image records the
  original orientation and whether pixels were turned, and keeps the EXIF block with Orientation = 1 so
  that a viewer never turns the saved result a second time.
* Every mode becomes RGB uint8 (H×W×3, C-contiguous, a fresh array) plus, when the source has one,
  an alpha plane (H×W uint8) kept aside to be put back on save:
  ``1``/``L`` are repeated to three channels; ``LA``/``La``/``PA``/``RGBA``/``RGBa`` and ``P``/``L``/``RGB``
  with a tRNS transparency are split into RGB + alpha; ``CMYK`` goes through its ICC profile to sRGB
  when it has one (Pillow's naive formula otherwise); 16-bit grey (``I;16``, ``I;16B``, ``I;16L``,
  ``I;16N``) and ``I`` are scaled by round(v · 255 / 65535) (``I`` is taken as 16-bit, clipped to
  0…65535); ``F`` is taken as [0, 1] when its maximum is ≤ 1 and as Pillow's 0…255 scale otherwise.
  16-bit RGB(A) PNGs are reduced to 8 bits by Pillow's decoder itself (high byte, i.e. v // 256),
  which is a proper scaling (never a clip). An ICC profile that no longer matches RGB data (GRAY,
  CMYK) is dropped, with a note.
* Masks follow one documented rule, "white or opaque = hole": if the mask has an alpha channel that
  is not fully opaque, the hole is alpha > threshold; otherwise it is luminance (ITU-R 601) >
  threshold, threshold 127 (white = hole, binarised at > 127, as in the thesis' evaluation). A mask of another
  size is refused (:class:`MaskSizeError`) unless ``resize=True`` (nearest, pixel-centre exact).

Writing (:func:`save_image`, :func:`save_like`, :func:`encode_png`, :func:`encode_image`):

* PNG by default (lossless; ``metadata`` as tEXt/iTXt chunks, EXIF as eXIf, ICC as iCCP, alpha put
  back). JPEG and WebP on request, by file suffix or ``format``. JPEG has no alpha: it is dropped with
  a note; ``metadata`` goes to the JPEG comment (COM) as JSON; WebP keeps alpha, EXIF and ICC but has
  no text field, so ``metadata`` is dropped with a note. WebP at ``quality=100`` is lossless.
* EXIF passed to a writer always gets Orientation = 1, whatever it said.
* Files are written to a temporary name in the destination folder, then renamed, so a failed save
  never leaves half a file; a destination that is the same file as ``source_path`` is refused.

All user-facing failures derive from :class:`InputError` (a ``ValueError``) and carry a message that
names the file.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError, features

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAX_PIXELS_ENV",
    "READ_FORMATS",
    "EMPTY_MASK_NOTICE",
    "InputError",
    "ImageReadError",
    "ImageTooLargeError",
    "MaskSizeError",
    "OverwriteError",
    "OutputError",
    "safe_resolve",
    "looks_like_mask",
    "looks_like_photo",
    "mask_from_loaded",
    "LOSSY_FORMAT_NOTE",
    "same_file",
    "printable_path",
    "describe_os_error",
    "write_bytes_atomically",
    "write_format",
    "LoadedImage",
    "SavedImage",
    "ImageSource",
    "max_pixels_limit",
    "load_image",
    "load_mask",
    "mask_from_array",
    "check_mask",
    "save_image",
    "save_like",
    "encode_image",
    "encode_png",
]

DEFAULT_MAX_PIXELS = 60_000_000
MAX_PIXELS_ENV = "INPAINTSTUDIO_MAX_PIXELS"
READ_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "BMP", "DIB", "GIF", "TIFF", "PPM", "TGA", "AVIF")
EMPTY_MASK_NOTICE = "the mask is empty: the image is returned unchanged"
LOSSY_FORMAT_NOTE = (
    "{format} is lossy: pixels outside the mask will not stay identical to the input (write .png to keep them)"
)

_ORIENTATION_TAG = 0x0112
_WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".jfif": "JPEG", ".webp": "WEBP"}
_FORMAT_ALIASES = {"PNG": "PNG", "JPEG": "JPEG", "JPG": "JPEG", "WEBP": "WEBP"}

ImageSource = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO | Image.Image | np.ndarray


# ----------------------------------------------------------------------------------------------- errors
class InputError(ValueError):
    """A user-supplied image, mask or destination that cannot be used; the message says why.

    ``cli_message`` is the same message with its advice worded for the command line (flags instead
    of Python arguments); front ends other than the CLI use ``str(error)``.
    """

    def __init__(self, message: str, *, cli_message: str | None = None) -> None:
        super().__init__(message)
        self.cli_message = cli_message or message


class ImageReadError(InputError):
    """The file is missing, not an image, truncated or corrupt."""


class ImageTooLargeError(InputError):
    """The image has more pixels than the configured limit (checked before decoding)."""


class MaskSizeError(InputError):
    """The mask and the image differ in size."""

    def __init__(
        self,
        message: str,
        *,
        mask_size: tuple[int, int],
        image_size: tuple[int, int],
        cli_message: str | None = None,
    ) -> None:
        super().__init__(message, cli_message=cli_message)
        self.mask_size = mask_size
        self.image_size = image_size


class OverwriteError(InputError):
    """A save would replace the input file."""


class OutputError(InputError):
    """A destination that cannot be written (missing permission, a file where a folder should be...)."""


# ------------------------------------------------------------------------------------------ data types
@dataclass(frozen=True)
class LoadedImage:
    """An image as the studio works on it, plus what is needed to write the result back like it.

    Args:
        rgb: H×W×3 uint8, C-contiguous, owned (never a view of the caller's data).
        alpha: H×W uint8 transparency of the source, or ``None``.
        exif: the source's EXIF block with Orientation reset to 1, or ``None``.
        icc_profile: the source's RGB ICC profile, or ``None``.
        source_mode: the Pillow mode (or ``array:<dtype>``) before conversion.
        source_name: a label for messages (the path, or ``<bytes>``, ``<array>``...).
        format: the file format Pillow identified (``PNG``, ``JPEG``...), ``None`` for arrays.
        source_path: the resolved path when loaded from a file (writers refuse to overwrite it).
        orientation: the EXIF orientation found in the source (1 when absent).
        orientation_applied: whether the pixels were turned/flipped to honour it.
        notes: what the loader changed that a user may want to know (dropped profile...).
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    exif: bytes | None
    icc_profile: bytes | None
    source_mode: str
    source_name: str
    format: str | None
    source_path: Path | None = None
    orientation: int = 1
    orientation_applied: bool = False
    notes: tuple[str, ...] = ()

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])


@dataclass(frozen=True)
class SavedImage:
    """Where and how an image was written, with notes on anything that could not be kept."""

    path: Path
    format: str
    notes: tuple[str, ...] = ()


# -------------------------------------------------------------------------------------------- limits
def max_pixels_limit(max_pixels: int | None = None) -> int:
    """The pixel limit in force: the argument, else ``$INPAINTSTUDIO_MAX_PIXELS``, else 60 MP."""
    if max_pixels is not None:
        if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels < 1:
            raise InputError(
                f"the pixel limit must be a positive whole number, got {max_pixels!r}",
                cli_message=f"--max-pixels must be a positive whole number of pixels, got {max_pixels!r}",
            )
        return int(max_pixels)
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    limit = _parse_pixel_count(raw)
    if limit is None:
        raise InputError(
            f"{MAX_PIXELS_ENV}={raw!r} is not a positive whole number of pixels "
            f"(e.g. {DEFAULT_MAX_PIXELS}); unset it for the default"
        )
    return limit


def _parse_pixel_count(raw: str) -> int | None:
    """A positive whole number from ``"60000000"``, ``"60_000_000"`` or ``"6e7"``; ``None`` otherwise."""
    try:
        return value if (value := int(raw)) >= 1 else None
    except ValueError:
        pass
    try:
        number = float(raw)
    except ValueError:
        return None
    if not math.isfinite(number) or number < 1 or number != int(number):
        return None
    return int(number)


def _check_pixel_count(width: int, height: int, limit: int, label: str) -> None:
    if width * height > limit:
        raise ImageTooLargeError(
            f"{label} is {width}×{height} = {width * height / 1e6:.1f} MP, above the limit of "
            f"{limit / 1e6:.1f} MP (raise it with max_pixels or {MAX_PIXELS_ENV})",
            cli_message=f"{label} is {width}×{height} = {width * height / 1e6:.1f} MP, above the limit of "
            f"{limit / 1e6:.1f} MP (raise it with --max-pixels or {MAX_PIXELS_ENV})",
        )


# ------------------------------------------------------------------------------------------- reading
def _source_name(src: object, name: str | None) -> str:
    """A name for messages: the given name, the path, the stream's name, or ``<bytes>``/``<array>``..."""
    if name:
        return name
    if isinstance(src, (str, os.PathLike)):
        return os.fspath(src)
    if isinstance(src, (bytes, bytearray, memoryview)):
        return "<bytes>"
    if isinstance(src, Image.Image):
        return getattr(src, "filename", "") or "<PIL image>"
    if isinstance(src, np.ndarray):
        return "<array>"
    stream_name = getattr(src, "name", None)
    return stream_name if isinstance(stream_name, str) else "<stream>"


def _quote(source_name: str) -> str:
    return source_name if source_name.startswith("<") else f"'{source_name}'"


def _allowed_formats() -> tuple[str, ...]:
    Image.init()
    return tuple(fmt for fmt in READ_FORMATS if fmt in Image.OPEN)


def _open_lazily(src: object, label: str) -> Image.Image:
    """Identify the file and read its header only; turn every failure into :class:`ImageReadError`."""
    if isinstance(src, (bytes, bytearray, memoryview)):
        stream: object = io.BytesIO(bytes(src))
    elif isinstance(src, (str, os.PathLike)):
        path = Path(src)
        try:
            path.stat()
        except OSError as error:
            raise ImageReadError(f"{label} cannot be read: {_reason(error)}") from None
        if not path.is_file():
            raise ImageReadError(f"{label} is not a file")
        stream = path
    elif hasattr(src, "read"):
        stream = src
    else:
        raise ImageReadError(f"cannot read an image from a {type(src).__name__}")
    try:
        return Image.open(stream, formats=_allowed_formats())  # type: ignore[arg-type]
    except Image.DecompressionBombError as error:
        raise ImageTooLargeError(f"{label} is too large to decode safely ({error})") from error
    except UnidentifiedImageError:
        names = ", ".join(_allowed_formats())
        raise ImageReadError(f"{label} is not an image InpaintStudio can read (supported: {names})") from None
    except OSError as error:
        raise ImageReadError(f"{label} could not be opened: {error}") from error
    except Exception as error:  # noqa: BLE001 - untrusted data (e.g. a zTXt bomb raises ValueError)
        raise ImageReadError(f"{label} could not be opened: the file is corrupt ({error})") from error


def _reason(error: OSError) -> str:
    """A short reason for an OS error: ``no such file``, ``too many levels of symbolic links``..."""
    if error.errno == errno.ENOENT:
        return "no such file"
    return (error.strerror or str(error)).lower()


def safe_resolve(path: str | os.PathLike) -> Path:
    """``Path.resolve`` that never raises: a symlink loop or an unreadable part gives the absolute path."""
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop on Python < 3.13
        return Path(os.path.abspath(path))


def _decode(image: Image.Image, label: str) -> None:
    try:
        image.load()
    except Image.DecompressionBombError as error:
        raise ImageTooLargeError(f"{label} is too large to decode safely ({error})") from error
    except Exception as error:  # noqa: BLE001 - untrusted data: every decoder failure is a bad file
        raise ImageReadError(f"{label} could not be decoded: the file is truncated or corrupt ({error})") from error


def _scale_16bit(values: np.ndarray) -> np.ndarray:
    """0…65535 → 0…255 with rounding (v · 255 / 65535)."""
    wide = np.clip(values, 0, 65535).astype(np.uint32)
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)


def _float_to_uint8(values: np.ndarray) -> np.ndarray:
    """Float data: [0, 1] when the maximum is ≤ 1, else Pillow's 0…255 scale; rounded and clipped."""
    values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=255.0, neginf=0.0)
    scale = 255.0 if values.size and values.max() <= 1.0 else 1.0
    return np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[:, :, None], 3, axis=2)


def _icc_colour_space(icc: bytes) -> bytes:
    return icc[16:20] if len(icc) >= 20 else b""


def _cmyk_to_rgb(image: Image.Image, icc: bytes | None, notes: list[str]) -> Image.Image:
    if icc:
        try:
            from PIL import ImageCms

            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            srgb = ImageCms.createProfile("sRGB")
            converted = ImageCms.profileToProfile(image, source, srgb, outputMode="RGB")
            if converted is not None:
                notes.append("CMYK converted to sRGB through its ICC profile")
                return converted
        except Exception as error:  # noqa: BLE001 - a broken profile falls back to the plain formula
            notes.append(f"CMYK ICC profile unusable ({error}); converted with the plain CMYK formula")
    return image.convert("RGB")


def _pil_to_rgb_alpha(image: Image.Image, notes: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Any Pillow mode → (RGB uint8 H×W×3, alpha uint8 H×W or None)."""
    mode = image.mode
    has_alpha = mode in ("LA", "La", "PA", "RGBA", "RGBa") or (
        mode in ("P", "L", "RGB") and image.has_transparency_data
    )
    if has_alpha:
        if mode in ("LA", "La"):
            grey_alpha = np.asarray(image.convert("LA"))
            return _grey_to_rgb(grey_alpha[:, :, 0]), grey_alpha[:, :, 1].copy()
        rgba = np.asarray(image.convert("RGBA"))
        return rgba[:, :, :3].copy(), rgba[:, :, 3].copy()
    if mode in ("1", "L"):
        return _grey_to_rgb(np.asarray(image.convert("L"))), None
    if mode.startswith("I;16"):
        return _grey_to_rgb(_scale_16bit(np.asarray(image).astype(np.uint16))), None
    if mode == "I":
        return _grey_to_rgb(_scale_16bit(np.asarray(image).astype(np.int64))), None
    if mode == "F":
        return _grey_to_rgb(_float_to_uint8(np.asarray(image))), None
    if mode == "CMYK":
        return np.asarray(_cmyk_to_rgb(image, image.info.get("icc_profile"), notes)), None
    return np.asarray(image.convert("RGB")), None


def _array_to_rgb_alpha(array: np.ndarray, label: str) -> tuple[np.ndarray, np.ndarray | None]:
    """A numpy image (H×W, H×W×1/2/3/4; bool, uint8, uint16, other ints in 0…255, float) → RGB + alpha."""
    if array.dtype == bool:
        values = array.astype(np.uint8) * 255
    elif array.dtype == np.uint8:
        values = array
    elif array.dtype == np.uint16:
        values = _scale_16bit(array)
    elif np.issubdtype(array.dtype, np.floating):
        values = _float_to_uint8(array)
    elif np.issubdtype(array.dtype, np.integer):
        if array.size and (array.min() < 0 or array.max() > 255):
            raise InputError(f"{label}: integer pixel values must lie in 0…255 (dtype {array.dtype})")
        values = array.astype(np.uint8)
    else:
        raise InputError(f"{label}: unsupported pixel type {array.dtype}")
    if values.ndim == 3 and values.shape[2] == 1:
        values = values[:, :, 0]
    if values.ndim == 2:
        return _grey_to_rgb(values), None
    if values.ndim == 3 and values.shape[2] == 2:
        return _grey_to_rgb(values[:, :, 0]), values[:, :, 1].copy()
    if values.ndim == 3 and values.shape[2] in (3, 4):
        alpha = values[:, :, 3].copy() if values.shape[2] == 4 else None
        return values[:, :, :3], alpha
    raise InputError(f"{label}: expected an H×W, H×W×3 or H×W×4 array, got shape {array.shape}")


def _owned(array: np.ndarray) -> np.ndarray:
    return np.array(array, dtype=np.uint8, order="C", copy=True)


def _exif_orientation(image: Image.Image, notes: list[str]) -> tuple[Image.Exif, int]:
    try:
        exif = image.getexif()
        orientation = exif.get(_ORIENTATION_TAG, 1)
    except Exception as error:  # noqa: BLE001 - untrusted metadata: a corrupt EXIF block is ignored
        notes.append(f"EXIF block unreadable and ignored ({error})")
        return Image.Exif(), 1
    return exif, int(orientation) if isinstance(orientation, int) and 1 <= orientation <= 8 else 1


def _exif_bytes_upright(exif: Image.Exif) -> bytes | None:
    """A serialised copy of ``exif`` with Orientation = 1 (the object itself is left untouched)."""
    if len(exif) == 0:
        return None
    upright = Image.Exif()
    try:
        upright.load(exif.tobytes())
    except Exception:  # noqa: BLE001 - EXIF that cannot be re-serialised is not kept
        return None
    if _ORIENTATION_TAG in upright:
        upright[_ORIENTATION_TAG] = 1
    return upright.tobytes()


def _loaded_from_pil(
    image: Image.Image, source_name: str, *, source_path: Path | None, file_format: str | None
) -> LoadedImage:
    notes: list[str] = []
    exif, orientation = _exif_orientation(image, notes)
    source_mode = image.mode
    icc = image.info.get("icc_profile") or None
    upright = ImageOps.exif_transpose(image) if orientation != 1 else image
    rgb, alpha = _pil_to_rgb_alpha(upright, notes)
    if icc is not None and _icc_colour_space(icc) != b"RGB ":
        if source_mode != "CMYK":  # the CMYK path has already said what it did with its profile
            notes.append(f"ICC profile for {_icc_colour_space(icc).decode('latin-1').strip()} data dropped")
        icc = None
    return LoadedImage(
        rgb=_owned(rgb),
        alpha=None if alpha is None else _owned(alpha),
        exif=_exif_bytes_upright(exif),
        icc_profile=icc,
        source_mode=source_mode,
        source_name=source_name,
        format=file_format,
        source_path=source_path,
        orientation=orientation,
        orientation_applied=orientation != 1,
        notes=tuple(notes),
    )


def load_image(src: ImageSource, *, max_pixels: int | None = None, name: str | None = None) -> LoadedImage:
    """Load an image safely as RGB uint8 (+ alpha, EXIF, ICC kept aside). See the module docstring.

    Args:
        src: a path, bytes, a binary file-like, a PIL image or a numpy array (H×W, H×W×1/2/3/4).
        max_pixels: pixel limit (default: ``$INPAINTSTUDIO_MAX_PIXELS``, else 60,000,000).
        name: label used in messages instead of the path.

    Raises:
        ImageTooLargeError: more pixels than the limit (checked on the header, before decoding).
        ImageReadError: missing, not an image, truncated or corrupt.
    """
    limit = max_pixels_limit(max_pixels)
    source_name = _source_name(src, name)
    label = _quote(source_name)
    if isinstance(src, np.ndarray):
        if src.ndim < 2:
            raise InputError(f"{label}: expected an H×W, H×W×3 or H×W×4 array, got shape {src.shape}")
        _check_pixel_count(int(src.shape[1]), int(src.shape[0]), limit, label)
        rgb, alpha = _array_to_rgb_alpha(src, label)
        return LoadedImage(
            rgb=_owned(rgb),
            alpha=None if alpha is None else _owned(alpha),
            exif=None,
            icc_profile=None,
            source_mode=f"array:{src.dtype}",
            source_name=source_name,
            format=None,
        )
    if isinstance(src, Image.Image):
        _check_pixel_count(src.width, src.height, limit, label)
        _decode(src, label)
        filename = getattr(src, "filename", "")
        origin = safe_resolve(filename) if isinstance(filename, str) and filename else None
        return _loaded_from_pil(src, source_name, source_path=origin, file_format=src.format)
    source_path = safe_resolve(src) if isinstance(src, (str, os.PathLike)) else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies
        image = _open_lazily(src, label)
    with image:
        _check_pixel_count(image.width, image.height, limit, label)
        _decode(image, label)
        return _loaded_from_pil(image, source_name, source_path=source_path, file_format=image.format)


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


# ------------------------------------------------------------------------------------------- writing
def _resolve_format(path: Path | None, format: str | None) -> str:
    by_suffix = _WRITE_FORMATS.get(path.suffix.lower()) if path is not None and path.suffix else None
    if format is not None:
        wanted = _FORMAT_ALIASES.get(format.upper().lstrip("."))
        if wanted is None:
            raise InputError(f"cannot write format {format!r} (supported: PNG, JPEG, WebP)")
        if path is not None and path.suffix and by_suffix != wanted:
            raise InputError(f"{path.name!r} does not end in a {wanted} suffix; rename it or drop format=")
        return wanted
    if path is None or not path.suffix:
        return "PNG"
    if by_suffix is None:
        raise OutputError(
            f"cannot write {printable_path(path.name)}: unknown suffix {_encodable(path.suffix)!r} "
            "(use .png, .jpg or .webp)"
        )
    return by_suffix


def write_format(path: str | os.PathLike, format: str | None = None) -> str:
    """The format a save to ``path`` would write (``PNG``, ``JPEG``, ``WEBP``), checked before any work.

    Raises:
        OutputError / InputError: an unknown suffix or a format that disagrees with it.
    """
    return _resolve_format(Path(path), format)


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InputError(f"an image to write must be H×W×3 uint8, got {rgb.dtype} of shape {rgb.shape}")
    return np.ascontiguousarray(rgb)


def _check_alpha(alpha: np.ndarray | None, rgb: np.ndarray) -> np.ndarray | None:
    if alpha is None:
        return None
    alpha = np.asarray(alpha)
    if alpha.dtype == bool:
        alpha = alpha.astype(np.uint8) * 255
    if alpha.dtype != np.uint8 or alpha.shape != rgb.shape[:2]:
        raise InputError(
            f"alpha must be uint8 of the image's size {rgb.shape[1]}×{rgb.shape[0]}, "
            f"got {alpha.dtype} of shape {alpha.shape}"
        )
    return np.ascontiguousarray(alpha)


def _upright_exif(exif: bytes | None, notes: list[str]) -> bytes | None:
    """The EXIF block with Orientation set to 1 (the pixels written are already upright)."""
    if not exif:
        return None
    parsed = Image.Exif()
    try:
        parsed.load(exif)
    except Exception as error:  # noqa: BLE001 - unreadable EXIF is dropped, not fatal
        notes.append(f"EXIF block unreadable and dropped ({error})")
        return None
    return _exif_bytes_upright(parsed)


def _encodable(text: str) -> str:
    """``text`` with lone surrogates (undecodable file-name bytes) written as escapes, so it encodes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _png_text(metadata: dict[str, str]) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    for key, value in metadata.items():
        if not (1 <= len(key) <= 79) or key != key.strip() or not key.isprintable():
            raise InputError(f"PNG metadata key {key!r} must be 1-79 printable characters without edge spaces")
        try:
            key.encode("latin-1")
        except UnicodeEncodeError:
            raise InputError(f"PNG metadata key {key!r} must be Latin-1") from None
        info.add_text(key, _encodable(str(value)))  # Pillow switches to iTXt for non-Latin-1 values
    return info


def encode_image(
    rgb: np.ndarray,
    format: str = "PNG",
    *,
    alpha: np.ndarray | None = None,
    exif: bytes | None = None,
    icc_profile: bytes | None = None,
    quality: int = 95,
    metadata: dict[str, str] | None = None,
) -> tuple[bytes, tuple[str, ...]]:
    """Encode an RGB uint8 image as PNG, JPEG or WebP; returns (file bytes, notes on what was dropped)."""
    fmt = _resolve_format(None, format)
    rgb = _check_rgb(rgb)
    alpha = _check_alpha(alpha, rgb)
    if not 1 <= int(quality) <= 100:
        raise InputError(f"quality must lie in 1…100, got {quality}")
    notes: list[str] = []
    options: dict[str, object] = {}
    exif_bytes = _upright_exif(exif, notes)
    if exif_bytes:
        options["exif"] = exif_bytes
    if icc_profile:
        options["icc_profile"] = icc_profile
    if fmt == "JPEG" and alpha is not None:
        notes.append("JPEG has no alpha channel: transparency dropped (save as PNG or WebP to keep it)")
        alpha = None
    if fmt == "JPEG" or (fmt == "WEBP" and int(quality) < 100):
        notes.append(LOSSY_FORMAT_NOTE.format(format="JPEG" if fmt == "JPEG" else f"WebP at quality {quality}"))
    pixels = np.dstack([rgb, alpha]) if alpha is not None else rgb
    image = Image.fromarray(pixels, "RGBA" if alpha is not None else "RGB")
    if fmt == "PNG":
        if metadata:
            options["pnginfo"] = _png_text(metadata)
    elif fmt == "JPEG":
        options.update(quality=int(quality), subsampling=0)
        if metadata:
            text = {key: _encodable(str(value)) for key, value in metadata.items()}
            options["comment"] = json.dumps(text, ensure_ascii=False).encode("utf-8")
    else:
        if not features.check("webp"):
            raise InputError("this Pillow build cannot write WebP; save as PNG or JPEG")
        options.update(quality=int(quality), lossless=int(quality) == 100)
        if metadata:
            notes.append("WebP has no text metadata field: metadata not stored")
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue(), tuple(notes)


def encode_png(
    rgb: np.ndarray,
    *,
    alpha: np.ndarray | None = None,
    exif: bytes | None = None,
    icc_profile: bytes | None = None,
    metadata: dict[str, str] | None = None,
) -> bytes:
    """Lossless PNG bytes of an RGB uint8 image (alpha, EXIF with Orientation 1, ICC, text chunks)."""
    data, _ = encode_image(rgb, "PNG", alpha=alpha, exif=exif, icc_profile=icc_profile, metadata=metadata)
    return data


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two spellings name one file: symlinks, ``./``, ``..``, hard links and letter case on a
    case-insensitive file system all compare equal (by device and inode when both exist)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return safe_resolve(a) == safe_resolve(b)


def describe_os_error(path: str | os.PathLike, error: OSError) -> str:
    """One line for a failed write: the path (printable even when its bytes are not UTF-8) and why."""
    reasons = {
        errno.ENAMETOOLONG: "the file name is too long",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
        errno.EISDIR: "it is a folder",
        errno.EACCES: "permission denied",
        errno.EPERM: "operation not permitted",
        errno.EROFS: "the file system is read-only",
        errno.ENOSPC: "no space left on the device",
        errno.ENOENT: "the folder does not exist",
        errno.EEXIST: "a part of the path is a file, not a folder",
        errno.ELOOP: "too many levels of symbolic links",
    }
    reason = reasons.get(error.errno or -1) or (error.strerror or str(error)).lower()
    return f"cannot write {printable_path(path)}: {reason}"


def printable_path(path: str | os.PathLike) -> str:
    """``'path'`` with undecodable bytes shown as escapes, so that printing it never fails."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    return "'" + text.encode("utf-8", "backslashreplace").decode("utf-8") + "'"


def write_bytes_atomically(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename, so that a
    reader never sees half a file and a failure leaves any earlier file as it was.

    Raises:
        OutputError: the folder cannot be created or written, the name is too long, etc. (one line).
    """
    path = Path(path)
    temporary = path.with_name(f".inpaintstudio-{uuid.uuid4().hex[:12]}.tmp")  # short: long names still fit
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if os.path.isdir(path):
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        with open(temporary, "xb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except OSError as error:
        raise OutputError(describe_os_error(path, error)) from None
    finally:
        try:
            temporary.unlink(missing_ok=True)
        except OSError:
            pass



def save_image(
    path: str | os.PathLike,
    rgb: np.ndarray,
    *,
    alpha: np.ndarray | None = None,
    exif: bytes | None = None,
    icc_profile: bytes | None = None,
    format: str | None = None,
    quality: int = 95,
    metadata: dict[str, str] | None = None,
    source_path: str | os.PathLike | None = None,
) -> SavedImage:
    """Write an RGB uint8 image; PNG unless the suffix or ``format`` asks for JPEG or WebP.

    Args:
        path: destination; a missing suffix means PNG; missing folders are created.
        rgb: H×W×3 uint8. alpha: H×W uint8 (or bool) to put back (dropped for JPEG, with a note).
        exif: EXIF block to keep (its Orientation is written as 1). icc_profile: ICC profile to keep.
        format: ``"png"``, ``"jpeg"``/``"jpg"`` or ``"webp"``; must agree with the suffix if both are given.
        quality: JPEG/WebP quality 1…100 (WebP 100 = lossless).
        metadata: text key → value (PNG text chunks; JPEG comment as JSON; not storable in WebP).
        source_path: the input file; writing onto it is refused with :class:`OverwriteError`.
    """
    destination = Path(path)
    fmt = _resolve_format(destination, format)
    if source_path is not None and same_file(destination, Path(source_path)):
        raise OverwriteError(f"refusing to overwrite the input file '{source_path}': choose another output path")
    if os.path.exists(destination) and not os.path.isfile(destination):  # never raises (long names...)
        raise OutputError(f"cannot write {printable_path(destination)}: it exists and is not a file")
    data, notes = encode_image(
        rgb, fmt, alpha=alpha, exif=exif, icc_profile=icc_profile, quality=quality, metadata=metadata
    )
    write_bytes_atomically(destination, data)
    return SavedImage(path=destination, format=fmt, notes=notes)


def save_like(
    path: str | os.PathLike,
    result_rgb: np.ndarray,
    loaded: LoadedImage,
    *,
    metadata: dict[str, str] | None = None,
    format: str | None = None,
    quality: int = 95,
) -> SavedImage:
    """Write a result with the original's alpha, EXIF (Orientation 1) and ICC put back; never onto the source."""
    rgb = _check_rgb(result_rgb)
    alpha = loaded.alpha
    if alpha is not None and alpha.shape != rgb.shape[:2]:
        raise InputError(
            f"the result is {rgb.shape[1]}×{rgb.shape[0]} but the original '{loaded.source_name}' is "
            f"{loaded.size[0]}×{loaded.size[1]}: its alpha cannot be put back"
        )
    return save_image(
        path,
        rgb,
        alpha=alpha,
        exif=loaded.exif,
        icc_profile=loaded.icc_profile,
        format=format,
        quality=quality,
        metadata=metadata,
        source_path=loaded.source_path,
    )
