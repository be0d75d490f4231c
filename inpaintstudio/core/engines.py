"""Engines: one object per loaded model that fills one region.

An engine receives a region that the pipeline has already cut, padded and sized for it (RGB float32
H×W×3 in [0, 1] and a boolean hole mask H×W) and returns the filled region in the same form. The
deep-model engine applies the card's input convention with :func:`to_network` (value range, hole fill,
mask polarity), runs the network's ``predict`` and maps the output back with :func:`from_network`;
training feeds its networks through the same pair. Classical engines work on uint8 arrays.

Engines are built by :mod:`inpaintstudio.core.loading` (``loading.load``); this module knows nothing of the
registry or of weight files.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from inpaintstudio.core import memory
from inpaintstudio.errors import BadInputError
from inpaintstudio.modelcard import InputConvention, ModelCard

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["EngineOutput", "Engine", "TorchEngine", "Precision", "PRECISIONS", "autocast", "DeviceError",
           "select_device", "to_value_range",
           "to_network", "from_network"]

Array = Any  # a torch.Tensor or a numpy array: the conversions below are plain arithmetic


def to_value_range(image01: Array, convention: InputConvention) -> Array:
    """An image in [0, 1] mapped to the network's value range (no hole fill): e.g. a training target."""
    low, high = convention.value_range
    return image01 * (high - low) + low


def to_network(image01: Array, hole: Array, convention: InputConvention) -> tuple[Array, Array]:
    """``(image, mask)`` as the network reads them, from an image in [0, 1] and a hole map (1 = hole).

    The image is mapped to the value range with the holes filled with ``hole_fill``; the mask is in the
    network's polarity (``mask_hole_value``). Shapes are the caller's (B×3×H×W and B×1×H×W for torch).
    """
    x = to_value_range(image01, convention)
    if convention.hole_fill is not None:
        x = x * (1 - hole) + convention.hole_fill * hole
    mask = hole if convention.mask_hole_value == 1 else 1 - hole
    return x, mask


def from_network(image: Array, convention: InputConvention) -> Array:
    """A network output in its value range mapped back to [0, 1] (not clamped: losses see the raw values)."""
    low, high = convention.value_range
    return (image - low) / (high - low)


@dataclass
class EngineOutput:
    """A filled region: ``image`` float32 H×W×3 in [0, 1], or uint8 H×W×3 from an engine that was given uint8
    (``takes_uint8``); ``landmarks`` (K×2, pixel x,y) if any."""

    image: np.ndarray
    landmarks: np.ndarray | None = None
    extras: dict[str, Any] = field(default_factory=dict)


class Engine(Protocol):
    card: ModelCard
    device: str

    def run(self, image: np.ndarray, mask: np.ndarray) -> EngineOutput:  # pragma: no cover - protocol
        ...


class DeviceError(BadInputError, RuntimeError):
    """A device that this machine does not have, or a name torch does not know."""


def select_device(preference: str | None = None) -> str:
    """``None``/``"auto"``: cuda, then mps, then cpu. Otherwise the named device, checked.

    Raises:
        DeviceError: an unknown device name, no CUDA/MPS on this machine, or a CUDA index out of range.
    """
    import torch

    if preference in (None, "", "auto"):
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    try:
        device = torch.device(preference)
    except (RuntimeError, TypeError, ValueError):
        raise DeviceError(f"unknown device {preference!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {preference!r} requested but CUDA is not available on this machine")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise DeviceError(f"device {preference!r} requested but this machine has {count} CUDA device(s) "
                              f"(cuda:0…cuda:{count - 1})")
    elif device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceError(f"device {preference!r} requested but MPS is not available on this machine")
    elif device.type != "cpu":
        raise DeviceError(f"unknown device {preference!r}: use auto, cpu, cuda, cuda:N or mps")
    return preference


Precision = Literal["fp32", "bf16"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "bf16")


def autocast(device: str, precision: Precision) -> "torch.autocast":
    """The autocast context of ``precision`` on ``device``: bf16 runs matrix products and convolutions in bfloat16
    (the networks keep their scans and normalisations in float32); fp32 is a disabled context."""
    import torch

    device_type = torch.device(device).type
    return torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=precision == "bf16")


class TorchEngine:
    """A deep network behind the engine interface. Inference is serialised by a lock."""

    def __init__(
        self,
        card: ModelCard,
        net: "torch.nn.Module",
        device: str,
        predict: Callable[..., dict[str, "torch.Tensor"]],
        precision: Precision = "fp32",
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.card = card
        self.device = device
        self.precision: Precision = precision
        self.net = net.to(device).eval()
        self._predict = predict
        self._lock = threading.Lock()
        if device == "cpu":
            memory.retain_freed_memory()

    def run(self, image: np.ndarray, mask: np.ndarray) -> EngineOutput:
        import torch

        image01 = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
        hole = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]
        x, m = to_network(image01, hole, self.card.input)
        with self._lock, torch.inference_mode(), autocast(self.device, self.precision):
            out = self._predict(self.net, x.to(self.device), m.to(self.device))
        filled = from_network(out["image"][0].float().cpu(), self.card.input).clamp(0, 1)
        result = EngineOutput(image=filled.permute(1, 2, 0).numpy())
        if "landmarks" in out and out["landmarks"] is not None:
            # landmarks come as fractions of the side (x, y); turn them into region pixels
            points = out["landmarks"][0].float().cpu().numpy().reshape(-1, 2)
            result.landmarks = points * np.array([image.shape[1], image.shape[0]], dtype=np.float32)
        return result
