"""Writing results: PNG by default (lossless, metadata kept), JPEG and WebP on request, atomic renames, and the
path helpers of the front ends' messages."""

from __future__ import annotations

import errno
import io
import json
import os
import uuid
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin, features

from inpaintstudio.io.common import (
    _FORMAT_ALIASES,
    _WRITE_FORMATS,
    LOSSY_FORMAT_NOTE,
    InputError,
    LoadedImage,
    OutputError,
    OverwriteError,
    SavedImage,
)
from inpaintstudio.io.read import _exif_bytes_upright, safe_resolve


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
