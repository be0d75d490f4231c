"""The Edit tab: open a photo, paint or upload a mask, run several models, compare, iterate.

API names (gradio_client): ``open_image``, ``upload_mask``, ``grow_mask``, ``shrink_mask``,
``invert_mask``, ``clear_mask``, ``export_mask``, ``run``, ``compare``, ``use_result``, ``undo``,
``refresh_models``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from inpaintstudio import registry
from inpaintstudio.ui.common import device_text, gpu, mask_editor, user_error, user_errors
from inpaintstudio.ui.session import EditSession, ModelRun, StudioConfig, model_choices

__all__ = ["EditTab", "build_edit_tab", "BEFORE"]

BEFORE = "before"
STRATEGY_CHOICES = ["auto", "crop", "tile", "resize", "refine"]


@dataclass
class EditTab:
    """The components other tabs (and tests) need."""

    session: gr.State
    photo: gr.File
    editor: gr.ImageEditor
    models: gr.CheckboxGroup
    gallery: gr.Gallery
    slider: gr.ImageSlider
    status: gr.Markdown


# ------------------------------------------------------------------------------------------ helpers
def _session(session: EditSession | None, config: StudioConfig, root: Path) -> EditSession:
    return session if session is not None else EditSession(config, root)


def _run_view(session: EditSession, run: ModelRun) -> str:
    """The run's display copy, encoded once and shared by the gallery and the slider."""
    if run.view_path is None:
        run.view_path = session.view(run.image, f"view-{run.model}")
    return run.view_path


def _view_of(session: EditSession, choice: str | None) -> tuple[str, ModelRun | None]:
    for run in session.runs:
        if run.model == choice:
            return _run_view(session, run), run
    return session.base_view(), None


def _comparison(session: EditSession, left: str | None, right: str | None) -> tuple[Any, Any]:
    """(slider value, result download) for two of "before" and the models that ran."""
    left_view, _ = _view_of(session, left)
    right_view, right_run = _view_of(session, right)
    download = right_run.path if right_run is not None else gr.skip()
    return (left_view, right_view), download


def _enable() -> Any:
    return gr.update(interactive=True)


def _options(strategy: str | None, margin: float | None, tile_size: float | None) -> dict[str, Any]:
    options: dict[str, Any] = {"strategy": strategy or "auto"}
    if margin is not None:
        options["margin"] = int(margin)
    if tile_size is not None:
        options["tile_size"] = int(tile_size)
    return options


def _image_status(session: EditSession, notes: tuple[str, ...] = ()) -> str:
    width, height = session.size
    shown = session.shown
    lines = [f"Photo: {width}×{height} px (editor copy {shown[0]}×{shown[1]}; runs use the full resolution)."]
    if session.loaded is not None and session.loaded.orientation_applied:
        lines.append(f"EXIF orientation {session.loaded.orientation} applied once.")
    lines.extend(notes)
    if session.history:
        lines.append(f"Undo steps: {len(session.history)}.")
    return "\n\n".join(lines)


