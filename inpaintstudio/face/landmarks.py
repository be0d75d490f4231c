"""Face detection, 68 iBUG landmarks from several backends, overlays and a lip/nose mask generator.

Every backend returns the same :class:`FaceLandmarks`: 68×2 float pixel coordinates (x, y) in the
iBUG-68 order (0–16 jaw, 17–26 brows, 27–35 nose with 31–35 the nostril base,
36–47 eyes, 48–59 outer lips, 60–67 inner lips; "left/right" = image left/right), the face box
(x0, y0, x1, y1) of the detector, an optional per-point confidence and the backend name.

Backends:

* ``fan`` — face-alignment (A. Bulat, https://github.com/1adrianb/face-alignment, BSD-3-Clause): SFD
  face detector + 2D-FAN-4 landmarks, the network INCLG's training landmarks were made with (docs/models/inclg.md).
  It needs two files in the torch hub cache, ``$TORCH_HOME/hub/checkpoints/`` (default
  ``~/.cache/torch/hub/checkpoints/``): :data:`FAN_WEIGHTS`. They are checked *before* the library
  is imported or built, so a machine without them gets :class:`LandmarkWeightsMissingError` at once
  (saying which file goes where and where it comes from) and nothing ever touches the network. The
  library's ``torch.compile`` step (which writes a cache under ``~/.cache/face_alignment``) is off.
  Per-point confidence = the heat-map maximum FAN reports.
* ``dlib`` — dlib's HOG frontal-face detector + the 68-point ``shape_predictor_68_face_landmarks.dat``
  shipped by the ``face-recognition-models`` package (located with ``importlib.util.find_spec``, its
  ``__init__`` is never imported). No per-point confidence. See :data:`LICENCE_NOTE`: the 68-point
  model was trained on iBUG 300-W, whose licence excludes commercial use.
* ``auto`` (default) — ``fan`` when its weights are present, else ``dlib``.

Several faces: :func:`detect_faces` orders them largest box first, so :func:`detect_landmarks`
returns the largest by default and ``face_index`` picks another. No face raises :class:`NoFaceError`.

:func:`lip_nose_mask` is OUR OWN generator (not part of INCLG: the thesis drew every clinical mask by
hand), see its docstring.

The thesis: S. Chen, PhD thesis, Durham University, 2025 (INCLG, HINT, M×T and SEM-Net are its chapters 3–5).
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from inpaintstudio.errors import BadInputError, CheckFailedError, WeightsUnavailableError

__all__ = [
    "LANDMARK_COUNT",
    "BACKENDS",
    "FAN_WEIGHTS",
    "LICENCE_NOTE",
    "FLIP_PAIRS",
    "UPPER_LIP",
    "NOSE_BASE",
    "LandmarkError",
    "NoFaceError",
    "BackendUnavailableError",
    "LandmarkWeightsMissingError",
    "FaceLandmarks",
    "fan_checkpoint_dir",
    "missing_fan_weights",
    "fan_available",
    "dlib_model_path",
    "resolve_backend",
    "detect_faces",
    "detect_landmarks",
    "draw_landmarks",
    "lip_nose_mask",
    "as_uint8_rgb",
]

LANDMARK_COUNT = 68
BACKENDS = ("auto", "fan", "dlib")
Side = Literal["left", "right", "both"]

#: The two face-alignment 1.5 files: name in the torch hub cache -> URL it is published at.
FAN_WEIGHTS: dict[str, str] = {
    "s3fd-619a316812.pth": "https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth",
    "2DFAN4-11f355bf06.pth.tar": "https://www.adrianbulat.com/downloads/python-fan/2DFAN4-11f355bf06.pth.tar",
}

LICENCE_NOTE = (
    "dlib's shape_predictor_68_face_landmarks.dat (shipped by face-recognition-models) was trained on the "
    "iBUG 300-W data set, whose licence excludes commercial use; use the dlib landmark backend for research "
    "only, or obtain a model trained on data that allows your use."
)

# iBUG-68 index groups.
NOSE_TIP = 30
NOSE_BASE = (31, 32, 33, 34, 35)
UPPER_LIP = (48, 49, 50, 51, 52, 53, 54)
UPPER_INNER_LIP = (60, 61, 62, 63, 64)
EYE_IMAGE_LEFT = tuple(range(36, 42))
EYE_IMAGE_RIGHT = tuple(range(42, 48))
#: Horizontal-flip correspondence (image-left index, image-right index), from the official flip helper.
FLIP_PAIRS: tuple[tuple[int, int], ...] = (
    *((p, 16 - p) for p in range(8)),
    *((17 + i, 26 - i) for i in range(5)),
    (31, 35), (32, 34), (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46),
    (48, 54), (49, 53), (50, 52), (59, 55), (58, 56), (60, 64), (61, 63), (67, 65),
)

# dlib: a weak detection is dropped when a strong face exists (HOG finds face-like texture too).
_DLIB_STRONG_SCORE = 0.3
# dlib's HOG detector is run on a copy whose longer side is at most this (speed on camera photos).
_DLIB_DETECT_SIDE = 1024


class LandmarkError(CheckFailedError, RuntimeError):
    """Base class of landmark failures with a message meant for the user."""


class NoFaceError(BadInputError, LandmarkError):
    """No face was found in the image."""


class BackendUnavailableError(LandmarkError):
    """A landmark backend cannot run on this machine (package or model file missing)."""


class LandmarkWeightsMissingError(WeightsUnavailableError, BackendUnavailableError):
    """A backend's weight files are not on disk; ``missing`` lists (path, URL) pairs."""

    def __init__(self, message: str, missing: Sequence[tuple[Path, str]]) -> None:
        super().__init__(message)
        self.missing = list(missing)


