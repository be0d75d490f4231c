"""The Clinic tab: a face photo -> landmarks and a proposed lip/nose mask (editable) -> one or more
models -> before/after, landmark overlays, side-by-side PNG. Uses :mod:`inpaintstudio.face.clinic`.

API names: ``clinic_open``, ``clinic_side``, ``clinic_run``, ``clinic_view``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from inpaintstudio import io as image_io
from inpaintstudio import registry
from inpaintstudio.core import pipeline
from inpaintstudio.face import clinic, landmarks
from inpaintstudio.ui import choices, selecting
from inpaintstudio.ui.common import Outputs, gpu, mask_tools, named, user_error, user_errors
from inpaintstudio.ui.editor import call, mask_editor, with_mask
from inpaintstudio.ui.session import EditSession, StudioConfig, availability

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
    key: str = ""


class ClinicSession(EditSession):
    """An :class:`EditSession` plus the detected face and the clinic results."""

    def __init__(self, config: StudioConfig, root: Path | None = None) -> None:
        super().__init__(config, root)
        self.face: landmarks.FaceLandmarks | None = None
        self.clinic_runs: list[ClinicRun] = []
        self.show_landmarks = False
        self._exports: dict[tuple[str, bool, bool], Path] = {}

    def result_images(self) -> list[tuple[str, str, np.ndarray]]:
        return [(run.model, run.key, run.result.after) for run in self.clinic_runs]

    def landmarks_shown(self) -> list[list[float]] | None:
        """The detected points in the editor copy's pixels (the editor draws them as a toggleable overlay)."""
        if self.face is None:
            return None
        scale = np.array([self.shown[0] / self.size[0], self.shown[1] / self.size[1]])
        return np.round(self.face.points * scale, 2).tolist()

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
            self.clinic_runs.append(ClinicRun(name, result, seconds, path, self.new_key()))
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
    """INCLG when its weights are here (CelebA's, or a plain import), else the default engine; as the model's
    row in the list (one row per model: a ticked row runs the variant that can run)."""
    model = clinic.default_model()
    return [model.split(":", 1)[0]] if availability(model)[0] else [registry.DEFAULT_MODEL]


@dataclass(frozen=True)
class Context:
    config: StudioConfig
    root: Path


@dataclass
class ClinicOutputs(Outputs):
    """Everything a Clinic handler may change; a field left alone is not sent."""

    session: Any = field(default_factory=gr.skip)
    editor: Any = field(default_factory=gr.skip)
    status: Any = field(default_factory=gr.skip)
    slider: Any = field(default_factory=gr.skip)
    export: Any = field(default_factory=gr.skip)
    gallery: Any = field(default_factory=gr.skip)
    shown: Any = field(default_factory=gr.skip)


def _fresh(context: Context, session: ClinicSession | None) -> ClinicSession:
    return session if session is not None else ClinicSession(context.config, context.root)


@user_errors
def clinic_open(context: Context, session: ClinicSession | None, path: str | None, side: str) -> ClinicOutputs:
    if not path:
        return ClinicOutputs()
    session = _fresh(context, session)
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
        message = session.message(mask=True, base="reset", extra={"landmarks": session.landmarks_shown()})
        return ClinicOutputs(session=session, editor=message, status=status)


@user_errors
def clinic_side(context: Context, session: ClinicSession | None, side: str) -> ClinicOutputs:
    if session is None or not session.has_image:
        return ClinicOutputs()
    with session.lock:
        mask = session.propose(side)
        return ClinicOutputs(session=session, editor=session.message(mask=True),
                             status=f"Proposed {side} mask: {int(mask.sum()):,} px.")


@gpu
@user_errors
def clinic_run(context: Context, session: ClinicSession | None, mask: str | None, models: list[str] | None,
               detected: bool, predicted: bool, progress: gr.Progress = gr.Progress()) -> ClinicOutputs:  # noqa: B008
    started = time.perf_counter()
    session = _fresh(context, session)
    with session.lock:
        if not session.has_image:
            raise user_error("open a face photo first")
        hole = session.mask_from_editor(mask)
        if not hole.any():
            raise user_error("the mask is empty: paint the region to repair or choose a side again")
        try:
            skipped = session.run_models(hole, choices.names_to_run(models, []), progress)
        except landmarks.LandmarkError as error:
            raise user_error(str(error)) from None
        names = [run.model for run in session.clinic_runs]
        slider, download = _pair(session, names[0], detected, predicted)
        gallery = [(session.view(r.result.after, f"view-{r.model}"), f"{r.model} · {r.seconds:.2f} s")
                   for r in session.clinic_runs]
        lines = [f"- **{r.model}**: {r.seconds:.2f} s" + "".join(f"; {w}" for w in r.result.warnings)
                 for r in session.clinic_runs]
        lines += [f"- ⚠ {message}" for message in skipped]
        lines.append(f"\nTotal {time.perf_counter() - started:.2f} s on the server "
                     f"(engines {sum(r.seconds for r in session.clinic_runs):.2f} s).")
        return ClinicOutputs(session=session, editor=session.message(results=True), slider=slider, export=download,
                             gallery=gallery, shown=gr.update(choices=names, value=names[0]), status="\n".join(lines))


