"""Fused CPU ops of the networks' non-scan parts, from the same C++ library as the scan (``scan_cpu``): used on
float32 CPU tensors without autograd when the library is built, else plain PyTorch.

``gelu_mul`` is the gated FFNs' ``GELU(a)·b`` in one pass. ``gated_dconv_ffn`` is a whole gated depth-wise FFN block
(1×1 conv to twice the hidden width, depth-wise 3×3, ``GELU(first half)·(second half)``, 1×1 conv back) computed
row by row, so that the hidden tensors, several times larger than the input, are never written out in full;
``spatial_gated_dconv_ffn`` is the same with SEM-Net's spatial step before the gate (the first half, concatenated with
an indicator map, goes through a 1×1 fusion conv and a second depth-wise 3×3).
"""

from __future__ import annotations

from typing import Any

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


def column_norms(x: Tensor) -> Tensor:
    """``torch.linalg.vector_norm(x, dim=0)`` of a P×F float32 CPU view with unit last stride (any row stride: a
    channel slice of pixel rows), in one pass over the rows when the library is built; else plain PyTorch."""
    if _usable([x]) and x.dim() == 2 and x.stride(1) == 1 and scan_cpu.available():
        return scan_cpu.load().column_norms(x)
    return torch.linalg.vector_norm(x, dim=0)


# Images with fewer pixels than this keep the PyTorch chain: their hidden tensors are small enough for the cache,
# and the chain's multi-threaded matrix products are then faster than the fused op's per-thread ones (measured with
# benchmarks/ffn_cpu.py: at 32×32 the fused op takes about 1.15× the chain's time, at 64×64 the same).
MIN_FUSED_PIXELS = 64 * 64


_flops: dict[str, bool] = {"registered": False}


