"""Models as the Run controls show them: one entry per model, its variants beside it. No Gradio here.

A card named ``model:variant`` is a variant of ``model``. A bare name runs what
:func:`inpaintstudio.core.loading.resolve_model` makes of it (its installed variant); the UI groups, labels and
runs that, and never resolves a name by rules of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from inpaintstudio import registry
from inpaintstudio.core import loading
from inpaintstudio.ui.session import availability

__all__ = ["ModelGroup", "model_groups", "run_choices", "variant_choices", "names_to_run"]


@dataclass(frozen=True)
class ModelGroup:
    """A model and its variants: which can run here (with the reason when one cannot)."""

    name: str
    title: str
    variants: tuple[str, ...]  # every card name of the model, the bare name first
    runnable: tuple[str, ...]
    reasons: tuple[tuple[str, str], ...]  # (card name, reason)
    fetchable: tuple[str, ...]  # variants with a Download button
    runs: str = ""  # what the bare name resolves to (a variant's name when it stands for an installed variant)

    @property
    def can_run(self) -> bool:
        return bool(self.runnable)

    @property
    def label(self) -> str:
        reasons = dict(self.reasons)
        if self.name in self.runnable and self.runs not in ("", self.name):
            return f"{self.name} (runs {self.runs})"
        if self.name in self.runnable:
            return f"{self.name} ({reasons[self.name]})"
        if self.runnable:
            return f"{self.name} (runs {self.runnable[0]})"
        return f"{self.name}: {reasons.get(self.name, 'weights missing')}"

    @property
    def run_name(self) -> str:
        """The name a run uses when only the model is ticked: the bare name when it runs, else its first
        runnable variant."""
        if self.name in self.runnable:
            return self.runs or self.name
        return self.runnable[0] if self.runnable else self.name


def model_groups() -> list[ModelGroup]:
    groups: dict[str, list[registry.ModelCard]] = {}
    for card in registry.list_cards():
        groups.setdefault(card.name.split(":", 1)[0], []).append(card)
    result = []
    for name, cards in groups.items():
        checked = [(card.name, *availability(card.name)) for card in cards]
        fetchable = tuple(s.name for s in registry.variants_of(name) if s.fetchable) if cards[0].needs_weights \
            else ()
        result.append(ModelGroup(
            name=name,
            title=cards[0].title,
            variants=tuple(card.name for card in cards),
            runnable=tuple(card_name for card_name, ok, _ in checked if ok),
            reasons=tuple((card_name, reason) for card_name, _, reason in checked),
            fetchable=fetchable,
            runs=loading.resolve_model(name).name,
        ))
    return result


def run_choices(groups: list[ModelGroup] | None = None) -> list[tuple[str, str]]:
    """(label, model) for the models that can run here: one row each."""
    return [(group.label, group.name) for group in groups or model_groups() if group.can_run]


def variant_choices(groups: list[ModelGroup] | None = None) -> list[str]:
    """Runnable variants beyond what a bare name runs (``model:variant``), for the variants menu."""
    return [name for group in groups or model_groups() for name in group.runnable
            if name not in (group.run_name, group.name)]


def names_to_run(models: list[str] | None, variants: list[str] | None) -> list[str]:
    """Card names for the ticked models (each its run name) and the variants chosen in the menu."""
    groups = {group.name: group for group in model_groups()}
    names = [groups[m].run_name if m in groups else m for m in models or []]
    return list(dict.fromkeys([*names, *(variants or [])]))
