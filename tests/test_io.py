"""inpaintstudio.io: safe loading (every source, every mode, EXIF once, limits, bad files), masks, saving."""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms

from inpaintstudio import io as sio


# ------------------------------------------------------------------------------------------ helpers
def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _random_rgb(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _smooth_rgb(height: int = 48, width: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.dstack([x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)]).astype(np.uint8)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width``×``height`` RGB pixels but whose data is a few bytes."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + _png_chunk(b"IEND", b"")
    )


def _exif(**tags: object) -> Image.Exif:
    exif = Image.Exif()
    for key, value in tags.items():
        exif[{"orientation": 0x0112, "make": 0x010F}[key]] = value
    return exif


# ------------------------------------------------------------------------------------------ sources
def test_every_source_kind_gives_the_same_owned_rgb(tmp_path: Path) -> None:
    rgb = _random_rgb()
    path = _write(tmp_path, "photo.png", _encode(Image.fromarray(rgb), "PNG"))
    loaded = [
        sio.load_image(path),
        sio.load_image(str(path)),
        sio.load_image(path.read_bytes()),
        sio.load_image(io.BytesIO(path.read_bytes())),
        sio.load_image(Image.open(path)),
        sio.load_image(rgb),
    ]
    for item in loaded:
        assert item.rgb.dtype == np.uint8 and item.rgb.shape == (48, 64, 3)
        assert item.rgb.flags.c_contiguous and item.rgb.flags.writeable
        np.testing.assert_array_equal(item.rgb, rgb)
        assert item.alpha is None and item.size == (64, 48)
    assert loaded[0].source_path == path.resolve() and loaded[0].format == "PNG"
    assert loaded[0].source_name == str(path)
    assert loaded[2].source_name == "<bytes>" and loaded[5].source_name == "<array>"
    assert not np.shares_memory(loaded[5].rgb, rgb)
    loaded[5].rgb[:] = 0
    assert rgb.any(), "the caller's array must never be modified"


def test_array_inputs_of_every_kind() -> None:
    grey16 = np.array([[0, 257 * 100, 65535, 1000]], np.uint16)
    np.testing.assert_array_equal(sio.load_image(grey16).rgb[0, :, 0], [0, 100, 255, 4])
    floats = np.array([[0.0, 10.4, 200.6, 300.0]], np.float32)
    np.testing.assert_array_equal(sio.load_image(floats).rgb[0, :, 1], [0, 10, 201, 255])  # max > 1: 0…255 scale
    unit = np.array([[0.0, 0.5, 1.0, 0.1]], np.float32)
    np.testing.assert_array_equal(sio.load_image(unit).rgb[0, :, 1], [0, 128, 255, 26])
    np.testing.assert_array_equal(sio.load_image(np.array([[True, False]])).rgb[0, :, 2], [255, 0])
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., 3] = 7
    loaded = sio.load_image(rgba)
    assert loaded.alpha is not None and loaded.alpha.shape == (2, 3) and (loaded.alpha == 7).all()
    with pytest.raises(sio.InputError, match="0…255"):
        sio.load_image(np.full((2, 2), 300, np.int32))
    with pytest.raises(sio.InputError, match="shape"):
        sio.load_image(np.zeros((2, 2, 5), np.uint8))


# -------------------------------------------------------------------------------------------- modes
def test_mode_L_and_1_bit() -> None:
    grey = np.arange(0, 256, dtype=np.uint8).reshape(16, 16)
    loaded = sio.load_image(_encode(Image.fromarray(grey, "L"), "PNG"))
    assert loaded.source_mode == "L"
    np.testing.assert_array_equal(loaded.rgb, np.repeat(grey[:, :, None], 3, axis=2))
    bits = Image.fromarray(grey > 100).convert("1")
    loaded = sio.load_image(_encode(bits, "PNG"))
    assert loaded.source_mode == "1"
    np.testing.assert_array_equal(loaded.rgb[:, :, 0], np.where(grey > 100, 255, 0))


