"""The Clinic tab: a face photo -> landmarks and a proposed lip/nose mask (editable) -> one or more
models -> before/after, landmark overlays, side-by-side PNG. Uses :mod:`inpaintstudio.clinic`.

API names: ``clinic_open``, ``clinic_side``, ``clinic_run``, ``clinic_view``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from inpaintstudio import clinic, landmarks, pipeline, registry
from inpaintstudio import io as image_io
from inpaintstudio.ui.common import gpu, user_errors
from inpaintstudio.ui.session import EditSession, StudioConfig, availability, model_choices, to_display

__all__ = ["ClinicSession", "PRIVACY_NOTICE", "build_clinic_tab"]

PRIVACY_NOTICE = (
    "**Privacy:** processing is local, on this machine. Photos, masks and results live only in this "
    "session's memory and temporary files, which are deleted when the session ends; nothing is stored "
    "after the session and nothing is sent elsewhere."
)
CLINIC_MODEL = clinic.DEFAULT_MODEL


@dataclass
class ClinicRun:
    model: str
    result: clinic.ClinicResult
    seconds: float
    path: Path


class ClinicSession(EditSession):
    """An :class:`EditSession` plus the detected face and the clinic results."""

    def __init__(self, config: StudioConfig, root: Path | None = None) -> None:
        super().__init__(config, root)
        self.face: landmarks.FaceLandmarks | None = None
        self.clinic_runs: list[ClinicRun] = []

    def detect(self, side: str) -> np.ndarray:
        """Detect the face (largest) and hold the proposed mask for ``side``."""
        self.face, mask = clinic.propose_mask(self.require_image(), side=side)
        self.set_mask(mask)
        self.clinic_runs = []
        return mask

    def propose(self, side: str) -> np.ndarray:
        if self.face is None:
            return self.detect(side)
        mask = landmarks.lip_nose_mask(self.face, self.require_image().shape, side=side)
        self.set_mask(mask)
        return mask

    def run_models(self, mask: np.ndarray, models: list[str], progress: Any) -> list[str]:
        if self.face is None:
            raise image_io.InputError("open a face photo first")
        runnable = [m for m in dict.fromkeys(models) if availability(m)[0]]
        skipped = [f"{m} was not run: {availability(m)[1]}" for m in dict.fromkeys(models) if m not in runnable]
        if not runnable:
            raise image_io.InputError("choose at least one model that can run here" + (": " if skipped else "")
                                      + "; ".join(skipped))
        self.last_mask = mask
        self.clinic_runs = []
        for index, name in enumerate(runnable):
            progress(index / len(runnable), desc=f"{name} ({index + 1}/{len(runnable)})")
            start = time.perf_counter()
            engine = pipeline.get_engine(name)
            result = clinic.run_clinic(self.require_image(), mask=mask, face=self.face, engine=engine)
            seconds = time.perf_counter() - start
            path = self.write_png(result.side_by_side, f"side-by-side-{name}")
            self.clinic_runs.append(ClinicRun(name, result, seconds, path))
        return skipped


def _view(session: ClinicSession, rgb: np.ndarray) -> np.ndarray:
    width, height = rgb.shape[1], rgb.shape[0]
    scale = min(1.0, session.config.view_side / max(width, height))
    return to_display(rgb, (max(1, round(width * scale)), max(1, round(height * scale))))


def _pair(session: ClinicSession, model: str | None, detected: bool, predicted: bool) -> tuple[Any, Any]:
    """(slider value, side-by-side file) for one model's run, with the chosen overlays."""
    runs = {run.model: run for run in session.clinic_runs}
    if not runs:
        return gr.skip(), gr.skip()
    run = runs.get(model or "", session.clinic_runs[0])
    result = run.result
    before, after = result.before, result.after
    if detected:
        before = landmarks.draw_landmarks(before, result.face.points, clinic.DETECTED_COLOUR)
    if predicted and result.predicted is not None:
        after = landmarks.draw_landmarks(after, result.predicted, clinic.PREDICTED_COLOUR)
    return (_view(session, before), _view(session, after)), run.path


def _default_models() -> list[str]:
    model = clinic.default_model()  # INCLG's CelebA weights (or a plain INCLG import)
    return [model] if availability(model)[0] else [registry.DEFAULT_MODEL]