@dataclass(frozen=True)
class FaceLandmarks:
    """One face: ``points`` 68×2 float64 pixel (x, y); ``box`` (x0, y0, x1, y1) in pixels.

    ``confidence`` is a per-point score (FAN heat-map maxima) or ``None``; ``score`` the detector's.
    """

    points: np.ndarray
    box: tuple[float, float, float, float]
    backend: str
    confidence: np.ndarray | None = None
    score: float | None = None

    @property
    def box_area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)

    @property
    def interocular(self) -> float:
        """Distance between the two eye centres (means of points 36–41 and 42–47), in pixels."""
        left = self.points[list(EYE_IMAGE_LEFT)].mean(axis=0)
        right = self.points[list(EYE_IMAGE_RIGHT)].mean(axis=0)
        return float(np.linalg.norm(right - left))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "backend": self.backend,
            "box": [float(v) for v in self.box],
            "points": self.points.astype(float).round(3).tolist(),
        }
        if self.confidence is not None:
            out["confidence"] = self.confidence.astype(float).round(4).tolist()
        if self.score is not None:
            out["score"] = float(self.score)
        return out


# ------------------------------------------------------------------------------------ locating files
def fan_checkpoint_dir() -> Path:
    """face-alignment's weight folder: ``torch.hub.get_dir()/checkpoints`` (honours ``$TORCH_HOME``)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def missing_fan_weights() -> list[tuple[Path, str]]:
    """The FAN files that are not on disk, as (expected path, URL)."""
    folder = fan_checkpoint_dir()
    return [(folder / name, url) for name, url in FAN_WEIGHTS.items() if not (folder / name).is_file()]


def _fan_missing_message(missing: Sequence[tuple[Path, str]]) -> str:
    folder = fan_checkpoint_dir()
    lines = [
        "The FAN landmark backend (face-alignment) needs weight files that are not on this machine.",
        f"Put these files in the folder {folder} (the torch hub cache; set TORCH_HOME to use another):",
    ]
    lines += [f"  {path.name}  from  {url}" for path, url in missing]
    lines.append("Or use the dlib backend (--landmarks dlib), which ships its model with face-recognition-models.")
    return "\n".join(lines)


def fan_available() -> bool:
    """Whether the FAN backend can run offline: package importable and both weight files present."""
    return importlib.util.find_spec("face_alignment") is not None and not missing_fan_weights()


def dlib_model_path() -> Path | None:
    """``shape_predictor_68_face_landmarks.dat`` of face-recognition-models, or ``None``."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "models" / "shape_predictor_68_face_landmarks.dat"
    return path if path.is_file() else None


