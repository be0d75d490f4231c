"""M×T: Mamba × Transformer hybrid for image inpainting.

Paper: Shuang Chen et al., "M×T: Mamba × Transformer for Image Inpainting", BMVC 2024 (arXiv 2407.16126),
summarised in Shuang Chen's PhD thesis (Durham), chapter 5.2 / 5.4.
Official code: https://github.com/ChrisChen1023/MxT, commit 59139a4e578e7def5d1de198eeb28e9901d9d07a
(``src/networks.py`` class ``MxT``). Licence of the official code: MIT (its LICENSE file); the weights carry
their training sets' terms.
Documentation: ``docs/models/mxt.md`` (shares the Mamba/S6 layer, LN-C and the U-Net skeleton with SEM-Net).

Architecture: a Restormer-style 4-level U-Net whose every block is a *Hybrid Module* (HM)::

    x = x + fuse( concat[ MambaBranch(LN-C norm1(x)), SRSA(LN-C norm3(x)) ] )   # parallel mixers, 1×1 fuse
    x = x + CBFN( LN-C norm2(x) )

* Mamba branch: raster-order flatten, fixed sinusoidal positional table, ``nn.LayerNorm``, one Mamba layer
  (``inpaintstudio.models.layers.ssm.Mamba``), always computed in (at least) float32.
* SRSA: Q/K/V by 1×1 + depthwise 3×3, K and V adaptively average-pooled to an 8×8 grid, K'/V' L2-normalised
  along the token axis, per-head learnable temperature, local enhancement DWConv(V) added, 1×1 output.
* CBFN: Restormer's gated-dconv FFN (GDFN) plus the global mean of its output broadcast back (context
  broadcasting).

Code-vs-paper differences (the released code is the reference; the switch selecting the other side is named):

* [CODE≠THESIS] The thesis calls the HM "a pair of SRSA and Mamba modules followed by a CBFN"; the code runs both
  mixers in parallel on separately normalised copies and fuses them with a 1×1 conv.
  ``Config.mixer_arrangement="sequential"`` gives the thesis reading as interpreted here ([INFERRED]: SRSA first,
  then the Mamba branch, each in its own pre-norm residual with ``norm3`` / ``norm1``; no ``fuse`` conv).
* [CODE≠THESIS] The thesis' Mamba body (Linear → SiLU → Conv1D → SSM) is not what runs: the real mamba_ssm v1 layer
  (Linear → causal depthwise Conv1D → SiLU → selective scan, SiLU gate, output Linear) is used. No switch.
* [CODE≠THESIS] The thesis' SRSA channel bottleneck ratio r and masked-neighbourhood windowing of K/V do not exist
  in the code and are not implemented; the thesis' softmax(K'·Q) is realised with the code's L2 normalisation of
  K'/V' along tokens and the per-head temperature. No switch.
* [CODE-ONLY] Gated patch embedding ``GELU(a) ⊙ b`` from a 4→2C 3×3 conv.
* [CODE-ONLY] The official wrapper computes a clockwise spiral pixel order per level and passes it in, but the
  network never applies it: only raster order exists here.
* [CODE-ONLY] Registered-but-unused tensors (needed for strict loading of official checkpoints): per HM
  ``norm1_1``, ``ffn1``, ``mam.norm2``, ``mam.mamba2``, ``mam.conv1/2``, ``attn.qkv``, ``attn.qkv_dwconv``,
  ``attn.conv``, ``ffn.fusion``, ``ffn.dwconv_afterfusion``, ``ffn.conv``; plus ``refinement``, ``output_before``
  and each downsampler's ``proj``. ``Config.register_unused_modules=False`` leaves them out (37 610 544 used
  parameters instead of 155 257 780 registered).
* Ablation switches of thesis Tab. 5.1: ``use_mamba_branch``, ``use_srsa``, ``ffn="gdfn"`` (Restormer FFN without
  the context broadcast). With a single mixer its output is added to the residual directly (no ``fuse``)
  [INFERRED]; with none, the HM is ``x + FFN(LN(x))``.
* The official code builds positional tables with a fixed number of rows per width (≤ ≈1024² inputs); here exactly
  L rows are built (cached per size), with the same float32 formula, so any size divisible by 8 works.

Tensor contract of :class:`MxT`: ``forward(image, mask)`` with ``image`` B×3×H×W RGB in [0, 1] whose holes are
already filled with 1.0, ``mask`` B×1×H×W with 1 = hole; H and W multiples of 8; returns the raw (not composited)
B×3×H×W output ``(tanh(z) + 1) / 2``.

The thesis: S. Chen, PhD thesis, Durham University, 2025 (INCLG, HINT, M×T and SEM-Net are its chapters 3–5).
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inpaintstudio.models.layers.discriminators import PatchDiscriminator
from inpaintstudio.models.layers.fused import (
    add_folded_projections,
    gated_dconv_ffn,
    gelu_mul,
    pixel_rows,
    pointwise_depthwise,
)
from inpaintstudio.models.layers.norm import ChannelLayerNorm
from inpaintstudio.models.layers.ssm import DEFAULT_CHUNK, Mamba, ScanPath, gather_layer_norm
from inpaintstudio.models.layers.stage import Stage
from inpaintstudio.trainspec import LossConfig, OptimConfig, TrainingSpec

__all__ = [
    "Config",
    "ChannelLayerNorm",
    "MambaBranch",
    "SpatialReducedSelfAttention",
    "FeedForward",
    "HybridModule",
    "MxT",
    "sinusoidal_positions",
    "build",
    "config_from_fixture",
    "parity_forward",
    "remap_official_state_dict",
    "predict",
]

SIZE_MULTIPLE = 8  # three pixel-unshuffles


@dataclass(frozen=True)
class Config:
    """M×T generator configuration; defaults are the released code's ``MxT()`` constructor.

    Args:
        in_channels: network input channels (RGB with holes filled + mask).
        out_channels: output channels.
        dim: base width C; level widths C, 2C, 4C, 8C, decoder level 1 at 2C.
        num_blocks: Hybrid Modules in encoder L1, L2, L3 and the latent; decoders mirror L3, L2, L1.
        num_refinement_blocks: registered-but-unused ``refinement`` HMs at width 2C.
        heads: SRSA heads for L1, L2, L3, latent (decoders reuse L3, L2, L1).
        ffn_expansion_factor: FFN hidden width F = int(width · factor).
        bias: bias flag of the U-Net / HM convolutions (the code's ``bias``).
        layer_norm_type: channel LayerNorm type, ``"WithBias"`` (default) or ``"BiasFree"`` (Restormer's).
        srsa_pool_size: side of the adaptive-average-pooled K/V grid.
        d_state, d_conv, mamba_expand: mamba_ssm v1 ``Mamba`` arguments (dt_rank = ceil(width / 16)).
        register_unused_modules: register the tensors the forward never uses (strict official loading).
        use_mamba_branch, use_srsa: ablation switches (thesis Tab. 5.1).
        ffn: ``"cbfn"`` (M×T) or ``"gdfn"`` (Restormer FFN, ablation).
        mixer_arrangement: ``"parallel"`` (code) or ``"sequential"`` (thesis wording, see module docstring).
        scan_path: ``selective_scan`` path of every Mamba ("auto", "cpu", "triton", "cuda", "chunked", "reference").
        scan_chunk: chunk length of the chunked scan.
        checkpoint_blocks: recompute each Hybrid Module's activations in backward (training memory, not the math).
    """

    in_channels: int = 4
    out_channels: int = 3
    dim: int = 48
    num_blocks: tuple[int, int, int, int] = (4, 6, 6, 8)
    num_refinement_blocks: int = 4
    heads: tuple[int, int, int, int] = (1, 2, 4, 8)
    ffn_expansion_factor: float = 2.0
    bias: bool = False
    layer_norm_type: Literal["WithBias", "BiasFree"] = "WithBias"
    srsa_pool_size: int = 8
    d_state: int = 16
    d_conv: int = 4
    mamba_expand: int = 2
    register_unused_modules: bool = True
    use_mamba_branch: bool = True
    use_srsa: bool = True
    ffn: Literal["cbfn", "gdfn"] = "cbfn"
    mixer_arrangement: Literal["parallel", "sequential"] = "parallel"
    scan_path: ScanPath = "auto"
    scan_chunk: int = DEFAULT_CHUNK
    checkpoint_blocks: bool = False


# ------------------------------------------------------------------------------------------------ layers
@lru_cache(maxsize=8)
def _positions_cached(length: int, width: int, device: str) -> Tensor:
    with torch.inference_mode(False):  # a cached table must stay usable outside inference mode (training)
        return _positions(length, width, device)


def _positions(length: int, width: int, device: str) -> Tensor:
    position = torch.arange(0, length, dtype=torch.float32, device=device).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, width, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / width))
    table = torch.zeros(length, width, dtype=torch.float32, device=device)
    table[:, 0::2] = torch.sin(position * div_term)
    table[:, 1::2] = torch.cos(position * div_term)
    return table


def sinusoidal_positions(length: int, width: int, device: torch.device | str = "cpu") -> Tensor:
    """Fixed table ``PE[n, 2k] = sin(n·ω_k)``, ``PE[n, 2k+1] = cos(n·ω_k)``, ``ω_k = exp(−2k·ln 10000 / width)``.

    Computed in float32 in the same operation order as the official ``PositionalEncoding`` (the rounding of
    ``n·ω_k`` matters at large n). ``width`` must be even.
    """
    if width % 2:
        raise ValueError(f"positional table width must be even, got {width}")
    return _positions_cached(int(length), int(width), str(torch.device(device)))


class MambaBranch(nn.Module):
    """Pixel-level token mixer: raster flatten → + PE → ``nn.LayerNorm`` → Mamba → back to B×C×H×W.

    ``norm2``, ``mamba2``, ``conv1`` and ``conv2`` are registered-but-unused official tensors.
    """

    def __init__(self, width: int, cfg: Config) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        if cfg.register_unused_modules:
            self.norm2 = nn.LayerNorm(width)
        mamba_args = {"d_state": cfg.d_state, "d_conv": cfg.d_conv, "expand": cfg.mamba_expand,
                      "scan_path": cfg.scan_path, "scan_chunk": cfg.scan_chunk}
        self.mamba = Mamba(width, **mamba_args)
        if cfg.register_unused_modules:
            self.mamba2 = Mamba(width, **mamba_args)
            self.conv1 = nn.Conv2d(width, width, 3, padding=1)
            self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        with torch.autocast(device_type=x.device.type, enabled=False):
            seq = self.mamba.out_proj(self.features(x))
        # B×C×H×W view of the B×L×C output: channels-last, the layout the network runs in
        return seq.transpose(1, 2).unflatten(2, (h, w)).to(x.dtype)

    def features(self, x: Tensor) -> Tensor:
        """The branch before Mamba's output projection: B×C×H×W -> B×L×E (raster order), in float32 or wider."""
        b, c, h, w = x.shape
        compute_dtype = torch.promote_types(x.dtype, torch.float32)  # the SSM never runs in half precision
        with torch.autocast(device_type=x.device.type, enabled=False):
            seq = x.to(compute_dtype).flatten(2).transpose(1, 2)  # raster order: token n = i·W + j
            pe = sinusoidal_positions(h * w, c, x.device).to(compute_dtype)
            path = self.mamba.scan_path if self.mamba.use_fast_path else "chunked"
            return self.mamba.inner(gather_layer_norm(seq, None, pe, self.norm, path))


class SpatialReducedSelfAttention(nn.Module):
    """SRSA: attention of every pixel's query to an adaptively pooled grid of keys/values.

    Used tensors: ``temperature2``, ``qkv2``, ``qkv_dwconv2``, ``lce``, ``project_out``. ``qkv``, ``qkv_dwconv``
    and ``conv`` are registered-but-unused official tensors.
    """

    def __init__(self, width: int, heads: int, cfg: Config) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"SRSA width {width} is not divisible by {heads} heads")
        self.heads = heads
        self.pool_size = cfg.srsa_pool_size
        self.temperature2 = nn.Parameter(torch.ones(heads, 1, 1))
        if cfg.register_unused_modules:
            self.qkv = nn.Conv2d(width, width * 3, 1, bias=cfg.bias)
            self.qkv_dwconv = nn.Conv2d(width * 3, width * 3, 3, padding=1, groups=width * 3, bias=cfg.bias)
        self.project_out = nn.Conv2d(width, width, 1, bias=cfg.bias)
        self.qkv2 = nn.Conv2d(width, width * 3, 1, bias=cfg.bias)
        self.qkv_dwconv2 = nn.Conv2d(width * 3, width * 3, 3, padding=1, groups=width * 3, bias=cfg.bias)
        if cfg.register_unused_modules:
            self.conv = nn.Sequential(
                nn.Conv2d(width, width, 3, padding=1),
                ChannelLayerNorm(width, cfg.layer_norm_type),
                nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, padding=1),
                ChannelLayerNorm(width, cfg.layer_norm_type),
            )
        self.lce = nn.Conv2d(width, width, 3, padding=1, groups=width, bias=cfg.bias)

    def attention(self, q: Tensor, k: Tensor) -> Tensor:
        """Softmax scores B×heads×(H·W)×P² of full-resolution queries against pooled, normalised keys."""
        b, c, h, w = q.shape
        pooled = F.adaptive_avg_pool2d(k, self.pool_size)
        q = q.reshape(b, self.heads, c // self.heads, h * w)
        keys = F.normalize(pooled.reshape(b, self.heads, c // self.heads, -1), dim=-1)
        return (q.transpose(-2, -1) @ keys * self.temperature2).softmax(dim=-1)

    def forward(self, y: Tensor) -> Tensor:
        return self.project_out(self.pre_projection(y))

    def pre_projection(self, y: Tensor) -> Tensor:
        """The layer before ``project_out``: attention output plus the local-context conv of v, B×C×H×W."""
        b, c, h, w = y.shape
        q, k, v = pointwise_depthwise(y, self.qkv2, self.qkv_dwconv2, parts=3)
        values = F.adaptive_avg_pool2d(v, self.pool_size).reshape(b, self.heads, c // self.heads, -1)
        values = F.normalize(values, dim=-1)
        rows = pixel_rows(q)
        if rows is not None:
            out = self._attend_rows(rows.view(b, h * w, c), k, values).view(b, h, w, c).permute(0, 3, 1, 2)
        else:
            out = (values @ self.attention(q, k).transpose(-2, -1)).reshape(b, c, h, w)
        return out + self.lce(v)

    def _attend_rows(self, q: Tensor, k: Tensor, values: Tensor) -> Tensor:
        """The attention on channels-last data: queries as B×P×C pixel rows (read in place), result B×P×C (the
        same products as ``attention`` and the value contraction, without transposed copies of the queries)."""
        batch, pixels, c = q.shape
        d = c // self.heads
        pooled = F.adaptive_avg_pool2d(k, self.pool_size)
        keys = F.normalize(pooled.reshape(batch, self.heads, d, -1), dim=-1)  # B×heads×d×P²
        out = q.new_empty(batch, pixels, c)
        for i in range(batch):
            queries = q[i].view(pixels, self.heads, d).permute(1, 0, 2)  # heads×P×d
            scores = (queries @ (keys[i] * self.temperature2)).softmax(dim=-1)  # heads×P×P², scaled keys: a pass less
            if self.heads == 1 and not torch.is_grad_enabled() and not torch.is_autocast_enabled(q.device.type):
                # the product straight into the output rows
                torch.mm(scores[0], values[i, 0].t(), out=out[i])
            else:
                out[i] = (scores @ values[i].transpose(-2, -1)).permute(1, 0, 2).reshape(pixels, c)
        return out


class FeedForward(nn.Module):
    """CBFN (``variant="cbfn"``) or Restormer's GDFN (``"gdfn"``): gated depthwise FFN, CBFN adds the global mean.

    ``fusion``, ``dwconv_afterfusion`` and ``conv`` (a spatial branch) are registered-but-unused official tensors.
    """

    def __init__(self, width: int, cfg: Config, variant: Literal["cbfn", "gdfn"] = "cbfn") -> None:
        super().__init__()
        if variant not in ("cbfn", "gdfn"):
            raise ValueError(f"ffn must be 'cbfn' or 'gdfn', got {variant!r}")
        self.variant = variant
        hidden = int(width * cfg.ffn_expansion_factor)
        self.project_in = nn.Conv2d(width, hidden * 2, 1, bias=cfg.bias)
        if cfg.register_unused_modules:
            self.fusion = nn.Conv2d(hidden + width, hidden, 1, bias=cfg.bias)
            self.dwconv_afterfusion = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=cfg.bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2, bias=cfg.bias)
        self.project_out = nn.Conv2d(hidden, width, 1, bias=cfg.bias)
        if cfg.register_unused_modules:
            self.conv = nn.Sequential(
                nn.ReflectionPad2d(1),
                nn.Conv2d(width, width, 3, groups=width),
                ChannelLayerNorm(width, cfg.layer_norm_type),
                nn.ReLU(inplace=True),
                nn.ReflectionPad2d(2),
                nn.Conv2d(width, width, 3, dilation=2, groups=width),
                ChannelLayerNorm(width, cfg.layer_norm_type),
                nn.ReLU(inplace=True),
            )

    def forward(self, u: Tensor) -> Tensor:
        g = gated_dconv_ffn(u, self.project_in, self.dwconv, self.project_out)
        if self.variant == "gdfn":
            return g
        # Context broadcasting: global average pooling, then the mean over channels, added everywhere.
        return g + g.mean(dim=(2, 3), keepdim=True).mean(dim=1, keepdim=True)


class HybridModule(nn.Module):
    """HM: Mamba branch and SRSA on separately normalised copies, 1×1 fuse, then CBFN; pre-norm residuals."""

    def __init__(self, width: int, heads: int, cfg: Config) -> None:
        super().__init__()
        if cfg.mixer_arrangement not in ("parallel", "sequential"):
            raise ValueError(f"mixer_arrangement must be 'parallel' or 'sequential', got {cfg.mixer_arrangement!r}")
        self.sequential = cfg.mixer_arrangement == "sequential"
        norm = cfg.layer_norm_type
        if cfg.register_unused_modules:
            self.norm1_1 = ChannelLayerNorm(width, norm)
            self.ffn1 = FeedForward(width, cfg, cfg.ffn)
        self.norm1: ChannelLayerNorm | None = ChannelLayerNorm(width, norm) if cfg.use_mamba_branch else None
        self.mam: MambaBranch | None = MambaBranch(width, cfg) if cfg.use_mamba_branch else None
        self.attn = SpatialReducedSelfAttention(width, heads, cfg) if cfg.use_srsa else None
        self.norm2 = ChannelLayerNorm(width, norm)
        self.norm3: ChannelLayerNorm | None = ChannelLayerNorm(width, norm) if cfg.use_srsa else None
        both = cfg.use_mamba_branch and cfg.use_srsa
        self.fuse = nn.Conv2d(width * 2, width, 1, bias=cfg.bias) if both and not self.sequential else None
        self.ffn = FeedForward(width, cfg, cfg.ffn)

    def forward(self, x: Tensor) -> Tensor:
        if self.sequential:
            if self.attn is not None and self.norm3 is not None:
                x = x + self.attn(self.norm3(x))
            if self.mam is not None and self.norm1 is not None:
                x = x + self.mam(self.norm1(x))
        elif self._folded_fuse_applies(x):
            x = self._mix_folded(x)
        else:
            mixed = []
            if self.mam is not None and self.norm1 is not None:
                mixed.append(self.mam(self.norm1(x)))  # Mamba features first in the fuse input
            if self.attn is not None and self.norm3 is not None:
                mixed.append(self.attn(self.norm3(x)))
            if self.fuse is not None:
                x = x + self.fuse(torch.cat(mixed, dim=1))
            elif mixed:
                x = x + mixed[0]
        return x + self.ffn(self.norm2(x))

    def _folded_fuse_applies(self, x: Tensor) -> bool:
        """Inference on channels-last float32 CPU input with both mixers and the 1×1 fuse: the fuse can absorb the
        mixers' own output projections."""
        if self.fuse is None or self.mam is None or self.attn is None or self.norm1 is None or self.norm3 is None:
            return False
        if torch.is_grad_enabled() or x.device.type != "cpu" or x.dtype != torch.float32:
            return False
        if torch.is_autocast_enabled(x.device.type):  # bf16 autocast: the modules as they are
            return False
        return pixel_rows(x) is not None

    def _mix_folded(self, x: Tensor) -> Tensor:
        """The mixers' residual step, ``x + fuse(cat[out_proj(y), project_out(s)])``, as one product per branch on
        the branches' inner features y and s, with the fuse weight folded into each projection (a 1×1 map of a 1×1
        map is one 1×1 map): two fewer matrix products and no branch outputs written at full size."""
        assert self.mam is not None and self.attn is not None and self.norm1 is not None and self.norm3 is not None
        assert self.fuse is not None
        y = self.mam.features(self.norm1(x))  # B×L×E, raster order
        s = self.attn.pre_projection(self.norm3(x))  # B×C×H×W
        x = add_folded_projections(x, [(y.reshape(-1, y.shape[-1]), self.mam.mamba.out_proj.weight,
                                        self.mam.mamba.out_proj.bias),
                                       (s, self.attn.project_out.weight, self.attn.project_out.bias)], self.fuse)
        return x


# ------------------------------------------------------------------------------------------------ U-Net
class GatedPatchEmbed(nn.Module):
    """Conv3×3 in→2C (padding 1), halves a, b, output GELU(a) ⊙ b ("overlapped convolution")."""

    def __init__(self, in_channels: int, width: int, bias: bool) -> None:
        super().__init__()
        self.gproj1 = nn.Conv2d(in_channels, width * 2, 3, padding=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        a, b = self.gproj1(x).chunk(2, dim=1)
        return gelu_mul(a, b)


class Downsample(nn.Module):
    """Conv3×3 D→D/2 then pixel-unshuffle 2 (D → 2D, resolution ÷2). ``proj`` is registered but unused."""

    def __init__(self, width: int, bias: bool, register_unused: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width // 2, 3, padding=1, bias=bias), nn.PixelUnshuffle(2))
        if register_unused:
            self.proj = nn.Conv2d(width * 2, width * 2, 3, padding=1, groups=width, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class Upsample(nn.Module):
    """Conv3×3 D→2D then pixel-shuffle 2 (D → D/2, resolution ×2)."""

    def __init__(self, width: int, bias: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width * 2, 3, padding=1, bias=bias), nn.PixelShuffle(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


def _stage(count: int, width: int, heads: int, cfg: Config) -> Stage:
    return Stage(*(HybridModule(width, heads, cfg) for _ in range(count)), checkpoint_blocks=cfg.checkpoint_blocks)


class MxT(nn.Module):
    """The M×T generator (official class ``MxT``); see the module docstring for the tensor contract."""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        c, bias = cfg.dim, cfg.bias
        n1, n2, n3, n4 = cfg.num_blocks
        h1, h2, h3, h4 = cfg.heads
        self.patch_embed = GatedPatchEmbed(cfg.in_channels, c, bias)
        self.encoder_level1 = _stage(n1, c, h1, cfg)
        self.down1_2 = Downsample(c, bias, cfg.register_unused_modules)
        self.encoder_level2 = _stage(n2, c * 2, h2, cfg)
        self.down2_3 = Downsample(c * 2, bias, cfg.register_unused_modules)
        self.encoder_level3 = _stage(n3, c * 4, h3, cfg)
        self.down3_4 = Downsample(c * 4, bias, cfg.register_unused_modules)
        self.latent = _stage(n4, c * 8, h4, cfg)
        self.up4_3 = Upsample(c * 8, bias)
        self.reduce_chan_level3 = nn.Conv2d(c * 8, c * 4, 1, bias=bias)
        self.decoder_level3 = _stage(n3, c * 4, h3, cfg)
        self.up3_2 = Upsample(c * 4, bias)
        self.reduce_chan_level2 = nn.Conv2d(c * 4, c * 2, 1, bias=bias)
        self.decoder_level2 = _stage(n2, c * 2, h2, cfg)
        self.up2_1 = Upsample(c * 2, bias)
        self.decoder_level1 = _stage(n1, c * 2, h1, cfg)
        if cfg.register_unused_modules:
            self.refinement = _stage(cfg.num_refinement_blocks, c * 2, h1, cfg)
            self.output_before = nn.Conv2d(c * 2, c, 3, padding=1, bias=bias)
        self.output = nn.Sequential(nn.Conv2d(c * 2, cfg.out_channels, 3, padding=1, bias=bias))

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        height, width = image.shape[-2:]
        if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
            raise ValueError(f"M×T needs H and W divisible by {SIZE_MULTIPLE}, got {height}×{width}")
        # Channels-last throughout: oneDNN runs its convolutions without reordering, the channel LayerNorms read
        # contiguous pixel rows, and the Mamba branch flattens pixels without a copy.
        x = torch.cat([image, mask], dim=1).contiguous(memory_format=torch.channels_last)
        skip1 = self.encoder_level1(self.patch_embed(x))
        skip2 = self.encoder_level2(self.down1_2(skip1))
        skip3 = self.encoder_level3(self.down2_3(skip2))
        x = self.latent(self.down3_4(skip3))
        x = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(x), skip3], dim=1)))
        x = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(x), skip2], dim=1)))
        x = self.decoder_level1(torch.cat([self.up2_1(x), skip1], dim=1))
        return (torch.tanh(self.output(x)) + 1) / 2


