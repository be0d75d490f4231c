"""Model names -> model cards (pure data) and loaders.

A *model card* says everything the pipeline, the CLI and the UI need to know about a model without
building it: its input contract (value range, hole fill, mask polarity, divisibility, fixed size),
its working resolution and tiling, its weight files and where they are published, its licence and
paper, and its capabilities (e.g. ``landmarks``).

Each network lives in one module of ``inpaintstudio.models`` that exposes ``CARDS`` (a list of
:class:`ModelCard`) and the functions named in :data:`MODEL_MODULES`' docstring. Adding a model
touches nothing but the table below.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover
    from inpaintstudio.engines import Engine

__all__ = [
    "InputConvention",
    "WeightFile",
    "ModelCard",
    "UnknownModelError",
    "WeightsMissingError",
    "MODEL_MODULES",
    "list_cards",
    "get_card",
    "model_module",
    "register",
    "unregister",
    "weight_status",
    "load",
]


class UnknownModelError(KeyError):
    """A model name that no card carries."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain message
        return str(self.args[0])


class WeightsMissingError(FileNotFoundError):
    """A deep model was asked for but its weights are not on disk."""

    def __init__(self, message: str, *, card: "ModelCard", expected: Path) -> None:
        super().__init__(message)
        self.card = card
        self.expected = expected

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class InputConvention:
    """How a network wants its inputs. The pipeline applies this; front ends never do.

    Args:
        value_range: pixel range the network reads and writes, ``(0, 1)`` or ``(-1, 1)``.
        hole_fill: value (in ``value_range``) written into hole pixels before the network sees them,
            or ``None`` to leave them as they are.
        mask_hole_value: the mask value that marks a hole for this network (1 for most; 0 for TSGL,
            whose mask is 1 = known).
        pad_multiple: height and width must be multiples of this; the pipeline pads.
        pad_mode: ``"reflect"`` or ``"symmetric"`` (numpy's names) for that padding.
        fixed_size: the network only runs at exactly ``(fixed_size, fixed_size)``; the pipeline
            resizes or tiles to it.
        min_size: the smallest side the network runs at (after padding).
    """

    value_range: tuple[float, float] = (0.0, 1.0)
    hole_fill: float | None = 1.0
    mask_hole_value: int = 1
    pad_multiple: int = 1
    pad_mode: Literal["reflect", "symmetric"] = "reflect"
    fixed_size: int | None = None
    min_size: int = 1


@dataclass(frozen=True)
class WeightFile:
    """One checkpoint file a model needs.

    Args:
        filename: the file name the studio looks for in the weights folder (safetensors).
        sha256: the hex digest of that file when it is known; ``None`` when unknown.
        source: where the official checkpoint is published (a URL and a sentence).
        official_filename: the name the authors gave it (``InpaintingModel_gen.pth``), which
            ``python -m inpaintstudio weights import`` converts to ``filename``.
        hub_repo: optional Hugging Face repository id holding ``filename``.
    """

    filename: str
    sha256: str | None = None
    source: str = ""
    official_filename: str | None = None
    hub_repo: str | None = None


@dataclass(frozen=True)
class ModelCard:
    """Everything known about one model (one set of weights) without building it."""

    name: str
    family: str
    title: str
    kind: Literal["classical", "deep"] = "deep"
    paper: str = ""
    paper_url: str = ""
    code_url: str = ""
    licence: str = ""
    working_size: int = 256
    tile_size: int = 256
    tile_overlap: int = 64
    context_margin: int = 64
    input: InputConvention = field(default_factory=InputConvention)
    weights: tuple[WeightFile, ...] = ()
    capabilities: frozenset[str] = frozenset()
    module: str = ""
    config_overrides: tuple[tuple[str, Any], ...] = ()
    notes: str = ""
    weights_path: Path | None = None
    config: Any = None  # a ready network config; when set it wins over config_overrides

    @property
    def needs_weights(self) -> bool:
        return self.kind == "deep"

    def with_weights_path(self, path: Path) -> "ModelCard":
        return replace(self, weights_path=Path(path))


