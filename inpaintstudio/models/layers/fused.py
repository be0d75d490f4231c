"""Fused elementwise CPU ops of the networks' non-scan parts, from the same C++ library as the scan
(``scan_cpu``): used on float32 CPU tensors without autograd when the library is built, else plain PyTorch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

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


def _rows_or_none(tensors: list[Tensor]) -> list[Tensor] | None:
    rows = [pixel_rows(t) for t in tensors]
    return None if any(r is None for r in rows) else rows  # type: ignore[return-value]


def add_conv1x1_of_cat(x: Tensor, parts: list[Tensor], conv: nn.Conv2d) -> Tensor:
    """``x + conv(torch.cat(parts, dim=1))`` for a 1×1 ``conv``, without the concatenation: on channels-last float32 CPU
    tensors (no autograd) the product is accumulated part by part into a copy of ``x`` (one GEMM per part, the residual
    as the GEMMs' C term), and the result is channels-last."""
    plain = (x.device.type != "cpu" or x.dtype != torch.float32 or conv.kernel_size != (1, 1)
             or conv.groups != 1 or torch.is_grad_enabled())
    rows = None if plain else _rows_or_none([x, *parts])
    if rows is None or any(p.dtype != torch.float32 or p.shape[2:] != x.shape[2:] for p in parts):
        return x + conv(torch.cat(parts, dim=1))
    x_rows, *part_rows = rows
    weight = conv.weight.view(conv.out_channels, -1)
    out = None
    start = 0
    for part in part_rows:
        block = weight[:, start : start + part.shape[1]].t()
        out = torch.addmm(x_rows, part, block) if out is None else out.addmm_(part, block)
        start += part.shape[1]
    assert out is not None
    if conv.bias is not None:
        out.add_(conv.bias)
    batch, _, height, width = x.shape
    return out.view(batch, height, width, conv.out_channels).permute(0, 3, 1, 2)


def column_norms(x: Tensor) -> Tensor:
    """``torch.linalg.vector_norm(x, dim=0)`` of a P×F float32 CPU view with unit last stride (any row stride: a
    channel slice of pixel rows), in one pass over the rows when the library is built; else plain PyTorch."""
    if (x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 2 and x.stride(1) == 1
            and not (torch.is_grad_enabled() and x.requires_grad) and scan_cpu.available()):
        return scan_cpu.load().column_norms(x)
    return torch.linalg.vector_norm(x, dim=0)
