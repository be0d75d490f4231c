"""Safe image and mask input/output for every front end (CLI, UI, Python API).

The package: ``common`` (limits, format tables, errors, image records), ``read``, ``masks`` and ``write``; every
public name is importable from ``inpaintstudio.io``.

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

The thesis: S. Chen, PhD thesis, Durham University, 2025 (INCLG, HINT, M×T and SEM-Net are its chapters 3–5).
"""

from __future__ import annotations

from inpaintstudio.io.common import (
    DEFAULT_MAX_PIXELS,
    EMPTY_MASK_NOTICE,
    IMAGE_SUFFIXES,
    LOSSY_FORMAT_NOTE,
    MAX_PIXELS_ENV,
    READ_FORMATS,
    ImageReadError,
    ImageSource,
    ImageTooLargeError,
    InputError,
    LoadedImage,
    MaskSizeError,
    OutputError,
    OverwriteError,
    SavedImage,
)
from inpaintstudio.io.masks import (
    check_mask,
    load_mask,
    looks_like_mask,
    looks_like_photo,
    mask_from_array,
    mask_from_loaded,
)
from inpaintstudio.io.read import (
    load_image,
    max_pixels_limit,
    safe_resolve,
)
from inpaintstudio.io.write import (
    describe_os_error,
    encode_image,
    encode_png,
    printable_path,
    same_file,
    save_image,
    save_like,
    write_bytes_atomically,
    write_format,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "EMPTY_MASK_NOTICE",
    "IMAGE_SUFFIXES",
    "LOSSY_FORMAT_NOTE",
    "MAX_PIXELS_ENV",
    "READ_FORMATS",
    "ImageReadError",
    "ImageSource",
    "ImageTooLargeError",
    "InputError",
    "LoadedImage",
    "MaskSizeError",
    "OutputError",
    "OverwriteError",
    "SavedImage",
    "load_image",
    "max_pixels_limit",
    "safe_resolve",
    "check_mask",
    "load_mask",
    "looks_like_mask",
    "looks_like_photo",
    "mask_from_array",
    "mask_from_loaded",
    "describe_os_error",
    "encode_image",
    "encode_png",
    "printable_path",
    "same_file",
    "save_image",
    "save_like",
    "write_bytes_atomically",
    "write_format",
]