def build(cfg: Config | None = None) -> MxT:
    """The M×T generator for ``cfg`` (default: the released configuration)."""
    return MxT(cfg or Config())


# ------------------------------------------------------------------------------------------------ glue
def config_from_fixture(fixture_json: dict[str, Any]) -> Config:
    """The :class:`Config` a parity fixture's ``config.json`` describes (unsupported values are refused)."""
    raw = fixture_json["config"]
    mamba = raw.get("mamba", {})
    fixed = {"dt_rank": "ceil(width/16)", "conv_bias": True, "bias": False}
    for key, value in fixed.items():
        if mamba.get(key, value) != value:
            raise ValueError(f"fixture mamba.{key}={mamba[key]!r} is not supported (only {value!r})")
    return Config(
        in_channels=int(raw.get("inp_channels", 4)),
        out_channels=int(raw.get("out_channels", 3)),
        dim=int(raw["dim"]),
        num_blocks=tuple(int(n) for n in raw["num_blocks"]),  # type: ignore[arg-type]
        num_refinement_blocks=int(raw.get("num_refinement_blocks", 4)),
        heads=tuple(int(n) for n in raw["heads"]),  # type: ignore[arg-type]
        ffn_expansion_factor=float(raw.get("ffn_expansion_factor", 2)),
        bias=bool(raw.get("bias", False)),
        layer_norm_type=raw.get("LayerNorm_type", "WithBias"),
        srsa_pool_size=int(raw.get("srsa_pool_size", 8)),
        d_state=int(mamba.get("d_state", 16)),
        d_conv=int(mamba.get("d_conv", 4)),
        mamba_expand=int(mamba.get("expand", 2)),
    )


