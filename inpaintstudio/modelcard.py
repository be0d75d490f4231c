"""What a model card is: the dataclasses :class:`ModelCard`, :class:`InputConvention`, :class:`WeightFile`.

Pure data with no imports from the package and no torch: the cards themselves live one file per model in
:mod:`inpaintstudio.cards`, :mod:`inpaintstudio.registry` finds them, and :mod:`inpaintstudio.loading`
builds what a card names.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

__all__ = ["InputConvention", "WeightFile", "ModelCard"]


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
    :mod:`inpaintstudio.models`, or :mod:`inpaintstudio.classical`); the loading layer imports it only when
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
