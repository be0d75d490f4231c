"""The loading layer: from a card to a built network, a ready engine, a weight status or an import.

Layers, bottom up (an arrow only ever points down):

    errors, modelcard          exceptions, exit codes, the card dataclasses (no package imports)
    cards/<model>.py           one torch-free card file per model
    registry                   discovers the cards, looks names up
    weights, engines           checkpoint files and tensors; the engine interface and TorchEngine
    loading (this module)      card -> network module, config, network, engine
    pipeline                   one request -> one result
    cli, clinic, training, ui  front ends

A card names the module that implements its model (``card.module``); :func:`model_module` imports it, so
there is no second table of models. A deep model's module provides ``Config`` (or the class the card's
``config_class`` names), ``build(cfg)``, ``predict(net, image, mask)``, ``remap_official_state_dict(sd)``,
``config_from_fixture(dict)`` and ``parity_forward(net, inputs)``; a classical engine's module provides
``make_engine(card, device, **options)``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from inpaintstudio import registry, weights
from inpaintstudio.core.engines import Engine, TorchEngine, select_device
from inpaintstudio.errors import UnknownModelError, WeightsMissingError
from inpaintstudio.modelcard import ModelCard, contract_gaps
from inpaintstudio.weights import sources as weight_sources

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "ResolvedModel",
    "resolve_model",
    "model_module",
    "card_config",
    "build_network",
    "make_engine",
    "load",
    "weight_status",
    "import_checkpoint",
]


_INSTALLED = ("present", "verified")


@dataclass(frozen=True)
class ResolvedModel:
    """A model name turned, once, into what runs: the card (a variant's card when a bare name stands for an
    installed variant), its weight status and the line that says which variant a bare name picked."""

    requested: str
    card: ModelCard
    status: dict[str, Any]
    note: str = ""

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def variant(self) -> str | None:
        return weight_sources.parse_name(self.card.name)[1]

    @property
    def weights_path(self) -> Path | None:
        return weights.expected_path(self.card)

    @property
    def runnable(self) -> bool:
        return self.status["state"] not in ("missing", "corrupt")


def resolve_model(model: str | ModelCard) -> ResolvedModel:
    """The one name resolution of every front end (CLI, studio, eval, clinic).

    A card is taken as it is, and ``model:variant`` is that variant. A bare deep-model name runs, in this
    order: its default variant (the card's first) when installed; the model's own file
    (``weights import --model NAME FILE``); the first installed variant in the card's order. With nothing
    installed it stays the bare model, whose status is missing and whose message lists the variants.

    Raises:
        UnknownModelError: no such model or variant.
    """
    card = registry.resolve(model)
    requested = model if isinstance(model, str) else card.name
    own = _status(card)
    if isinstance(model, ModelCard) or not card.needs_weights or ":" in card.name:
        return ResolvedModel(requested, card, own)
    installed = []
    for source in registry.all_variants(card.name):
        variant = registry.variant_card(card, source)
        status = _status(variant)
        if status["state"] in _INSTALLED:
            installed.append((variant, status))
    default = registry.default_variant(card.name)
    first = installed[0] if installed else None
    if first is None or (own["state"] in _INSTALLED and (default is None or first[0].name != default.name)):
        return ResolvedModel(requested, card, own)
    variant, status = first
    others = [each.name for each, _ in installed[1:]] + ([card.name] if own["state"] in _INSTALLED else [])
    which = "the default variant" if default is not None and default.name == variant.name else "its installed variant"
    also = f"; also installed: {', '.join(others)}" if others else ""
    return ResolvedModel(requested, variant, status, f"{card.name} runs as {variant.name} ({which}{also})")


def model_module(model: str | ModelCard) -> ModuleType:
    """The module that implements a model (by card, or by name through the registry), checked against the
    model contract (:class:`~inpaintstudio.modelcard.DeepModelModule` or ``ClassicalModule``) on first load.

    Raises:
        TypeError: the module lacks part of the contract; the message names what is missing.
    """
    card = registry.resolve(model)
    module = importlib.import_module(card.module)
    if card.module not in _CHECKED:
        gaps = contract_gaps(module, card)
        if gaps:
            raise TypeError(f"{card.module} (the module of {card.name}) lacks {', '.join(gaps)}: see "
                            "docs/MODEL_CONTRACT.md")
        _CHECKED.add(card.module)
    return module


_CHECKED: set[str] = set()


def card_config(card: ModelCard) -> Any:
    """The network config a card stands for: ``card.config`` when set, else the module's config class
    (``card.config_class``) with the card's overrides."""
    if card.config is not None:
        return card.config
    return getattr(model_module(card), card.config_class)(**dict(card.config_overrides))


def build_network(card: ModelCard) -> "torch.nn.Module":
    """The network of a card with its weights loaded (strict). Refuses when weights are missing.

    Raises:
        WeightsMissingError: the card's weight file is not on disk; the message names it and its folder.
    """
    path = weights.expected_path(card)
    if path is None or not path.is_file():
        expected = path if path is not None else weights.weights_dir() / "<none>"
        message = weights.missing_message(card, expected, registry.missing_hints(card.name))
        raise WeightsMissingError(message, card=card, expected=expected)
    tensors, metadata = weights.read_checkpoint(path)
    # a checkpoint written by the trainer (or an import of one) carries the config it was built with
    net = model_module(card).build(weights.config_from_metadata(card_config(card), metadata))
    weights.load_strict(net, tensors, name=card.name)
    return net.eval()


def make_engine(card: ModelCard, device: str | None = None, **options: Any) -> Engine:
    """A ready engine for ``card`` on ``device`` (``None`` = auto); classical engines run on the CPU."""
    if card.task != "inpaint":
        raise UnknownModelError(f"{card.name} selects objects and does not inpaint: use `inpaintstudio select`; "
                                f"inpainting models: {', '.join(c.name for c in registry.list_cards())}")
    module = model_module(card)
    if card.kind == "classical":
        return module.make_engine(card, device=device, **options)
    return TorchEngine(card, build_network(card), select_device(device), module.predict,
                       precision=options.get("precision", "fp32"))


def load(model: str | ModelCard, device: str | None = None, **options: Any) -> Engine:
    """Build a ready-to-run engine for a model (name or card) on ``device`` (``None`` = auto).

    A name is resolved with :func:`resolve_model` (a bare name runs its installed variant).

    Raises:
        UnknownModelError: no such model.
        WeightsMissingError: a deep model whose weights are not on disk; the message names the
            expected file and folder. Random weights never reach a user's image.
    """
    return make_engine(resolve_model(model).card, device=device, **options)


def weight_status(model: str | ModelCard) -> dict[str, Any]:
    """Weight status without building anything: ``{"state": ..., "path": ..., "message": ...}``.

    ``state`` is ``"builtin"`` (classical engine, no weights), ``"missing"``, ``"present"`` (found,
    no known digest to check), ``"verified"`` (found, sha256 matches the card, or the lock file's record
    of a fetched or imported variant) or ``"corrupt"`` (it matches neither). A bare name's status is that
    of what it resolves to (see :func:`resolve_model`).
    """
    return resolve_model(model).status


def _status(card: ModelCard) -> dict[str, Any]:
    status = weights.status(card)
    if status["state"] == "missing":
        path = Path(status["path"])
        status["message"] = weights.missing_message(card, path, registry.missing_hints(card.name))
    elif status["state"] == "present" and card.weights_path is None:
        path = Path(status["path"])
        state, message = weight_sources.check_against_lock(card.name, path, path.parent)
        if state in ("verified", "mismatch"):
            status = {"state": "verified" if state == "verified" else "corrupt", "path": str(path), "message": message}
    return status


def import_checkpoint(
    model: str | ModelCard, source: str | os.PathLike[str], destination: str | os.PathLike[str] | None = None
) -> weights.ImportReport:
    """Convert an official checkpoint of ``model`` to safetensors (see :func:`weights.import_checkpoint`).

    The expected keys come from the network the file stands for (the card's config, or the config in
    the file's metadata when ``Trainer.export`` wrote one), built on the ``meta`` device (no memory).
    """
    import torch

    card = registry.resolve(model)
    if not card.needs_weights:
        deep = ", ".join(c.name for c in registry.list_cards() if c.needs_weights)
        raise weights.WeightsError(f"{card.name} is a classical engine and takes no weights; deep models: {deep}")
    module = model_module(card)

    def expected(metadata: Mapping[str, Any]) -> tuple[dict[str, tuple[int, ...]], Any]:
        config = weights.config_from_metadata(card_config(card), metadata)
        with torch.device("meta"):
            reference = module.build(config)
        return {key: tuple(value.shape) for key, value in reference.state_dict().items()}, config

    return weights.import_checkpoint(
        card, source, destination, remap=module.remap_official_state_dict, expected=expected,
        read=getattr(module, "read_official_checkpoint", None),
    )
