"""The Edit tab: open a photo, paint, select or upload a mask, run several models, compare, iterate.

The mask is edited in the browser (:mod:`inpaintstudio.ui.editor`); it reaches the server as one PNG
when a run starts or the mask is exported. API names (gradio_client): ``open_image``, ``upload_mask``,
``run`` (mask ``""`` = the uploaded mask), ``result_file``, ``grow_mask``, ``shrink_mask``, ``invert_mask``,
``clear_mask``, ``export_mask``, ``compare``, ``use_result``, ``undo``, ``refresh_models``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from inpaintstudio import registry
from inpaintstudio.ui import choices, selecting
from inpaintstudio.ui.common import Outputs, device_text, gpu, mask_tools, named, user_error, user_errors
from inpaintstudio.ui.editor import call, mask_editor, with_mask
from inpaintstudio.ui.session import EditSession, ModelRun, StudioConfig

__all__ = ["EditTab", "EditOutputs", "Context", "build_edit_tab", "BEFORE", "STRATEGY_CHOICES"]

BEFORE = "before"
STRATEGY_CHOICES = ["auto", "crop", "tile", "resize", "refine"]


@dataclass(frozen=True)
class Context:
    """What every handler of a studio shares: its limits and its temporary folder."""

    config: StudioConfig
    root: Path


@dataclass
class EditOutputs(Outputs):
    """Everything an Edit handler may change; a field left alone is not sent."""

    session: Any = field(default_factory=gr.skip)
    editor: Any = field(default_factory=gr.skip)
    gallery: Any = field(default_factory=gr.skip)
    slider: Any = field(default_factory=gr.skip)
    left: Any = field(default_factory=gr.skip)
    right: Any = field(default_factory=gr.skip)
    status: Any = field(default_factory=gr.skip)
    result_download: Any = field(default_factory=gr.skip)
    mask_download: Any = field(default_factory=gr.skip)
    models: Any = field(default_factory=gr.skip)
    variants: Any = field(default_factory=gr.skip)


@dataclass
class EditTab:
    """The components other tabs (and tests) need."""

    session: gr.State
    photo: gr.File
    editor: gr.HTML
    models: gr.CheckboxGroup
    variants: gr.Dropdown
    gallery: gr.Gallery
    slider: gr.ImageSlider
    status: gr.Markdown


# ------------------------------------------------------------------------------------------ helpers
def _session(context: Context, session: EditSession | None) -> EditSession:
    return session if session is not None else EditSession(context.config, context.root)


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
    download = str(session.result_file(right_run)) if right_run else gr.skip()
    return (left_view, right_view), download


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
    lines = [f"Mask: {int(mask.sum()):,} px ({100 * mask.mean():.2f} % of the photo)."]
    for run in runs:
        tiles = f", {run.tiles} tile(s)" if run.tiles > 1 else ""
        lines.append(f"- **{run.model}**: {run.seconds:.2f} s on `{run.device}` ({run.strategy}{tiles})")
        lines.extend(f"  - {notice}" for notice in run.notices)
    lines.extend(f"- ⚠ {message}" for message in skipped)
    lines.append(f"\nTotal {total:.2f} s on the server (engines {engines:.2f} s; the rest reads the mask and "
                 "makes the display copies; the full-size PNG is written after they are shown).")
    return "\n".join(lines)


def _fresh_comparison(session: EditSession, status: str, base: str) -> EditOutputs:
    before = session.base_view()
    return EditOutputs(
        session=session,
        editor=session.message(base=base),
        gallery=[],
        slider=(before, before),
        left=gr.update(choices=[BEFORE], value=BEFORE),
        right=gr.update(choices=[BEFORE], value=BEFORE),
        status=status,
        result_download=gr.update(value=None, interactive=False),
    )


# ----------------------------------------------------------------------------------------- handlers
@user_errors
def open_image(context: Context, session: EditSession | None, path: str | None) -> EditOutputs:
    if not path:
        return EditOutputs()
    session = _session(context, session)
    with session.lock:
        loaded = session.open(path, name=Path(path).name)
        return _fresh_comparison(session, _image_status(session, loaded.notes), base="reset")


@user_errors
def upload_mask(context: Context, session: EditSession | None, path: str | None) -> EditOutputs:
    if not path:
        return EditOutputs()
    session = _session(context, session)
    with session.lock:
        mask = session.load_mask(path, name=Path(path).name)
        return EditOutputs(session=session, editor=session.message(mask=True),
                           status=f"Mask loaded: {int(mask.sum()):,} px.")


@user_errors
def select_region(context: Context, session: EditSession | None, event: gr.EventData) -> EditOutputs:
    """A click or a box from the editor's Select tool: the selection's mask goes back into the editor."""
    session = _session(context, session)
    with session.lock:
        picked = selecting.select(session, getattr(event, "_data", None) or {})
        return EditOutputs(session=session, editor=session.message(mask=True, combine=picked.mode),
                           status=picked.status)


def _mask_operation(operation: str, context: Context, session: EditSession | None, px: float) -> EditOutputs:
    session = _session(context, session)
    with session.lock:
        mask = session.mask_operation(operation, int(px or 0))
        return EditOutputs(session=session, editor=session.message(mask=True),
                           status=f"Mask after {operation}: {int(mask.sum()):,} px.")


@user_errors
def grow_mask(context: Context, session: EditSession | None, px: float) -> EditOutputs:
    return _mask_operation("grow", context, session, px)


@user_errors
def shrink_mask(context: Context, session: EditSession | None, px: float) -> EditOutputs:
    return _mask_operation("shrink", context, session, px)


@user_errors
def invert_mask(context: Context, session: EditSession | None, px: float) -> EditOutputs:
    return _mask_operation("invert", context, session, px)


@user_errors
def clear_mask(context: Context, session: EditSession | None, px: float) -> EditOutputs:
    return _mask_operation("clear", context, session, px)


@user_errors
def export_mask(context: Context, session: EditSession | None, mask: str | None) -> EditOutputs:
    session = _session(context, session)
    with session.lock:
        held = session.mask_from_editor(mask)
        return EditOutputs(session=session, mask_download=str(session.write_mask(held)))


@gpu
@user_errors
def run(
    context: Context,
    session: EditSession | None,
    mask: str | None,
    models: list[str] | None,
    variants: list[str] | None,
    strategy: str,
    margin: float | None,
    tile_size: float | None,
    feather: float,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio's API
) -> EditOutputs:
    started = time.perf_counter()
    session = _session(context, session)
    with session.lock:
        hole = session.mask_from_editor(mask)
        names = choices.names_to_run(models, variants)
        options = _options(strategy, margin, tile_size)
        runs, skipped = session.run(hole, names, options, float(feather or 0), progress=progress)
        gallery = [(_run_view(session, r), r.caption) for r in runs]
        model_names = [BEFORE, *[r.model for r in runs]]
        slider = (session.base_view(), _run_view(session, runs[0]))
        message = session.message(results=True)
        status = _run_status(runs, skipped, hole, time.perf_counter() - started)
    return EditOutputs(
        session=session,
        editor=message,
        gallery=gallery,
        slider=slider,
        left=gr.update(choices=model_names, value=BEFORE),
        right=gr.update(choices=model_names, value=runs[0].model),
        status=status,
    )


@user_errors
def result_file(context: Context, session: EditSession | None) -> EditOutputs:
    """After the display copies are shown: the first result's full-size PNG and the mask that ran."""
    session = _session(context, session)
    with session.lock:
        if not session.runs or session.last_mask is None:
            raise user_error("there is no result yet: run a model first")
        path = session.result_file(session.runs[0])
        mask = session.write_mask(session.last_mask, "mask-used")
        return EditOutputs(result_download=str(path), mask_download=str(mask))


