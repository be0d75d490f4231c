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
from inpaintstudio.ui.common import gpu, mask_editor, user_error, user_errors
from inpaintstudio.ui.session import EditSession, StudioConfig, availability, model_choices

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
        self.show_landmarks = False
        self._exports: dict[tuple[str, bool, bool], Path] = {}

    def display_rgb(self) -> np.ndarray:
        """The editor copy, with the detected landmarks drawn on it when they are switched on."""
        rgb = super().display_rgb()
        if not self.show_landmarks or self.face is None:
            return rgb
        scale = np.array([self.shown[0] / self.size[0], self.shown[1] / self.size[1]])
        return landmarks.draw_landmarks(rgb, self.face.points * scale, clinic.DETECTED_COLOUR)

    def toggle_landmarks(self, editor: dict[str, Any] | None, show: bool) -> None:
        """Redraw the editor's background with or without landmarks, keeping the mask as it is now."""
        if show == self.show_landmarks:
            return
        mask = self.mask_from_editor(editor)
        self.show_landmarks = show
        self._background_path = None
        self.set_mask(mask)

    def export(self, run: ClinicRun, detected: bool, predicted: bool) -> Path:
        """The side-by-side PNG at full size, with the overlays that are switched on (written once each)."""
        if not detected and not predicted:
            return run.path
        key = (run.model, detected, predicted)
        if key not in self._exports:
            pair = _side_by_side(*_overlaid(run.result, detected, predicted))
            self._exports[key] = self.write_png(pair, f"side-by-side-{run.model}-landmarks")
        return self._exports[key]

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
        self._exports = {}
        for index, name in enumerate(runnable):
            progress(index / len(runnable), desc=f"{name} ({index + 1}/{len(runnable)})")
            start = time.perf_counter()
            engine = pipeline.get_engine(name)
            result = clinic.run_clinic(self.require_image(), mask=mask, face=self.face, engine=engine)
            seconds = time.perf_counter() - start
            path = self.write_png(result.side_by_side, f"side-by-side-{name}")
            self.clinic_runs.append(ClinicRun(name, result, seconds, path))
        return skipped


def _overlaid(result: clinic.ClinicResult, detected: bool, predicted: bool) -> tuple[np.ndarray, np.ndarray]:
    """(before, after) with the detected / predicted landmarks drawn when asked for."""
    before, after = result.before, result.after
    if detected:
        before = landmarks.draw_landmarks(before, result.face.points, clinic.DETECTED_COLOUR)
    if predicted and result.predicted is not None:
        after = landmarks.draw_landmarks(after, result.predicted, clinic.PREDICTED_COLOUR)
    return before, after


def _side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Like the clinic's own export: the two images with a thin white gap (1 % of the width)."""
    gap = np.full((left.shape[0], max(4, left.shape[1] // 100), 3), 255, dtype=np.uint8)
    return np.hstack([left, gap, right])


def _pair(session: ClinicSession, model: str | None, detected: bool, predicted: bool) -> tuple[Any, Any]:
    """(slider value, side-by-side file) for one model's run, with the chosen overlays."""
    runs = {run.model: run for run in session.clinic_runs}
    if not runs:
        return gr.skip(), gr.skip()
    run = runs.get(model or "", session.clinic_runs[0])
    before, after = _overlaid(run.result, detected, predicted)
    return (session.view(before, "before"), session.view(after, "after")), session.export(run, detected, predicted)


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
                raise user_error(str(error)) from None
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
        started = time.perf_counter()
        session = fresh(session)
        with session.lock:
            if not session.has_image:
                raise user_error("open a face photo first")
            mask = session.mask_from_editor(editor)
            if not mask.any():
                raise user_error("the mask is empty: paint the region to repair or choose a side again")
            try:
                skipped = session.run_models(mask, models or [], progress)
            except landmarks.LandmarkError as error:
                raise user_error(str(error)) from None
            names = [run.model for run in session.clinic_runs]
            slider, download = _pair(session, names[0], detected, predicted)
            gallery = [(session.view(r.result.after, f"view-{r.model}"), f"{r.model} · {r.seconds:.2f} s")
                       for r in session.clinic_runs]
            lines = [f"- **{r.model}**: {r.seconds:.2f} s" + "".join(f"; {w}" for w in r.result.warnings)
                     for r in session.clinic_runs]
            lines += [f"- ⚠ {message}" for message in skipped]
            lines.insert(0, f"Total {time.perf_counter() - started:.2f} s on the server "
                            f"(models {sum(r.seconds for r in session.clinic_runs):.2f} s).")
            return (session, slider, download, gallery, gr.update(choices=names, value=names[0]), "\n".join(lines))

    def view(session: ClinicSession | None, model: str | None, detected: bool, predicted: bool) -> tuple:
        if session is None:
            return gr.skip(), gr.skip()
        with session.lock:
            return _pair(session, model, detected, predicted)

    @user_errors
    def show_landmarks(session: ClinicSession | None, editor: dict | None, show: bool) -> tuple:
        if session is None or not session.has_image:
            return session, gr.skip()
        with session.lock:
            session.toggle_landmarks(editor, bool(show))
            return session, session.editor_value()

    return {"open": open_photo, "side": change_side, "run": run, "view": view, "landmarks": show_landmarks}


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
            editor = mask_editor("Proposed lip/nose mask (editable)", "clinic-editor", brush_size=12, height=520)
        with gr.Column(scale=2):
            side = gr.Radio(["left", "right", "both"], value="both", label="Side (image left / right, or both)")
            editor_landmarks = gr.Checkbox(False, label="Show the detected landmarks in the editor",
                                           elem_id="clinic-editor-landmarks")
            models = gr.CheckboxGroup(model_choices(), value=_default_models(), label="Models",
                                      elem_id="clinic-models")
            with gr.Row():
                detected = gr.Checkbox(True, label="Detected landmarks (before)")
                predicted = gr.Checkbox(True, label="Predicted landmarks (after)")
            run_button = gr.Button("Run", variant="primary", elem_id="clinic-run")
            status = gr.Markdown("Open a frontal face photo.", elem_id="clinic-status")
    with gr.Row():
        with gr.Column(scale=3):
            slider = gr.ImageSlider(label="Before / after", format="png", type="filepath", interactive=False,
                                    elem_id="clinic-slider", max_height=600, buttons=["fullscreen"])
        with gr.Column(scale=1):
            shown = gr.Dropdown([], label="Model shown", elem_id="clinic-shown")
            export = gr.DownloadButton("Side-by-side PNG (full size, with the overlays shown)", variant="primary",
                                       elem_id="clinic-export")
    gallery = gr.Gallery(label="Results (model · time)", format="png", columns=4, height="auto", interactive=False,
                         object_fit="contain", elem_id="clinic-gallery", buttons=["fullscreen"])

    photo.change(handlers["open"], [session, photo, side], [session, editor, status], api_name="clinic_open")
    editor_landmarks.input(handlers["landmarks"], [session, editor, editor_landmarks], [session, editor],
                           api_name="clinic_landmarks")
    side.input(handlers["side"], [session, side], [session, editor, status], api_name="clinic_side")
    run_button.click(handlers["run"], [session, editor, models, detected, predicted],
                     [session, slider, export, gallery, shown, status], api_name="clinic_run",
                     concurrency_limit=config.run_workers, concurrency_id="inpaint")
    gr.on([shown.input, detected.input, predicted.input], handlers["view"], [session, shown, detected, predicted],
          [slider, export], api_name="clinic_view")
