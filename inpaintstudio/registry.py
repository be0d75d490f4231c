"""Model names -> model cards: discovery and lookup, nothing else (no torch, no building).

A *model card* (:class:`inpaintstudio.modelcard.ModelCard`) says everything the pipeline, the CLI and the
UI need to know about a model without building it: its input contract, working size and tiling, weight
files, licence, paper, capabilities, and the module that implements it.

Where things live:
    - the card dataclasses: :mod:`inpaintstudio.modelcard`;
    - the cards: one torch-free file per model in :mod:`inpaintstudio.cards`, found here with
      :mod:`pkgutil` (so a new model is one network file plus one card file);
    - building what a card names (config, network, engine, weight status, checkpoint import):
      :mod:`inpaintstudio.loading`, the layer above this one and :mod:`inpaintstudio.weights`;
    - errors and exit codes: :mod:`inpaintstudio.errors`.

Tests and tools may :func:`register` extra cards at run time (e.g. fixture-sized networks).
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

from inpaintstudio import cards as _cards_package
from inpaintstudio import weight_sources
from inpaintstudio.errors import UnknownModelError, WeightsMissingError
from inpaintstudio.modelcard import InputConvention, ModelCard, WeightFile

__all__ = [
    "InputConvention",
    "WeightFile",
    "ModelCard",
    "UnknownModelError",
    "WeightsMissingError",
    "DEFAULT_MODEL",
    "list_cards",
    "get_card",
    "resolve",
    "register",
    "unregister",
]

DEFAULT_MODEL = "patchmatch"

# The card file listed first; the others follow in file-name order.
_FIRST_CARD_FILE = "classical"

_extra_cards: dict[str, ModelCard] = {}


@functools.cache
def builtin_cards() -> tuple[ModelCard, ...]:
    """The cards of every module in :mod:`inpaintstudio.cards` (classical first, then by file name).

    Raises:
        ValueError: two card files define the same model name, or a card names no module.
    """
    names = sorted(info.name for info in pkgutil.iter_modules(_cards_package.__path__))
    names.sort(key=lambda name: name != _FIRST_CARD_FILE)
    found: dict[str, ModelCard] = {}
    for file_name in names:
        module = importlib.import_module(f"{_cards_package.__name__}.{file_name}")
        for card in getattr(module, "CARDS", ()):
            if card.name in found:
                raise ValueError(f"model {card.name!r} has two cards (second in inpaintstudio/cards/{file_name}.py)")
            if not card.module:
                raise ValueError(f"the card of {card.name!r} names no module (inpaintstudio/cards/{file_name}.py)")
            found[card.name] = card
    return tuple(found.values())


def list_cards(task: str | None = "inpaint") -> list[ModelCard]:
    """Every known card of ``task`` (``None``: every task): the built-in ones, then the ones registered at run
    time; each deep model is followed by its variants (``sem_net:places2`` …: the published ones, then the
    user's imported ones)."""
    builtin = builtin_cards()
    taken = {card.name for card in builtin}
    cards = [*builtin, *(card for card in _extra_cards.values() if card.name not in taken)]
    cards = [card for card in cards if task is None or card.task == task]
    return [each for card in cards for each in (card, *_variant_cards(card))]


def _variant_cards(card: ModelCard) -> list[ModelCard]:
    if not card.needs_weights or ":" in card.name:
        return []
    return [weight_sources.variant_card(card, source) for source in weight_sources.all_variants(card.name)]


def _variant(name: str) -> ModelCard:
    """The card of ``model:variant``: the model's card with the variant's weight file and purpose."""
    base_name, variant = name.split(":", 1)
    base = get_card(base_name)
    source = weight_sources.find_variant(base.name, variant) if base.needs_weights else None
    if source is None:
        known = ", ".join(s.variant for s in weight_sources.all_variants(base.name)) or "none"
        raise UnknownModelError(f"{base.name} has no variant {variant!r}; its variants: {known}")
    return weight_sources.variant_card(base, source)


def _unknown_message(name: str) -> str:
    names = ", ".join(card.name for card in list_cards())
    return f"unknown model {name!r}; known models: {names}"


def get_card(name: str) -> ModelCard:
    """The card called ``name``; a run-time registration wins over a built-in card of that name."""
    if name in _extra_cards:
        return _extra_cards[name]
    if ":" in name:
        return _variant(name)
    for card in builtin_cards():
        if card.name == name:
            return card
    raise UnknownModelError(_unknown_message(name))


def resolve(model: str | ModelCard) -> ModelCard:
    """A card from a card or a name: front ends resolve once and pass the card down."""
    return model if isinstance(model, ModelCard) else get_card(model)


def register(card: ModelCard) -> ModelCard:
    """Register a card at run time (tests register fixture-sized models this way)."""
    _extra_cards[card.name] = card
    return card


def unregister(name: str) -> None:
    _extra_cards.pop(name, None)