@user_errors
def compare(context: Context, session: EditSession | None, left: str | None, right: str | None) -> EditOutputs:
    session = _session(context, session)
    with session.lock:
        slider, download = _comparison(session, left, right)
    return EditOutputs(slider=slider, result_download=download)


def select_result(session: EditSession | None, event: gr.SelectData) -> EditOutputs:
    if session is None or not 0 <= event.index < len(session.runs):
        return EditOutputs()
    with session.lock:
        model = session.runs[event.index].model
        slider, download = _comparison(session, BEFORE, model)
    return EditOutputs(slider=slider, result_download=download, right=gr.update(value=model))


@user_errors
def use_result(context: Context, session: EditSession | None, right: str | None) -> EditOutputs:
    session = _session(context, session)
    with session.lock:
        names = [r.model for r in session.runs]
        if not names:
            raise user_error("there is no result to use yet: run a model first")
        chosen = session.use_result(names.index(right) if right in names else 0)
        return _fresh_comparison(session, f"The {chosen.model} result is the new base. " + _image_status(session),
                                 base="push")


@user_errors
def undo(context: Context, session: EditSession | None) -> EditOutputs:
    session = _session(context, session)
    with session.lock:
        session.undo()
        return _fresh_comparison(session, "Undone. " + _image_status(session), base="pop")


