"""Every reproducer of the "bad input and slips" report, pinned: each is a case of the fuzz corpus
(run by tests/test_fuzz.py) or a test here, for what the corpus cannot express."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpaintstudio import io, registry
from inpaintstudio.cli import boundary, main
from inpaintstudio.core import pipeline
from tests.fuzz.corpus import Case, png_with_chunk
from tests.fuzz.session import CASES, run_in_process

#: report line -> the corpus cases that reproduce it
REPRODUCERS: dict[str, tuple[str, ...]] = {
    "corrupt EXIF (SyntaxError: not a TIFF file)": ("exif/corrupt-png-garbage", "exif/corrupt-mask-garbage",
                                                    "exif/corrupt-jpeg-app1"),
    "symlink loop (RuntimeError from Path.resolve)": ("paths/loop-image", "paths/loop-mask"),
    "-o FILE/out.png": ("outputs/under-a-file", "compare/under-a-file", "eval/json-under-a-file",
                        "clinic/output-under-a-file"),
    "-o /proc/x.png": ("outputs/proc", "compare/proc", "eval/json-proc", "clinic/output-in-proc"),
    "300-character name": ("outputs/long-name", "compare/long-name", "eval/json-long-name", "clinic/output-long-name"),
    "folder input with an existing file as -o": ("batch/output-is-a-file",),
    "compare: output = input": ("compare/onto-input", "compare/onto-mask"),
    "compare: -o g.gif": ("compare/gif",),
    "compare: zTXt bomb": ("bombs/compare-ztxt.png", "bombs/image-ztxt.png"),
    "compare: --tile-size -3": ("compare/tile--3",),
    "INPAINTSTUDIO_MAX_PIXELS=inf": ("bombs/env-inf", "bombs/env-nan", "bombs/env-0", "bombs/env-lots"),
    "--device cuda:7": ("options/device-cuda7",),
    "eval: truncated image": ("eval/truncated-image",),
    "eval: junk mask file": ("eval/junk-mask",),
    "eval: --weights empty or random": ("eval/weights-empty", "eval/weights-random-pth",
                                        "eval/weights-random-safetensors"),
    "weights import: wrong keys": ("weights/wrong-keys", "weights/wrong-keys-pth"),
    "weights import: a classical engine": ("weights/classical-engine",),
    "parity: broken config.json": ("parity/broken-json",),
    "parity: config without 'config'": ("parity/no-config",),
    "parity: unknown model name": ("parity/unknown-model-flag", "parity/unknown-model-in-config"),
    "train: malformed YAML": ("train/malformed.yaml", "train/tabs.yaml"),
    "clinic: input named before.png inside -o": ("clinic/input-named-before-inside-output",),
    "-o = the mask": ("outputs/onto-mask", "outputs/onto-mask-dot", "outputs/onto-mask-overwrite"),
    "existing output overwritten silently": ("outputs/existing-refused", "outputs/existing-overwrite",
                                             "clinic/earlier-run-kept", "eval/json-exists"),
    "-o newdir/ writes a file": ("outputs/new-folder-slash",),
    "-o '' writes into the current folder": ("outputs/empty", "compare/empty"),
    "batch: a.jpg and a.png both write a.png": ("batch/colliding-outputs",),
    "batch: one bad file aborts": ("batch/continues-past-bad-files",),
    "non-UTF-8 file name": ("paths/non-utf8-image", "paths/non-utf8-output"),
    "image and mask swapped": ("slips/swapped", "batch/swapped-pair-refused"),
    "-o out.jpg is lossy without a word": ("outputs/lossy.jpg", "outputs/lossy.webp"),
    "wrong-size message names resize=True": ("slips/mask-other-size",),
    "compare writes a partial grid": ("compare/weights-missing",),
    "--tile-size 2 runs 65 s": ("options/tile-two", "compare/tile-2"),
}


def test_every_reproducer_is_a_corpus_case() -> None:
    ids = {case.id for case in CASES}
    missing = {line: [i for i in cases if i not in ids] for line, cases in REPRODUCERS.items()}
    assert not {line: cases for line, cases in missing.items() if cases}


def _photo(path: Path, size: tuple[int, int] = (40, 32)) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def _mask(path: Path, size: tuple[int, int] = (40, 32)) -> Path:
    hole = np.zeros((size[1], size[0]), np.uint8)
    hole[8:16, 10:20] = 255
    Image.fromarray(hole).save(path)
    return path


def test_crop_hands_a_mostly_hole_region_to_auto() -> None:
    """The all-hole 2400×1800 run with --strategy crop took 171 s as one direct region (auto: 2.9 s)."""
    card = registry.get_card("patchmatch")
    hole = np.ones((2400, 3600), bool)  # larger than the card's tile size
    crop = pipeline.plan_regions(hole, card, pipeline.InpaintOptions(strategy="crop"))
    auto = pipeline.plan_regions(hole, card, pipeline.InpaintOptions(strategy="auto"))
    assert [(p.box, p.mode, p.scale) for p in crop] == [(p.box, p.mode, p.scale) for p in auto]
    assert crop[0].mode == "refine" and "mostly hole" in crop[0].notice
    frame = np.zeros((1800, 2400), bool)
    frame[100:1500, 100:1000] = True
    frame[120:1480, 120:980] = False  # a thin frame: a large region, little of it hole: crop keeps it whole
    plans = pipeline.plan_regions(frame, card, pipeline.InpaintOptions(strategy="crop"))
    assert [(p.mode, p.notice) for p in plans] == [("direct", "")]


def test_crop_notice_reaches_the_command_line(tmp_path: Path) -> None:
    image = _photo(tmp_path / "big.png", (900, 800))
    mask = tmp_path / "all.png"
    Image.new("L", (900, 800), 255).save(mask)
    case = Case("crop", ["inpaint", str(image), str(mask), "-m", "patchmatch", "--strategy", "crop",
                         "--tile-size", "512", "-o", str(tmp_path / "out.png")], 0)
    code, _, stderr = run_in_process(case)
    assert code == 0 and "mostly hole" in stderr


@pytest.mark.parametrize("options, flag", [({"tile_size": 2}, "--tile-size"), ({"tile_size": -3}, "--tile-size"),
                                           ({"margin": -1}, "--margin"), ({"strategy": "magic"}, "strategy")])
def test_strategy_values_are_checked_by_the_pipeline(options: dict, flag: str) -> None:
    image = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(pipeline.OptionError) as info:
        pipeline.inpaint(image, np.ones((16, 16), bool), "opencv_telea", options)
    assert flag in info.value.cli_message


def test_minimum_tile_is_the_models() -> None:
    card = registry.get_card("patchmatch")
    assert pipeline.min_tile_size(card) == 64
    assert pipeline.check_options({"tile_size": 64}, card).tile_size == 64


def test_debug_shows_the_traceback_and_keeps_the_code(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["inpaint", str(tmp_path / "missing.png"), str(tmp_path / "m.png"), "-o", str(tmp_path / "o.png")]
    assert main(args) == 2
    quiet = capsys.readouterr().err
    assert "Traceback" not in quiet and quiet.startswith("error: ") and quiet.count("\n") == 1
    assert main([*args, "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err
    assert main(["--debug", *args]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_a_real_bug_is_not_hidden(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(pipeline, "inpaint", broken)
    with pytest.raises(ZeroDivisionError):
        main(["inpaint", str(_photo(tmp_path / "p.png")), str(_mask(tmp_path / "m.png")), "-m", "opencv_telea",
              "-o", str(tmp_path / "o.png")])


def test_exit_codes_of_expected_failures() -> None:
    from inpaintstudio.core.engines import DeviceError
    from inpaintstudio.core.parity import ParityInputError
    from inpaintstudio.weights import WeightsError

    card = registry.get_card("mxt")
    assert boundary.exit_code_of(registry.WeightsMissingError("m", card=card, expected=Path("x"))) == 3
    for error in (io.ImageReadError("x"), registry.UnknownModelError("x"), DeviceError("x"), WeightsError("x"),
                  ParityInputError("x"), pipeline.OptionError("x"), PermissionError(13, "Permission denied", "/x")):
        assert boundary.exit_code_of(error) == 2, error
    for error in (ZeroDivisionError(), KeyError("x"), AttributeError("x"), ValueError("x")):
        assert boundary.exit_code_of(error) is None, error
    assert boundary.message_of(PermissionError(13, "Permission denied", "/x")) == "'/x': permission denied"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code = main(["inpaint", str(_photo(tmp_path / "p.png")), str(_mask(tmp_path / "m.png")), "-m",
                     "opencv_telea", "-o", str(locked / "out.png")])
    finally:
        locked.chmod(0o755)
    assert code == 2 and "permission denied" in capsys.readouterr().err


def test_studio_opens_a_photo_with_corrupt_exif(tmp_path: Path) -> None:
    from inpaintstudio.ui.session import EditSession, StudioConfig
    from inpaintstudio.ui.tabs.edit import _image_status

    plain = _photo(tmp_path / "plain.png")
    broken = tmp_path / "bad_exif.png"
    broken.write_bytes(png_with_chunk(plain.read_bytes(), b"eXIf", b"garbage-not-tiff"))
    (tmp_path / "session").mkdir()
    session = EditSession(StudioConfig(), tmp_path / "session")
    loaded = session.open(str(broken))
    assert session.size == (40, 32)
    np.testing.assert_array_equal(loaded.rgb, np.asarray(Image.open(plain)))
    assert "EXIF block unreadable and ignored" in _image_status(session, loaded.notes)
    session.close()