def test_mode_LA_keeps_alpha() -> None:
    grey = np.full((4, 5), 90, np.uint8)
    alpha = np.arange(20, dtype=np.uint8).reshape(4, 5) * 12
    loaded = sio.load_image(_encode(Image.fromarray(np.dstack([grey, alpha]), "LA"), "PNG"))
    assert loaded.source_mode == "LA"
    assert (loaded.rgb == 90).all()
    np.testing.assert_array_equal(loaded.alpha, alpha)


def test_mode_P_with_transparency() -> None:
    indices = np.array([[0, 1], [2, 1]], np.uint8)
    image = Image.fromarray(indices, "P")
    image.putpalette([10, 20, 30, 200, 100, 50, 0, 255, 0] + [0] * (253 * 3))
    loaded = sio.load_image(_encode(image, "PNG", transparency=1))
    assert loaded.source_mode == "P"
    np.testing.assert_array_equal(loaded.alpha, [[255, 0], [255, 0]])
    np.testing.assert_array_equal(loaded.rgb[0, 0], [10, 20, 30])
    np.testing.assert_array_equal(loaded.rgb[1, 0], [0, 255, 0])
    opaque = sio.load_image(_encode(image, "PNG"))
    assert opaque.alpha is None
    np.testing.assert_array_equal(opaque.rgb[0, 1], [200, 100, 50])


def test_mode_RGBA_splits_alpha() -> None:
    rgba = np.dstack([_random_rgb(8, 9), np.arange(72, dtype=np.uint8).reshape(8, 9) * 3])
    loaded = sio.load_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    np.testing.assert_array_equal(loaded.rgb, rgba[:, :, :3])
    np.testing.assert_array_equal(loaded.alpha, rgba[:, :, 3])


def test_mode_CMYK() -> None:
    cmyk = Image.new("CMYK", (3, 2), (255, 0, 0, 0))
    cmyk.putpixel((1, 0), (0, 0, 0, 255))
    cmyk.putpixel((2, 0), (0, 0, 0, 0))
    loaded = sio.load_image(_encode(cmyk, "JPEG", quality=100))
    assert loaded.source_mode == "CMYK" and loaded.format == "JPEG"
    np.testing.assert_allclose(loaded.rgb[1, 0].astype(int), [0, 255, 255], atol=6)
    np.testing.assert_allclose(loaded.rgb[0, 1].astype(int), [0, 0, 0], atol=6)
    np.testing.assert_allclose(loaded.rgb[0, 2].astype(int), [255, 255, 255], atol=6)


def test_16_bit_grey_png_is_scaled_not_clipped() -> None:
    values = np.array([[0, 1000, 257 * 100, 40000, 65535]], np.uint16)
    data = _encode(Image.fromarray(values), "PNG")
    assert data[24] == 16, "the fixture must be a 16-bit PNG"
    loaded = sio.load_image(data)
    assert loaded.source_mode.startswith("I")
    expected = np.round(values.astype(float) * 255 / 65535).astype(np.uint8)
    np.testing.assert_array_equal(loaded.rgb[0, :, 0], expected[0])  # [0, 4, 100, 156, 255]