def refresh_models(selected: list[str] | None) -> EditOutputs:
    groups = choices.model_groups()
    runnable = {name for _, name in choices.run_choices(groups)}
    kept = [name for name in selected or [] if name in runnable] or [registry.DEFAULT_MODEL]
    return EditOutputs(models=gr.update(choices=choices.run_choices(groups), value=kept),
                       variants=gr.update(choices=choices.variant_choices(groups)))


def _enable() -> Any:
    return gr.update(interactive=True)


def _cancelled() -> str:
    return "Cancelled: the run was stopped (a model already computing finishes in the background)."


def _delete_session(session: EditSession | None) -> None:
    if session is not None:
        session.close()


# ------------------------------------------------------------------------------------------- layout
def _models_column() -> tuple[gr.CheckboxGroup, gr.Dropdown, gr.Button]:
    groups = choices.model_groups()
    models = gr.CheckboxGroup(
        choices=choices.run_choices(groups),
        value=[registry.DEFAULT_MODEL],
        label="Models (each runs on the same mask)",
        elem_id="models",
    )
    # custom values: an API caller (or a user) may name any card; one that cannot run is skipped with the reason
    variants = gr.Dropdown(choices.variant_choices(groups), value=[], multiselect=True, label="Other variants",
                           info="A ticked model runs its installed variant; add other installed ones here.",
                           allow_custom_value=True, elem_id="variants")
    refresh_button = gr.Button("Refresh model list", size="sm")
    return models, variants, refresh_button