def _run_status(runs: list[ModelRun], skipped: list[str], mask: np.ndarray, total: float) -> str:
    engines = sum(run.seconds for run in runs)
    lines = [f"Total {total:.2f} s on the server (models {engines:.2f} s; the rest reads the editor and "
             f"writes the images). Mask: {int(mask.sum()):,} px ({100 * mask.mean():.2f} % of the photo)."]
    for run in runs:
        tiles = f", {run.tiles} tile(s)" if run.tiles > 1 else ""
        lines.append(f"- **{run.model}**: {run.seconds:.2f} s on `{run.device}` ({run.strategy}{tiles})")
        lines.extend(f"  - {notice}" for notice in run.notices)
    lines.extend(f"- ⚠ {message}" for message in skipped)
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------- handlers
def make_handlers(config: StudioConfig, root: Path) -> dict[str, Any]:
    """The tab's event functions, closed over the studio's config and temp folder."""

    @user_errors
    def open_image(session: EditSession | None, path: str | None) -> tuple:
        if not path:
            return session, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        session = _session(session, config, root)
        with session.lock:
            loaded = session.open(path, name=Path(path).name)
            value = session.editor_value()
            status = _image_status(session, loaded.notes)
        choices = [BEFORE]
        return (
            session,
            value,
            [],
            None,
            gr.update(choices=choices, value=BEFORE),
            gr.update(choices=choices, value=BEFORE),
            status,
        )

    @user_errors
    def upload_mask(session: EditSession | None, path: str | None) -> tuple:
        # The editor is not an input: the server holds the photo, and asking the browser to export the editor
        # here, while it may still be loading the photo it was just sent, is a race this handler never needs.
        if not path:
            return session, gr.skip(), gr.skip()
        session = _session(session, config, root)
        with session.lock:
            mask = session.load_mask(path, name=Path(path).name)
            return session, session.editor_value(), f"Mask loaded: {int(mask.sum()):,} px."

    def mask_operation(operation: str) -> Any:
        @user_errors
        def handler(session: EditSession | None, editor: dict | None, px: float) -> tuple:
            session = _session(session, config, root)
            with session.lock:
                session.adopt_background(editor)
                mask = session.mask_operation(editor, operation, int(px or 0))
                return session, session.editor_value(), f"Mask after {operation}: {int(mask.sum()):,} px."

        return handler

    @user_errors
    def export_mask(session: EditSession | None, editor: dict | None) -> tuple:
        session = _session(session, config, root)
        with session.lock:
            session.adopt_background(editor)
            mask = session.mask_from_editor(editor)
            return session, session.write_mask(mask)

    @gpu
    @user_errors
    def run(
        session: EditSession | None,
        editor: dict | None,
        models: list[str] | None,
        strategy: str,
        margin: float | None,
        tile_size: float | None,
        feather: float,
        progress: gr.Progress = gr.Progress(),
    ) -> tuple:
        started = time.perf_counter()
        session = _session(session, config, root)
        with session.lock:
            session.adopt_background(editor)
            mask = session.mask_from_editor(editor)
            options = _options(strategy, margin, tile_size)
            runs, skipped = session.run(mask, models or [], options, float(feather or 0), progress=progress)
            mask_path = session.write_mask(mask, "mask-used")
            gallery = [(_run_view(session, r), r.caption) for r in runs]
            choices = [BEFORE, *[r.model for r in runs]]
            slider, download = _comparison(session, BEFORE, runs[0].model)
            status = _run_status(runs, skipped, mask, time.perf_counter() - started)
        return (
            session,
            gallery,
            slider,
            download,
            mask_path,
            gr.update(choices=choices, value=BEFORE),
            gr.update(choices=choices, value=runs[0].model),
            status,
        )

    @user_errors
    def compare(session: EditSession | None, left: str | None, right: str | None) -> tuple:
        session = _session(session, config, root)
        with session.lock:
            slider, download = _comparison(session, left, right)
        return slider, download

    def select_result(session: EditSession | None, event: gr.SelectData) -> tuple:
        if session is None or not 0 <= event.index < len(session.runs):
            return gr.skip(), gr.skip(), gr.skip()
        run_model = session.runs[event.index].model
        slider, download = _comparison(session, BEFORE, run_model)
        return slider, download, gr.update(value=run_model)

    @user_errors
    def use_result(session: EditSession | None, right: str | None) -> tuple:
        session = _session(session, config, root)
        with session.lock:
            names = [r.model for r in session.runs]
            if not names:
                raise user_error("there is no result to use yet: run a model first")
            index = names.index(right) if right in names else 0
            run = session.use_result(index)
            status = f"The {run.model} result is the new base. " + _image_status(session)
            return _after_base_change(session, status)

    @user_errors
    def undo(session: EditSession | None) -> tuple:
        session = _session(session, config, root)
        with session.lock:
            session.undo()
            return _after_base_change(session, "Undone. " + _image_status(session))

    def _after_base_change(session: EditSession, status: str) -> tuple:
        before = session.base_view()
        return (
            session,
            session.editor_value(),
            [],
            (before, before),
            gr.update(choices=[BEFORE], value=BEFORE),
            gr.update(choices=[BEFORE], value=BEFORE),
            status,
        )

    def refresh_models(selected: list[str] | None) -> Any:
        return gr.update(choices=model_choices(), value=selected or [registry.DEFAULT_MODEL])

    return {
        "open_image": open_image,
        "upload_mask": upload_mask,
        "grow_mask": mask_operation("grow"),
        "shrink_mask": mask_operation("shrink"),
        "invert_mask": mask_operation("invert"),
        "clear_mask": mask_operation("clear"),
        "export_mask": export_mask,
        "run": run,
        "compare": compare,
        "select_result": select_result,
        "use_result": use_result,
        "undo": undo,
        "refresh_models": refresh_models,
    }


# ------------------------------------------------------------------------------------------- layout
def _cancelled() -> str:
    return "Cancelled: the run was stopped (a model already computing finishes in the background)."


def _delete_session(session: EditSession | None) -> None:
    if session is not None:
        session.close()


