"""Clinic workflow end to end with the fixture-sized INCLG registered under a test name."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from inpaintstudio import cli, registry
from inpaintstudio.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_WEIGHTS_MISSING
from inpaintstudio.core.engines import EngineOutput
from inpaintstudio.face import clinic
from inpaintstudio.face.landmarks import NoFaceError
from inpaintstudio.models.inclg import network as inclg
from tests.conftest import parity_dir

TEST_MODEL = "test_inclg_clinic"


@pytest.fixture(scope="module", autouse=True)
def registered_model():
    folder = parity_dir("inclg")
    card = registry.get_card("inclg")
    config = inclg.config_from_fixture(json.loads((folder / "config.json").read_text()))
    registry.register(
        dataclasses.replace(card, name=TEST_MODEL, config=config, weights_path=folder / "weights.safetensors")
    )
    yield TEST_MODEL
    registry.unregister(TEST_MODEL)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return data.astronaut()


@pytest.fixture(scope="module")
def result(photo: np.ndarray) -> clinic.ClinicResult:
    return clinic.run_clinic(photo, model=TEST_MODEL, side="both", backend="dlib")


def _cli(argv: list[str]) -> int:
    """The command as a user runs it: the whole parser and the error boundary."""
    return cli.main(argv)


def test_outside_mask_byte_identical_inside_filled(result: clinic.ClinicResult, photo: np.ndarray) -> None:
    assert result.after.dtype == np.uint8 and result.after.shape == photo.shape
    assert result.mask.any() and not result.warnings
    assert np.array_equal(result.after[~result.mask], photo[~result.mask])
    assert (result.after[result.mask] != photo[result.mask]).any(axis=1).mean() > 0.5
    assert np.array_equal(result.before, photo)


def test_landmarks_json(result: clinic.ClinicResult) -> None:
    payload = json.loads(json.dumps(result.landmarks_json()))
    detected, predicted = np.array(payload["detected"]), np.array(payload["predicted"])
    assert detected.shape == (68, 2) and predicted.shape == (68, 2)
    np.testing.assert_allclose(detected, result.face.points, atol=1e-3)
    assert payload["backend"] == "dlib" and payload["model"] == TEST_MODEL
    assert payload["image_size"] == [512, 512]


class _EchoEngine:
    """An engine that returns its input and, as "predicted" landmarks, the detected ones in crop pixels."""

    def __init__(self, face, card) -> None:
        self.face, self.card, self.device = face, card, "cpu"
        self.seen: list[tuple[np.ndarray, np.ndarray]] = []

    def run(self, image: np.ndarray, mask: np.ndarray) -> EngineOutput:
        self.seen.append((image, mask))
        matrix = clinic.alignment_matrix(self.face, image.shape[0])
        return EngineOutput(image=1.0 - image, landmarks=clinic._apply(matrix, self.face.points))


def test_crop_and_landmarks_round_trip(result: clinic.ClinicResult, photo: np.ndarray) -> None:
    engine = _EchoEngine(result.face, registry.get_card(TEST_MODEL))
    out = clinic.run_clinic(photo, engine=engine, face=result.face)
    (crop, crop_mask), = engine.seen
    assert crop.shape == (256, 256, 3) and crop.dtype == np.float32 and crop_mask.shape == (256, 256)
    # every hole pixel of the photo lands inside the crop's hole
    ys, xs = np.nonzero(out.mask)
    cx, cy = np.round(clinic._apply(out.crop_matrix, np.stack([xs, ys], 1))).astype(int).T
    assert crop_mask[cy, cx].all()
    np.testing.assert_allclose(out.predicted, result.face.points, atol=1e-6)
    # the inverted crop comes back inverted inside the mask (up to resampling)
    diff = np.abs(out.after[out.mask].astype(int) - (255 - photo[out.mask].astype(int)))
    assert np.median(diff) < 12


def test_the_pipeline_pads_the_crop_for_the_engine(result: clinic.ClinicResult, photo: np.ndarray) -> None:
    """The crop is cut at the card's working size (250) and the pipeline pads it to the multiple (256)."""
    base = registry.get_card(TEST_MODEL)
    card = dataclasses.replace(base, working_size=250, input=dataclasses.replace(
        base.input, fixed_size=None, pad_multiple=16, min_size=16))
    engine = _EchoEngine(result.face, card)
    out = clinic.run_clinic(photo, engine=engine, face=result.face)
    (crop, crop_mask), = engine.seen
    assert out.crop_side == 250 and crop.shape == (256, 256, 3) and crop_mask.shape == (256, 256)
    assert not crop_mask[250:].any() and not crop_mask[:, 250:].any() and crop_mask[:250, :250].any()
    assert np.array_equal(out.after[~out.mask], photo[~out.mask])
    diff = np.abs(out.after[out.mask].astype(int) - (255 - photo[out.mask].astype(int)))
    assert np.median(diff) < 12


def test_alignment_puts_eyes_and_mouth_on_template(result: clinic.ClinicResult) -> None:
    for rotate in (True, False):
        matrix = clinic.alignment_matrix(result.face, 256, rotate=rotate)
        p = result.face.points
        mapped = clinic._apply(matrix, np.stack([p[36:42].mean(0), p[42:48].mean(0), (p[48] + p[54]) / 2]))
        template = np.array([clinic.ALIGNED_TEMPLATE_256[k] for k in ("eye_left", "eye_right", "mouth")])
        assert np.abs(mapped - template).max() < 6.0
        if not rotate:
            assert matrix[0, 1] == matrix[1, 0] == 0.0
    assert clinic.alignment_matrix(result.face, 512)[0, 0] == pytest.approx(2 * result.crop_matrix[0, 0])