def build_edit_tab(config: StudioConfig, root: Path, examples: list[str] | None = None) -> EditTab:
    """Lay out the Edit tab inside the current Blocks and wire its events."""
    from inpaintstudio.ui.tabs.models import more_models

    context = Context(config, root)
    session = gr.State(None, delete_callback=_delete_session)
    with gr.Row(equal_height=False):
        with gr.Column(scale=4, min_width=560):
            editor = mask_editor("editor", run_button="run", brush_size=24)
        with gr.Column(scale=1, min_width=300, elem_id="edit-side"):
            photo = gr.File(label="Photo", file_types=["image"], type="filepath", height=90,
                            elem_id="photo-upload")
            with gr.Row():
                run_button = gr.Button("Run (Ctrl+Enter)", variant="primary", elem_id="run", scale=3)
                cancel_button = gr.Button("Cancel", variant="stop", elem_id="cancel", scale=1, min_width=60)
            status = gr.Markdown("Open a photo to start.", elem_id="status")
            models, variants, refresh_button = _models_column()
            px, feather, buttons = mask_tools("")
            mask_file = gr.File(label="Upload a mask (white or opaque = hole)", file_types=["image"],
                                type="filepath", height=90, elem_id="mask-upload")
            with gr.Row():
                export_button = gr.Button("Export mask", size="sm", elem_id="mask-export")
                mask_download = gr.DownloadButton("Download mask (PNG)", size="sm", elem_id="mask-download")
            with gr.Accordion("Strategy", open=False):
                strategy = gr.Radio(STRATEGY_CHOICES, value="auto", label="Strategy")
                margin = gr.Number(None, label="Context margin (px, empty = model default)", precision=0)
                tile_size = gr.Number(None, label="Tile size (px, empty = model default)", precision=0)
            gr.Markdown(device_text(), elem_id="device")
            more_models(models, variants)
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
            use_button = gr.Button("Use result as new base", elem_id="use-result")
            undo_button = gr.Button("Undo new base", elem_id="undo")
    gallery = gr.Gallery(label="Results (model · time · device)", format="png", columns=4, height=320,
                         object_fit="contain", interactive=False, elem_id="gallery", buttons=["fullscreen"])
    if examples:
        gr.Examples(examples=[[path] for path in examples], inputs=[photo], label="Example photos",
                    cache_examples=False)
    mask_data = gr.Textbox(visible=False)  # the editor's mask PNG, filled by the event's js

    ui = {"session": session, "editor": editor, "gallery": gallery, "slider": slider, "left": left, "right": right,
          "status": status, "result_download": result_download, "mask_download": mask_download, "models": models,
          "variants": variants}

    def wire(trigger: Any, handler: Any, inputs: list, names: list[str], **kwargs: Any) -> Any:
        return trigger(named(handler, names, context), inputs, [ui[n] for n in names], **kwargs)

    base = ["session", "editor", "gallery", "slider", "left", "right", "status", "result_download"]
    wire(photo.change, open_image, [session, photo], base, api_name="open_image")
    wire(mask_file.change, upload_mask, [session, mask_file], ["session", "editor", "status"],
         api_name="upload_mask")
    wire(editor.click, select_region, [session], ["session", "editor", "status"], api_name="select_region")
    for name, button in buttons.items():  # the browser's own mask operations: no server round trip
        arguments = ("args[0]",) if name in ("grow", "shrink") else ()
        button.click(None, [px], None, js=call("editor", name, *arguments), api_name=False)
    feather.input(None, [feather], None, js=call("editor", "setFeather", "args[0]"), api_name=False)
    for name, handler in (("grow_mask", grow_mask), ("shrink_mask", shrink_mask), ("invert_mask", invert_mask),
                          ("clear_mask", clear_mask)):  # the same operations for API callers, on the held mask
        wire(gr.Button(visible=False).click, handler, [session, px], ["session", "editor", "status"],
             api_name=name)
    wire(export_button.click, export_mask, [session, mask_data], ["session", "mask_download"],
         js=with_mask("editor", 1), api_name="export_mask")
    run_event = wire(
        run_button.click, run,
        [session, mask_data, models, variants, strategy, margin, tile_size, feather],
        ["session", "editor", "gallery", "slider", "left", "right", "status"],
        js=with_mask("editor", 1), api_name="run", concurrency_limit=config.run_workers, concurrency_id="inpaint",
    )
    files = run_event.success(named(result_file, ["result_download", "mask_download"], context), [session],
                              [result_download, mask_download], api_name="result_file")
    files.success(_enable, None, [result_download], api_name=False, queue=False)
    cancel_button.click(_cancelled, None, [status], cancels=[run_event], api_name=False, queue=False)
    gr.on([left.input, right.input], named(compare, ["slider", "result_download"], context),
          [session, left, right], [slider, result_download], api_name="compare")
    gallery.select(named(select_result, ["slider", "result_download", "right"]), [session],
                   [slider, result_download, right], api_name=False)
    wire(use_button.click, use_result, [session, right], base, js=call("editor", "useResult", "args[1]"),
         api_name="use_result")
    wire(undo_button.click, undo, [session], base, js=call("editor", "undoBase"), api_name="undo")
    refresh_button.click(named(refresh_models, ["models", "variants"]), [models], [models, variants],
                         api_name="refresh_models")
    return EditTab(session=session, photo=photo, editor=editor, models=models, variants=variants, gallery=gallery,
                   slider=slider, status=status)