def resolve_backend(name: str = "auto") -> str:
    """``fan`` or ``dlib`` for a requested backend; ``auto`` prefers FAN when its weights are present."""
    if name not in BACKENDS:
        raise ValueError(f"unknown landmark backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name != "auto":
        return name
    return "fan" if fan_available() else "dlib"


# ------------------------------------------------------------------------------------------ backends
def as_uint8_rgb(image: np.ndarray) -> np.ndarray:
    """An H×W×3 uint8 RGB array (C-contiguous) from uint8 or float [0, 1] input."""
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 RGB image, got shape {array.shape}")
    if array.dtype != np.uint8:
        array = (np.clip(array.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(array)


@functools.lru_cache(maxsize=2)
def _fan_model(device: str) -> Any:
    import face_alignment

    detector = fan_checkpoint_dir() / "s3fd-619a316812.pth"
    return face_alignment.FaceAlignment(
        face_alignment.LandmarksType.TWO_D,
        device=device,
        face_detector="sfd",
        face_detector_kwargs={"path_to_detector": str(detector)},
        compile=False,
    )


def _detect_fan(image: np.ndarray, device: str | None) -> list[FaceLandmarks]:
    missing = missing_fan_weights()
    if missing:  # checked before importing or building anything: no download attempt, no wait
        raise LandmarkWeightsMissingError(_fan_missing_message(missing), missing)
    if importlib.util.find_spec("face_alignment") is None:
        raise BackendUnavailableError("the FAN backend needs the face-alignment package (pip install face-alignment)")
    from inpaintstudio.core.engines import select_device

    model = _fan_model(select_device(device))
    points, scores, boxes = model.get_landmarks_from_image(image, return_bboxes=True, return_landmark_score=True)
    if points is None:
        return []
    faces = []
    for pts, conf, box in zip(points, scores, boxes):
        faces.append(
            FaceLandmarks(
                points=np.asarray(pts, dtype=np.float64)[:, :2],
                box=tuple(float(v) for v in box[:4]),
                backend="fan",
                confidence=np.asarray(conf, dtype=np.float64).reshape(-1),
                score=float(box[4]) if len(box) > 4 else None,
            )
        )
    return faces


@functools.lru_cache(maxsize=1)
def _dlib_models(path: str) -> tuple[Any, Any]:
    import dlib

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(path)


def _detect_dlib(image: np.ndarray) -> list[FaceLandmarks]:
    if importlib.util.find_spec("dlib") is None:
        raise BackendUnavailableError("the dlib backend needs the dlib-bin package (pip install dlib-bin)")
    path = dlib_model_path()
    if path is None:
        raise LandmarkWeightsMissingError(
            "the dlib backend needs shape_predictor_68_face_landmarks.dat from the face-recognition-models "
            "package (pip install face-recognition-models)",
            [],
        )
    import dlib

    detector, predictor = _dlib_models(str(path))
    scale = min(1.0, _DLIB_DETECT_SIDE / max(image.shape[:2]))
    small = image if scale == 1.0 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    rects, scores, _ = detector.run(small, 1, 0.0)
    detections = [
        ((r.left() / scale, r.top() / scale, (r.right() + 1) / scale, (r.bottom() + 1) / scale), float(s))
        for r, s in zip(rects, scores)
    ]
    if any(s >= _DLIB_STRONG_SCORE for _, s in detections):
        detections = [d for d in detections if d[1] >= _DLIB_STRONG_SCORE]
    faces = []
    for (x0, y0, x1, y1), score in detections:
        rect = dlib.rectangle(int(round(x0)), int(round(y0)), int(round(x1)) - 1, int(round(y1)) - 1)
        shape = predictor(image, rect)
        pts = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
        faces.append(FaceLandmarks(points=pts, box=(x0, y0, x1, y1), backend="dlib", score=score))
    return faces


def detect_faces(image: np.ndarray, backend: str = "auto", device: str | None = None) -> list[FaceLandmarks]:
    """Every face with its 68 landmarks, largest box first (ties: higher detector score first).

    Args:
        image: H×W×3 RGB, uint8 or float in [0, 1].
        backend: ``auto`` | ``fan`` | ``dlib``.
        device: torch device for FAN (``None`` = auto).
    """
    rgb = as_uint8_rgb(image)
    chosen = resolve_backend(backend)
    faces = _detect_fan(rgb, device) if chosen == "fan" else _detect_dlib(rgb)
    return sorted(faces, key=lambda f: (-f.box_area, -(f.score or 0.0)))


def detect_landmarks(
    image: np.ndarray, backend: str = "auto", face_index: int | None = None, device: str | None = None
) -> FaceLandmarks:
    """The landmarks of one face: the largest, or ``face_index`` in :func:`detect_faces`' order.

    Raises:
        NoFaceError: no face found, or ``face_index`` out of range.
        LandmarkWeightsMissingError / BackendUnavailableError: the backend cannot run here.
    """
    faces = detect_faces(image, backend=backend, device=device)
    used = faces[0].backend if faces else resolve_backend(backend)
    if not faces:
        h, w = np.asarray(image).shape[:2]
        raise NoFaceError(
            f"no face found in the {w}×{h} image (landmark backend: {used}). Use a frontal photo in which the "
            "whole face is visible, or draw the mask by hand and pass it with --mask."
        )
    index = 0 if face_index is None else int(face_index)
    if not 0 <= index < len(faces):
        raise NoFaceError(
            f"face index {index} requested but {len(faces)} face(s) were found (valid: 0…{len(faces) - 1})"
        )
    return faces[index]


# ------------------------------------------------------------------------------------------ drawing
def draw_landmarks(
    image: np.ndarray,
    points: np.ndarray,
    color: tuple[int, int, int] = (0, 255, 0),
    radius: int | None = None,
    numbered: bool = False,
) -> np.ndarray:
    """A copy of ``image`` (uint8 RGB) with ``points`` (K×2 pixel x, y) drawn as filled dots in ``color``.

    ``radius`` defaults to about 1/200 of the shorter side (at least 2 px); ``numbered`` writes each
    point's index beside it in the same colour.
    """
    canvas = as_uint8_rgb(image).copy()
    side = min(canvas.shape[:2])
    r = max(2, int(round(side / 200))) if radius is None else int(radius)
    for index, (x, y) in enumerate(np.asarray(points, dtype=np.float64)):
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        centre = (int(round(x)), int(round(y)))
        cv2.circle(canvas, centre, r, color, thickness=-1, lineType=cv2.LINE_AA)
        if numbered:
            scale = max(0.3, r / 5)
            cv2.putText(canvas, str(index), (centre[0] + r + 1, centre[1] - r - 1), cv2.FONT_HERSHEY_SIMPLEX, scale,
                        color, max(1, r // 3), cv2.LINE_AA)
    return canvas


# --------------------------------------------------------------------------------- mask generator
def _hull_mask(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.uint8)
    hull = cv2.convexHull(np.round(points).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1, lineType=cv2.LINE_8)
    return mask


def _nostril_region(points: np.ndarray, side: Literal["left", "right"]) -> np.ndarray:
    """Points of one nostril / alar base and the lip below it (image side), plus two constructed points."""
    if side == "left":
        alar, nostril, lip = 31, 32, (48, 49, 50)
    else:
        alar, nostril, lip = 35, 34, (54, 53, 52)
    outward = points[alar] - points[33]
    lateral = points[alar] + 0.6 * outward  # beyond the alar edge, away from the midline (alar base)
    alar_top = points[alar] + 0.3 * outward + (points[NOSE_TIP] - points[33])  # nostril top, at nose-tip height
    picked = [NOSE_TIP, alar, nostril, 33, 51, *lip]
    return np.vstack([points[picked], lateral[None], alar_top[None]])


def lip_nose_mask(
    face: FaceLandmarks,
    image_shape: tuple[int, ...],
    side: Side = "both",
    margin: float = 0.12,
    grow: float = 0.0,
) -> np.ndarray:
    """A proposed cleft-region hole mask (bool H×W, True = hole). OUR OWN generator, not INCLG's.

    INCLG's clinical masks were drawn by hand. Here:

    1. core: convex hull of the upper lip (48–54, inner 60–64) and the nostril base (31–35);
    2. the affected side(s): convex hull of the nose tip 30, that side's alar edge (31 image-left / 35
       image-right), nostril (32 / 34), the subnasale 33, the lip top 51, that half of the upper lip
       (48–50 / 52–54), a point 0.6 subnasale-to-alar distances beyond the alar edge (alar base) and
       a point above the alar edge at nose-tip height (nostril top) — so the nostril and alar base of
       that side are covered up to the nose tip;
    3. union of the core with the side region(s) of ``side``: ``"left"`` / ``"right"`` = a unilateral
       cleft on the image-left / image-right side (image convention; a patient's right
       side appears on the image left in a frontal photo), ``"both"`` = bilateral;
    4. dilated (or, if negative, eroded) by a disc of radius (``margin`` + ``grow``) × the
       inter-ocular distance (eye-centre to eye-centre), so it scales with the face;
    5. clipped to the detector's face box.

    With the defaults every point 31–35 and 48–54 lies inside the mask; a negative ``grow`` shrinks it
    and may uncover them.
    """
    height, width = int(image_shape[0]), int(image_shape[1])
    if side not in ("left", "right", "both"):
        raise ValueError(f"side must be 'left', 'right' or 'both', got {side!r}")
    pts = np.asarray(face.points, dtype=np.float64)
    core = pts[list(UPPER_LIP + UPPER_INNER_LIP + NOSE_BASE)]
    mask = _hull_mask((height, width), core)
    for s in ("left", "right"):
        if side in (s, "both"):
            mask |= _hull_mask((height, width), _nostril_region(pts, s))
    radius = int(round((margin + grow) * face.interocular))
    if radius != 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(radius) + 1, 2 * abs(radius) + 1))
        mask = cv2.dilate(mask, kernel) if radius > 0 else cv2.erode(mask, kernel)
    x0, y0, x1, y1 = face.box
    inside = np.zeros_like(mask)
    top, bottom = max(0, int(np.ceil(y0))), min(height, int(np.floor(y1)))
    left, right = max(0, int(np.ceil(x0))), min(width, int(np.floor(x1)))
    inside[top:bottom, left:right] = 1
    return (mask & inside).astype(bool)
