"""Engines: one object per loaded model that fills one region.

An engine receives a region that the pipeline has already cut, padded and sized for it (RGB float32
H×W×3 in [0, 1] and a boolean hole mask H×W) and returns the filled region in the same form. The
deep-model engine applies the card's input convention (value range, hole fill, mask polarity), runs
the network's ``predict`` and maps the output back; classical engines work on uint8 arrays.

Engines are built by :mod:`inpaintstudio.loading` (``loading.load``); this module knows nothing of the
registry or of weight files.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from inpaintstudio.modelcard import ModelCard

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["EngineOutput", "Engine", "TorchEngine", "DeviceError", "select_device"]


@dataclass
class EngineOutput:
    """A filled region: ``image`` float32 H×W×3 in [0, 1]; ``landmarks`` (K×2, pixel x,y) if any."""

    image: np.ndarray
    landmarks: np.ndarray | None = None
    extras: dict[str, Any] = field(default_factory=dict)


class Engine(Protocol):
    card: ModelCard
    device: str

    def run(self, image: np.ndarray, mask: np.ndarray) -> EngineOutput:  # pragma: no cover - protocol
        ...


class DeviceError(RuntimeError):
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


class TorchEngine:
    """A deep network behind the engine interface. Inference is serialised by a lock."""

    def __init__(
        self,
        card: ModelCard,
        net: "torch.nn.Module",
        device: str,
        predict: Callable[..., dict[str, "torch.Tensor"]],
    ) -> None:
        self.card = card
        self.device = device
        self.net = net.to(device).eval()
        self._predict = predict
        self._lock = threading.Lock()

    def run(self, image: np.ndarray, mask: np.ndarray) -> EngineOutput:
        import torch

        conv = self.card.input
        low, high = conv.value_range
        x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
        hole = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]
        x = x * (high - low) + low
        if conv.hole_fill is not None:
            x = x * (1 - hole) + conv.hole_fill * hole
        m = hole if conv.mask_hole_value == 1 else 1 - hole
        with self._lock, torch.inference_mode():
            out = self._predict(self.net, x.to(self.device), m.to(self.device))
        filled = ((out["image"][0].float().cpu() - low) / (high - low)).clamp(0, 1)
        result = EngineOutput(image=filled.permute(1, 2, 0).numpy())
        if "landmarks" in out and out["landmarks"] is not None:
            # landmarks come as fractions of the side (x, y); turn them into region pixels
            points = out["landmarks"][0].float().cpu().numpy().reshape(-1, 2)
            result.landmarks = points * np.array([image.shape[1], image.shape[0]], dtype=np.float32)
        return result
