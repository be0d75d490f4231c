"""Landmark backends (dlib on scikit-image's astronaut; FAN's offline guidance), overlays and the mask generator."""

from __future__ import annotations

import time

import numpy as np
import pytest
from skimage import data

from inpaintstudio.face import landmarks as lm


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return data.astronaut()


@pytest.fixture(scope="module")
def face(photo: np.ndarray) -> lm.FaceLandmarks:
    return lm.detect_landmarks(photo, backend="dlib")


def _centre(points: np.ndarray, indices: range | tuple[int, ...]) -> np.ndarray:
    return points[list(indices)].mean(axis=0)


def test_dlib_face_and_points(face: lm.FaceLandmarks) -> None:
    assert face.backend == "dlib"
    assert face.points.shape == (68, 2) and face.points.dtype == np.float64
    assert face.confidence is None and face.score is not None and face.score > 0.5
    x0, y0, x1, y1 = face.box
    assert 150 < x0 < 200 and 50 < y0 < 100 and 80 < x1 - x0 < 110  # astronaut's face, ~90 px box


def test_anatomy_mouth_low_nose_between(face: lm.FaceLandmarks) -> None:
    p = face.points
    x0, y0, x1, y1 = face.box
    mouth = p[48:68]
    assert (mouth[:, 1] >= y0 + 2 * (y1 - y0) / 3).all()  # mouth in the lower third of the box
    eyes_y = (_centre(p, range(36, 42))[1] + _centre(p, range(42, 48))[1]) / 2
    mouth_y = _centre(p, range(48, 68))[1]
    nose = p[30:36]
    assert (nose[:, 1] > eyes_y).all() and (nose[:, 1] < mouth_y).all()
    assert _centre(p, range(36, 42))[0] < _centre(p, range(42, 48))[0]  # image-left eye first (iBUG)


def test_left_right_pairs_mirror_about_midline(face: lm.FaceLandmarks) -> None:
    p = face.points
    x0, y0, x1, y1 = face.box
    midline = p[[27, 28, 29, 30, 33, 51, 57, 62, 66, 8], 0].mean()
    for left, right in lm.FLIP_PAIRS:
        assert p[left, 0] < midline < p[right, 0], (left, right)
        assert abs((p[left, 0] + p[right, 0]) / 2 - midline) < 0.05 * (x1 - x0), (left, right)
        assert abs(p[left, 1] - p[right, 1]) < 0.08 * (y1 - y0), (left, right)


@pytest.mark.parametrize("side", ["left", "right", "both"])
def test_mask_covers_lip_and_nose_base_inside_box(face: lm.FaceLandmarks, photo: np.ndarray, side: str) -> None:
    mask = lm.lip_nose_mask(face, photo.shape, side=side)
    assert mask.shape == photo.shape[:2] and mask.dtype == bool
    for index in (*lm.UPPER_LIP, *lm.NOSE_BASE):
        x, y = np.round(face.points[index]).astype(int)
        assert mask[y, x], index
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = face.box
    assert xs.min() >= x0 and xs.max() < x1 and ys.min() >= y0 and ys.max() < y1
    # a lip/nose region, not the whole face: between 5 % and 40 % of the box
    assert 0.05 < mask.sum() / ((x1 - x0) * (y1 - y0)) < 0.4


def test_mask_sides_differ_as_expected(face: lm.FaceLandmarks, photo: np.ndarray) -> None:
    left, right, both = (lm.lip_nose_mask(face, photo.shape, side=s) for s in ("left", "right", "both"))
    assert np.array_equal(both, left | right)
    only_left, only_right = left & ~right, right & ~left
    assert only_left.sum() > 20 and only_right.sum() > 20
    subnasale_x = face.points[33, 0]
    tolerance = 0.05 * face.interocular  # the side regions share the nose tip 30 and lip top 51 on the midline
    assert np.nonzero(only_left)[1].max() <= subnasale_x + tolerance
    assert np.nonzero(only_right)[1].min() >= subnasale_x - tolerance
    assert np.nonzero(only_left)[1].mean() < subnasale_x - 0.2 * face.interocular
    assert np.nonzero(only_right)[1].mean() > subnasale_x + 0.2 * face.interocular
    with pytest.raises(ValueError, match="side"):
        lm.lip_nose_mask(face, photo.shape, side="middle")  # type: ignore[arg-type]


def test_mask_grow_and_shrink(face: lm.FaceLandmarks, photo: np.ndarray) -> None:
    base = lm.lip_nose_mask(face, photo.shape)
    grown = lm.lip_nose_mask(face, photo.shape, grow=0.1)
    shrunk = lm.lip_nose_mask(face, photo.shape, grow=-0.2)
    assert grown.sum() > base.sum() > shrunk.sum() > 0
    assert not (shrunk & ~base).any() and not (base & ~grown).any()


def test_fan_without_weights_explains_where_to_put_them(monkeypatch: pytest.MonkeyPatch, tmp_path, photo) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    start = time.perf_counter()
    with pytest.raises(lm.LandmarkWeightsMissingError) as caught:
        lm.detect_landmarks(photo, backend="fan")
    assert time.perf_counter() - start < 5.0
    message = str(caught.value)
    folder = tmp_path / "hub" / "checkpoints"
    assert str(folder) in message
    for name, url in lm.FAN_WEIGHTS.items():
        assert name in message and url in message
    assert "--landmarks dlib" in message
    assert len(caught.value.missing) == 2
    assert lm.resolve_backend("auto") == "dlib"
    assert not folder.exists()  # nothing was downloaded or created


def test_auto_prefers_fan_when_its_files_exist(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import face_alignment  # noqa: F401  (installed by the Makefile, --no-deps)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    for name in lm.FAN_WEIGHTS:
        (folder / name).write_bytes(b"")
    assert lm.resolve_backend("auto") == "fan"
    assert lm.resolve_backend("dlib") == "dlib"
    with pytest.raises(ValueError, match="unknown landmark backend"):
        lm.resolve_backend("mediapipe")


@pytest.mark.parametrize("image", [data.brick(), np.full((240, 320), 128, np.uint8)], ids=["brick", "flat"])
def test_no_face_gives_clear_message(image: np.ndarray) -> None:
    rgb = np.repeat(image[..., None], 3, axis=2)
    with pytest.raises(lm.NoFaceError, match="no face found"):
        lm.detect_landmarks(rgb, backend="dlib")


def test_face_index_out_of_range(photo: np.ndarray) -> None:
    assert lm.detect_landmarks(photo, backend="dlib", face_index=0).box_area > 0
    with pytest.raises(lm.NoFaceError, match="face index 5"):
        lm.detect_landmarks(photo, backend="dlib", face_index=5)


def test_draw_landmarks(photo: np.ndarray, face: lm.FaceLandmarks) -> None:
    before = photo.copy()
    dots = lm.draw_landmarks(photo, face.points, color=(255, 0, 255), radius=2)
    numbered = lm.draw_landmarks(photo, face.points, color=(255, 0, 255), radius=2, numbered=True)
    assert np.array_equal(photo, before)  # the input is not drawn on
    x, y = np.round(face.points[30]).astype(int)
    assert dots[y, x].tolist() == [255, 0, 255]
    changed = (dots != photo).any(axis=2).sum()
    assert 68 * 5 < changed < 68 * 30
    assert (numbered != photo).any(axis=2).sum() > changed


def test_licence_note() -> None:
    assert "300-W" in lm.LICENCE_NOTE and "commercial" in lm.LICENCE_NOTE
    assert "300-W" in (lm.__doc__ or "")