@user_errors
def clinic_select(context: Context, session: ClinicSession | None, event: gr.EventData) -> ClinicOutputs:
    """The editor's Select tool in the Clinic: the selection's mask goes back into the editor."""
    session = _fresh(context, session)
    with session.lock:
        picked = selecting.select(session, getattr(event, "_data", None) or {})
        return ClinicOutputs(session=session, editor=session.message(mask=True, combine=picked.mode),
                             status=picked.status)


def clinic_view(context: Context, session: ClinicSession | None, model: str | None, detected: bool,
                predicted: bool) -> ClinicOutputs:
    if session is None:
        return ClinicOutputs()
    with session.lock:
        slider, download = _pair(session, model, detected, predicted)
        return ClinicOutputs(slider=slider, export=download)


def _delete(session: ClinicSession | None) -> None:
    if session is not None:
        session.close()


def build_clinic_tab(config: StudioConfig, root: Path) -> None:
    """Lay out the Clinic tab inside the current Blocks and wire its events."""
    context = Context(config, root)
    session = gr.State(None, delete_callback=_delete)
    with gr.Row(equal_height=False):
        with gr.Column(scale=4, min_width=560):
            editor = mask_editor("clinic-editor", run_button="clinic-run", brush_size=12)
        with gr.Column(scale=1, min_width=300):
            photo = gr.File(label="Face photo", file_types=["image"], type="filepath", height=90,
                            elem_id="clinic-photo")
            run_button = gr.Button("Run (Ctrl+Enter)", variant="primary", elem_id="clinic-run")
            status = gr.Markdown("Open a frontal face photo.", elem_id="clinic-status")
            side = gr.Radio(["left", "right", "both"], value="both", label="Side (image left / right, or both)")
            editor_landmarks = gr.Checkbox(False, label="Show the detected landmarks in the editor",
                                           elem_id="clinic-editor-landmarks")
            models = gr.CheckboxGroup(choices.run_choices(), value=_default_models(), label="Models",
                                      elem_id="clinic-models")
            with gr.Row():
                detected = gr.Checkbox(True, label="Detected landmarks (before)")
                predicted = gr.Checkbox(True, label="Predicted landmarks (after)")
            px, _feather, buttons = mask_tools("clinic-")
            gr.Markdown(PRIVACY_NOTICE + "\n\n" + landmarks.LICENCE_NOTE, elem_id="clinic-notice")
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
    mask_data = gr.Textbox(visible=False)  # the editor's mask PNG, filled by the run's js

    ui = {"session": session, "editor": editor, "status": status, "slider": slider, "export": export,
          "gallery": gallery, "shown": shown}

    def wire(trigger: Any, handler: Any, inputs: list, names: list[str], **kwargs: Any) -> Any:
        return trigger(named(handler, names, context), inputs, [ui[n] for n in names], **kwargs)

    wire(photo.change, clinic_open, [session, photo, side], ["session", "editor", "status"], api_name="clinic_open")
    editor_landmarks.input(None, [editor_landmarks], None, js=call("clinic-editor", "setLandmarks", "args[0]"),
                           api_name=False)
    _feather.input(None, [_feather], None, js=call("clinic-editor", "setFeather", "args[0]"), api_name=False)
    for name, button in buttons.items():
        arguments = ("args[0]",) if name in ("grow", "shrink") else ()
        button.click(None, [px], None, js=call("clinic-editor", name, *arguments), api_name=False)
    wire(editor.click, clinic_select, [session], ["session", "editor", "status"], api_name="clinic_select")
    wire(side.input, clinic_side, [session, side], ["session", "editor", "status"], api_name="clinic_side")
    wire(run_button.click, clinic_run, [session, mask_data, models, detected, predicted],
         ["session", "editor", "slider", "export", "gallery", "shown", "status"], js=with_mask("clinic-editor", 1),
         api_name="clinic_run", concurrency_limit=config.run_workers, concurrency_id="inpaint")
    gr.on([shown.input, detected.input, predicted.input], named(clinic_view, ["slider", "export"], context),
          [session, shown, detected, predicted], [slider, export], api_name="clinic_view")