# Model name -> module holding its CARDS. A module of a deep network provides:
#   Config (dataclass, released-code defaults), build(cfg=None) -> nn.Module,
#   config_from_fixture(dict) -> Config, parity_forward(net, inputs) -> dict[str, Tensor],
#   remap_official_state_dict(sd) -> (sd, report), predict(net, image, mask) -> dict[str, Tensor].
# A module of a classical engine provides CARDS and make_engine(card, device) -> Engine.
MODEL_MODULES: dict[str, str] = {
    "opencv_telea": "inpaintstudio.classical",
    "opencv_ns": "inpaintstudio.classical",
    "patchmatch": "inpaintstudio.classical",
    "sem_net": "inpaintstudio.models.sem_net",
    "mxt": "inpaintstudio.models.mxt",
    "hint": "inpaintstudio.models.hint",
    "inclg": "inpaintstudio.models.inclg",
    "tsgl": "inpaintstudio.models.tsgl",
    "tsgl_512": "inpaintstudio.models.tsgl_lama",
    "csfc": "inpaintstudio.models.csfc",
    "lama": "inpaintstudio.models.lama",
}

DEFAULT_MODEL = "patchmatch"

_extra_cards: dict[str, tuple[ModelCard, Callable[..., "Engine"] | None]] = {}


def model_module(name_or_card: str | ModelCard) -> Any:
    """Import and return the module that implements a model (by name or card)."""
    if isinstance(name_or_card, ModelCard):
        return importlib.import_module(name_or_card.module)
    base = name_or_card.split(".", 1)[0]
    if base in _extra_cards:
        return importlib.import_module(_extra_cards[base][0].module)
    if base not in MODEL_MODULES:
        raise UnknownModelError(_unknown_message(name_or_card))
    return importlib.import_module(MODEL_MODULES[base])


def _cards_of_module(module_name: str) -> list[ModelCard]:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        # A model whose file does not exist yet is simply not listed.
        if error.name and module_name.startswith(error.name):
            return []
        raise
    return list(getattr(module, "CARDS", []))


def list_cards() -> list[ModelCard]:
    """Every known card: built-in ones in table order, then the ones registered at run time."""
    cards: list[ModelCard] = []
    seen: set[str] = set()
    for module_name in dict.fromkeys(MODEL_MODULES.values()):
        for card in _cards_of_module(module_name):
            if card.name not in seen:
                cards.append(card)
                seen.add(card.name)
    for card, _ in _extra_cards.values():
        if card.name not in seen:
            cards.append(card)
            seen.add(card.name)
    return cards


def _unknown_message(name: str) -> str:
    names = ", ".join(card.name for card in list_cards())
    return f"unknown model {name!r}; known models: {names}"


def get_card(name: str) -> ModelCard:
    if name in _extra_cards:
        return _extra_cards[name][0]
    for card in list_cards():
        if card.name == name:
            return card
    raise UnknownModelError(_unknown_message(name))


def register(card: ModelCard, factory: Callable[..., "Engine"] | None = None) -> ModelCard:
    """Register a card at run time (tests register fixture-sized models this way)."""
    _extra_cards[card.name] = (card, factory)
    return card


def unregister(name: str) -> None:
    _extra_cards.pop(name, None)


def weight_status(name_or_card: str | ModelCard) -> dict[str, Any]:
    """Weight status without building anything: ``{"state": ..., "files": [...], "message": ...}``.

    ``state`` is ``"builtin"`` (classical engine, no weights), ``"missing"``, ``"present"`` (found,
    no known digest to check) or ``"verified"`` (found and its sha256 matches the card).
    """
    from inpaintstudio import weights as weights_mod

    card = get_card(name_or_card) if isinstance(name_or_card, str) else name_or_card
    return weights_mod.status(card)


def load(name: str, device: str | None = None, **options: Any) -> "Engine":
    """Build a ready-to-run engine for ``name`` on ``device`` (``None`` = auto).

    Raises:
        UnknownModelError: no such model.
        WeightsMissingError: a deep model whose weights are not on disk; the message names the
            expected file and folder. Random weights never reach a user's image.
    """
    from inpaintstudio import engines

    card = get_card(name)
    extra = _extra_cards.get(name)
    if extra is not None and extra[1] is not None:
        return extra[1](card, device=device, **options)
    return engines.make_engine(card, device=device, **options)