def fill_holes(image: Tensor, mask: Tensor) -> Tensor:
    """``I·(1−M) + M``: holes (M = 1) set to white, the input convention of the official wrapper."""
    return image * (1 - mask) + mask


def parity_forward(net: nn.Module, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
    """Fixture forward: ``output_raw``, ``output_composite`` and a float64 run (``output_float64_reference``)."""
    image, mask = inputs["image"].float(), inputs["mask"].float()
    raw = net(fill_holes(image, mask), mask)
    net64 = _float64_copy(net)
    raw64 = net64(fill_holes(image.double(), mask.double()), mask.double())
    return {
        "output_raw": raw,
        "output_composite": raw * mask + image * (1 - mask),
        "output_float64_reference": raw64.float(),
    }


def _float64_copy(net: nn.Module) -> nn.Module:
    return copy.deepcopy(net).double()


_TOP_LEVEL_CONTAINERS = (
    "encoder_level1",
    "encoder_level2",
    "encoder_level3",
    "latent",
    "decoder_level3",
    "decoder_level2",
    "decoder_level1",
    "refinement",
)


@lru_cache(maxsize=1)
def _official_key_grammar() -> tuple[frozenset[str], frozenset[str]]:
    """(top-level keys, per-HM key suffixes) of the released definitions, read off a one-HM-per-stage network.

    The names do not depend on widths or block counts, so the smallest configuration gives the same grammar.
    """
    with torch.device("meta"):
        keys = list(build(Config(num_blocks=(1, 1, 1, 1), num_refinement_blocks=1)).state_dict())
    hm = re.compile(rf"^(?:{'|'.join(_TOP_LEVEL_CONTAINERS)})\.\d+\.(.+)$")
    suffixes = {m.group(1) for key in keys if (m := hm.match(key))}
    top = {key for key in keys if not hm.match(key)}
    return frozenset(top), frozenset(suffixes)


def _is_official_key(key: str) -> bool:
    top, suffixes = _official_key_grammar()
    if key in top:
        return True
    container, _, rest = key.partition(".")
    index, _, suffix = rest.partition(".")
    return container in _TOP_LEVEL_CONTAINERS and index.isdigit() and suffix in suffixes


def remap_official_state_dict(sd: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Official ``generator`` state_dict → ours. Names are identical (the modules mirror the official ones).

    The official loader is ``load_state_dict(strict=False)``: it silently ignores keys the definitions do not
    have and leaves unmatched parameters at their initial values. Here every key that is not an M×T generator
    name (top-level module names, or ``<container>.<i>.<Hybrid-Module key>``) is dropped and reported; nothing
    is renamed and nothing is invented, so a checkpoint lacking some key (even an unused one) is refused by the
    importer with that key named. Shapes are checked by the importer against the card's network.
    """
    kept: dict[str, Tensor] = {}
    dropped: list[str] = []
    for key, value in sd.items():
        if _is_official_key(key):
            kept[key] = value
        else:
            dropped.append(key)
    return kept, {"dropped": dropped, "renamed": {}}


def predict(net: nn.Module, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
    """``image`` B×3×H×W in [0,1] with holes already white, ``mask`` B×1×H×W (1 = hole), H, W multiples of 8."""
    return {"image": net(image, mask)}


# Training: as SEM-Net's recipe but with a plain L1 (released code).
TRAINING = TrainingSpec(loss=LossConfig(l1_mode="plain"), optim=OptimConfig(), discriminator=PatchDiscriminator)
