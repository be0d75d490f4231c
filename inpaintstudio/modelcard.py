"""What a model card is (the dataclasses :class:`ModelCard`, :class:`InputConvention`, :class:`WeightFile`) and
what the module a card names must provide (:class:`DeepModelModule`, :class:`ClassicalModule`).

Pure data with no imports from the package and no torch: each model's cards live in its folder,
``inpaintstudio/models/<name>/card.py``, :mod:`inpaintstudio.registry` finds them, and
:mod:`inpaintstudio.core.loading` builds what a card names.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = ["InputConvention", "WeightFile", "ModelCard", "DeepModelModule", "SelectionModelModule", "ClassicalModule",
           "contract_gaps"]


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
    """Everything known about one model (one set of weights) without building it.

    ``module`` names the module that implements the model (a network module of
    :mod:`inpaintstudio.models`, or :mod:`inpaintstudio.classical.engines`); the loading layer imports it only when
    the model is built. The network's config is ``module.<config_class>(**config_overrides)``, unless
    ``config`` holds a ready config object (tests use this for fixture-sized networks).
    """

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
    config_class: str = "Config"
    config_overrides: tuple[tuple[str, Any], ...] = ()
    notes: str = ""
    # measured forward time of the default network on a 2-core CPU (benchmarks/models.py), one image at the
    # card's fixed size or 256×256; None where not measured
    cpu_seconds: float | None = None
    weights_path: Path | None = None
    config: Any = None  # a ready network config; when set it wins over config_class and config_overrides
    # "select": a selection network (MobileSAM), listed apart from the inpainting models
    task: Literal["inpaint", "select"] = "inpaint"

    @property
    def needs_weights(self) -> bool:
        return self.kind == "deep"

    def with_weights_path(self, path: Path) -> "ModelCard":
        return replace(self, weights_path=Path(path))


@runtime_checkable
class DeepModelModule(Protocol):
    """What the ``network`` module of a deep model provides (checked when the module is first loaded).

    ``Config`` (or the class the card's ``config_class`` names) is the network's configuration. A trainable model
    also exports ``TRAINING`` (:class:`inpaintstudio.trainspec.TrainingSpec`); the trainer refuses one without it.
    """

    def build(self, cfg: Any = None) -> Any:
        """The network of ``cfg`` (default: the released configuration), randomly initialised."""

    def predict(self, net: Any, image: Any, mask: Any) -> dict[str, Any]:
        """Network-convention tensors in, ``{"image": ...}`` (and model extras such as landmarks) out."""

    def remap_official_state_dict(self, state: dict[str, Any]) -> dict[str, Any]:
        """The authors' checkpoint keys -> ours (naming every dropped key)."""

    def config_from_fixture(self, fixture: dict[str, Any]) -> Any:
        """The configuration a parity fixture's ``config.json`` describes."""

    def parity_forward(self, net: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        """The fixture's named outputs from its inputs, as the authors' code computes them."""


@runtime_checkable
class SelectionModelModule(Protocol):
    """What the ``network`` module of a selection model (``task="select"``) provides: a deep model's contract
    without ``predict`` (its predictor lives in :mod:`inpaintstudio.selection`)."""

    def build(self, cfg: Any = None) -> Any:
        """The network of ``cfg`` (default: the released configuration), randomly initialised."""

    def remap_official_state_dict(self, state: dict[str, Any]) -> dict[str, Any]:
        """The authors' checkpoint keys -> ours (naming every dropped key)."""

    def config_from_fixture(self, fixture: dict[str, Any]) -> Any:
        """The configuration a parity fixture's ``config.json`` describes."""

    def parity_forward(self, net: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        """The fixture's named outputs from its inputs, as the authors' code computes them."""


@runtime_checkable
class ClassicalModule(Protocol):
    """What a weight-free engine's module provides."""

    def make_engine(self, card: ModelCard, device: str | None = None, **options: Any) -> Any:
        """A ready engine for ``card``."""


def contract_gaps(module: Any, card: ModelCard) -> list[str]:
    """The names ``module`` lacks for the contract of ``card``'s kind (empty when it satisfies it)."""
    if card.kind == "classical":
        contract: type = ClassicalModule
    else:
        contract = SelectionModelModule if card.task == "select" else DeepModelModule
    names = [name for name in (*getattr(contract, "__annotations__", {}), *vars(contract)) if not name.startswith("_")]
    gaps = [name for name in dict.fromkeys(names) if not hasattr(module, name)]
    if card.kind != "classical" and not hasattr(module, card.config_class):
        gaps.append(card.config_class)
    return gaps
