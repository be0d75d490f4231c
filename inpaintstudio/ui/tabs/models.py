"""The Models tab: every model and variant with its paper, licence, CPU time and weight status; a
Download button per published variant (with a progress bar); checkpoint import; Hub download.

API names: ``models_table``, ``fetch_<model>_<variant>``, ``import_weights``, ``hub_download``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from inpaintstudio import registry, weights
from inpaintstudio.core import loading, pipeline
from inpaintstudio.ui import choices
from inpaintstudio.ui.common import Outputs, named, user_errors
from inpaintstudio.weights import fetch
from inpaintstudio.weights import sources as weight_sources

__all__ = ["STATE_TEXT", "models_markdown", "fetch_hub_weights", "fetch_variant", "build_models_tab", "more_models",
           "ModelsOutputs", "download_inline"]

STATE_TEXT = {
    "builtin": "built in (no weights needed)",
    "missing": "missing",
    "present": "imported (no published sha256 to verify)",
    "verified": "verified (sha256)",
    "corrupt": "corrupt (sha256 mismatch)",
}


_OUTPUTS = ("report", "table", "models", "variants")


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _status_cell(card: registry.ModelCard) -> str:
    status = loading.weight_status(card)
    text = STATE_TEXT.get(status["state"], status["state"])
    if status["state"] in ("missing", "corrupt") and status.get("path"):
        text += f" (`{Path(status['path']).name}`)"  # the weights folder is named above the table
    return text


def _published_cell(card: registry.ModelCard) -> str:
    if not card.needs_weights:
        return "no weights"
    wf = card.weights[0] if card.weights else None
    if wf is None:
        return "—"
    parts = [wf.source or "not published"]
    if wf.official_filename:
        parts.append(f"(official file `{wf.official_filename}`)")
    if wf.hub_repo:
        parts.append(f"Hub: `{wf.hub_repo}`")
    return " ".join(parts)


def _cpu_cell(card: registry.ModelCard) -> str:
    seconds = getattr(card, "cpu_seconds", None)
    if seconds is None:
        return "—" if card.needs_weights else "see README"
    size = card.input.fixed_size or 256
    return f"{seconds:g} s ({size}²)"


def _short_licence(text: str) -> str:
    """The licence's first clause (its full text is in the details line)."""
    return _cell(text.split(";")[0].split(" (")[0]) if text else "—"


def models_markdown() -> str:
    """A compact Markdown table: one row per model (rendered from the cards, so it never drifts), its variants'
    weight status one per line, with the paper, full licence and checkpoint source folded into details."""
    groups: dict[str, list[registry.ModelCard]] = {}
    for card in registry.list_cards():
        groups.setdefault(card.name.split(":", 1)[0], []).append(card)
    rows = ["| Model | Weights (each variant) | CPU time per image | Licence |", "|---|---|---|---|"]
    for cards in groups.values():
        card = cards[0]
        paper = f"[{_cell(card.paper)}]({card.paper_url})" if card.paper_url else _cell(card.paper)
        details = (f"<details><summary>{_cell(card.title)}</summary>Paper: {paper}<br>Licence: "
                   f"{_cell(card.licence or '—')}<br>Checkpoint: {_cell(_published_cell(card))}</details>")
        weights_cell = "<br>".join(
            f"`{variant.name}`{' (' + _cell(variant.title.split(' · ')[-1]) + ')' if ':' in variant.name else ''}: "
            f"{_cell(_status_cell(variant))}" for variant in cards)
        rows.append("| " + " | ".join([f"`{card.name}` {details}", weights_cell, _cpu_cell(card),
                                        _short_licence(card.licence)]) + " |")
    return "\n".join(rows)


def markdown_text(text: str) -> str:
    """``text`` for a Markdown block: angle brackets outside code spans escaped (``G_<n>.pth`` would otherwise be
    read as an HTML tag and hidden with everything after it)."""
    parts = text.split("`")
    return "`".join(part.replace("<", "&lt;").replace(">", "&gt;") if index % 2 == 0 else part
                    for index, part in enumerate(parts))


def _deep_models() -> list[str]:
    return [card.name for card in registry.list_cards() if card.needs_weights and ":" not in card.name]


def _known_models() -> set[str]:
    return {card.name for card in registry.list_cards()}