def make_handlers(config: StudioConfig, root: Path) -> dict[str, Any]:
    def fresh(session: ClinicSession | None) -> ClinicSession:
        return session if session is not None else ClinicSession(config, root)

    @user_errors
    def open_photo(session: ClinicSession | None, path: str | None, side: str) -> tuple:
        if not path:
            return session, gr.skip(), gr.skip()
        session = fresh(session)
        with session.lock:
            session.open(path, name=Path(path).name)
            try:
                mask = session.detect(side)
            except landmarks.LandmarkError as error:
                raise gr.Error(str(error), duration=None) from error
            face = session.face
            assert face is not None
            status = (f"Face found ({face.backend} landmarks, 68 points). Proposed {side} mask: "
                      f"{int(mask.sum()):,} px. Edit it with the brush or eraser, then run.")
            return session, session.editor_value(), status

    @user_errors
    def change_side(session: ClinicSession | None, side: str) -> tuple:
        if session is None or not session.has_image:
            return session, gr.skip(), gr.skip()
        with session.lock:
            mask = session.propose(side)
            return session, session.editor_value(), f"Proposed {side} mask: {int(mask.sum()):,} px."

    @gpu
    @user_errors
    def run(session: ClinicSession | None, editor: dict | None, models: list[str] | None, detected: bool,
            predicted: bool, progress: gr.Progress = gr.Progress()) -> tuple:
        session = fresh(session)
        with session.lock:
            if not session.has_image:
                raise gr.Error("open a face photo first")
            mask = session.mask_from_editor(editor)
            if not mask.any():
                raise gr.Error("the mask is empty: paint the region to repair or choose a side again")
            try:
                skipped = session.run_models(mask, models or [], progress)
            except landmarks.LandmarkError as error:
                raise gr.Error(str(error), duration=None) from error
            names = [run.model for run in session.clinic_runs]
            slider, download = _pair(session, names[0], detected, predicted)
            gallery = [(_view(session, r.result.after), f"{r.model} · {r.seconds:.2f} s") for r in session.clinic_runs]
            lines = [f"- **{r.model}**: {r.seconds:.2f} s" + "".join(f"; {w}" for w in r.result.warnings)
                     for r in session.clinic_runs]
            lines += [f"- ⚠ {message}" for message in skipped]
            return (session, slider, download, gallery, gr.update(choices=names, value=names[0]), "\n".join(lines))

    def view(session: ClinicSession | None, model: str | None, detected: bool, predicted: bool) -> tuple:
        if session is None:
            return gr.skip(), gr.skip()
        with session.lock:
            return _pair(session, model, detected, predicted)

    return {"open": open_photo, "side": change_side, "run": run, "view": view}


def _delete(session: ClinicSession | None) -> None:
    if session is not None:
        session.close()


def build_clinic_tab(config: StudioConfig, root: Path) -> None:
    """Lay out the Clinic tab inside the current Blocks and wire its events."""
    handlers = make_handlers(config, root)
    session = gr.State(None, delete_callback=_delete)
    gr.Markdown(PRIVACY_NOTICE + "\n\n" + landmarks.LICENCE_NOTE, elem_id="clinic-notice")
    with gr.Row():
        with gr.Column(scale=3):
            photo = gr.File(label="Face photo", file_types=["image"], type="filepath", height=100,
                            elem_id="clinic-photo")
            editor = gr.ImageEditor(
                label="Proposed lip/nose mask (editable)", image_mode="RGBA", format="png", type="numpy",
                sources=(), transforms=(),
                brush=gr.Brush(default_size=12, colors=["#ff0050"], default_color="#ff0050", color_mode="fixed"),
                eraser=gr.Eraser(default_size=12),
                layers=gr.LayerOptions(allow_additional_layers=False, layers=["mask"]),
                height=520, elem_id="clinic-editor",
            )
        with gr.Column(scale=2):
            side = gr.Radio(["left", "right", "both"], value="both", label="Side (image left / right, or both)")
            models = gr.CheckboxGroup(model_choices(), value=_default_models(), label="Models",
                                      elem_id="clinic-models")
            with gr.Row():
                detected = gr.Checkbox(True, label="Detected landmarks (before)")
                predicted = gr.Checkbox(True, label="Predicted landmarks (after)")
            run_button = gr.Button("Run", variant="primary", elem_id="clinic-run")
            status = gr.Markdown("Open a frontal face photo.", elem_id="clinic-status")
    with gr.Row():
        with gr.Column(scale=3):
            slider = gr.ImageSlider(label="Before / after", format="png", type="numpy", interactive=False,
                                    elem_id="clinic-slider", max_height=600)
        with gr.Column(scale=1):
            shown = gr.Dropdown([], label="Model shown", elem_id="clinic-shown")
            export = gr.DownloadButton("Side-by-side PNG", variant="primary", elem_id="clinic-export")
    gallery = gr.Gallery(label="Results", format="png", columns=4, height=240, interactive=False,
                         elem_id="clinic-gallery")

    photo.change(handlers["open"], [session, photo, side], [session, editor, status], api_name="clinic_open")
    side.input(handlers["side"], [session, side], [session, editor, status], api_name="clinic_side")
    run_button.click(handlers["run"], [session, editor, models, detected, predicted],
                     [session, slider, export, gallery, shown, status], api_name="clinic_run",
                     concurrency_limit=1, concurrency_id="inpaint")
    gr.on([shown.input, detected.input, predicted.input], handlers["view"], [session, shown, detected, predicted],
          [slider, export], api_name="clinic_view")
