"""Model names -> model cards and their published weights: discovery and lookup, nothing else (no torch).

A *model card* (:class:`inpaintstudio.modelcard.ModelCard`) says everything the pipeline, the CLI and the
UI need to know about a model without building it: its input contract, working size and tiling, weight
files, licence, paper, capabilities, and the module that implements it.

A model is one folder, ``inpaintstudio/models/<name>/``: ``card.py`` (torch-free) defines ``CARDS`` and,
when the authors published weights, ``SOURCES`` (one :class:`~inpaintstudio.weights.sources.Source` per
variant, the default first) or ``UNPUBLISHED`` (what to do instead); ``network.py`` is the module the card
names. This module finds every such folder with :mod:`pkgutil` (and the classical engines' card,
:mod:`inpaintstudio.classical.card`), so dropping a folder in adds a model and no list is edited.

Where things live:
    - the card dataclasses and the model-module contract: :mod:`inpaintstudio.modelcard`;
    - building what a card names (config, network, engine, weight status, checkpoint import, the one name
      resolution of every front end): :mod:`inpaintstudio.core.loading`;
    - errors and exit codes: :mod:`inpaintstudio.errors`.

Tests and tools may :func:`register` extra cards and :func:`register_source` extra variants at run time.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from inpaintstudio import models as _models_package
from inpaintstudio.errors import UnknownModelError, WeightsMissingError
from inpaintstudio.modelcard import InputConvention, ModelCard, WeightFile
from inpaintstudio.weights import sources
from inpaintstudio.weights.sources import Source, UnknownVariantError

__all__ = [
    "InputConvention",
    "WeightFile",
    "ModelCard",
    "Source",
    "UnknownModelError",
    "UnknownVariantError",
    "WeightsMissingError",
    "DEFAULT_MODEL",
    "CLASSICAL_CARDS",
    "model_folders",
    "builtin_cards",
    "published_sources",
    "unpublished_notes",
    "list_cards",
    "get_card",
    "resolve",
    "register",
    "unregister",
    "register_source",
    "unregister_source",
    "registered_sources",
    "variants_of",
    "default_variant",
    "get_source",
    "imported_variants",
    "all_variants",
    "find_variant",
    "variant_card",
    "missing_hints",
]

DEFAULT_MODEL = "patchmatch"
CLASSICAL_CARDS = "inpaintstudio.classical.card"  # listed first; then the model folders by name

_extra_cards: dict[str, ModelCard] = {}


@dataclass(frozen=True)
class _Catalogue:
    cards: tuple[ModelCard, ...]
    sources: tuple[Source, ...]
    unpublished: dict[str, str]


def model_folders() -> list[str]:
    """The model folders under ``inpaintstudio/models/`` (every package with a ``card`` module), by name."""
    found = set()
    for folder in _models_package.__path__:  # looked up on disk: importing a package to ask could load torch
        for info in pkgutil.iter_modules([folder]):
            if info.ispkg and (Path(folder) / info.name / "card.py").is_file():
                found.add(info.name)
    return sorted(found)


def _card_modules() -> list[tuple[str, ModuleType]]:
    names = [CLASSICAL_CARDS, *(f"{_models_package.__name__}.{folder}.card" for folder in model_folders())]
    return [(name, importlib.import_module(name)) for name in names]


@functools.cache
def _catalogue() -> _Catalogue:
    cards: dict[str, ModelCard] = {}
    published: list[Source] = []
    unpublished: dict[str, str] = {}
    for module_name, module in _card_modules():
        where = module_name.replace(".", "/") + ".py"
        for card in getattr(module, "CARDS", ()):
            if card.name in cards:
                raise ValueError(f"model {card.name!r} has two cards (second in {where})")
            if not card.module:
                raise ValueError(f"the card of {card.name!r} names no module ({where})")
            cards[card.name] = card
        published.extend(getattr(module, "SOURCES", ()))
        note = getattr(module, "UNPUBLISHED", None)
        if note:
            for card in getattr(module, "CARDS", ()):
                unpublished[card.name] = note
    return _Catalogue(tuple(cards.values()), tuple(published), unpublished)


def builtin_cards() -> tuple[ModelCard, ...]:
    """The cards of the classical engines, then of every model folder by name.

    Raises:
        ValueError: two card files define the same model name, or a card names no module.
    """
    return _catalogue().cards


def published_sources() -> tuple[Source, ...]:
    """Every published variant of every model folder, each model's default first."""
    return _catalogue().sources


def unpublished_notes() -> dict[str, str]:
    """``{model: what to do instead}`` for the models whose authors published no weights."""
    return dict(_catalogue().unpublished)


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
    return [variant_card(card, source) for source in all_variants(card.name)]


