"""Restormer's channel LayerNorm ("LN-C"), shared by SEM-Net, M×T and HINT.

The official code (Restormer lineage) normalises every pixel's channel vector: ``to_3d`` (B×HW×C),
``WithBias_LayerNorm`` or ``BiasFree_LayerNorm`` over the last axis (population variance, eps 1e-5),
``to_4d``. The parameters sit under ``body`` so official keys (``norm1.body.weight``) load unchanged.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ChannelLayerNorm"]

LayerNormKind = Literal["WithBias", "BiasFree"]


class _LastAxisLayerNorm(nn.Module):
    def __init__(self, channels: int, with_bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels)) if with_bias else None

    def forward(self, x: Tensor) -> Tensor:
        if self.bias is None:  # BiasFree: scale by the standard deviation without centring (Restormer)
            return x / torch.sqrt(x.var(-1, keepdim=True, unbiased=False) + 1e-5) * self.weight
        return F.layer_norm(x, x.shape[-1:], self.weight, self.bias, eps=1e-5)


class ChannelLayerNorm(nn.Module):
    """Per-pixel LayerNorm over the channels of a B×C×H×W tensor (parameters under ``body``).

    Args:
        channels: C.
        kind: ``"WithBias"`` (every released model) or ``"BiasFree"``.
    """

    def __init__(self, channels: int, kind: LayerNormKind = "WithBias") -> None:
        super().__init__()
        if kind not in ("WithBias", "BiasFree"):
            raise ValueError(f"layer norm kind must be 'WithBias' or 'BiasFree', got {kind!r}")
        self.body = _LastAxisLayerNorm(channels, with_bias=kind == "WithBias")

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