def build_edit_tab(config: StudioConfig, root: Path, examples: list[str] | None = None) -> EditTab:
    """Lay out the Edit tab inside the current Blocks and wire its events."""
    handlers = make_handlers(config, root)
    session = gr.State(None, delete_callback=_delete_session)
    with gr.Row():
        with gr.Column(scale=3):
            photo = gr.File(
                label="Photo (opened on the server at full resolution; EXIF orientation applied)",
                file_types=["image"],
                type="filepath",
                height=120,
                elem_id="photo-upload",
            )
            editor = mask_editor("Paint over what should disappear", "editor", brush_size=24, height=560)
            with gr.Row():
                mask_file = gr.File(label="Upload a mask (white or opaque = hole)", file_types=["image"],
                                    type="filepath", height=100, elem_id="mask-upload")
                with gr.Column():
                    export_button = gr.Button("Export current mask", size="sm")
                    mask_download = gr.DownloadButton("Download mask (PNG)", elem_id="mask-download")
            with gr.Row():
                px = gr.Slider(1, 64, value=8, step=1, label="Grow / shrink by (px)")
                feather = gr.Slider(0, 64, value=0, step=1, label="Feather the result's edge (px)")
            with gr.Row():
                grow_button = gr.Button("Grow", size="sm")
                shrink_button = gr.Button("Shrink", size="sm")
                invert_button = gr.Button("Invert", size="sm")
                clear_button = gr.Button("Clear mask", size="sm")
        with gr.Column(scale=2):
            gr.Markdown(device_text(), elem_id="device")
            models = gr.CheckboxGroup(
                choices=model_choices(),
                value=[registry.DEFAULT_MODEL],
                label="Models (several run on the same mask; unavailable ones are never run)",
                elem_id="models",
            )
            with gr.Accordion("Strategy", open=False):
                strategy = gr.Radio(STRATEGY_CHOICES, value="auto", label="Strategy")
                with gr.Row():
                    margin = gr.Number(None, label="Context margin (px, empty = model default)", precision=0)
                    tile_size = gr.Number(None, label="Tile size (px, empty = model default)", precision=0)
            refresh_button = gr.Button("Refresh model list", size="sm")
            with gr.Row():
                run_button = gr.Button("Run", variant="primary", elem_id="run", scale=3)
                cancel_button = gr.Button("Cancel", variant="stop", elem_id="cancel", scale=1)
            status = gr.Markdown("Open a photo to start.", elem_id="status")
    with gr.Row():
        with gr.Column(scale=3):
            slider = gr.ImageSlider(label="Compare", format="png", type="filepath", interactive=False,
                                    elem_id="slider", max_height=560, buttons=["fullscreen"])
        with gr.Column(scale=1):
            left = gr.Dropdown([BEFORE], value=BEFORE, label="Left", allow_custom_value=False)
            right = gr.Dropdown([BEFORE], value=BEFORE, label="Right", allow_custom_value=False)
            # disabled until a run has a result: a click before that would download nothing
            result_download = gr.DownloadButton("Download result (PNG, full size)", elem_id="result-download",
                                                variant="primary", interactive=False)
            use_button = gr.Button("Use result as new base")
            undo_button = gr.Button("Undo")
    gallery = gr.Gallery(label="Results (model · time · device)", format="png", columns=4, height="auto",
                         object_fit="contain", interactive=False, elem_id="gallery", buttons=["fullscreen"])
    if examples:
        gr.Examples(examples=[[path] for path in examples], inputs=[photo], label="Example photos",
                    cache_examples=False)

    base_outputs = [session, editor, gallery, slider, left, right, status]
    photo.change(handlers["open_image"], [session, photo], [session, editor, gallery, slider, left, right, status],
                 api_name="open_image")
    mask_file.change(handlers["upload_mask"], [session, mask_file], [session, editor, status],
                     api_name="upload_mask")
    for name, button in (("grow_mask", grow_button), ("shrink_mask", shrink_button),
                         ("invert_mask", invert_button), ("clear_mask", clear_button)):
        button.click(handlers[name], [session, editor, px], [session, editor, status], api_name=name)
    export_button.click(handlers["export_mask"], [session, editor], [session, mask_download], api_name="export_mask")
    run_event = run_button.click(
        handlers["run"],
        [session, editor, models, strategy, margin, tile_size, feather],
        [session, gallery, slider, result_download, mask_download, left, right, status],
        api_name="run",
        concurrency_limit=config.run_workers,
        concurrency_id="inpaint",
    )
    run_event.success(_enable, None, [result_download], api_name=False, queue=False)
    cancel_button.click(_cancelled, None, [status], cancels=[run_event], api_name=False, queue=False)
    gr.on([left.input, right.input], handlers["compare"], [session, left, right], [slider, result_download],
          api_name="compare")
    gallery.select(handlers["select_result"], [session], [slider, result_download, right], api_name=False)
    use_button.click(handlers["use_result"], [session, right], base_outputs, api_name="use_result")
    undo_button.click(handlers["undo"], [session], base_outputs, api_name="undo")
    refresh_button.click(handlers["refresh_models"], [models], [models], api_name="refresh_models")
    return EditTab(session=session, photo=photo, editor=editor, models=models, gallery=gallery, slider=slider,
                   status=status)
