"""Generate the fuzz corpus: files on disk plus one :class:`Case` per command line to try.

Nothing here is stored in the repository: :func:`build_corpus` writes every file into a temporary
folder from a fixed seed. Families of cases:

* truncations: 8 formats cut at 7 points, through ``inpaint`` (as image and as mask) and ``compare``;
* modes: 1, L, LA, P, P+tRNS, RGB, RGBA, 16-bit grey and RGB(A), I, F, CMYK, as image and as mask;
* EXIF: every orientation, corrupt eXIf chunks and APP1 blocks;
* bombs: headers claiming huge sizes, a zTXt bomb, tiny pixel limits (argument and environment);
* junk: random bytes, text, HTML, pickles, PDF/EPS/SVG, empty files, folders, FIFOs, /dev/null;
* paths: missing, dangling and looping symlinks, non-UTF-8 and very long names;
* outputs: every way of naming an input or an unwritable place as ``-o``, existing outputs, folders;
* slips: swapped image and mask, masks of another size, lossy formats, bad strategy values, devices;
* batches, ``compare``, ``eval``, ``parity``, ``train``, ``weights``, ``clinic`` and ``models``;
* random byte mutations of valid files (either read or refused, never a crash).
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

OK, FAILED, BAD_INPUT, WEIGHTS_MISSING = 0, 1, 2, 3
WIDTH, HEIGHT = 40, 32
FAST = ["-m", "opencv_telea"]
TRUNCATION_POINTS = (0.0, 0.02, 0.1, 0.25, 0.5, 0.75, 0.9)
FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP", "bmp": "BMP", "tif": "TIFF", "gif": "GIF",
           "ppm": "PPM", "tga": "TGA"}


@dataclass
class Case:
    """One command line and what must hold after it ran.

    Args:
        argv: arguments of ``python -m inpaintstudio``.
        code: the documented exit code (a tuple: any of them, for random mutations).
        stderr: substrings the error output must contain.
        creates / absent: paths that must / must not exist afterwards.
        lossless: (image, mask, output) triples whose output must equal the input outside the hole.
        env: environment variables for the run.
        traceback: a traceback is expected (``--debug``); otherwise one is a failure.
    """

    id: str
    argv: list[str]
    code: int | tuple[int, ...]
    stderr: tuple[str, ...] = ()
    creates: tuple[Path, ...] = ()
    absent: tuple[Path, ...] = ()
    lossless: tuple[tuple[Path, Path, Path], ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    traceback: bool = False

    @property
    def family(self) -> str:
        return self.id.split("/", 1)[0]


# ------------------------------------------------------------------------------------------ pixels
def photo_pixels(seed: int = 0, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """A small photo-like image: smooth colour gradients plus texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.dstack([x * 200 // width + 20, y * 180 // height + 40, (x + y) * 90 // (width + height) + 60])
    return np.clip(base + rng.integers(-25, 26, (height, width, 3)), 0, 255).astype(np.uint8)


def hole_pixels(width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """A mask: white rectangle (the hole) on black, uint8 H×W."""
    mask = np.zeros((height, width), np.uint8)
    mask[height // 4 : height // 2, width // 3 : width // 2 + 4] = 255
    return mask


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_with_chunk(base: bytes, kind: bytes, payload: bytes) -> bytes:
    after_ihdr = 8 + 8 + 13 + 4
    return base[:after_ihdr] + png_chunk(kind, payload) + base[after_ihdr:]


def png_claiming(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + png_chunk(b"IEND", b""))


def gif_claiming(width: int, height: int) -> bytes:
    screen = b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00"
    return screen + b"," + struct.pack("<HHHH", 0, 0, width, height) + b"\x00\x02\x02\x44\x01\x00;"


def pillow_decodes(data: bytes) -> bool:
    """Whether Pillow itself reads every pixel of ``data`` (the oracle for truncated files)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as image:
                image.load()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not decodable"
        return False


def bmp_claiming(width: int, height: int) -> bytes:
    header = struct.pack("<2sIHHI", b"BM", 54 + 16, 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 16, 2835, 2835, 0, 0)
    return header + info + b"\0" * 16


def exif_block(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "FuzzCam"
    return exif.tobytes()


# ------------------------------------------------------------------------------------------ corpus
class Corpus:
    """Writes material under ``root`` and collects cases."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.material = root / "material"
        self.outputs = root / "outputs"
        self.material.mkdir(parents=True)
        self.outputs.mkdir()
        (root / "cwd").mkdir()  # the working folder of every run
        self.cases: list[Case] = []
        self.rng = np.random.default_rng(1234)
        self.photo = photo_pixels()
        self.hole = hole_pixels()
        self.photo_png = self.file("photo.png", encode(Image.fromarray(self.photo), "PNG"))
        self.mask_png = self.file("mask.png", encode(Image.fromarray(self.hole), "PNG"))

    def file(self, name: str | bytes, data: bytes, folder: Path | None = None) -> Path:
        folder = folder or self.material
        folder.mkdir(parents=True, exist_ok=True)
        path = Path(os.fsdecode(os.path.join(os.fsencode(folder), os.fsencode(name))))
        path.write_bytes(data)
        return path

    def out(self, case_id: str, name: str = "out.png") -> Path:
        folder = self.outputs / case_id.replace("/", "__")
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name

    def add(self, case: Case) -> None:
        self.cases.append(case)

    def inpaint_ok(self, case_id: str, image: Path, mask: Path, *extra: str, lossless: bool = True,
                   stderr: tuple[str, ...] = ()) -> None:
        out = self.out(case_id)
        self.add(Case(case_id, ["inpaint", str(image), str(mask), *FAST, "-o", str(out), *extra], OK,
                      stderr=stderr, creates=(out,), lossless=((image, mask, out),) if lossless else ()))

    def inpaint_bad(self, case_id: str, image: Path, mask: Path, *extra: str, code: int = BAD_INPUT,
                    stderr: tuple[str, ...] = ()) -> None:
        out = self.out(case_id)
        self.add(Case(case_id, ["inpaint", str(image), str(mask), *FAST, "-o", str(out), *extra], code,
                      stderr=stderr, absent=(out,)))


def _truncations(c: Corpus) -> None:
    for suffix, fmt in FORMATS.items():
        options = {"quality": 90} if fmt in ("JPEG", "WEBP") else {}
        image_data = encode(Image.fromarray(c.photo), fmt, **options)
        mask_data = encode(Image.fromarray(c.hole).convert("RGB"), fmt, **options)
        for point in TRUNCATION_POINTS:
            tag = f"{suffix}-{int(point * 100)}"
            image = c.file(f"cut-{tag}.{suffix}", image_data[: int(len(image_data) * point)])
            mask = c.file(f"cut-mask-{tag}.{suffix}", mask_data[: int(len(mask_data) * point)])
            for kind, path, args in (("image", image, (image, c.mask_png)), ("mask", mask, (c.photo_png, mask))):
                if pillow_decodes(path.read_bytes()):  # the cut spared every pixel: a valid file
                    c.inpaint_ok(f"truncated/{kind}-{tag}", *args, lossless=False)
                else:
                    c.inpaint_bad(f"truncated/{kind}-{tag}", *args, stderr=(path.name,))
            grid = c.out(f"truncated/compare-{tag}")
            decodes = pillow_decodes(image.read_bytes())
            c.add(Case(f"truncated/compare-{tag}", ["compare", str(image), str(c.mask_png), "-m", "opencv_telea",
                                                    "-m", "opencv_ns", "-o", str(grid)], OK if decodes else BAD_INPUT,
                       absent=() if decodes else (grid,)))


def _valid_formats(c: Corpus) -> None:
    for suffix, fmt in FORMATS.items():
        lossy = fmt in ("JPEG", "WEBP")
        options = {"quality": 90} if lossy else {}
        image = c.file(f"valid.{suffix}", encode(Image.fromarray(c.photo), fmt, **options))
        mask = c.file(f"valid-mask.{suffix}", encode(Image.fromarray(c.hole).convert("RGB"), fmt, **options))
        c.inpaint_ok(f"formats/image-{suffix}", image, c.mask_png)
        c.inpaint_ok(f"formats/mask-{suffix}", c.photo_png, mask, lossless=not lossy)


def _modes(c: Corpus) -> None:
    rgb = Image.fromarray(c.photo)
    grey = rgb.convert("L")
    alpha = Image.fromarray(np.tile(np.linspace(40, 255, WIDTH, dtype=np.uint8), (HEIGHT, 1)))
    sixteen = (np.asarray(grey).astype(np.uint16) * 257 + 100).clip(0, 65535).astype(np.uint16)
    rgba = rgb.copy()
    rgba.putalpha(alpha)
    la = grey.copy()
    la.putalpha(alpha)
    palette = rgb.quantize(64)
    palette_t = palette.copy()
    palette_t.info["transparency"] = 0
    images: dict[str, bytes] = {
        "1.png": encode(rgb.convert("1"), "PNG"),
        "L.png": encode(grey, "PNG"),
        "LA.png": encode(la, "PNG"),
        "P.png": encode(palette, "PNG"),
        "P-trns.png": encode(palette_t, "PNG", transparency=0),
        "RGBA.png": encode(rgba, "PNG"),
        "I16.png": encode(Image.fromarray(sixteen), "PNG"),
        "I.tif": encode(Image.fromarray(sixteen.astype(np.int32)), "TIFF"),
        "F.tif": encode(Image.fromarray(np.asarray(grey, np.float32) / 255.0), "TIFF"),
        "F255.tif": encode(Image.fromarray(np.asarray(grey, np.float32)), "TIFF"),
        "CMYK.jpg": encode(rgb.convert("CMYK"), "JPEG", quality=95),
        "CMYK.tif": encode(rgb.convert("CMYK"), "TIFF"),
        "RGB48.png": cv2.imencode(".png", (c.photo[..., ::-1].astype(np.uint16) * 257))[1].tobytes(),
        "RGBA64.png": cv2.imencode(".png", np.dstack([c.photo[..., ::-1], np.asarray(alpha)]).astype(np.uint16)
                                   * 257)[1].tobytes(),
        "animated.gif": b"",
    }
    frames = [Image.fromarray(photo_pixels(seed)) for seed in range(3)]
    images["animated.gif"] = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    for name, data in images.items():
        path = c.file(f"mode-{name}", data)
        c.inpaint_ok(f"modes/image-{name}", path, c.mask_png, lossless=not name.endswith(".jpg"))
    hole = Image.fromarray(c.hole)
    transparent_hole = Image.new("RGBA", (WIDTH, HEIGHT), (0, 0, 0, 0))
    transparent_hole.putalpha(hole)
    masks: dict[str, bytes] = {
        "1.png": encode(hole.convert("1"), "PNG"),
        "L.png": encode(hole, "PNG"),
        "LA.png": encode(Image.merge("LA", (hole, hole)), "PNG"),
        "P.png": encode(hole.convert("P"), "PNG"),
        "RGBA-alpha.png": encode(transparent_hole, "PNG"),
        "I16.png": encode(Image.fromarray(c.hole.astype(np.uint16) * 257), "PNG"),
        "F.tif": encode(Image.fromarray(c.hole.astype(np.float32) / 255.0), "TIFF"),
        "CMYK.tif": encode(hole.convert("RGB").convert("CMYK"), "TIFF"),
        "empty.png": encode(Image.new("L", (WIDTH, HEIGHT), 0), "PNG"),
        "all-hole.png": encode(Image.new("L", (WIDTH, HEIGHT), 255), "PNG"),
    }
    for name, data in masks.items():
        path = c.file(f"mask-mode-{name}", data)
        c.inpaint_ok(f"modes/mask-{name}", c.photo_png, path)


def _exif(c: Corpus) -> None:
    rgb = Image.fromarray(c.photo)
    for orientation in range(1, 9):
        path = c.file(f"exif-{orientation}.jpg", encode(rgb, "JPEG", quality=92, exif=exif_block(orientation)))
        size = (HEIGHT, WIDTH) if orientation >= 5 else (WIDTH, HEIGHT)
        mask = c.file(f"exif-mask-{orientation}.png", encode(Image.fromarray(hole_pixels(*size)), "PNG"))
        c.inpaint_ok(f"exif/orientation-{orientation}", path, mask, lossless=False)
        png = c.file(f"exif-{orientation}.png", encode(rgb, "PNG", exif=exif_block(orientation)))
        c.inpaint_ok(f"exif/png-orientation-{orientation}", png, mask)
    base = c.photo_png.read_bytes()
    corrupt = {
        "garbage": b"garbage-not-tiff",
        "empty": b"",
        "truncated-ifd": b"MM\x00\x2a\x00\x00\x00\x08\x00\x05\x01\x12",
        "loop-ifd": b"II*\x00\x08\x00\x00\x00\x01\x00\x0f\x01\x02\x00\x04\x00\x00\x00abc\x00\x08\x00\x00\x00",
        "huge-count": b"II*\x00\x08\x00\x00\x00\xff\xff",
    }
    for name, payload in corrupt.items():
        path = c.file(f"exif-corrupt-{name}.png", png_with_chunk(base, b"eXIf", payload))
        warned = ("EXIF block unreadable and ignored",) if name == "garbage" else ()
        c.inpaint_ok(f"exif/corrupt-png-{name}", path, c.mask_png, stderr=warned)
        mask = c.file(f"exif-corrupt-mask-{name}.png", png_with_chunk(c.mask_png.read_bytes(), b"eXIf", payload))
        c.inpaint_ok(f"exif/corrupt-mask-{name}", c.photo_png, mask, stderr=warned)
    jpeg = encode(rgb, "JPEG", quality=92)
    app1 = b"Exif\x00\x00" + b"garbage-not-tiff"
    broken = jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]
    c.inpaint_ok("exif/corrupt-jpeg-app1", c.file("exif-corrupt.jpg", broken), c.mask_png, lossless=False)


def _bombs(c: Corpus) -> None:
    claims = {
        "png-50k.png": png_claiming(50_000, 50_000),
        "png-wide.png": png_claiming(2**31 - 1, 1),
        "gif-64k.gif": gif_claiming(65_535, 65_535),
        "bmp-huge.bmp": bmp_claiming(60_000, 60_000),
        "ztxt.png": png_with_chunk(c.photo_png.read_bytes(), b"zTXt",
                                   b"Comment\0\0" + zlib.compress(b"\0" * (40 << 20), 9)),
        "itxt.png": png_with_chunk(c.photo_png.read_bytes(), b"iTXt",
                                   b"Comment\0\1\0\0\0" + zlib.compress(b"\0" * (40 << 20), 9)),
    }
    for name, data in claims.items():
        path = c.file(f"bomb-{name}", data)
        c.inpaint_bad(f"bombs/image-{name}", path, c.mask_png, stderr=(path.name,))
        c.inpaint_bad(f"bombs/mask-{name}", c.photo_png, path, stderr=(path.name,))
        grid = c.out(f"bombs/compare-{name}")
        c.add(Case(f"bombs/compare-{name}", ["compare", str(path), str(c.mask_png), "-m", "opencv_telea",
                                             "-o", str(grid)], BAD_INPUT, absent=(grid,)))
    c.inpaint_bad("bombs/max-pixels-small", c.photo_png, c.mask_png, "--max-pixels", "100",
                  stderr=("--max-pixels",))
    for value in ("inf", "-inf", "nan", "0", "-1", "lots", "1.5", "1e400", ""):
        out = c.out(f"bombs/env-{value or 'blank'}")
        code = OK if value == "" else BAD_INPUT
        case = Case(f"bombs/env-{value or 'blank'}", ["inpaint", str(c.photo_png), str(c.mask_png), *FAST, "-o",
                                                      str(out)], code, env={"INPAINTSTUDIO_MAX_PIXELS": value},
                    stderr=() if code == OK else ("INPAINTSTUDIO_MAX_PIXELS",))
        c.add(case)


def _junk(c: Corpus) -> None:
    junk = {
        "random.png": c.rng.integers(0, 256, 3000, dtype=np.uint8).tobytes(),
        "text.jpg": b"just some text, not a picture\n" * 20,
        "page.png": b"<!doctype html><html><body>nope</body></html>",
        "pickle.png": pickle.dumps({"a": np.arange(10)}),
        "doc.pdf": b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n",
        "ghost.eps": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 40 32\nshowpage\n",
        "vector.svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="32"/>',
        "empty.png": b"",
        "magic-only.png": b"\x89PNG\r\n\x1a\n",
        "jpeg-soi.jpg": b"\xff\xd8\xff",
        "icon.ico": encode(Image.fromarray(c.photo), "ICO"),
    }
    for name, data in junk.items():
        path = c.file(f"junk-{name}", data)
        c.inpaint_bad(f"junk/image-{name}", path, c.mask_png, stderr=(path.name,))
        c.inpaint_bad(f"junk/mask-{name}", c.photo_png, path, stderr=(path.name,))
    folder = c.material / "folder.png"
    folder.mkdir()
    c.inpaint_bad("junk/mask-is-a-folder", c.photo_png, folder)
    fifo = c.material / "fifo.png"
    os.mkfifo(fifo)
    c.inpaint_bad("junk/image-fifo", fifo, c.mask_png, stderr=("not a file",))
    c.inpaint_bad("junk/mask-fifo", c.photo_png, fifo, stderr=("not a file",))
    c.inpaint_bad("junk/image-dev-null", Path("/dev/null"), c.mask_png)


def _paths(c: Corpus) -> None:
    m = c.material
    (m / "loop-a.png").symlink_to(m / "loop-b.png")
    (m / "loop-b.png").symlink_to(m / "loop-a.png")
    (m / "dangling.png").symlink_to(m / "nowhere.png")
    (m / "link-to-photo.png").symlink_to(c.photo_png)
    c.inpaint_bad("paths/missing-image", m / "missing.png", c.mask_png, stderr=("missing.png",))
    c.inpaint_bad("paths/missing-mask", c.photo_png, m / "missing.png", stderr=("missing.png",))
    c.inpaint_bad("paths/loop-image", m / "loop-a.png", c.mask_png, stderr=("loop-a.png",))
    c.inpaint_bad("paths/loop-mask", c.photo_png, m / "loop-a.png", stderr=("loop-a.png",))
    c.inpaint_bad("paths/dangling", m / "dangling.png", c.mask_png)
    c.inpaint_bad("paths/name-too-long", m / ("x" * 300 + ".png"), c.mask_png)
    c.inpaint_ok("paths/symlinked-image", m / "link-to-photo.png", c.mask_png)
    latin1 = c.file(b"caf\xe9-photo.png", c.photo_png.read_bytes())
    c.inpaint_ok("paths/non-utf8-image", latin1, c.mask_png)
    spaced = c.file("a photo (copy) ✓.png", c.photo_png.read_bytes())
    c.inpaint_ok("paths/spaces-unicode", spaced, c.mask_png)
    out = c.out("paths/non-utf8-output", os.fsdecode(b"r\xe9sultat.png"))
    c.add(Case("paths/non-utf8-output", ["inpaint", str(c.photo_png), str(c.mask_png), *FAST, "-o", str(out)], OK,
               creates=(out,)))


def _outputs(c: Corpus) -> None:
    image, mask = c.photo_png, c.mask_png
    base = ["inpaint", str(image), str(mask), *FAST]
    a_file = c.file("a-file.txt", b"x")
    relative_image = os.path.relpath(image, c.root / "cwd")  # runs happen in root/cwd
    spellings = {
        "image": str(image),
        "image-dot": f"{image.parent}/./{image.name}",
        "image-dotdot": f"{image.parent}/../{image.parent.name}/{image.name}",
        "image-symlink": str(c.material / "link-to-photo.png"),
        "image-relative": relative_image,
        "mask": str(mask),
        "mask-dot": f"{mask.parent}/./{mask.name}",
    }
    for name, spelling in spellings.items():
        c.add(Case(f"outputs/onto-{name}", [*base, "-o", spelling], BAD_INPUT, stderr=("over the input",)))
        c.add(Case(f"outputs/onto-{name}-overwrite", [*base, "-o", spelling, "--overwrite"], BAD_INPUT,
                   stderr=("over the input",)))
    bad = {
        "empty": ("", "empty"),
        "blank": ("   ", "empty"),
        "under-a-file": (f"{a_file}/out.png", "not a folder"),
        "proc": ("/proc/inpaintstudio-x.png", "cannot write"),
        "long-name": (str(c.out("outputs/long-name", "n" * 300 + ".png")), "too long"),
        "gif": (str(c.out("outputs/gif", "g.gif")), "unknown suffix"),
        "tiff": (str(c.out("outputs/tiff", "g.tif")), "unknown suffix"),
    }
    for name, (target, message) in bad.items():
        c.add(Case(f"outputs/{name}", [*base, "-o", target], BAD_INPUT, stderr=(message,) if message else ()))
    if not _can_create_in(Path("/sys")):  # a folder nobody may write into, even root
        c.add(Case("outputs/read-only-folder", [*base, "-o", "/sys/inpaintstudio-x.png"], BAD_INPUT,
                   stderr=("cannot write",)))
    existing = c.out("outputs/existing")
    existing.write_bytes(b"earlier result")
    c.add(Case("outputs/existing-refused", [*base, "-o", str(existing)], BAD_INPUT, stderr=("--overwrite",)))
    replaced = c.out("outputs/existing-overwrite")
    replaced.write_bytes(b"earlier result")
    c.add(Case("outputs/existing-overwrite", [*base, "-o", str(replaced), "--overwrite"], OK,
               lossless=((image, mask, replaced),)))
    new_folder = c.outputs / "outputs__new-folder" / "made"
    c.add(Case("outputs/new-folder-slash", [*base, "-o", f"{new_folder}/"], OK, creates=(new_folder / "photo.png",),
               lossless=((image, mask, new_folder / "photo.png"),)))
    existing_folder = c.out("outputs/existing-folder").parent
    c.add(Case("outputs/existing-folder", [*base, "-o", str(existing_folder)], OK,
               creates=(existing_folder / "photo.png",)))
    named_like_a_file = c.outputs / "outputs__folder-named-png" / "out.png"
    named_like_a_file.mkdir(parents=True)
    c.add(Case("outputs/folder-named-like-a-file", [*base, "-o", str(named_like_a_file)], OK,
               creates=(named_like_a_file / "photo.png",)))
    nested = c.outputs / "outputs__nested" / "a" / "b" / "out.png"
    c.add(Case("outputs/nested-new-folders", [*base, "-o", str(nested)], OK, creates=(nested,)))
    for suffix, message in ((".jpg", "lossy"), (".jpeg", "lossy"), (".webp", "lossy")):
        out = c.out(f"outputs/lossy{suffix}", f"out{suffix}")
        c.add(Case(f"outputs/lossy{suffix}", [*base, "-o", str(out)], OK, creates=(out,), stderr=(message,)))
    plain = c.out("outputs/no-suffix", "out")
    c.add(Case("outputs/no-suffix", [*base, "-o", str(plain)], OK, creates=(plain,), lossless=((image, mask, plain),)))


def _can_create_in(folder: Path) -> bool:
    probe = folder / f".inpaintstudio-fuzz-{os.getpid()}"
    try:
        probe.touch(exist_ok=False)
    except OSError:
        return False
    probe.unlink()
    return True


def _options(c: Corpus) -> None:
    bad = {
        "tile-negative": (["--strategy", "tile", "--tile-size", "-3"], "--tile-size"),
        "tile-zero": (["--tile-size", "0"], "--tile-size"),
        "tile-two": (["--strategy", "tile", "--tile-size", "2"], "--tile-size"),
        "tile-text": (["--tile-size", "big"], "--tile-size"),
        "margin-negative": (["--margin", "-1"], "--margin"),
        "max-pixels-zero": (["--max-pixels", "0"], "--max-pixels"),
        "max-pixels-negative": (["--max-pixels", "-5"], "--max-pixels"),
        "device-cuda7": (["--device", "cuda:7"], "cuda:7"),
        "device-unknown": (["--device", "gpu"], "gpu"),
        "strategy-unknown": (["--strategy", "magic"], "--strategy"),
        "model-unknown": (["-m", "lama-ultra"], "lama-ultra"),
        "model-empty": (["-m", ""], "unknown model"),
    }
    for name, (extra, message) in bad.items():
        c.inpaint_bad(f"options/{name}", c.photo_png, c.mask_png, *extra, stderr=(message,))
    for strategy in ("auto", "full", "crop", "tile", "resize"):
        c.inpaint_ok(f"options/strategy-{strategy}", c.photo_png, c.mask_png, "--strategy", strategy)
    c.inpaint_ok("options/margin-zero", c.photo_png, c.mask_png, "--margin", "0")
    c.inpaint_ok("options/tile-64", c.photo_png, c.mask_png, "--strategy", "tile", "--tile-size", "64")
    c.inpaint_ok("options/device-cpu", c.photo_png, c.mask_png, "--device", "cpu")
    for model in ("sem_net", "mxt", "hint", "inclg", "tsgl", "csfc"):
        c.inpaint_bad(f"options/weights-missing-{model}", c.photo_png, c.mask_png, "-m", model,
                      code=WEIGHTS_MISSING, stderr=("Expected file",))
    out = c.out("options/patchmatch-default")
    c.add(Case("options/patchmatch-default", ["inpaint", str(c.photo_png), str(c.mask_png), "-o", str(out)], OK,
               creates=(out,), lossless=((c.photo_png, c.mask_png, out),)))
    usage = {"no-arguments": [], "unknown-command": ["paint"], "inpaint-no-output": ["inpaint", str(c.photo_png),
                                                                                      str(c.mask_png)]}
    for name, argv in usage.items():
        c.add(Case(f"options/{name}", argv, BAD_INPUT))
    c.add(Case("options/debug-shows-traceback", ["--debug", "inpaint", str(c.material / "missing.png"),
                                                  str(c.mask_png), "-o", str(c.out("options/debug"))],
               BAD_INPUT, traceback=True))


def _slips(c: Corpus) -> None:
    c.inpaint_ok("slips/swapped", c.mask_png, c.photo_png, lossless=True, stderr=("looks like a mask",))
    small = c.file("mask-small.png", encode(Image.fromarray(hole_pixels(20, 16)), "PNG"))
    c.inpaint_bad("slips/mask-other-size", c.photo_png, small, stderr=("--resize-mask",))
    c.inpaint_ok("slips/mask-other-size-resized", c.photo_png, small, "--resize-mask")
    wide = c.file("photo-wide.png", encode(Image.fromarray(photo_pixels(3, 64, 32)), "PNG"))
    c.inpaint_bad("slips/image-other-size", wide, c.mask_png, stderr=("--resize-mask",))
    c.inpaint_ok("slips/same-file-image-and-mask", c.photo_png, c.photo_png, lossless=True)


def _batches(c: Corpus) -> None:
    good_images, good_masks = c.material / "batch-good", c.material / "batch-good-masks"
    for index in range(3):
        c.file(f"p{index}.png", encode(Image.fromarray(photo_pixels(index)), "PNG"), good_images)
        c.file(f"p{index}.png", c.mask_png.read_bytes(), good_masks)
    out = c.out("batch/good", "results")
    c.add(Case("batch/good", ["inpaint", str(good_images), str(good_masks), *FAST, "-o", str(out)], OK,
               creates=tuple(out / f"p{i}.png" for i in range(3)),
               lossless=tuple((good_images / f"p{i}.png", good_masks / f"p{i}.png", out / f"p{i}.png")
                              for i in range(3))))
    out = c.out("batch/one-mask", "results")
    c.add(Case("batch/one-mask-for-all", ["inpaint", str(good_images), str(c.mask_png), *FAST, "-o", f"{out}/"], OK,
               creates=tuple(out / f"p{i}.png" for i in range(3))))
    mixed, mixed_masks = c.material / "batch-mixed", c.material / "batch-mixed-masks"
    c.file("a.png", c.photo_png.read_bytes(), mixed)
    c.file("b.png", b"\x89PNG\r\n\x1a\n broken", mixed)
    c.file("c.png", encode(Image.fromarray(photo_pixels(5)), "PNG"), mixed)
    c.file("d.png", c.photo_png.read_bytes(), mixed)
    for name in ("a.png", "b.png", "c.png"):
        c.file(name, c.mask_png.read_bytes(), mixed_masks)  # no mask for d.png
    out = c.out("batch/mixed", "results")
    c.add(Case("batch/continues-past-bad-files", ["inpaint", str(mixed), str(mixed_masks), *FAST, "-o", str(out)],
               FAILED, stderr=("b.png", "d.png", "2 of 4"), creates=(out / "a.png", out / "c.png"),
               absent=(out / "b.png", out / "d.png")))
    colliding = c.material / "batch-colliding"
    c.file("a.jpg", encode(Image.fromarray(c.photo), "JPEG"), colliding)
    c.file("a.png", c.photo_png.read_bytes(), colliding)
    c.file("b.png", c.photo_png.read_bytes(), colliding)
    out = c.out("batch/collide", "results")
    c.add(Case("batch/colliding-outputs", ["inpaint", str(colliding), str(c.mask_png), *FAST, "-o", str(out)],
               BAD_INPUT, stderr=("a.png",), absent=(out / "a.png", out / "b.png")))
    c.add(Case("batch/output-is-a-file", ["inpaint", str(good_images), str(good_masks), *FAST, "-o",
                                          str(c.photo_png)], BAD_INPUT, stderr=("output folder",)))
    c.add(Case("batch/output-is-the-input-folder", ["inpaint", str(good_images), str(good_masks), *FAST, "-o",
                                                    str(good_images)], BAD_INPUT, stderr=("over the input",)))
    c.add(Case("batch/output-is-the-mask-folder", ["inpaint", str(good_images), str(good_masks), *FAST, "-o",
                                                   str(good_masks)], BAD_INPUT, stderr=("over the input",)))
    swapped, swapped_masks = c.material / "batch-swapped", c.material / "batch-swapped-masks"
    c.file("s.png", c.mask_png.read_bytes(), swapped)
    c.file("s.png", c.photo_png.read_bytes(), swapped_masks)
    c.file("t.png", c.photo_png.read_bytes(), swapped)
    c.file("t.png", c.mask_png.read_bytes(), swapped_masks)
    out = c.out("batch/swapped", "results")
    c.add(Case("batch/swapped-pair-refused", ["inpaint", str(swapped), str(swapped_masks), *FAST, "-o", str(out)],
               FAILED, stderr=("looks like a mask",), creates=(out / "t.png",), absent=(out / "s.png",)))
    empty = c.material / "batch-empty"
    empty.mkdir()
    c.add(Case("batch/no-images", ["inpaint", str(empty), str(c.mask_png), *FAST, "-o", str(c.out("batch/empty"))],
               BAD_INPUT, stderr=("no images",)))


def _compare(c: Corpus) -> None:
    image, mask = c.photo_png, c.mask_png
    grid = c.out("compare/good")
    c.add(Case("compare/good", ["compare", str(image), str(mask), "-m", "opencv_telea", "-m", "opencv_ns", "-o",
                                str(grid)], OK, creates=(grid,)))
    grid = c.out("compare/weights-missing")
    c.add(Case("compare/weights-missing", ["compare", str(image), str(mask), "-m", "opencv_telea", "-m", "mxt", "-o",
                                           str(grid)], WEIGHTS_MISSING, stderr=("mxt",), absent=(grid,)))
    c.add(Case("compare/onto-input", ["compare", str(image), str(mask), "-m", "opencv_telea", "-o", str(image)],
               BAD_INPUT, stderr=("over the input",)))
    c.add(Case("compare/onto-mask", ["compare", str(image), str(mask), "-m", "opencv_telea", "-o", str(mask)],
               BAD_INPUT, stderr=("over the input",)))
    grid = c.out("compare/gif", "g.gif")
    c.add(Case("compare/gif", ["compare", str(image), str(mask), "-m", "opencv_telea", "-o", str(grid)], BAD_INPUT,
               stderr=("unknown suffix",), absent=(grid,)))
    for value in ("-3", "0", "2"):
        grid = c.out(f"compare/tile-{value}")
        c.add(Case(f"compare/tile-{value}", ["compare", str(image), str(mask), "-m", "opencv_telea", "--strategy",
                                             "tile", "--tile-size", value, "-o", str(grid)], BAD_INPUT,
                   stderr=("--tile-size",), absent=(grid,)))
    grid = c.out("compare/unknown")
    c.add(Case("compare/unknown-model", ["compare", str(image), str(mask), "-m", "opencv_telea", "-m", "nope", "-o",
                                         str(grid)], BAD_INPUT, stderr=("nope",), absent=(grid,)))
    a_file = c.file("compare-a-file.txt", b"x")
    for name, target, message in (("proc", "/proc/grid.png", "cannot write"),
                                  ("under-a-file", f"{a_file}/grid.png", "not a folder"),
                                  ("long-name", str(c.out("compare/long", "g" * 300 + ".png")), "too long"),
                                  ("empty", "", "empty")):
        c.add(Case(f"compare/{name}", ["compare", str(image), str(mask), "-m", "opencv_telea", "-o", target],
                   BAD_INPUT, stderr=(message,)))


def _eval(c: Corpus) -> None:
    images, masks = c.material / "eval-images", c.material / "eval-masks"
    for index in range(2):
        c.file(f"e{index}.png", encode(Image.fromarray(photo_pixels(index, 64, 64)), "PNG"), images)
    hole = np.zeros((64, 64), np.uint8)
    hole[16:40, 20:44] = 255  # ~14 % hole: bin 0-20
    c.file("m0.png", encode(Image.fromarray(hole), "PNG"), masks)
    # scored at 64² (Telea's own working size is 3072: 13 s of upscaled filling and scoring per case)
    base = ["eval", "--model", "opencv_telea", "--no-lpips", "--no-fid", "--bins", "0-20", "--size", "64"]
    report = c.out("eval/good", "report.json")
    c.add(Case("eval/good", [*base, "--images", str(images), "--masks", str(masks), "--json", str(report)], OK,
               creates=(report,)))
    for name, side in (("size-zero", "0"), ("size-huge", "100000"), ("size-word", "big")):
        c.add(Case(f"eval/{name}", [*base[:-1], side, "--images", str(images), "--masks", str(masks)], BAD_INPUT,
                   stderr=("--size",)))
    taken = c.out("eval/existing", "report.json")
    taken.write_text("{}")
    c.add(Case("eval/json-exists", [*base, "--images", str(images), "--masks", str(masks), "--json", str(taken)],
               BAD_INPUT, stderr=("--overwrite",)))
    a_file = c.file("eval-a-file.txt", b"x")
    c.add(Case("eval/json-under-a-file", [*base, "--images", str(images), "--masks", str(masks), "--json",
                                          f"{a_file}/r.json"], BAD_INPUT, stderr=("not a folder",)))
    c.add(Case("eval/json-proc", [*base, "--images", str(images), "--masks", str(masks), "--json", "/proc/r.json"],
               BAD_INPUT, stderr=("cannot write",)))
    c.add(Case("eval/json-long-name", [*base, "--images", str(images), "--masks", str(masks), "--json",
                                       str(c.out("eval/long", "r" * 300 + ".json"))], BAD_INPUT, stderr=("too long",)))
    nested = c.material / "eval-nested"
    c.file("x.png", encode(Image.fromarray(photo_pixels(2, 64, 64)), "PNG"), nested / "gt")
    c.file("y.png", encode(Image.fromarray(photo_pixels(3, 64, 64)), "PNG"), nested)
    c.add(Case("eval/save-over-an-input", [*base, "--images", str(nested), "--masks", str(masks), "--save",
                                           str(nested)], BAD_INPUT, stderr=("over the input",)))
    c.add(Case("eval/json-onto-image", [*base, "--images", str(images), "--masks", str(masks), "--json",
                                        str(images / "e0.png")], BAD_INPUT, stderr=("over the input",)))
    truncated = c.material / "eval-truncated"
    c.file("t0.png", c.photo_png.read_bytes()[:300], truncated)
    c.file("t1.png", encode(Image.fromarray(photo_pixels(1, 64, 64)), "PNG"), truncated)
    c.add(Case("eval/truncated-image", [*base, "--images", str(truncated), "--masks", str(masks)], BAD_INPUT,
               stderr=("t0.png",)))
    junk_masks = c.material / "eval-junk-masks"
    c.file("junk.png", b"definitely not a mask", junk_masks)
    c.add(Case("eval/junk-mask", [*base, "--images", str(images), "--masks", str(junk_masks)], BAD_INPUT,
               stderr=("junk.png",)))
    empty_weights = c.file("empty.safetensors", b"")
    random_weights = c.file("random.pth", c.rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    random_safetensors = c.file("random.safetensors", c.rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    for name, path in (("empty", empty_weights), ("random-pth", random_weights),
                       ("random-safetensors", random_safetensors), ("missing", c.material / "none.pth")):
        c.add(Case(f"eval/weights-{name}", ["eval", "--model", "hint", "--no-lpips", "--no-fid", "--images",
                                            str(images), "--mask-ratio", "0-20", "--weights", str(path)], BAD_INPUT,
                   stderr=(path.name,)))
    c.add(Case("eval/weights-missing-default", ["eval", "--model", "hint", "--no-lpips", "--no-fid", "--images",
                                                str(images), "--mask-ratio", "0-20"], WEIGHTS_MISSING))
    c.add(Case("eval/no-images", [*base, "--images", str(c.material / "nowhere"), "--masks", str(masks)], BAD_INPUT))
    c.add(Case("eval/bad-bin", ["eval", "--model", "opencv_telea", "--no-lpips", "--no-fid", "--images", str(images),
                                "--mask-ratio", "90-99"], BAD_INPUT))
    c.add(Case("eval/unknown-model", ["eval", "--model", "nope", "--images", str(images), "--mask-ratio", "0-20"],
               BAD_INPUT, stderr=("nope",)))


def _parity(c: Corpus, fixtures: Path) -> None:
    source = fixtures / "hint"
    broken = c.material / "parity-broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model": "hint", "config": {')
    no_config = c.material / "parity-no-config"
    no_config.mkdir()
    (no_config / "config.json").write_text('{"model": "hint"}')
    not_object = c.material / "parity-list"
    not_object.mkdir()
    (not_object / "config.json").write_text("[1, 2, 3]")
    unknown = c.material / "parity-unknown"
    unknown.mkdir()
    (unknown / "config.json").write_text('{"model": "nope", "config": {}}')
    wrong_keys = c.material / "parity-wrong-keys"
    wrong_keys.mkdir()
    (wrong_keys / "config.json").write_text('{"model": "hint", "config": {"no_such_key": 1}}')
    no_weights = c.material / "parity-no-weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((source / "config.json").read_text())
    cases = {
        "broken-json": [str(broken)],
        "no-config": [str(no_config)],
        "not-an-object": [str(not_object)],
        "unknown-model-in-config": [str(unknown)],
        "unknown-model-flag": [str(source), "--model", "nope"],
        "wrong-config-keys": [str(wrong_keys)],
        "no-weights-file": [str(no_weights)],
        "missing-folder": [str(c.material / "nowhere")],
        "a-file": [str(c.photo_png)],
    }
    for name, argv in cases.items():
        c.add(Case(f"parity/{name}", ["parity", *argv], BAD_INPUT))


def _train(c: Corpus) -> None:
    configs = {
        "malformed.yaml": "model: hint\n  iterations: [1, 2\n",
        "tabs.yaml": "model:\thint\n",
        "list.yaml": "- 1\n- 2\n",
        "scalar.yaml": "hello\n",
        "empty.yaml": "",
        "broken.json": '{"model": "hint",',
        "unknown-model.yaml": "model: nope\n",
        "unknown-key.yaml": "model: hint\nwings: 3\n",
        "classical-engine.yaml": "model: patchmatch\n",
        "binary.yaml": "\udcff\udcfe",
    }
    for name, text in configs.items():
        path = c.file(f"train-{name}", text.encode("utf-8", "surrogateescape"))
        named = {"unknown-model.yaml": "nope", "unknown-key.yaml": "wings", "classical-engine.yaml": "classical"}.get(
            name, path.name)
        c.add(Case(f"train/{name}", ["train", "--config", str(path), "--output", str(c.out(f"train/{name}", "run"))],
                   BAD_INPUT, stderr=(named,)))
    c.add(Case("train/missing-config", ["train", "--config", str(c.material / "none.yaml")], BAD_INPUT))


def _weights(c: Corpus) -> None:
    import torch
    from safetensors.torch import save_file

    wrong = c.material / "wrong-keys.safetensors"
    save_file({"not.a.key": torch.zeros(2)}, str(wrong))
    wrong_pth = c.material / "wrong-keys.pth"
    torch.save({"state_dict": {"nope": torch.zeros(3)}}, wrong_pth)
    junk = c.file("junk.pth", b"not a checkpoint at all")
    destination = c.out("weights/out", "w.safetensors")
    cases = {
        "wrong-keys": (["--model", "hint", str(wrong), "-o", str(destination)], BAD_INPUT),
        "wrong-keys-pth": (["--model", "sem_net", str(wrong_pth), "-o", str(destination)], BAD_INPUT),
        "classical-engine": (["--model", "patchmatch", str(wrong), "-o", str(destination)], BAD_INPUT),
        "unknown-model": (["--model", "nope", str(wrong), "-o", str(destination)], BAD_INPUT),
        "junk": (["--model", "hint", str(junk), "-o", str(destination)], BAD_INPUT),
        "missing": (["--model", "hint", str(c.material / "none.pth"), "-o", str(destination)], BAD_INPUT),
        "folder": (["--model", "hint", str(c.material), "-o", str(destination)], BAD_INPUT),
        "onto-the-source": (["--model", "hint", str(wrong), "-o", str(wrong)], BAD_INPUT),
        "into-proc": (["--model", "hint", str(wrong), "-o", "/proc/w.safetensors"], BAD_INPUT),
    }
    for name, (argv, code) in cases.items():
        c.add(Case(f"weights/{name}", ["weights", "import", *argv], code, absent=(destination,)))
    for sub in ("status", "manifest"):
        c.add(Case(f"weights/{sub}", ["weights", sub], OK))
    c.add(Case("models/list", ["models"], OK))


def _clinic(c: Corpus) -> None:
    folder = c.outputs / "clinic__inside"
    folder.mkdir()
    inside = c.file("before.png", c.photo_png.read_bytes(), folder)
    c.add(Case("clinic/input-named-before-inside-output", ["clinic", str(inside), "-m", "opencv_telea", "-o",
                                                           str(folder)], BAD_INPUT, stderr=("over the input",)))
    c.add(Case("clinic/output-is-a-file", ["clinic", str(c.photo_png), "-m", "opencv_telea", "-o",
                                           str(c.photo_png)], BAD_INPUT))
    c.add(Case("clinic/output-under-a-file", ["clinic", str(c.photo_png), "-m", "opencv_telea", "-o",
                                              f"{c.photo_png}/out"], BAD_INPUT))
    c.add(Case("clinic/output-in-proc", ["clinic", str(c.photo_png), "-m", "opencv_telea", "-o", "/proc/clinic"],
               BAD_INPUT, stderr=("cannot write",)))
    c.add(Case("clinic/output-long-name", ["clinic", str(c.photo_png), "-m", "opencv_telea", "-o",
                                           str(c.outputs / ("c" * 300))], BAD_INPUT, stderr=("too long",)))
    taken = c.outputs / "clinic__taken"
    taken.mkdir()
    (taken / "after.png").write_bytes(b"earlier result")
    c.add(Case("clinic/earlier-run-kept", ["clinic", str(c.photo_png), "-m", "opencv_telea", "-o", str(taken)],
               BAD_INPUT, stderr=("--overwrite",), absent=(taken / "before.png",)))
    c.add(Case("clinic/junk-image", ["clinic", str(c.material / "junk-random.png"), "-o",
                                     str(c.out("clinic/junk", "run"))], BAD_INPUT))
    c.add(Case("clinic/unknown-model", ["clinic", str(c.photo_png), "-m", "nope", "-o",
                                        str(c.out("clinic/unknown", "run"))], BAD_INPUT))
    c.add(Case("clinic/mask-other-size", ["clinic", str(c.photo_png), "-m", "opencv_telea", "--mask",
                                          str(c.material / "mask-small.png"), "-o",
                                          str(c.out("clinic/mask", "run"))], BAD_INPUT))


def _mutations(c: Corpus, count: int = 40) -> None:
    sources = [c.photo_png.read_bytes(), encode(Image.fromarray(c.photo), "JPEG", quality=90),
               encode(Image.fromarray(c.photo), "WEBP"), encode(Image.fromarray(c.photo), "GIF")]
    for index in range(count):
        data = bytearray(sources[index % len(sources)])
        for _ in range(int(c.rng.integers(1, 6))):
            position = int(c.rng.integers(0, len(data)))
            data[position] = int(c.rng.integers(0, 256))
        suffix = ("png", "jpg", "webp", "gif")[index % len(sources)]
        path = c.file(f"mutant-{index}.{suffix}", bytes(data))
        out = c.out(f"mutations/{index}")
        c.add(Case(f"mutations/{index}-{suffix}", ["inpaint", str(path), str(c.mask_png), *FAST, "-o", str(out)],
                   (OK, BAD_INPUT)))


BUILDERS: tuple[Callable[[Corpus], None], ...] = (
    _truncations, _valid_formats, _modes, _exif, _bombs, _junk, _paths, _outputs, _options, _slips, _batches,
    _compare, _eval, _train, _weights, _clinic, _mutations,
)


def build_corpus(root: Path, fixtures: Path) -> list[Case]:
    """Write every file under ``root`` and return the cases (ids are unique)."""
    corpus = Corpus(root)
    for builder in BUILDERS:
        builder(corpus)
    _parity(corpus, fixtures)
    ids = [case.id for case in corpus.cases]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    return corpus.cases
