"""Clinic workflow, engine side: photo -> face and landmarks -> proposed mask -> aligned crop -> any
registered inpainting engine -> pasted back inside the mask at full resolution.

Steps (:func:`run_clinic`):

1. Face and 68 landmarks (:mod:`inpaintstudio.face.landmarks`, backend ``auto`` | ``fan`` | ``dlib``; the
   largest face, or ``face_index``).
2. A proposed cleft-region mask from the landmarks (:func:`inpaintstudio.face.landmarks.lip_nose_mask`, our
   own generator; ``side`` = left | right | both) unless the caller passes a mask (drawn or edited by
   hand, as the thesis did for every clinical image).
3. The face is cropped and aligned to the engine's input side S (256 for INCLG) the way INCLG's
   training images were made: training used CelebA's *aligned* crops (faces rotated upright with
   eyes and mouth at fixed places), centre-cropped to a square and resized to 256 (docs/models/inclg.md). The
   photo is mapped by a similarity transform (rotation, uniform scale, translation; least squares)
   that puts the eye centres (means of points 36–41 and 42–47) and the mouth centre (mean of 48 and
   54) where CelebA's mean aligned landmarks fall after that crop (:data:`ALIGNED_TEMPLATE_256`,
   INFERRED from CelebA's published mean positions, see below). ``rotate=False`` keeps the photo
   upright (crop + resize only, as the thesis words it).
4. The S×S crop and its mask go through :func:`inpaintstudio.core.pipeline.inpaint` (strategy ``full``) with any
   registered engine: the pipeline applies the card's convention and padding and composites inside the mask.
5. The filled crop is warped back with the inverse transform and written into the photo *inside the
   mask only*; every pixel outside the mask keeps its input bytes. Mask pixels that the crop does not
   reach are left unchanged and reported in ``warnings``.

Outputs (:class:`ClinicResult`): before, after, the mask used, overlays (detected landmarks on the
input in green, predicted landmarks on the output in magenta, mask outline in yellow), a side-by-side
image and a landmarks dict ``{"detected": 68 [x, y], "predicted": 68 [x, y]}`` in photo pixels
(``predicted`` only for engines with the ``landmarks`` capability).

Template (INFERRED): CelebA's ``img_align_celeba`` (178×218) places, on average, the eyes at about
(69, 111) and (108, 111) and the mouth corners at about (72, 152) and (106, 152). Removing 20 rows
top and bottom (178×178) and scaling by 256/178 gives the 256×256 positions below.

CLI (:func:`add_clinic_command`, listed in ``cli.COMMANDS``): ``clinic IMAGE [-m MODEL] [--side both]
[--landmarks auto|fan|dlib] [--mask FILE] [--face N] -o DIR`` writes before.png, after.png, mask.png, overlay.png,
side_by_side.png and landmarks.json into DIR and nowhere else.

The thesis: S. Chen, PhD thesis, Durham University, 2025 (INCLG, HINT, M×T and SEM-Net are its chapters 3–5).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from inpaintstudio.core.grid import outline_mask
from inpaintstudio.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, EXIT_WEIGHTS_MISSING
from inpaintstudio.face.landmarks import (
    FaceLandmarks,
    Side,
    as_uint8_rgb,
    detect_landmarks,
    draw_landmarks,
    lip_nose_mask,
)

if TYPE_CHECKING:  # pragma: no cover
    from inpaintstudio.core.engines import Engine

__all__ = [
    "ALIGNED_TEMPLATE_256",
    "DETECTED_COLOUR",
    "PREDICTED_COLOUR",
    "MASK_COLOUR",
    "ClinicResult",
    "propose_mask",
    "alignment_matrix",
    "engine_input_side",
    "run_clinic",
    "add_clinic_command",
    "write_outputs",
    "OUTPUT_FILES",
]

#: Eye centres and mouth centre of CelebA's mean aligned face in the 256×256 training frame (INFERRED).
ALIGNED_TEMPLATE_256: dict[str, tuple[float, float]] = {
    "eye_left": (69.0 * 256 / 178, (111.0 - 20) * 256 / 178),
    "eye_right": (108.0 * 256 / 178, (111.0 - 20) * 256 / 178),
    "mouth": (89.0 * 256 / 178, (152.0 - 20) * 256 / 178),
}
DETECTED_COLOUR = (0, 255, 0)
PREDICTED_COLOUR = (255, 0, 255)
MASK_COLOUR = (255, 220, 0)
OUTPUT_FILES = ("before.png", "after.png", "mask.png", "overlay.png", "side_by_side.png", "landmarks.json")


@dataclass
class ClinicResult:
    """Everything one clinic run produced; images are uint8 RGB at the photo's resolution."""

    before: np.ndarray
    after: np.ndarray
    mask: np.ndarray
    face: FaceLandmarks
    predicted: np.ndarray | None
    overlay_before: np.ndarray
    overlay_after: np.ndarray
    side_by_side: np.ndarray
    model: str
    crop_matrix: np.ndarray
    crop_side: int
    warnings: list[str] = field(default_factory=list)

    @property
    def overlay(self) -> np.ndarray:
        """Both overlays side by side (input with detected points | output with predicted points)."""
        return _side_by_side(self.overlay_before, self.overlay_after)

    def landmarks_json(self) -> dict[str, Any]:
        height, width = self.before.shape[:2]
        out: dict[str, Any] = {
            "detected": np.round(self.face.points, 3).tolist(),
            "backend": self.face.backend,
            "face_box": [round(float(v), 3) for v in self.face.box],
            "model": self.model,
            "image_size": [int(width), int(height)],
        }
        if self.predicted is not None:
            out["predicted"] = np.round(self.predicted, 3).tolist()
        return out