def hub_configured() -> bool:
    return bool(os.environ.get(weights.HF_REPO_ENV))


def fetch_hub_weights() -> list[str]:
    """On a Space (``$INPAINTSTUDIO_HF_REPO`` set): fetch every missing checkpoint; one line per model."""
    if not hub_configured():
        return []
    lines = []
    for card in registry.list_cards():
        if not card.needs_weights or ":" in card.name or weights.status(card)["state"] != "missing":
            continue
        try:
            path = weights.hub_download(card)
        except weights.WeightsError as error:
            lines.append(f"{card.name}: {error}")
        else:
            pipeline.forget_engines(card.name)
            lines.append(f"{card.name}: fetched to {path}")
    return lines


def fetch_variant(name: str, progress: Callable[..., Any] | None = None) -> str:
    """Fetch one variant for the UI; returns a Markdown report. A failed fetch raises ``gr.Error``."""
    lines: list[str] = []

    def on_bytes(done: int, total: int | None) -> None:
        if progress is not None and total:
            progress(done / total, desc=f"{name}: {done / 1e6:.1f} of {total / 1e6:.1f} MB")

    try:
        result = fetch.fetch(name, progress=on_bytes, log=lines.append)
    except (fetch.FetchError, weight_sources.UnknownVariantError) as error:
        raise gr.Error(str(error), duration=None) from error
    pipeline.forget_engines(result.name)
    listing = "\n".join(lines)
    return f"{result.summary()}" + (f"\n\n```\n{listing}\n```" if listing else "")


@dataclass
class ModelsOutputs(Outputs):
    """What a download or an import changes: its report, the table and the Edit tab's model controls."""

    report: Any = field(default_factory=gr.skip)
    table: Any = field(default_factory=gr.skip)
    models: Any = field(default_factory=gr.skip)
    variants: Any = field(default_factory=gr.skip)


def _refreshed(report: str) -> ModelsOutputs:
    groups = choices.model_groups()
    return ModelsOutputs(report=report, table=models_markdown(), models=gr.update(choices=choices.run_choices(groups)),
                         variants=gr.update(choices=choices.variant_choices(groups)))


def download_inline(variant: str | None, progress: gr.Progress = gr.Progress()) -> ModelsOutputs:  # noqa: B008
    """A Download button beside a model that needs weights (its variant chosen in the menu beside it)."""
    if not variant:
        raise gr.Error("choose a variant to download")
    return _refreshed(fetch_variant(variant, progress))


def _download_handler(name: str) -> Callable[..., ModelsOutputs]:
    def download(progress: gr.Progress = gr.Progress()) -> ModelsOutputs:  # noqa: B008 - Gradio's API
        return _refreshed(fetch_variant(name, progress))

    return download


@user_errors
def import_weights(model: str | None, path: str | None, variant: str | None = None) -> ModelsOutputs:
    if not model:
        raise gr.Error("choose the model the checkpoint belongs to")
    if not path:
        raise gr.Error("upload a checkpoint (.pth or .safetensors)")
    variant = (variant or "").strip()
    if variant:
        try:
            destination, report = fetch.import_variant(model, variant, path)
        except fetch.FetchError as error:
            raise gr.Error(str(error), duration=None) from error
        name = f"{model}:{variant}"
    else:
        report = loading.import_checkpoint(model, path)
        destination, name = Path(report.destination), model
    pipeline.forget_engines(name)
    return _refreshed(f"Imported `{name}` into `{destination}`.\n\n```\n{report.summary()}\n```")


@user_errors
def download_from_hub(model: str | None) -> ModelsOutputs:
    if not hub_configured():
        raise gr.Error(f"Hub downloads are off: set {weights.HF_REPO_ENV} to enable them")
    if not model:
        raise gr.Error("choose a model")
    path = weights.hub_download(registry.get_card(model))
    pipeline.forget_engines(model)
    digest = weights.sha256_file(path)
    return _refreshed(f"Fetched `{path.name}` into `{path.parent}` (sha256 {digest[:16]}…).")