def _variant(name: str) -> ModelCard:
    """The card of ``model:variant``: the model's card with the variant's weight file and purpose."""
    base_name, variant = name.split(":", 1)
    base = get_card(base_name)
    source = find_variant(base.name, variant) if base.needs_weights else None
    if source is None:
        known = ", ".join(s.variant for s in all_variants(base.name)) or "none"
        raise UnknownModelError(f"{base.name} has no variant {variant!r}; its variants: {known}")
    return variant_card(base, source)


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


# ------------------------------------------------------------------------------------ variants
_extra: dict[str, Source] = {}


def _all() -> list[Source]:
    return [*published_sources(), *_extra.values()]


def register_source(source: Source) -> Source:
    """Add a source at run time (tests add fixture-sized models this way)."""
    _extra[source.name] = source
    return source


def unregister_source(name: str) -> None:
    _extra.pop(name, None)


def registered_sources() -> list[str]:
    """The names of the sources registered at run time."""
    return list(_extra)


def variants_of(model: str) -> list[Source]:
    """Every variant of ``model`` in table order (the first is the default)."""
    return [source for source in _all() if source.model == model]


def default_variant(model: str) -> Source | None:
    found = variants_of(model)
    return found[0] if found else None


def get_source(model: str, variant: str | None = None) -> Source:
    """The entry of ``model`` (``"sem_net"`` or ``"sem_net:places2"``) and ``variant`` (default: the first)."""
    base, named = sources.parse_name(model)
    variant = variant or named
    found = variants_of(base)
    if not found and base in unpublished_notes():
        raise UnknownVariantError(unpublished_notes()[base])
    if not found:
        known = ", ".join(sorted({source.model for source in _all()}))
        raise UnknownVariantError(f"no published weights are known for {base!r}; models with sources: {known}")
    if variant is None:
        return found[0]
    for source in found:
        if source.variant == variant:
            return source
    names = ", ".join(source.variant for source in found)
    raise UnknownVariantError(f"{base} has no variant {variant!r}; its variants: {names}")



def imported_variants(model: str) -> list[Source]:
    """Variants of ``model`` that a user imported (``weights import --variant NAME``), from the lock file."""
    try:
        entries = sources.read_lock()
    except sources.LockFileError:
        return []
    published = {source.variant for source in variants_of(model)}
    found = []
    for entry in entries.values():
        if entry.get("model") != model or entry.get("variant") in published or not entry.get("variant"):
            continue
        found.append(Source(
            model, entry["variant"], entry.get("dataset") or "your own data",
            entry.get("purpose") or f"your checkpoint {entry.get('original_file', '')}".strip(), (),
            official_filename=entry.get("original_file", ""),
            instructions=(f"{model}:{entry['variant']} was imported from {entry.get('original_file', 'a file')}; "
                          f"import it again with `python -m inpaintstudio weights import --model {model} "
                          f"--variant {entry['variant']} FILE`"),
        ))
    return found


def all_variants(model: str) -> list[Source]:
    """Published variants in table order, then imported ones."""
    return [*variants_of(model), *imported_variants(model)]


def find_variant(model: str, variant: str) -> Source | None:
    return next((source for source in all_variants(model) if source.variant == variant), None)


def variant_card(base: ModelCard, source: Source) -> ModelCard:
    """The card of one variant: the base model's card with the variant's name, file and purpose."""
    from dataclasses import replace

    if source.locations:
        where = " or ".join(location.describe() for location in source.locations if location.ref)
        published = f"{where} (fetch with: python -m inpaintstudio weights fetch {source.model} " \
                    f"--variant {source.variant})" if source.fetchable else where
    else:
        published = "imported by you"
    weight = base.weights[0] if base.weights else None
    weights = (replace(weight, filename=source.filename, sha256=None, source=published,
                       official_filename=source.official_filename or weight.official_filename),) if weight else ()
    return replace(
        base, name=source.name, title=f"{base.title} · {source.dataset}", weights=weights, weights_path=None,
        notes=f"{source.dataset} weights, for {source.purpose}. {base.notes}".strip(),
    )


def missing_hints(name: str) -> tuple[str, ...]:
    """How to get the weights of ``name`` (a model or ``model:variant``): the fetch command, the by-hand
    instructions, or the training recipe."""
    base, variant = sources.parse_name(name)
    if variant is not None:
        source = find_variant(base, variant)
        if source is None:
            return ()
        if source.fetchable:
            return (f"Fetch them ({source.dataset}, for {source.purpose}) with: "
                    f"python -m inpaintstudio weights fetch {base} --variant {variant}",)
        return (source.instructions,)
    published = variants_of(base)
    if published:
        names = ", ".join(source.name for source in published)
        return (f"Published variants: {names}; fetch one with: python -m inpaintstudio weights fetch {base} "
                f"--variant {published[0].variant}; {base} then runs it",)
    if base in unpublished_notes():
        return (unpublished_notes()[base],)
    return ()