# ------------------------------------------------------------------------------------------ geometry
def _eye_mouth_points(points: np.ndarray) -> np.ndarray:
    return np.stack([points[36:42].mean(axis=0), points[42:48].mean(axis=0), (points[48] + points[54]) / 2])


def alignment_matrix(face: FaceLandmarks, side: int, rotate: bool = True) -> np.ndarray:
    """2×3 similarity transform photo -> S×S crop (least squares on eye and mouth centres).

    ``rotate=False`` fits scale and translation only (the crop stays upright).
    """
    src = _eye_mouth_points(np.asarray(face.points, dtype=np.float64))
    dst = np.array([ALIGNED_TEMPLATE_256[k] for k in ("eye_left", "eye_right", "mouth")]) * (side / 256.0)
    src_c, dst_c = src - src.mean(axis=0), dst - dst.mean(axis=0)
    if rotate:
        a = float(np.sum(src_c * dst_c))
        b = float(np.sum(src_c[:, 0] * dst_c[:, 1] - src_c[:, 1] * dst_c[:, 0]))
        norm = float(np.sum(src_c**2))
        linear = np.array([[a, -b], [b, a]]) / norm
    else:
        scale = float(np.sum(src_c * dst_c)) / float(np.sum(src_c**2))
        linear = np.eye(2) * scale
    offset = dst.mean(axis=0) - linear @ src.mean(axis=0)
    return np.hstack([linear, offset[:, None]])