def _library() -> Any:
    """The fused ops, with their FLOP formulas registered for ``FlopCounterMode`` on first use (the matrix products
    and depth-wise convolutions they compute, counted as the convolutions they replace are)."""
    ops = scan_cpu.load()
    if not _flops["registered"]:
        _flops["registered"] = True
        from torch.utils.flop_counter import register_flop_formula

        def pixels(x_shape: Any) -> int:
            return x_shape[0] * x_shape[1] * x_shape[2]

        @register_flop_formula(ops.gated_dconv_ffn)
        def _plain(x_shape, w_in_shape, b_in, w_dw_shape, b_dw, w_out_shape, b_out, **kwargs) -> int:
            hidden2, dim = w_in_shape[0], x_shape[3]
            return 2 * pixels(x_shape) * (dim * hidden2 + 9 * hidden2 + hidden2 // 2 * dim)

        @register_flop_formula(ops.spatial_gated_dconv_ffn)
        def _spatial(x_shape, indicator_shape, w_in_shape, *args, **kwargs) -> int:
            hidden2, dim = w_in_shape[0], x_shape[3]
            hidden = hidden2 // 2
            extra = (hidden + dim) * hidden + 9 * hidden  # fusion and the second depth-wise conv
            return 2 * pixels(x_shape) * (dim * hidden2 + 9 * hidden2 + hidden * dim + extra)

        @register_flop_formula(ops.pointwise_depthwise)
        def _pointwise_depthwise(x_shape, w_in_shape, *args, **kwargs) -> int:
            channels, dim = w_in_shape[0], x_shape[3]
            return 2 * pixels(x_shape) * (dim * channels + 9 * channels)
    return ops


def _plain_conv(conv: nn.Conv2d, kernel: int) -> bool:
    """Whether ``conv`` is the stride-1, zero-padded ``kernel``×``kernel`` convolution the fused FFN computes."""
    return (conv.kernel_size == (kernel, kernel) and conv.stride == (1, 1) and conv.dilation == (1, 1)
            and conv.padding == (kernel // 2, kernel // 2) and conv.padding_mode == "zeros")


def _usable(tensors: list[Tensor]) -> bool:
    """float32 CPU tensors, none tracked by autograd."""
    if any(t.device.type != "cpu" or t.dtype != torch.float32 for t in tensors):
        return False
    return not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))


def _parameters(convs: tuple[nn.Conv2d, ...]) -> list[Tensor]:
    return [t for conv in convs for t in (conv.weight, conv.bias) if t is not None]


def _fusable_ffn(x: Tensor, convs: tuple[nn.Conv2d, ...]) -> bool:
    if not _usable([x, *_parameters(convs)]):
        return False
    project_in, dwconv, project_out = convs
    hidden2 = project_in.out_channels
    return (x.dim() == 4 and x.shape[2] * x.shape[3] >= MIN_FUSED_PIXELS and x.permute(0, 2, 3, 1).is_contiguous()
            and hidden2 % 2 == 0
            and _plain_conv(project_in, 1) and project_in.groups == 1
            and _plain_conv(dwconv, 3) and dwconv.groups == hidden2 == dwconv.in_channels == dwconv.out_channels
            and _plain_conv(project_out, 1) and project_out.groups == 1 and project_out.in_channels * 2 == hidden2)


def gated_dconv_ffn(x: Tensor, project_in: nn.Conv2d, dwconv: nn.Conv2d, project_out: nn.Conv2d) -> Tensor:
    """``project_out(GELU(a)·b)`` with ``a, b = dwconv(project_in(x)).chunk(2, dim=1)``, for B×D×H×W ``x``.

    Channels-last float32 CPU input without autograd, at least ``MIN_FUSED_PIXELS`` pixels per image, goes through
    the fused op (channels-last output), anything else through the three convolutions and ``gelu_mul``."""
    if _fusable_ffn(x, (project_in, dwconv, project_out)) and scan_cpu.available():
        out = _library().gated_dconv_ffn(x.permute(0, 2, 3, 1), project_in.weight, project_in.bias,
                                              dwconv.weight, dwconv.bias, project_out.weight, project_out.bias)
        return out.permute(0, 3, 1, 2)
    a, b = dwconv(project_in(x)).chunk(2, dim=1)
    return project_out(gelu_mul(a, b))


def spatial_gated_dconv_ffn(x: Tensor, indicator: Tensor, project_in: nn.Conv2d, dwconv: nn.Conv2d,
                            fusion: nn.Conv2d, dwconv_afterfusion: nn.Conv2d, project_out: nn.Conv2d) -> Tensor:
    """``project_out(GELU(a')·b)`` with ``a, b = dwconv(project_in(x)).chunk(2, dim=1)`` and
    ``a' = dwconv_afterfusion(fusion(cat([a, indicator], dim=1)))``; ``indicator`` is B×D×H×W like ``x``.

    Channels-last float32 CPU input without autograd, at least ``MIN_FUSED_PIXELS`` pixels per image, goes through
    the fused op (channels-last output), anything else through the convolutions and ``gelu_mul``."""
    hidden = project_out.in_channels
    fusable = (_fusable_ffn(x, (project_in, dwconv, project_out))
               and _usable([indicator, *_parameters((fusion, dwconv_afterfusion))]) and indicator.shape == x.shape
               and _plain_conv(fusion, 1) and fusion.groups == 1 and fusion.out_channels == hidden
               and fusion.in_channels == hidden + x.shape[1]
               and _plain_conv(dwconv_afterfusion, 3)
               and dwconv_afterfusion.groups == hidden == dwconv_afterfusion.in_channels
               and dwconv_afterfusion.out_channels == hidden)
    if fusable and scan_cpu.available():
        rows = indicator.permute(0, 2, 3, 1).contiguous()
        out = _library().spatial_gated_dconv_ffn(
            x.permute(0, 2, 3, 1), rows, project_in.weight, project_in.bias, dwconv.weight, dwconv.bias,
            fusion.weight, fusion.bias, dwconv_afterfusion.weight, dwconv_afterfusion.bias, project_out.weight,
            project_out.bias)
        return out.permute(0, 3, 1, 2)
    a, b = dwconv(project_in(x)).chunk(2, dim=1)
    a = dwconv_afterfusion(fusion(torch.cat([a, indicator], dim=1)))
    return project_out(gelu_mul(a, b))


def pointwise_depthwise(x: Tensor, pointwise: nn.Conv2d, depthwise: nn.Conv2d, parts: int = 1) -> tuple[Tensor, ...]:
    """``depthwise(pointwise(x)).chunk(parts, dim=1)`` for a 1×1 ``pointwise`` and a 3×3 depth-wise ``depthwise`` (the
    attention blocks' q, k, v projections). Channels-last float32 CPU input without autograd, at least
    ``MIN_FUSED_PIXELS`` pixels per image, goes through one row-streamed pass (the 1×1 output never leaves the cache)
    that writes every part as its own channels-last tensor; anything else through the two convolutions."""
    channels = pointwise.out_channels
    fusable = (_usable([x, *_parameters((pointwise, depthwise))]) and x.dim() == 4 and channels % parts == 0
               and x.shape[2] * x.shape[3] >= MIN_FUSED_PIXELS and x.permute(0, 2, 3, 1).is_contiguous()
               and _plain_conv(pointwise, 1) and pointwise.groups == 1
               and _plain_conv(depthwise, 3) and depthwise.groups == channels == depthwise.in_channels
               and depthwise.out_channels == channels)
    if fusable and scan_cpu.available():
        out = _library().pointwise_depthwise(x.permute(0, 2, 3, 1), pointwise.weight, pointwise.bias,
                                             depthwise.weight, depthwise.bias, parts)
        return tuple(part.permute(0, 3, 1, 2) for part in out.unbind(0))
    return depthwise(pointwise(x)).chunk(parts, dim=1)


def gather_rows(x: Tensor, order: Tensor, add_to: Tensor | None = None) -> Tensor:
    """``x.index_select(1, order)`` for B×P×D ``x`` (``+ add_to`` when given, B×L×D): on float32 CPU tensors without
    autograd one prefetching pass of the library's kernel that adds into ``add_to`` in place (a fresh tensor the
    caller owns); else plain PyTorch."""
    tensors = [x] if add_to is None else [x, add_to]
    if (_usable(tensors) and x.dim() == 3 and x.stride(2) == 1 and order.dtype == torch.int64 and order.dim() == 1
            and (add_to is None or add_to.is_contiguous()) and scan_cpu.available()):
        return scan_cpu.load().gather_rows(x, order.contiguous(), add_to)
    gathered = x.index_select(1, order)
    return gathered if add_to is None else add_to + gathered


def add_folded_projections(x: Tensor, branches: list[tuple[Tensor, Tensor, Tensor | None]], fuse: nn.Conv2d) -> Tensor:
    """``x + fuse(cat([proj_1(f_1), proj_2(f_2), ...], dim=1))`` for a 1×1 ``fuse`` and linear (or 1×1) projections,
    with each projection folded into its slice of the fuse weight: ``x + Σ f_i (W_fuse,i W_i)ᵀ + bias``. ``x`` is a
    channels-last float32 CPU tensor (inference); a branch's features ``f_i`` are P×E rows or a channels-last
    B×E×H×W tensor, ``W_i`` its projection's weight (C_i×E) and bias. Returns a channels-last tensor."""
    x_rows = pixel_rows(x)
    if x_rows is None:
        raise ValueError("add_folded_projections needs channels-last input")
    fuse_weight = fuse.weight.view(fuse.out_channels, -1)
    bias = fuse.bias.clone() if fuse.bias is not None else None
    out = None
    start = 0
    for features, weight, branch_bias in branches:
        rows = features if features.dim() == 2 else pixel_rows(features)
        if rows is None:
            raise ValueError("add_folded_projections needs channels-last branch features")
        weight = weight.view(weight.shape[0], -1)
        block = fuse_weight[:, start : start + weight.shape[0]]
        start += weight.shape[0]
        folded = (block @ weight).t()  # E×C_out: the branch's projection, then its part of the fuse
        out = torch.addmm(x_rows, rows, folded) if out is None else out.addmm_(rows, folded)
        if branch_bias is not None:
            bias = block @ branch_bias if bias is None else bias.addmv_(block, branch_bias)
    if out is None or start != fuse_weight.shape[1]:
        raise ValueError("the branches' projections do not cover the fuse's input channels")
    if bias is not None:
        out.add_(bias)
    batch, _, height, width = x.shape
    return out.view(batch, height, width, fuse.out_channels).permute(0, 3, 1, 2)