def test_overlays_and_side_by_side(result: clinic.ClinicResult, photo: np.ndarray) -> None:
    h, w = photo.shape[:2]
    assert result.side_by_side.shape[0] == h and result.side_by_side.shape[1] > 2 * w
    assert np.array_equal(result.side_by_side[:, :w], photo)
    assert np.array_equal(result.side_by_side[:, -w:], result.after)
    assert result.overlay.shape[0] == h
    green = np.all(result.overlay_before == clinic.DETECTED_COLOUR, axis=2).sum()
    magenta = np.all(result.overlay_after == clinic.PREDICTED_COLOUR, axis=2).sum()
    assert green > 68 and magenta > 20  # some predicted points of the random-weight fixture fall outside


def test_user_mask_replaces_the_proposal(photo: np.ndarray) -> None:
    mask = np.zeros(photo.shape[:2], bool)
    mask[130:150, 205:245] = True
    mask[0:5, 0:5] = True  # far outside the aligned face crop
    out = clinic.run_clinic(photo, model=TEST_MODEL, mask=mask, backend="dlib")
    assert np.array_equal(out.mask, mask & ~_corner(photo))
    assert out.warnings and "outside the aligned face crop" in out.warnings[0]
    assert np.array_equal(out.after[~out.mask], photo[~out.mask])
    with pytest.raises(ValueError, match="mask is 10×10"):
        clinic.run_clinic(photo, model=TEST_MODEL, mask=np.ones((10, 10), bool), face=out.face)


def _corner(photo: np.ndarray) -> np.ndarray:
    corner = np.zeros(photo.shape[:2], bool)
    corner[0:5, 0:5] = True
    return corner


def test_classical_engine_gives_no_predicted_landmarks(result: clinic.ClinicResult, photo: np.ndarray) -> None:
    try:
        out = clinic.run_clinic(photo, model="opencv_telea", face=result.face)
    except registry.UnknownModelError:
        pytest.skip("opencv_telea is not registered in this checkout")
    assert out.predicted is None and "predicted" not in out.landmarks_json()
    assert np.array_equal(out.after[~out.mask], photo[~out.mask])


def test_no_face_message(photo: np.ndarray) -> None:
    brick = np.repeat(data.brick()[..., None], 3, axis=2)
    with pytest.raises(NoFaceError, match="no face found"):
        clinic.run_clinic(brick, model=TEST_MODEL, backend="dlib")


def test_cli_writes_six_files_and_nothing_else(tmp_path: Path, photo: np.ndarray) -> None:
    source = tmp_path / "in" / "face.png"
    source.parent.mkdir()
    Image.fromarray(photo).save(source)
    mask_file = tmp_path / "in" / "mask.png"
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[128:152, 200:250] = 255
    Image.fromarray(mask).save(mask_file)
    out = tmp_path / "out"
    code = _cli(["clinic", str(source), "-m", TEST_MODEL, "--landmarks", "dlib", "--mask", str(mask_file),
                 "-o", str(out)])
    assert code == EXIT_OK
    assert sorted(p.name for p in out.iterdir()) == sorted(clinic.OUTPUT_FILES)
    assert sorted(p.name for p in source.parent.iterdir()) == ["face.png", "mask.png"]
    after = np.asarray(Image.open(out / "after.png").convert("RGB"))
    written_mask = np.asarray(Image.open(out / "mask.png").convert("L")) > 127
    assert np.array_equal(written_mask, mask > 127)
    assert np.array_equal(after[~written_mask], photo[~written_mask])
    payload = json.loads((out / "landmarks.json").read_text())
    assert len(payload["detected"]) == 68 and len(payload["predicted"]) == 68


def test_cli_exit_codes(tmp_path: Path, photo: np.ndarray, capsys: pytest.CaptureFixture[str]) -> None:
    flat = tmp_path / "flat.png"
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(flat)
    assert _cli(["clinic", str(flat), "-m", TEST_MODEL, "--landmarks", "dlib", "-o", str(tmp_path / "a")]) == (
        EXIT_BAD_INPUT
    )
    assert "no face found" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()

    face = tmp_path / "face.png"
    Image.fromarray(photo).save(face)
    small_mask = tmp_path / "small.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(small_mask)
    code = _cli(["clinic", str(face), "-m", TEST_MODEL, "--landmarks", "dlib", "--mask", str(small_mask),
                 "-o", str(tmp_path / "b")])
    assert code == EXIT_BAD_INPUT and "8×8" in capsys.readouterr().err

    card = registry.get_card(TEST_MODEL)
    registry.register(dataclasses.replace(card, name="test_inclg_noweights", weights_path=tmp_path / "none.st"))
    try:
        code = _cli(["clinic", str(face), "-m", "test_inclg_noweights", "--landmarks", "dlib", "-o",
                     str(tmp_path / "c")])
    finally:
        registry.unregister("test_inclg_noweights")
    assert code == EXIT_WEIGHTS_MISSING and "none.st" in capsys.readouterr().err

    assert _cli(["clinic", str(face), "-m", "no_such_model", "--landmarks", "dlib", "-o", str(tmp_path / "d")]) == (
        EXIT_BAD_INPUT
    )