def _invert(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(matrix.astype(np.float64))


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return np.asarray(points, dtype=np.float64) @ matrix[:, :2].T + matrix[:, 2]


def _warp_to_crop(rgb: np.ndarray, matrix: np.ndarray, side: int) -> np.ndarray:
    """Photo -> S×S crop; large photos are first shrunk with area averaging to the crop's scale."""
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    source, m = rgb, matrix.copy()
    if scale < 1.0:
        source = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        m[:, :2] = m[:, :2] / scale
    return cv2.warpAffine(source, m, (side, side), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)


def engine_input_side(card: Any) -> int:
    """The side S of the aligned crop: the engine's fixed size, else its working size. The pipeline pads the
    crop to the card's multiple, as it does for every request."""
    return int(card.input.fixed_size or card.working_size)


# --------------------------------------------------------------------------------------------- steps
def propose_mask(
    image: np.ndarray,
    backend: str = "auto",
    side: Side = "both",
    face_index: int | None = None,
    margin: float = 0.12,
    grow: float = 0.0,
    device: str | None = None,
) -> tuple[FaceLandmarks, np.ndarray]:
    """Detect the face and propose a cleft-region mask (bool H×W) for the user to accept or edit."""
    face = detect_landmarks(image, backend=backend, face_index=face_index, device=device)
    return face, lip_nose_mask(face, image.shape, side=side, margin=margin, grow=grow)


def _paste_back(
    photo: np.ndarray, filled_crop: np.ndarray, mask: np.ndarray, matrix: np.ndarray
) -> np.ndarray:
    """Photo with the filled crop warped back into ``mask`` (only there); float crop in [0, 1]."""
    after = photo.copy()
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return after
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    # crop coordinates of the bounding box's pixel (0, 0) and the box -> crop mapping
    box_to_crop = matrix.copy()
    box_to_crop[:, 2] = matrix[:, :2] @ np.array([x0, y0], dtype=np.float64) + matrix[:, 2]
    warped = cv2.warpAffine(
        filled_crop.astype(np.float32), box_to_crop, (int(x1 - x0), int(y1 - y0)),
        flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE,
    )
    values = np.clip(warped * 255.0 + 0.5, 0, 255).astype(np.uint8)
    region = mask[y0:y1, x0:x1]
    after[y0:y1, x0:x1][region] = values[region]
    return after


def _reachable(mask: np.ndarray, matrix: np.ndarray, side: int) -> np.ndarray:
    """Mask pixels whose crop position lies inside the S×S crop."""
    ys, xs = np.nonzero(mask)
    crop_xy = _apply(matrix, np.stack([xs, ys], axis=1))
    inside = np.all((crop_xy >= 0) & (crop_xy <= side - 1), axis=1)
    out = np.zeros_like(mask)
    out[ys[inside], xs[inside]] = True
    return out


def _side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    gap = np.full((left.shape[0], max(4, left.shape[1] // 100), 3), 255, dtype=np.uint8)
    return np.hstack([left, gap, right])


#: The clinic's model: INCLG with its authors' CelebA weights (faces, predicted landmarks).
DEFAULT_MODEL = "inclg:celeba"


def default_model() -> str:
    """What a bare ``inclg`` runs on this machine (its own file, else :data:`DEFAULT_MODEL` or another
    installed variant), or :data:`DEFAULT_MODEL` when none is installed (its message says how to fetch it)."""
    from inpaintstudio.core import loading

    resolved = loading.resolve_model("inclg")
    return resolved.name if resolved.runnable else DEFAULT_MODEL


def run_clinic(
    image: np.ndarray,
    model: str | None = None,
    mask: np.ndarray | None = None,
    side: Side = "both",
    backend: str = "auto",
    face_index: int | None = None,
    device: str | None = None,
    face: FaceLandmarks | None = None,
    engine: "Engine | None" = None,
    rotate: bool = True,
    margin: float = 0.12,
    grow: float = 0.0,
) -> ClinicResult:
    """The whole clinic run on an RGB uint8 photo (H×W×3, already EXIF-upright).

    Args:
        model: a registered engine name (``inclg:celeba``, ``patchmatch``, …; default :func:`default_model`);
            ignored when ``engine`` is given.
        mask: a replacement or edited hole mask (bool H×W); ``None`` = the proposed one.
        side / margin / grow: passed to the mask generator when ``mask`` is ``None``.
        backend / face_index / device: landmark detection (``face`` skips detection).
        engine: an already loaded engine (the UI keeps one).
        rotate: align in-plane rotation as well (default); False = upright crop and resize only.

    Raises:
        NoFaceError, LandmarkWeightsMissingError (detection), WeightsMissingError, UnknownModelError
        (engine), ValueError (a mask of another size, or an empty mask).
    """
    from inpaintstudio.core import loading, pipeline

    photo = as_uint8_rgb(image)
    if face is None:
        face = detect_landmarks(photo, backend=backend, face_index=face_index, device=device)
    if mask is None:
        mask = lip_nose_mask(face, photo.shape, side=side, margin=margin, grow=grow)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != photo.shape[:2]:
        raise ValueError(
            f"the mask is {mask.shape[1]}×{mask.shape[0]} but the photo is {photo.shape[1]}×{photo.shape[0]}"
        )
    if not mask.any():
        raise ValueError("the mask is empty: nothing to inpaint")
    if engine is None:
        engine = loading.load(model or default_model(), device)
    side_px = engine_input_side(engine.card)
    matrix = alignment_matrix(face, side_px, rotate=rotate)

    warnings: list[str] = []
    used = _reachable(mask, matrix, side_px)
    if used.sum() < mask.sum():
        outside = int(mask.sum() - used.sum())
        warnings.append(f"{outside} mask pixels lie outside the aligned face crop and were left as they are")
    crop = _warp_to_crop(photo, matrix, side_px)
    crop_mask = cv2.warpAffine(used.astype(np.float32), matrix, (side_px, side_px), flags=cv2.INTER_LINEAR) > 0
    filled = pipeline.inpaint(crop, crop_mask, engine=engine, options=pipeline.InpaintOptions(strategy="full"),
                              keep_float=True)
    after = _paste_back(photo, filled.image01, used, matrix)

    predicted = None
    if filled.landmarks is not None:
        predicted = _apply(_invert(matrix), filled.landmarks)
    radius = max(2, int(round(face.interocular / 40)))
    thickness = max(1, radius // 2)
    outlined = outline_mask(photo, used, MASK_COLOUR, thickness, antialiased=True)
    overlay_before = draw_landmarks(outlined, face.points, DETECTED_COLOUR, radius)
    overlay_after = outline_mask(after, used, MASK_COLOUR, thickness, antialiased=True)
    if predicted is not None:
        overlay_after = draw_landmarks(overlay_after, predicted, PREDICTED_COLOUR, radius)
    return ClinicResult(
        before=photo,
        after=after,
        mask=used,
        face=face,
        predicted=predicted,
        overlay_before=overlay_before,
        overlay_after=overlay_after,
        side_by_side=_side_by_side(photo, after),
        model=engine.card.name,
        crop_matrix=matrix,
        crop_side=side_px,
        warnings=warnings,
    )


# ---------------------------------------------------------------------------------------------- CLI
def add_clinic_command(subparsers: argparse._SubParsersAction) -> None:
    """Add ``clinic IMAGE -o DIR`` to the ``python -m inpaintstudio`` parser."""
    p = subparsers.add_parser("clinic", help="cleft-lip clinic run: landmarks, proposed mask, inpainting, overlays")
    p.add_argument("image", type=Path, help="frontal face photo")
    p.add_argument("-m", "--model", default=None,
                   help=f"inpainting engine (default: {DEFAULT_MODEL}, INCLG's CelebA weights)")
    p.add_argument("--side", choices=("left", "right", "both"), default="both",
                   help="cleft side for the proposed mask, image left/right (default: both)")
    p.add_argument("--landmarks", choices=("auto", "fan", "dlib"), default="auto", help="landmark backend")
    p.add_argument("--mask", type=Path, help="hole mask to use instead of the proposed one (white = hole)")
    p.add_argument("--face", type=int, default=None, help="face index when several are found (0 = largest)")
    p.add_argument("--device", default=None, help="torch device (default: auto)")
    p.add_argument("-o", "--output", required=True, help="folder for the six output files (created when missing)")
    p.add_argument("--overwrite", action="store_true", help="replace the six files of an earlier run")
    p.set_defaults(func=_run_clinic_command)


def _run_clinic_command(args: argparse.Namespace) -> int:
    from inpaintstudio import io, registry
    from inpaintstudio.core import loading
    from inpaintstudio.face.landmarks import BackendUnavailableError, LandmarkWeightsMissingError, NoFaceError

    def fail(message: str, code: int) -> int:
        print(f"error: {message}", file=sys.stderr)
        return code

    from inpaintstudio.io.outputs import OutputPlan, output_target

    # the six destinations are checked before any work: never over the input (a photo named
    # before.png inside the folder), never over an earlier run without --overwrite
    folder = output_target(args.output, folder_required=True).path
    plan = OutputPlan(overwrite=args.overwrite)
    plan.protect([args.image, args.mask])
    for name in OUTPUT_FILES:
        plan.claim(folder / name, source=args.image)
    args.model = args.model or default_model()
    try:
        resolved = loading.resolve_model(args.model)  # an unknown model is refused before the face detector runs
        if resolved.note:
            print(f"note: {resolved.note}")
        args.model = resolved.name
        loaded = io.load_image(args.image)
        mask = None if args.mask is None else io.load_mask(args.mask, size=loaded.size)
        result = run_clinic(
            loaded.rgb, model=args.model, mask=mask, side=args.side, backend=args.landmarks,
            face_index=args.face, device=args.device,
        )
    except (io.InputError, NoFaceError, registry.UnknownModelError, ValueError) as error:
        return fail(str(error), EXIT_BAD_INPUT)
    except (registry.WeightsMissingError, LandmarkWeightsMissingError) as error:
        return fail(str(error), EXIT_WEIGHTS_MISSING)
    except BackendUnavailableError as error:
        return fail(str(error), EXIT_FAILED)
    written = write_outputs(result, folder, loaded, plan=plan)
    for line in result.warnings:
        print(f"warning: {line}")
    print(f"clinic: {result.model}, landmarks {result.face.backend}, {int(result.mask.sum())} mask pixels")
    for path in written:
        print(f"wrote {path}")
    return EXIT_OK


def write_outputs(result: ClinicResult, folder: Path, loaded: Any | None = None, plan: Any | None = None) -> list[Path]:
    """Write the six clinic files into ``folder`` (created if needed); returns their paths.

    ``plan``: an :class:`inpaintstudio.io.outputs.OutputPlan` that has claimed them (the CLI's); without
    one, existing files are replaced, but never the input photo.
    """
    from inpaintstudio.io.outputs import OutputPlan

    folder = Path(folder)
    if plan is None:
        plan = OutputPlan(overwrite=True)
        plan.protect([getattr(loaded, "source_path", None)])
    icc = getattr(loaded, "icc_profile", None)
    source = getattr(loaded, "source_path", None)
    images = {
        "before.png": result.before,
        "after.png": result.after,
        "mask.png": np.repeat(result.mask[..., None].astype(np.uint8) * 255, 3, axis=2),
        "overlay.png": result.overlay,
        "side_by_side.png": result.side_by_side,
    }
    written = []
    for name, rgb in images.items():
        keep_icc = icc if name != "mask.png" else None
        plan.write_image(folder / name, rgb, icc_profile=keep_icc, source_path=source)
        written.append(folder / name)
    json_path = folder / "landmarks.json"
    payload = result.landmarks_json()
    lines = [f" {json.dumps(key)}: {json.dumps(value)}" for key, value in payload.items()]  # one key per line
    plan.write_text(json_path, "{\n" + ",\n".join(lines) + "\n}\n")
    written.append(json_path)
    return written
