"""The Models tab: every model's paper, licence and weight status; checkpoint import; Hub download.

API names: ``models_table``, ``import_weights``, ``hub_download``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gradio as gr

from inpaintstudio import pipeline, registry, weights
from inpaintstudio.ui.common import user_error, user_errors
from inpaintstudio.ui.session import model_choices

__all__ = ["STATE_TEXT", "models_markdown", "fetch_hub_weights", "build_models_tab"]

STATE_TEXT = {
    "builtin": "built in (no weights needed)",
    "missing": "missing",
    "present": "imported (no published sha256 to verify)",
    "verified": "verified (sha256)",
    "corrupt": "corrupt (sha256 mismatch)",
}


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _status_cell(card: registry.ModelCard) -> str:
    status = registry.weight_status(card)
    text = STATE_TEXT.get(status["state"], status["state"])
    if status["state"] in ("missing", "corrupt") and status.get("path"):
        text += f": `{Path(status['path']).name}` in `{Path(status['path']).parent}`"
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


def models_markdown() -> str:
    """A Markdown table of every model card (rendered from the cards, so it never drifts)."""
    rows = [
        "| Model | What | Paper | Licence | Weights | Official checkpoint published at |",
        "|---|---|---|---|---|---|",
    ]
    for card in registry.list_cards():
        paper = f"[{_cell(card.paper)}]({card.paper_url})" if card.paper_url else _cell(card.paper)
        rows.append(
            "| " + " | ".join([
                f"`{card.name}`", _cell(card.title), paper, _cell(card.licence or "—"), _cell(_status_cell(card)),
                _cell(_published_cell(card)),
            ]) + " |"
        )
    return "\n".join(rows)


def _deep_models() -> list[str]:
    return [card.name for card in registry.list_cards() if card.needs_weights]


def hub_configured() -> bool:
    return bool(os.environ.get(weights.HF_REPO_ENV))


def fetch_hub_weights() -> list[str]:
    """On a Space (``$INPAINTSTUDIO_HF_REPO`` set): fetch every missing checkpoint; one line per model."""
    if not hub_configured():
        return []
    lines = []
    for card in registry.list_cards():
        if not card.needs_weights or registry.weight_status(card)["state"] != "missing":
            continue
        try:
            path = weights.hub_download(card)
        except weights.WeightsError as error:
            lines.append(f"{card.name}: {error}")
        else:
            pipeline.forget_engines(card.name)
            lines.append(f"{card.name}: fetched to {path}")
    return lines


@user_errors
def import_weights(model: str | None, path: str | None) -> tuple[str, str, Any]:
    if not model:
        raise user_error("choose the model the checkpoint belongs to")
    if not path:
        raise user_error("upload a checkpoint (.pth or .safetensors)")
    report = weights.import_checkpoint(model, path)
    pipeline.forget_engines(model)
    summary = f"Imported into `{report.destination}`.\n\n```\n{report.summary()}\n```"
    return summary, models_markdown(), gr.update(choices=model_choices())


@user_errors
def download_from_hub(model: str | None) -> tuple[str, str, Any]:
    if not model:
        raise user_error("choose a model")
    path = weights.hub_download(model)
    pipeline.forget_engines(model)
    digest = weights.sha256_file(path)
    return f"Fetched `{path.name}` into `{path.parent}` (sha256 {digest[:16]}…).", models_markdown(), gr.update(
        choices=model_choices()
    )


def build_models_tab(edit_models: gr.CheckboxGroup, startup_notes: list[str] | None = None) -> gr.Markdown:
    """Lay out the Models tab; imports refresh the Edit tab's model list (``edit_models``)."""
    gr.Markdown(
        "Classical engines need no weights. A deep model runs only when its checkpoint is here; import the "
        "authors' file below (the same conversion as `python -m inpaintstudio weights import`). Weights folder: "
        f"`{weights.weights_dir()}` (set `INPAINTSTUDIO_WEIGHTS` to move it)."
    )
    table = gr.Markdown(models_markdown(), elem_id="model-table")
    refresh = gr.Button("Refresh", size="sm")
    with gr.Row():
        model = gr.Dropdown(_deep_models(), label="Model", value=None, elem_id="import-model")
        checkpoint = gr.File(label="Checkpoint (.pth or .safetensors)", file_types=[".pth", ".pt", ".safetensors"],
                             type="filepath", elem_id="checkpoint-upload")
    import_button = gr.Button("Import checkpoint", variant="primary")
    hub_button = gr.Button(
        f"Download from the Hub ({os.environ.get(weights.HF_REPO_ENV, '')})", visible=hub_configured()
    )
    report = gr.Markdown("\n\n".join(startup_notes or []), elem_id="import-report")
    refresh.click(lambda: models_markdown(), None, table, api_name="models_table")
    import_button.click(import_weights, [model, checkpoint], [report, table, edit_models], api_name="import_weights")
    hub_button.click(download_from_hub, [model], [report, table, edit_models], api_name="hub_download")
    return table
