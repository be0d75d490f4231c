"""A model's training recipe, read from its module: ``TRAINING`` (:class:`inpaintstudio.trainspec.TrainingSpec`).

There is no table of families here: each network module of :mod:`inpaintstudio.models` exports its own spec (losses,
optimiser, discriminator, custom training forward), and a model whose module exports none is refused, never given
another model's settings.

The generator is run through the model module's ``predict`` with the card's input convention applied by the same
:func:`inpaintstudio.core.engines.to_network` that inference uses (image mapped to the card's value range, holes
filled with ``hole_fill``, mask in the card's polarity), unless the spec names its own training ``forward``. So
training sees the network the way the studio runs it, and a loss never needs to know a model's polarity: losses get
``hole`` (1 = hole).
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, TypeVar

from torch import Tensor, nn

from inpaintstudio import registry
from inpaintstudio.core import loading
from inpaintstudio.core.engines import to_network
from inpaintstudio.modelcard import ModelCard
from inpaintstudio.trainspec import LossConfig, OptimConfig, TrainingSpec

__all__ = ["training_spec", "loss_config_for", "optim_config_for", "make_discriminator", "run_generator",
           "uses_landmarks"]

C = TypeVar("C", LossConfig, OptimConfig)


def training_spec(model: str | ModelCard) -> TrainingSpec:
    """The ``TRAINING`` spec of the module a model's card names.

    Raises:
        UnknownModelError: no such model.
        ValueError: the model's module exports no training spec (e.g. a classical engine).
    """
    card = registry.resolve(model)
    spec = getattr(loading.model_module(card), "TRAINING", None)
    if not isinstance(spec, TrainingSpec):
        raise ValueError(f"{card.name} cannot be trained: its module {card.module} exports no TRAINING spec")
    return spec


def _with_overrides(base: C, overrides: dict[str, Any] | None, what: str) -> C:
    overrides = dict(overrides or {})
    known = {f.name for f in fields(base)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown {what} settings {unknown}; known: {sorted(known)}")
    for key in ("betas", "d_betas", "milestones"):
        if overrides.get(key) is not None and key in known:
            overrides[key] = tuple(overrides[key])
    return replace(base, **overrides)


def loss_config_for(model: str | ModelCard, overrides: dict[str, Any] | None = None) -> LossConfig:
    """The model's loss defaults with ``overrides`` applied; unknown keys are refused by name."""
    return _with_overrides(training_spec(model).loss, overrides, "loss")


def optim_config_for(model: str | ModelCard, overrides: dict[str, Any] | None = None) -> OptimConfig:
    """The model's optimiser defaults with ``overrides`` applied; unknown keys are refused by name."""
    return _with_overrides(training_spec(model).optim, overrides, "optimiser")


def make_discriminator(model: str | ModelCard, width: int = 64) -> nn.Module | None:
    """The model's discriminator (``None`` when its spec names none, as CSFC's)."""
    factory = training_spec(model).discriminator
    return None if factory is None else factory(width=width)


def uses_landmarks(card: ModelCard) -> bool:
    return "landmarks" in card.capabilities


def run_generator(module: Any, card: ModelCard, net: nn.Module, image01: Tensor, hole: Tensor,
                  texture01: Tensor | None = None, training: bool = False) -> dict[str, Tensor]:
    """The generator on (image, hole); the output image stays in the card's value range.

    In training a spec's own ``forward`` replaces ``predict`` (TSGL: structure inputs from the full image, the data's
    texture images, the auxiliary edge prediction for its loss).
    """
    forward = training_spec(card).forward
    if training and forward is not None:
        return forward(net, image01, hole, texture01)
    x, mask = to_network(image01, hole, card.input)
    return module.predict(net, x, mask)
