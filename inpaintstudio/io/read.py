"""Reading photos: any source, the pixel limit checked before decoding, EXIF orientation applied once, every
mode to RGB uint8 plus alpha (the rules are in the package docstring)."""

from __future__ import annotations

import errno
import io
import math
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from inpaintstudio.io.common import (
    _ORIENTATION_TAG,
    DEFAULT_MAX_PIXELS,
    MAX_PIXELS_ENV,
    READ_FORMATS,
    ImageReadError,
    ImageSource,
    ImageTooLargeError,
    InputError,
    LoadedImage,
)


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
