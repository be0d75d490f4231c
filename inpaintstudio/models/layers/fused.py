"""Fused elementwise CPU ops of the networks' non-scan parts, from the same C++ library as the scan
(``scan_cpu``): used on float32 CPU tensors without autograd when the library is built, else plain PyTorch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from inpaintstudio.models.layers import scan_cpu


def pixel_rows(x: Tensor) -> Tensor | None:
    """The (B·H·W)×C view of a 4-D channels-last-strided tensor (a channel slice of one too), else None."""
    if x.dim() != 4 or x.stride(1) != 1:
        return None
    batch, channels, height, width = x.shape
    if x.stride(2) != width * x.stride(3) or (batch > 1 and x.stride(0) != height * x.stride(2)):
        return None
    return x.as_strided((batch * height * width, channels), (x.stride(3), 1))


def gelu_mul(a: Tensor, b: Tensor) -> Tensor:
    """``F.gelu(a) * b`` for B×C×H×W tensors; one pass (channels-last output) for channels-last float32 CPU input."""
    fused = (a.device.type == "cpu" and a.dtype == torch.float32 and b.dtype == torch.float32
             and a.shape == b.shape and not (torch.is_grad_enabled() and (a.requires_grad or b.requires_grad)))
    if fused:
        rows_a, rows_b = pixel_rows(a), pixel_rows(b)
        if rows_a is not None and rows_b is not None and scan_cpu.available():
            batch, channels, height, width = a.shape
            out = scan_cpu.load().gelu_mul(rows_a, rows_b)
            return out.view(batch, height, width, channels).permute(0, 3, 1, 2)
    return F.gelu(a) * b