def more_models(edit_models: gr.CheckboxGroup, edit_variants: gr.Dropdown) -> None:
    """"More models (need weights)": one row per model that cannot run yet, with its variants in a menu, a
    Download button and the download's progress beside it."""
    waiting = [group for group in choices.model_groups() if not group.can_run]
    if not waiting:
        return
    with gr.Accordion(f"More models (need weights): {len(waiting)}", open=False, elem_id="more-models"):
        for group in waiting:
            gr.Markdown(f"**{group.name}**: {group.title}" + ("" if group.fetchable else " (see the Models tab)"),
                        elem_classes=["more-model-name"])
            if group.fetchable:
                with gr.Row(equal_height=True, elem_classes=["more-model"]):
                    variant = gr.Dropdown(list(group.fetchable), value=group.fetchable[0], show_label=False,
                                          container=False, scale=2, min_width=100, elem_id=f"variant-{group.name}")
                    button = gr.Button("Download", size="sm", scale=1, min_width=80, elem_id=f"download-{group.name}")
                report = gr.Markdown("", elem_id=f"download-report-{group.name}")
                button.click(named(download_inline, ["report", "models", "variants"]), [variant],
                             [report, edit_models, edit_variants], api_name=False)


def build_models_tab(edit_models: gr.CheckboxGroup, edit_variants: gr.Dropdown,
                     startup_notes: list[str] | None = None) -> gr.Markdown:
    """Lay out the Models tab; downloads and imports refresh the Edit tab's model list (``edit_models``)."""
    gr.Markdown(
        "Classical engines need no weights. A deep model runs only when its checkpoint is here: download the "
        "authors' weights below (each download is converted, checked key by key and recorded in "
        "`weights.lock.json`), or import a file. CPU times are one 256×256 image on a 2-core CPU. Weights "
        f"folder: `{weights.weights_dir()}` (set `INPAINTSTUDIO_WEIGHTS` to move it)."
    )
    table = gr.Markdown(models_markdown(), elem_id="model-table")
    refresh = gr.Button("Refresh", size="sm")
    report = gr.Markdown("\n\n".join(startup_notes or []), elem_id="import-report")
    known = _known_models()
    selection_models = [card.name for card in registry.list_cards(task="select") if ":" not in card.name]
    published = [source for model in [*_deep_models(), *selection_models] for source in registry.variants_of(model)]
    with gr.Accordion("Download the authors' weights", open=True):
        for source in published:
            with gr.Row(equal_height=True):
                gr.Markdown(f"**`{source.name}`**: {source.dataset}, for {source.purpose}")
                if source.fetchable:
                    button = gr.Button("Download", size="sm", scale=0, min_width=120,
                                       elem_id=f"fetch-{source.model}-{source.variant}")
                    button.click(named(_download_handler(source.name), list(_OUTPUTS)), None,
                                 [report, table, edit_models, edit_variants],
                                 api_name=f"fetch_{source.model}_{source.variant}")
                else:
                    gr.Markdown(markdown_text(source.instructions))
        for model, instructions in registry.unpublished_notes().items():
            if model in known:
                gr.Markdown(f"**`{model}`**: {instructions}")
    with gr.Accordion("Import a checkpoint", open=False):
        with gr.Row():
            model = gr.Dropdown(_deep_models(), label="Model", value=None, elem_id="import-model")
            variant = gr.Textbox(label="Variant name (optional: e.g. celeba, or a name for your own training)",
                                 elem_id="import-variant")
            checkpoint = gr.File(label="Checkpoint (.pth or .safetensors)",
                                 file_types=[".pth", ".pt", ".ckpt", ".safetensors"], type="filepath",
                                 elem_id="checkpoint-upload")
        import_button = gr.Button("Import checkpoint", variant="primary")
        hub_button = gr.Button(
            f"Download from the Hub ({os.environ.get(weights.HF_REPO_ENV, '')})", visible=hub_configured()
        )
    refresh.click(lambda: models_markdown(), None, table, api_name="models_table")
    outputs = [report, table, edit_models, edit_variants]
    import_button.click(named(import_weights, list(_OUTPUTS)), [model, checkpoint, variant], outputs,
                        api_name="import_weights")
    if hub_configured():  # otherwise no hub_download endpoint exists for an API caller to reach
        hub_button.click(named(download_from_hub, list(_OUTPUTS)), [model], outputs, api_name="hub_download")
    return table
