"""What reading and writing share: the limits and format tables, the errors every front end reports, and
the image records."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from inpaintstudio.errors import BadInputError

DEFAULT_MAX_PIXELS = 60_000_000
MAX_PIXELS_ENV = "INPAINTSTUDIO_MAX_PIXELS"
READ_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "BMP", "DIB", "GIF", "TIFF", "PPM", "TGA", "AVIF")
#: file suffixes the folder commands (batch inpaint, training data) treat as images
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
EMPTY_MASK_NOTICE = "the mask is empty: the image is returned unchanged"
LOSSY_FORMAT_NOTE = (
    "{format} is lossy: pixels outside the mask will not stay identical to the input (write .png to keep them)"
)

_ORIENTATION_TAG = 0x0112
_WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".jfif": "JPEG", ".webp": "WEBP"}
_FORMAT_ALIASES = {"PNG": "PNG", "JPEG": "JPEG", "JPG": "JPEG", "WEBP": "WEBP"}

ImageSource = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO | Image.Image | np.ndarray


# ----------------------------------------------------------------------------------------------- errors
class InputError(BadInputError, ValueError):
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