def test_16_bit_rgb_png_is_scaled_not_clipped() -> None:
    ramp = np.array([[0, 300, 25700, 32896, 65535]], np.uint16)
    rgb16 = np.dstack([ramp, ramp // 2, 65535 - ramp])
    ok, data = cv2.imencode(".png", rgb16[:, :, ::-1].copy())
    assert ok
    loaded = sio.load_image(data.tobytes())
    np.testing.assert_allclose(loaded.rgb[0, :, 0].astype(int), [0, 1, 100, 128, 255], atol=1)
    np.testing.assert_allclose(loaded.rgb[0, :, 2].astype(int), [255, 254, 155, 127, 0], atol=1)


def test_modes_I_and_F() -> None:
    wide = Image.fromarray(np.array([[0, 65535, 70000]], np.int32), "I")
    np.testing.assert_array_equal(sio.load_image(wide).rgb[0, :, 0], [0, 255, 255])
    unit = Image.fromarray(np.array([[0.0, 0.25, 1.0]], np.float32), "F")
    np.testing.assert_array_equal(sio.load_image(unit).rgb[0, :, 0], [0, 64, 255])


# ------------------------------------------------------------------------------------- exif / icc
def _oriented_jpeg(orientation: int) -> tuple[bytes, np.ndarray]:
    """A 64×32 (W×H) JPEG whose top-left quarter is red, tagged with ``orientation``."""
    rgb = np.zeros((32, 64, 3), np.uint8)
    rgb[:16, :32] = (255, 0, 0)
    exif = _exif(orientation=orientation, make="TestCam")
    return _encode(Image.fromarray(rgb), "JPEG", quality=95, exif=exif.tobytes()), rgb


def test_exif_orientation_applied_once_and_reset_on_save(tmp_path: Path) -> None:
    data, rgb = _oriented_jpeg(6)
    loaded = sio.load_image(data)
    assert loaded.orientation == 6 and loaded.orientation_applied
    assert loaded.rgb.shape == (64, 32, 3)  # turned 90° clockwise
    upright = np.rot90(rgb, k=-1)
    assert np.abs(loaded.rgb.astype(int) - upright).mean() < 3
    assert loaded.rgb[5, 28, 0] > 200 and loaded.rgb[60, 5, 0] < 50  # red quarter now top-right
    exif = Image.Exif()
    exif.load(loaded.exif)
    assert exif[0x0112] == 1 and exif[0x010F] == "TestCam"

    for name in ("result.png", "result.jpg", "result.webp"):
        sio.save_like(tmp_path / name, loaded.rgb, loaded)
        again = sio.load_image(tmp_path / name)
        assert again.rgb.shape == (64, 32, 3), f"{name} was turned twice"
        assert again.orientation == 1 and not again.orientation_applied
        assert Image.open(tmp_path / name).getexif()[0x010F] == "TestCam"
    raw_exif = _exif(orientation=8).tobytes()
    sio.save_image(tmp_path / "raw.png", loaded.rgb, exif=raw_exif)
    assert Image.open(tmp_path / "raw.png").getexif()[0x0112] == 1


def test_exif_orientation_applied_to_a_pil_image_without_touching_it() -> None:
    data, _ = _oriented_jpeg(6)
    image = Image.open(io.BytesIO(data))
    loaded = sio.load_image(image)
    assert loaded.rgb.shape == (64, 32, 3)
    assert image.size == (64, 32) and image.getexif()[0x0112] == 6


def test_icc_exif_and_text_kept_in_png(tmp_path: Path) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    rgb = _random_rgb()
    source = _write(
        tmp_path, "in.png", _encode(Image.fromarray(rgb), "PNG", icc_profile=icc, exif=_exif(make="Cam").tobytes())
    )
    loaded = sio.load_image(source)
    assert loaded.icc_profile == icc
    saved = sio.save_like(tmp_path / "out.png", loaded.rgb, loaded, metadata={"model": "hint", "note": "trou ✓"})
    assert saved.format == "PNG" and saved.notes == ()
    reopened = Image.open(tmp_path / "out.png")
    assert reopened.info["icc_profile"] == icc
    assert reopened.getexif()[0x010F] == "Cam"
    assert reopened.text == {"model": "hint", "note": "trou ✓"}
    np.testing.assert_array_equal(np.asarray(reopened), rgb)


def test_non_rgb_icc_profile_is_dropped_with_a_note() -> None:
    lab_icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    assert lab_icc[16:20] != b"RGB "
    loaded = sio.load_image(_encode(Image.new("L", (4, 4), 9), "PNG", icc_profile=lab_icc))
    assert loaded.icc_profile is None and any("ICC" in note for note in loaded.notes)


# --------------------------------------------------------------------------------------------- save
def test_png_is_lossless_and_alpha_round_trips(tmp_path: Path) -> None:
    rgba = np.dstack([_random_rgb(), np.random.default_rng(1).integers(0, 256, (48, 64), dtype=np.uint8)])
    source = _write(tmp_path, "in.png", _encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    loaded = sio.load_image(source)
    sio.save_like(tmp_path / "out.png", loaded.rgb, loaded)
    again = sio.load_image(tmp_path / "out.png")
    np.testing.assert_array_equal(again.rgb, rgba[:, :, :3])
    np.testing.assert_array_equal(again.alpha, rgba[:, :, 3])
    decoded = np.asarray(Image.open(io.BytesIO(sio.encode_png(loaded.rgb, alpha=loaded.alpha))))
    np.testing.assert_array_equal(decoded, rgba)


def test_jpeg_and_webp_on_request(tmp_path: Path) -> None:
    rgb = _smooth_rgb()
    alpha = np.full((48, 64), 128, np.uint8)
    jpeg = sio.save_image(tmp_path / "out.JPG", rgb, alpha=alpha, metadata={"model": "mxt"})
    assert jpeg.format == "JPEG" and any("alpha" in note for note in jpeg.notes)
    assert (tmp_path / "out.JPG").read_bytes()[:2] == b"\xff\xd8"
    reopened = Image.open(tmp_path / "out.JPG")
    assert reopened.mode == "RGB" and json.loads(reopened.info["comment"]) == {"model": "mxt"}
    assert np.abs(np.asarray(reopened).astype(int) - rgb).mean() < 2

    webp = sio.save_image(tmp_path / "out", rgb, alpha=alpha, format="webp", quality=100)
    assert webp.format == "WEBP" and (tmp_path / "out").read_bytes()[8:12] == b"WEBP"
    lossless = sio.load_image(tmp_path / "out")
    np.testing.assert_array_equal(lossless.rgb, rgb)
    np.testing.assert_array_equal(lossless.alpha, alpha)
    assert sio.save_image(tmp_path / "plain", rgb).format == "PNG"
    with pytest.raises(sio.InputError, match="suffix"):
        sio.save_image(tmp_path / "a.png", rgb, format="jpeg")
    with pytest.raises(sio.InputError, match="unknown suffix"):
        sio.save_image(tmp_path / "a.tif", rgb)
    with pytest.raises(sio.InputError, match="uint8"):
        sio.save_image(tmp_path / "a.png", rgb.astype(np.float32))


def test_input_file_is_never_modified(tmp_path: Path) -> None:
    source = _write(tmp_path, "photo.png", _encode(Image.fromarray(_random_rgb()), "PNG"))
    before = _sha256(source)
    loaded = sio.load_image(source)
    loaded.rgb[:8] = 0
    with pytest.raises(sio.OverwriteError, match="photo.png"):
        sio.save_like(source, loaded.rgb, loaded)
    with pytest.raises(sio.OverwriteError):
        sio.save_image(tmp_path / "sub" / ".." / "photo.png", loaded.rgb, source_path=source)
    with pytest.raises(sio.OverwriteError):
        sio.save_like(source, loaded.rgb, sio.load_image(Image.open(source)))
    sio.save_like(tmp_path / "edited.png", loaded.rgb, loaded)
    assert _sha256(source) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edited.png", "photo.png"]  # no temporary left


# ------------------------------------------------------------------------------------- bad inputs
def test_truncated_png_and_jpeg(tmp_path: Path) -> None:
    png = _encode(Image.fromarray(_random_rgb()), "PNG")
    jpeg = _encode(Image.fromarray(_random_rgb()), "JPEG")
    for name, data in (("cut.png", png[: len(png) // 2]), ("cut.jpg", jpeg[: len(jpeg) // 2])):
        path = _write(tmp_path, name, data)
        with pytest.raises(sio.ImageReadError, match=f"{name}.*truncated or corrupt"):
            sio.load_image(path)


@pytest.mark.parametrize(
    "name, data",
    [("noise.png", bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8))), ("notes.txt", b"hi\n")],
)
def test_non_images_are_refused(tmp_path: Path, name: str, data: bytes) -> None:
    path = _write(tmp_path, name, data)
    with pytest.raises(sio.ImageReadError, match=f"{name}.* not an image"):
        sio.load_image(path)


def test_missing_file_and_error_hierarchy(tmp_path: Path) -> None:
    with pytest.raises(sio.ImageReadError, match="nothere.png.*no such file"):
        sio.load_image(tmp_path / "nothere.png")
    with pytest.raises(sio.ImageReadError, match="not a file"):
        sio.load_image(tmp_path)
    for error in (sio.ImageReadError, sio.ImageTooLargeError, sio.MaskSizeError, sio.OverwriteError):
        assert issubclass(error, sio.InputError) and issubclass(error, ValueError)


def test_pixel_limit_is_checked_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = _write(tmp_path, "small.png", _encode(Image.fromarray(_random_rgb(2, 2)), "PNG"))
    with pytest.raises(sio.ImageTooLargeError, match="small.png.*2×2"):
        sio.load_image(small, max_pixels=1)
    assert sio.load_image(small, max_pixels=4).size == (2, 2)
    # the header claims 3×3 but the data is garbage: a limit error (not a read error) proves nothing was decoded
    with pytest.raises(sio.ImageTooLargeError):
        sio.load_image(_png_claiming(3, 3), max_pixels=1)
    with pytest.raises(sio.ImageReadError):
        sio.load_image(_png_claiming(3, 3))
    monkeypatch.setenv(sio.MAX_PIXELS_ENV, "3")
    with pytest.raises(sio.ImageTooLargeError, match=sio.MAX_PIXELS_ENV):
        sio.load_image(small)
    assert sio.load_image(small, max_pixels=10).size == (2, 2)
    monkeypatch.setenv(sio.MAX_PIXELS_ENV, "lots")
    with pytest.raises(sio.InputError, match="not a positive whole number"):
        sio.load_image(small)


def test_decompression_bomb_headers() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning must not escape
        with pytest.raises(sio.ImageTooLargeError, match="10000×10000"):
            sio.load_image(_png_claiming(10_000, 10_000))  # 100 MP: above our 60 MP, below Pillow's error
        with pytest.raises(sio.ImageTooLargeError, match="too large to decode safely"):
            sio.load_image(_png_claiming(100_000, 100_000), max_pixels=10**12)  # Pillow's own guard


# -------------------------------------------------------------------------------------------- masks
def test_mask_luminance_rule_and_threshold(tmp_path: Path) -> None:
    grey = np.array([[0, 127, 128, 255]], np.uint8)
    path = _write(tmp_path, "mask.png", _encode(Image.fromarray(grey), "PNG"))
    np.testing.assert_array_equal(sio.load_mask(path, (4, 1)), [[False, False, True, True]])
    np.testing.assert_array_equal(sio.load_mask(path, threshold=0), [[False, True, True, True]])
    colour = np.zeros((1, 2, 3), np.uint8)
    colour[0, 1] = (255, 255, 255)
    np.testing.assert_array_equal(sio.load_mask(_encode(Image.fromarray(colour), "PNG")), [[False, True]])


def test_mask_alpha_rule() -> None:
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3] = 255  # transparent white background must NOT count as hole
    rgba[0, 0, 3] = 255
    rgba[1, 1, 3] = 200
    mask = sio.load_mask(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    np.testing.assert_array_equal(mask, [[True, False], [False, True]])
    opaque = rgba.copy()
    opaque[..., 3] = 255
    opaque[0, 0, :3] = 0
    np.testing.assert_array_equal(sio.load_mask(_encode(Image.fromarray(opaque, "RGBA"), "PNG")), [[0, 1], [1, 1]])


def test_mask_of_another_size(tmp_path: Path) -> None:
    small = np.zeros((2, 3), np.uint8)
    small[0, 1] = 255
    path = _write(tmp_path, "m.png", _encode(Image.fromarray(small), "PNG"))
    with pytest.raises(sio.MaskSizeError, match=r"'.*m\.png' is 3×2 pixels but the image is 6×4") as caught:
        sio.load_mask(path, (6, 4))
    assert caught.value.mask_size == (3, 2) and caught.value.image_size == (6, 4)
    resized = sio.load_mask(path, (6, 4), resize=True)
    np.testing.assert_array_equal(resized, np.repeat(np.repeat(small > 0, 2, axis=0), 2, axis=1))
    odd = sio.load_mask(path, (7, 5), resize=True)  # nearest by pixel centre: source = floor((i + 0.5) · scale)
    rows, cols = ((np.arange(5) + 0.5) * 2 / 5).astype(int), ((np.arange(7) + 0.5) * 3 / 7).astype(int)
    np.testing.assert_array_equal(odd, (small > 0)[rows][:, cols])
    with pytest.raises(sio.MaskSizeError, match="3×2.*6×4"):
        sio.mask_from_array(small, (6, 4))


def test_mask_exif_orientation_applied() -> None:
    grey = np.zeros((2, 4), np.uint8)
    grey[0, 0] = 255
    mask = sio.load_mask(_encode(Image.fromarray(grey), "PNG", exif=_exif(orientation=6).tobytes()), (2, 4))
    assert mask.shape == (4, 2) and mask[0, 1] and mask.sum() == 1


def test_mask_from_array_kinds() -> None:
    expected = np.array([[False, True], [True, False]])
    for array in (expected, expected.astype(np.uint8), expected.astype(np.int64), expected.astype(np.uint8) * 255):
        np.testing.assert_array_equal(sio.mask_from_array(array), expected)
    np.testing.assert_array_equal(sio.mask_from_array(expected.astype(np.float32)), expected)
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 3] = expected * 255
    np.testing.assert_array_equal(sio.mask_from_array(rgba), expected)
    np.testing.assert_array_equal(sio.load_mask(expected.astype(np.uint8) * 255, (2, 2)), expected)


def test_empty_mask_notice() -> None:
    assert sio.check_mask(np.zeros((4, 4), bool)) == "the mask is empty: the image is returned unchanged"
    assert sio.check_mask(sio.mask_from_array(np.eye(4))) is None


# ---------------------------------------------------------------------------- bad input, never a crash
def _png_with_chunk(kind: bytes, payload: bytes) -> bytes:
    """A valid 8×8 PNG with one extra chunk right after IHDR."""
    plain = _encode(Image.fromarray(_smooth_rgb(8, 8)), "PNG")
    after_ihdr = 8 + 8 + 13 + 4
    return plain[:after_ihdr] + _png_chunk(kind, payload) + plain[after_ihdr:]


def test_corrupt_exif_is_ignored_with_a_note(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad_exif.png", _png_with_chunk(b"eXIf", b"garbage-not-tiff"))
    loaded = sio.load_image(path)
    assert loaded.size == (8, 8) and loaded.exif is None and loaded.orientation == 1
    assert any("EXIF block unreadable and ignored" in note for note in loaded.notes)
    np.testing.assert_array_equal(loaded.rgb, _smooth_rgb(8, 8))
    out = sio.save_like(tmp_path / "out.png", loaded.rgb, loaded)
    assert "exif" not in Image.open(out.path).info


def test_ztxt_bomb_is_a_read_error(tmp_path: Path) -> None:
    bomb = zlib.compress(b"\0" * (40 << 20), 9)  # 40 MB of text behind a ~40 kB chunk
    path = _write(tmp_path, "bomb.png", _png_with_chunk(b"zTXt", b"Comment\0\0" + bomb))
    with pytest.raises(sio.ImageReadError, match="bomb.png.*corrupt"):
        sio.load_image(path)


def test_symlink_loop_is_a_read_error(tmp_path: Path) -> None:
    (tmp_path / "a.png").symlink_to(tmp_path / "b.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    with pytest.raises(sio.ImageReadError, match="a.png.*symbolic links"):
        sio.load_image(tmp_path / "a.png")
    assert sio.safe_resolve(tmp_path / "a.png") == tmp_path / "a.png"


@pytest.mark.parametrize("raw", ["inf", "-inf", "nan", "0", "-5", "1.5", "lots", "1e400", "0x10"])
def test_bad_pixel_limit_from_the_environment(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sio.MAX_PIXELS_ENV, raw)
    with pytest.raises(sio.InputError, match=f"{sio.MAX_PIXELS_ENV}=.*positive whole number"):
        sio.max_pixels_limit()


@pytest.mark.parametrize("raw, limit", [("1000", 1000), ("6e7", 60_000_000), (" 60_000_000 ", 60_000_000)])
def test_good_pixel_limit_from_the_environment(raw: str, limit: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sio.MAX_PIXELS_ENV, raw)
    assert sio.max_pixels_limit() == limit


@pytest.mark.parametrize("value", [0, -3, 1.5, float("inf"), True])
def test_bad_pixel_limit_argument(value: object) -> None:
    with pytest.raises(sio.InputError, match="positive whole number") as info:
        sio.max_pixels_limit(value)  # type: ignore[arg-type]
    assert "--max-pixels" in info.value.cli_message


def test_mask_size_message_names_the_flag_on_the_command_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "m.png", _encode(Image.new("L", (4, 4), 255), "PNG"))
    with pytest.raises(sio.MaskSizeError) as info:
        sio.load_mask(path, (8, 8))
    assert "resize=True" in str(info.value)
    assert "--resize-mask" in info.value.cli_message and "resize=True" not in info.value.cli_message


def test_write_errors_are_one_line_output_errors(tmp_path: Path) -> None:
    rgb = _smooth_rgb(4, 4)
    a_file = _write(tmp_path, "file.txt", b"x")
    cases = {
        a_file / "out.png": "is a file, not a folder",
        tmp_path / ("x" * 300 + ".png"): "too long",
        tmp_path: "not a file",
    }
    for destination, reason in cases.items():
        with pytest.raises(sio.OutputError, match=reason) as info:
            sio.save_image(destination, rgb)
        assert "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]  # no temporary file left behind


def test_a_name_of_255_bytes_is_written(tmp_path: Path) -> None:
    destination = tmp_path / ("n" * 251 + ".png")
    sio.save_image(destination, _smooth_rgb(4, 4))
    assert [p.name for p in tmp_path.iterdir()] == [destination.name]


def test_non_utf8_names_are_written_and_printable(tmp_path: Path) -> None:
    name = os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes: not UTF-8
    source = tmp_path / name
    Image.fromarray(_smooth_rgb(6, 6)).save(source)
    loaded = sio.load_image(source)
    saved = sio.save_like(tmp_path / ("out_" + name), loaded.rgb, loaded, metadata={"source": name})
    assert Image.open(saved.path).text["source"] == "caf\\udce9.png"
    assert sio.printable_path(source).encode("utf-8")


def test_same_file_sees_through_spellings(tmp_path: Path) -> None:
    target = _write(tmp_path, "photo.png", b"x")
    (tmp_path / "link.png").symlink_to(target)
    os.link(target, tmp_path / "hard.png")
    sub = tmp_path / "sub"
    sub.mkdir()
    spellings = [tmp_path / "link.png", tmp_path / "hard.png", sub / ".." / "photo.png"]
    spellings.append(Path(f"{tmp_path}/./photo.png"))
    for spelling in spellings:
        assert sio.same_file(spelling, target), spelling
    assert not sio.same_file(tmp_path / "new.png", target)


def test_lossy_formats_say_so(tmp_path: Path) -> None:
    rgb = _smooth_rgb(8, 8)
    assert not any("lossy" in n for n in sio.save_image(tmp_path / "a.png", rgb).notes)
    assert any("JPEG is lossy" in n for n in sio.save_image(tmp_path / "a.jpg", rgb).notes)
    assert any("lossy" in n for n in sio.save_image(tmp_path / "a.webp", rgb).notes)
    assert not any("lossy" in n for n in sio.save_image(tmp_path / "b.webp", rgb, quality=100).notes)
    with pytest.raises(sio.OutputError, match="unknown suffix '.gif'"):
        sio.write_format(tmp_path / "g.gif")


def test_mask_and_photo_look_different() -> None:
    mask = np.zeros((64, 64, 3), np.uint8)
    mask[10:30, 10:40] = 255
    soft = cv2.GaussianBlur(mask, (5, 5), 0)  # anti-aliased edges are still a mask
    photo = cv2.resize(_random_rgb(16, 16), (64, 64), interpolation=cv2.INTER_LINEAR)
    assert sio.looks_like_mask(mask) and sio.looks_like_mask(soft)
    assert not sio.looks_like_mask(photo) and not sio.looks_like_mask(np.zeros_like(mask))
    assert sio.looks_like_photo(photo) and not sio.looks_like_photo(mask) and not sio.looks_like_photo(soft)
    assert not sio.looks_like_photo(np.full((64, 64, 3), 128, np.uint8))  # flat grey: neither
