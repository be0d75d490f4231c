"""Checkpoint containers beyond plain safetensors and state-dict pickles: TorchScript archives and PyTorch
Lightning checkpoints, read without running any code they carry (LaMa's two public files are one of each).

A model's ``network`` module offers ``read_official_checkpoint = ...`` to the importer when its authors publish
one of these forms.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

__all__ = ["read_packaged", "is_torchscript"]


def is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.split("/", 1)[-1].startswith("code/") for name in archive.namelist())


class _Inert:
    """Stands in for any class a checkpoint's metadata pickles (Lightning hyper-parameters, OmegaConf configs):
    it accepts whatever the unpickler hands it and does nothing, so no foreign code runs."""

    def __new__(cls, *args: Any, **kwargs: Any) -> "_Inert":
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


def _inert_globals(path: Path) -> list[type]:
    """One :class:`_Inert` subclass per global that ``weights_only`` loading refuses in this file."""
    from torch.serialization import get_unsafe_globals_in_checkpoint

    stand_ins = []
    for dotted in get_unsafe_globals_in_checkpoint(str(path)):
        module, _, name = dotted.rpartition(".")
        stand_ins.append(type(name, (_Inert,), {"__module__": module, "__qualname__": name}))
    return stand_ins


def read_packaged(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Tensors of a checkpoint packaged by TorchScript or PyTorch Lightning (or any ``torch.save`` pickle),
    ``(tensors, metadata)``.

    * TorchScript archive (IOPaint's ``big-lama.pt``): ``torch.jit.load`` on the CPU, ``state_dict()`` copied out;
      the scripted code is compiled by the loader but never called.
    * Lightning ``best.ckpt`` or any ``torch.save`` pickle: read with ``weights_only=True``; globals that this
      refuses (a pickled training config in the metadata) are replaced by inert stand-ins, so nothing but tensors
      and plain containers is ever built.
    """
    from inpaintstudio.weights import store as weights

    path = Path(path)
    if not path.is_file():
        raise weights.WeightsError(f"checkpoint not found: {path}")
    if is_torchscript(path):
        try:
            scripted = torch.jit.load(str(path), map_location="cpu")
        except Exception as error:  # TorchScript raises RuntimeError and friends on bad archives
            raise weights.WeightsError(f"{path} is not a readable TorchScript archive: {error}") from error
        state = {key: value.detach().clone() for key, value in scripted.state_dict().items()}
        return state, {"format": "torchscript"}
    if path.suffix == ".safetensors":
        return weights.read_checkpoint(path)
    try:
        return weights.read_checkpoint(path)
    except weights.WeightsError as error:
        if not isinstance(error.__cause__, pickle.UnpicklingError):
            raise
    with torch.serialization.safe_globals(_inert_globals(path)):
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else {}
    tensors = {key: value for key, value in state.items() if isinstance(value, Tensor)}
    if not tensors:
        raise weights.WeightsError(f"{path}: no state_dict of tensors found")
    meta = {key: value for key, value in obj.items() if isinstance(value, (int, float, str))}
    return tensors, meta


