"""TSGL: texture reconstructed from structure under global and local views ("Thinking inside the Convolution").

Paper: Liu, Wang, Qian, Rui, Wang, "Thinking inside the Convolution for Image Inpainting: Reconstructing Texture via
Structure under Global and Local Side", arXiv 2602.03013. Official code: github.com/htyjers/ConvInpaint-TSGL
(commit e9f6438, ``TSGL_MEDFE/`` for the 256 model, ``TSGL_Lama/`` for the 512 model). The repository states no
licence; the released weights are on a Baidu Netdisk share. Written from ``shared/specs/tsgl.md``; no code copied.

Two networks:

* :class:`TSGL` (``tsgl``, 256×256, the paper's "Ours"): a partial-conv structure branch on (Canny edges, grey,
  mask) and a MAT-style texture branch (partial-conv head + four mask-aware window-transformer stages); after each
  texture down-sampling a reconstruction block re-normalises the texture globally (BatchNorm) and per position, and
  de-normalises it with the structure map and the local residual structure (what the down-sampling removed). The
  reconstructed maps feed MEDFE's cross-layer balance module and U-Net decoder. An auxiliary structure decoder
  (training only) is kept so that checkpoints load strictly. Mask: 1 = KNOWN pixel.
* :class:`TSGLLama` (``tsgl_512``, "Ours (LaMa)"): the same reconstruction idea inside a LaMa FFC generator with five
  down-samplings; no texture (RTV) input. Mask: 1 = HOLE (LaMa convention).

Differences between paper and released code, and the switch that selects each (defaults = released code, so that
the published checkpoints behave as trained):

* SPADE de-normalisation ``x̂·(1+γ)+β`` (code) vs ``γ·x̂+β`` (paper Eq. 6): ``spade_scale``.
* Global statistics are BatchNorm running statistics (code) vs per-sample instance statistics (paper Eq. 7):
  ``global_norm``.
* Positional normalisation uses the unbiased channel variance (code): ``positional_var``.
* Last transformer stage has 6 blocks (code, since 2024-10-11) vs 2 (paper): ``depths``.
* Attention: the −100 key penalty is added after the 1/√d scaling, with L2-normalised q/k inputs (code form only).
* Structure inputs (grey, Canny) are computed from the brightness-folded uint8 image that ``ToPILImage`` makes of the
  already-normalised tensor [QUIRK]: ``fold_structure_inputs`` (True for the 256 model; False for the 512 model,
  whose test loader does not normalise first).
* Balance module [QUIRKS]: the internal 32×32 hole mask is always empty (threshold "> 1" on averages):
  ``clb_mask``; the partial-conv normalisers use the frozen *random* ``mask_conv`` weights left by the weight
  initialiser: ``clb_mask_conv``; the range-similarity softmax runs over the 1024 positions rather than the 9
  neighbours: ``clb_range_softmax_dim``; the equalised maps are re-interpreted in memory order (B,1024,C) →
  (B,C,32,32) instead of transposed: ``clb_raw_reshape``.
* Texture image: the code's README uses RTV smoothing (Xu et al. 2012, ``tsmooth(img, 0.015, 3, 0.001, 3)``), the
  paper cites L0 smoothing. RTV is implemented here (:func:`rtv_smooth`), including MATLAB's inexact solve (PCG to
  relative residual 0.1 with a modified incomplete Cholesky preconditioner): ``rtv_solver`` ("direct" = exact).
* LaMa variant: reconstruction blocks add the identity (``g + l + x``): ``LamaConfig.recon_identity``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inpaintstudio.models.layers.discriminators import TSGLDiscriminator
from inpaintstudio.trainspec import LossConfig, OptimConfig, TrainingSpec

__all__ = [
    "Config",
    "LamaConfig",
    "TSGL",
    "TSGLLama",
    "build",
    "config_from_fixture",
    "parity_forward",
    "remap_official_state_dict",
    "predict",
    "fold_to_uint8",
    "structure_inputs",
    "rtv_smooth",
    "prepare_official_inputs",
]


# ------------------------------------------------------------------------------------------------- configs
@dataclass(frozen=True)
class Config:
    """TSGL-MEDFE, the 256×256 default model. Defaults are the released code.

    Args:
        cnum: CNN base width (structure branch, fusion, balance module, decoders).
        tdim: texture-branch width (transformer tokens, reconstruction blocks).
        depths: transformer blocks in stages ``en_low_2..5`` (paper: (2, 2, 6, 2)).
        num_heads: attention heads; window_size: attention window; mlp_ratio: transformer MLP width factor.
        spade_hidden: SPADE shared-MLP width. se_reduction: squeeze-excitation reduction of the balance module.
        gaussian_sigma: σ of the fixed spatial-similarity table over the 32×32 grid.
        token_mask_penalty: τ, logit added to attention keys that are holes (applied as −τ).
        global_norm / spade_scale / positional_var / clb_*: see the module docstring.
        fold_structure_inputs: compute grey and Canny from the brightness-folded image (released pipeline).
        canny_sigma: Canny σ on the grey image. rtv_*: RTV smoothing of the texture input (λ, σ, sharpness, passes,
            ``pcg`` = MATLAB's inexact solve, ``direct`` = exact sparse LU, ~2× faster).
    """

    cnum: int = 64
    tdim: int = 180
    depths: tuple[int, int, int, int] = (2, 2, 6, 6)
    num_heads: int = 4
    window_size: int = 8
    spade_hidden: int = 128
    mlp_ratio: int = 2
    se_reduction: int = 16
    gaussian_sigma: float = 1.5
    token_mask_penalty: float = 100.0
    global_norm: Literal["batch", "instance"] = "batch"
    spade_scale: Literal["one_plus_gamma", "gamma"] = "one_plus_gamma"
    positional_var: Literal["unbiased", "biased"] = "unbiased"
    clb_mask: Literal["all_ones", "holes"] = "all_ones"
    clb_mask_conv: Literal["loaded", "ones"] = "loaded"
    clb_range_softmax_dim: Literal["positions", "neighbours"] = "positions"
    clb_raw_reshape: bool = True
    fold_structure_inputs: bool = True
    canny_sigma: float = 2.0
    rtv_lambda: float = 0.015
    rtv_sigma: float = 3.0
    rtv_sharpness: float = 0.001
    rtv_iterations: int = 3
    rtv_solver: Literal["pcg", "direct"] = "pcg"

    image_size: int = 256  # hard-coded by the network (128/64/32/16/8/4 feature sizes, 32×32 tables)


@dataclass(frozen=True)
class LamaConfig:
    """TSGL-LaMa, the 512×512 variant (FFC generator with five down-samplings). Defaults are the released code.

    Args:
        ngf: width of the first structure layer; max_features: width cap; texture_width: texture-branch width.
        n_blocks: FFC residual blocks of the bottleneck; aux_blocks: those of the auxiliary structure decoder.
        ratio_global: share of global (spectral) channels at the bottleneck.
        recon_identity: reconstruction blocks return ``g + l + x`` (this variant's code).
        fold_structure_inputs: False: the released *test* loader feeds un-normalised images, so no fold.
    """

    ngf: int = 64
    max_features: int = 256
    texture_width: int = 256
    n_downsampling: int = 5
    n_blocks: int = 9
    aux_blocks: int = 3
    ratio_global: float = 0.75
    spade_hidden: int = 128
    recon_identity: bool = True
    global_norm: Literal["batch", "instance"] = "batch"
    spade_scale: Literal["one_plus_gamma", "gamma"] = "one_plus_gamma"
    positional_var: Literal["unbiased", "biased"] = "unbiased"
    fold_structure_inputs: bool = False
    canny_sigma: float = 2.0

    image_size: int = 512


# ------------------------------------------------------------------------------------------------- §2.1 partial conv
class StructurePartialConv(nn.Module):
    """Multi-channel partial conv + optional BatchNorm + activation (structure branch and aux decoder).

    The mask is carried as B×1×H×W: every channel of the official multi-channel mask is identical, so the official
    count ``conv2d(m, ones(cout, cin, k, k))`` equals ``cin · conv2d(m1, ones(1, 1, k, k))`` exactly.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, bn: bool = True, act: str = "relu") -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout) if bn else None
        self.act = nn.ReLU() if act == "relu" else nn.LeakyReLU(0.2)
        self.window = cin * kernel * kernel

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        k, s, p = self.conv.kernel_size[0], self.conv.stride[0], self.conv.padding[0]
        with torch.no_grad():
            ones = torch.ones(1, 1, k, k, dtype=mask.dtype, device=mask.device)
            count = F.conv2d(mask, ones, stride=s, padding=p) * self.conv.in_channels
            ratio = self.window / (count + 1e-8)
            new_mask = count.clamp(0, 1)
            ratio = ratio * new_mask
        y = self.conv(x * mask) * ratio
        if self.bn is not None:
            y = self.bn(y)
        return self.act(y), new_mask


# ------------------------------------------------------------------------------------------------- §2.2 MAT layers
def _lrelu_gain(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2) * math.sqrt(2.0)


class EqualizedLinear(nn.Module):
    """MAT ``FullyConnectedLayer``: un-scaled N(0,1) weights, runtime gain 1/√cin; ``lrelu`` adds gain √2."""

    def __init__(self, cin: int, cout: int, act: str = "linear") -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.act = act
        self.gain = 1.0 / math.sqrt(cin)

    def forward(self, x: Tensor) -> Tensor:
        y = x.matmul((self.weight * self.gain).t()) + self.bias
        return _lrelu_gain(y) if self.act == "lrelu" else y


class EqualizedConv(nn.Module):
    """MAT ``Conv2dLayer`` (3×3): for ``down=2`` a [1,3,3,1]² blur (pad 2) then a stride-2 valid conv."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, down: int = 1, act: str = "lrelu") -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout))
        taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
        self.register_buffer("resample_filter", torch.outer(taps, taps) / 64.0)
        self.down = down
        self.act = act
        self.gain = 1.0 / math.sqrt(cin * kernel * kernel)

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight * self.gain
        if self.down == 1:
            y = F.conv2d(x, w, padding=w.shape[-1] // 2)
        else:
            channels = x.shape[1]
            blur = self.resample_filter.flip([0, 1])[None, None].repeat(channels, 1, 1, 1).to(x.dtype)
            y = F.conv2d(F.pad(x, [2, 2, 2, 2]), blur, groups=channels)
            y = F.conv2d(y, w, stride=self.down)
        y = y + self.bias.view(1, -1, 1, 1)
        return _lrelu_gain(y) if self.act == "lrelu" else y


class PartialEqualizedConv(nn.Module):
    """MAT ``Conv2dLayerPartial``: the input is NOT masked; the output (after bias+act) is scaled by k²/count."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, down: int = 1, act: str = "lrelu") -> None:
        super().__init__()
        self.conv = EqualizedConv(cin, cout, kernel, down, act)
        self.kernel = kernel

    def forward(self, x: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        if mask is None:
            return self.conv(x), None
        with torch.no_grad():
            ones = torch.ones(1, 1, self.kernel, self.kernel, dtype=mask.dtype, device=mask.device)
            count = F.conv2d(mask, ones, stride=self.conv.down, padding=self.kernel // 2)
            ratio = self.kernel**2 / (count + 1e-8)
            new_mask = count.clamp(0, 1)
            ratio = ratio * new_mask
        return self.conv(x) * ratio, new_mask


def _to_tokens(x: Tensor) -> Tensor:
    return x.flatten(2).transpose(1, 2)


def _to_map(x: Tensor, size: tuple[int, int]) -> Tensor:
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], size[0], size[1])


def _window_partition(x: Tensor, window: int) -> Tensor:
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def _window_reverse(windows: Tensor, window: int, h: int, w: int) -> Tensor:
    b = windows.shape[0] // ((h // window) * (w // window))
    x = windows.view(b, h // window, w // window, window, window, -1)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, -1)


def shifted_window_mask(size: int, window: int, shift: int) -> Tensor:
    """Swin's −100/0 mask between tokens that came from different regions of the rolled image (nW×w²×w²)."""
    region = torch.zeros(1, size, size, 1)
    cuts = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    label = 0
    for rows in cuts:
        for cols in cuts:
            region[:, rows, cols, :] = label
            label += 1
    labels = _window_partition(region, window).squeeze(-1)
    diff = labels.unsqueeze(1) - labels.unsqueeze(2)
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)


class WindowAttention(nn.Module):
    """Mask-aware window attention (§2.3): q, k from L2-normalised tokens, v from raw tokens."""

    def __init__(self, dim: int, num_heads: int, penalty: float) -> None:
        super().__init__()
        self.q = EqualizedLinear(dim, dim)
        self.k = EqualizedLinear(dim, dim)
        self.v = EqualizedLinear(dim, dim)
        self.proj = EqualizedLinear(dim, dim)
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.penalty = penalty

    def forward(self, x: Tensor, token_mask: Tensor | None, shift_mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        bw, n, c = x.shape
        heads = self.num_heads
        unit = F.normalize(x, p=2.0, dim=-1)
        q = self.q(unit).view(bw, n, heads, c // heads).transpose(1, 2)
        k = self.k(unit).view(bw, n, heads, c // heads).permute(0, 2, 3, 1)
        v = self.v(x).view(bw, n, heads, c // heads).transpose(1, 2)
        logits = (q @ k) * self.scale
        if shift_mask is not None:
            windows = shift_mask.shape[0]
            logits = logits.view(bw // windows, windows, heads, n, n) + shift_mask[None, :, None]
            logits = logits.view(bw, heads, n, n)
        if token_mask is not None:
            keys = token_mask.view(bw, 1, 1, n)
            logits = logits + torch.where(keys == 0, -self.penalty, 0.0).to(logits.dtype)
            with torch.no_grad():  # a window with any valid token becomes fully valid
                token_mask = token_mask.sum(dim=1, keepdim=True).clamp(0, 1).expand(bw, n, 1)
        out = (logits.softmax(dim=-1) @ v).transpose(1, 2).reshape(bw, n, c)
        return self.proj(out), token_mask


class TransformerMLP(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = EqualizedLinear(dim, hidden, "lrelu")
        self.fc2 = EqualizedLinear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.fc1(x))


class TransformerBlock(nn.Module):
    """MAT's adjusted block: ``x = MLP(FC_fuse([x, MCA(x)]))`` — no residual add, no LayerNorm (Eq. 3)."""

    def __init__(self, dim: int, size: int, num_heads: int, window: int, shift: int, mlp_ratio: int,
                 penalty: float) -> None:
        super().__init__()
        if size <= window:
            window, shift = size, 0
        self.window, self.shift, self.size = window, shift, size
        if shift > 0:
            self.register_buffer("attn_mask", shifted_window_mask(size, window, shift))
        else:
            self.attn_mask = None
        self.attn = WindowAttention(dim, num_heads, penalty)
        self.fuse = EqualizedLinear(2 * dim, dim, "lrelu")
        self.mlp = TransformerMLP(dim, dim * mlp_ratio)

    def forward(self, x: Tensor, token_mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        b, n, c = x.shape
        h = w = self.size
        grid = x.view(b, h, w, c)
        mask_grid = token_mask.view(b, h, w, 1) if token_mask is not None else None
        if self.shift > 0:
            grid = torch.roll(grid, (-self.shift, -self.shift), dims=(1, 2))
            if mask_grid is not None:
                mask_grid = torch.roll(mask_grid, (-self.shift, -self.shift), dims=(1, 2))
        windows = _window_partition(grid, self.window)
        mask_windows = _window_partition(mask_grid, self.window) if mask_grid is not None else None
        out, mask_windows = self.attn(windows, mask_windows, self.attn_mask)
        grid = _window_reverse(out, self.window, h, w)
        if mask_windows is not None:
            mask_grid = _window_reverse(mask_windows, self.window, h, w)
        if self.shift > 0:
            grid = torch.roll(grid, (self.shift, self.shift), dims=(1, 2))
            if mask_grid is not None:
                mask_grid = torch.roll(mask_grid, (self.shift, self.shift), dims=(1, 2))
        attended = grid.reshape(b, n, c)
        new_mask = mask_grid.reshape(b, n, 1) if mask_grid is not None else None
        return self.mlp(self.fuse(torch.cat([x, attended], dim=-1))), new_mask


class PatchMerging(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = PartialEqualizedConv(dim, dim, 3, down=2)

    def forward(self, x: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        return self.conv(x, mask)


class TransformerStage(nn.Module):
    """§2.4: patch merging (÷2), ``depth`` blocks alternating shift 0 / window/2, partial conv, stage residual."""

    def __init__(self, dim: int, depth: int, size: int, num_heads: int, window: int, mlp_ratio: int,
                 penalty: float) -> None:
        super().__init__()
        self.downsample = PatchMerging(dim)
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, size, num_heads, window, 0 if i % 2 == 0 else window // 2, mlp_ratio, penalty)
            for i in range(depth)
        )
        self.conv = PartialEqualizedConv(dim, dim, 3, down=1)
        self.size = size

    def forward(self, x: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """x: B×C×2H×2W map, mask B×1×2H×2W or None -> (B×C×H×W map, B×1×H×W mask or None)."""
        size = (self.size, self.size)
        x, mask = self.downsample(x, mask)
        tokens = _to_tokens(x)
        identity = tokens
        token_mask = _to_tokens(mask) if mask is not None else None
        for block in self.blocks:
            tokens, token_mask = block(tokens, token_mask)
        mask = _to_map(token_mask, size) if token_mask is not None else None
        x, mask = self.conv(_to_map(tokens, size), mask)
        return _to_map(_to_tokens(x) + identity, size), mask


# ---------------------------------------------------------------------------------------------- §2.5-2.6 reconstruction
class SPADE(nn.Module):
    """Parameter-free normalisation, then ``x̂·(1+γ)+β`` with γ, β from the (nearest-resized) condition map."""

    def __init__(self, norm: str, channels: int, cond_channels: int, hidden: int, global_norm: str = "batch",
                 scale: str = "one_plus_gamma", positional_var: str = "unbiased") -> None:
        super().__init__()
        self.norm = norm
        if norm == "batch":  # kept for "instance" too, so checkpoints load; forward then ignores the statistics
            self.param_free_norm = nn.BatchNorm2d(channels, affine=False)
        self.mlp_shared = nn.Sequential(nn.Conv2d(cond_channels, hidden, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.mlp_beta = nn.Conv2d(hidden, channels, 3, padding=1)
        self.global_norm, self.scale, self.positional_var = global_norm, scale, positional_var

    def normalise(self, x: Tensor) -> Tensor:
        if self.norm == "positional":
            mean = x.mean(dim=1, keepdim=True)
            var = x.var(dim=1, keepdim=True, unbiased=self.positional_var == "unbiased")
            return (x - mean) / torch.sqrt(var + 1e-5)
        if self.global_norm == "instance":
            return F.instance_norm(x, eps=1e-5)
        return self.param_free_norm(x)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        normalised = self.normalise(x)
        cond = F.interpolate(cond, size=x.shape[2:], mode="nearest")
        hidden = self.mlp_shared(cond)
        gamma, beta = self.mlp_gamma(hidden), self.mlp_beta(hidden)
        if self.scale == "one_plus_gamma":
            return normalised * (1 + gamma) + beta
        return normalised * gamma + beta


class Reconstruction(nn.Module):
    """TSGL block (§2.6): two global (BN) SPADE+conv steps on the structure map plus one positional step on the
    local residual; ``out = g + l`` (``+ x`` in the LaMa variant)."""

    def __init__(self, channels: int, structure_channels: int, residual_channels: int, hidden: int,
                 identity: bool = False, global_norm: str = "batch", scale: str = "one_plus_gamma",
                 positional_var: str = "unbiased") -> None:
        super().__init__()
        sn = nn.utils.spectral_norm
        self.conv_0 = sn(nn.Conv2d(channels, channels, 3, padding=1))
        self.conv_1 = sn(nn.Conv2d(channels, channels, 3, padding=1))
        self.conv_s = sn(nn.Conv2d(channels, channels, 3, padding=1))
        options = {"global_norm": global_norm, "scale": scale, "positional_var": positional_var}
        self.norm_0 = SPADE("batch", channels, structure_channels, hidden, **options)
        self.norm_1 = SPADE("batch", channels, structure_channels, hidden, **options)
        self.norm_s = SPADE("positional", channels, residual_channels, hidden, **options)
        self.identity = identity

    def forward(self, x: Tensor, residual: Tensor, structure: Tensor) -> Tensor:
        g = self.conv_0(F.leaky_relu(self.norm_0(x, structure), 0.2))
        g = self.conv_1(F.leaky_relu(self.norm_1(g, structure), 0.2))
        local = self.conv_s(F.leaky_relu(self.norm_s(x, residual), 0.2))
        return g + local + x if self.identity else g + local


def local_residual(previous: Tensor, current: Tensor) -> Tensor:
    """``R_k = bilinear_ac(T_{k-1} − up2_nearest(T_k^raw))`` at the resolution of ``T_k``."""
    diff = previous - F.interpolate(current, scale_factor=2, mode="nearest")
    return F.interpolate(diff, size=current.shape[2:], mode="bilinear", align_corners=True)


# ------------------------------------------------------------------------------------------------- §3.4 balance module
def _conv_in_lrelu(cin: int, cout: int, kernel: int, stride: int, padding: int, act: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, padding, bias=False), nn.InstanceNorm2d(cout)]
    return layers + [nn.LeakyReLU(0.2)] if act else layers


class ConvStack(nn.Module):
    """MEDFE ``ConvDown``: a ``model`` Sequential of conv + InstanceNorm (+ LeakyReLU) steps."""

    def __init__(self, steps: list[tuple[int, int, int, int, int, bool]]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for cin, cout, kernel, stride, padding, act in steps:
            layers += _conv_in_lrelu(cin, cout, kernel, stride, padding, act)
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class ConvUp(nn.Module):
    """MEDFE ``ConvUp``: bilinear resize (align_corners False), 1×1 conv, InstanceNorm, LeakyReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn = nn.InstanceNorm2d(cout)
        self.relu = nn.LeakyReLU(0.2)

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return self.relu(self.bn(self.conv(x)))


class MaskNormalisedConv(nn.Module):
    """MEDFE ``PartialConv``: ``conv(x·m) / conv(m, W_m)``; W_m is a frozen weight of the checkpoint [QUIRK]."""

    def __init__(self, cin: int, cout: int, kernel: int, mask_conv_mode: str = "loaded") -> None:
        super().__init__()
        self.input_conv = nn.Conv2d(cin, cout, kernel, 1, kernel // 2, bias=False)
        self.mask_conv = nn.Conv2d(cin, cout, kernel, 1, kernel // 2, bias=False)
        self.mask_conv.weight.requires_grad_(False)
        self.mask_conv_mode = mask_conv_mode

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """mask: B×1×H×W (identical channels) or B×C×H×W; returns (output, new mask)."""
        out = self.input_conv(x * mask)
        with torch.no_grad():
            weight = self.mask_conv.weight
            if self.mask_conv_mode == "ones":
                weight = torch.ones_like(weight)
            if mask.shape[1] == 1:  # identical channels: sum the weight over inputs instead
                weight = weight.sum(dim=1, keepdim=True)
            norm = F.conv2d(mask, weight, padding=self.mask_conv.padding)
            holes = norm == 0
            norm = norm.masked_fill(holes, 1.0)
            new_mask = (~holes).to(x.dtype)
            if bool(new_mask.all()):
                new_mask = new_mask[:, :1]
        return (out / norm).masked_fill(holes, 0.0), new_mask


class PartialConvBlock(nn.Module):
    """MEDFE ``PCBActiv``: partial conv, affine InstanceNorm, LeakyReLU(0.2)."""

    def __init__(self, channels: int, kernel: int, mask_conv_mode: str) -> None:
        super().__init__()
        self.conv = MaskNormalisedConv(channels, channels, kernel, mask_conv_mode)
        self.bn = nn.InstanceNorm2d(channels, affine=True)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        x, mask = self.conv(x, mask)
        return F.leaky_relu(self.bn(x), 0.2), mask


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1), nn.ReLU(),
            nn.Conv2d(channels // reduction, channels, 1), nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x * self.fc(F.adaptive_avg_pool2d(x, 1))


def gaussian_table(size: int, sigma: float) -> Tensor:
    """Row-normalised spatial Gaussian K[i, j] over a size×size grid (float64, then float32 like the code)."""
    coords = np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="ij"), -1).reshape(-1, 2)
    dist2 = ((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1)
    table = np.exp(-dist2 / (2 * sigma * sigma)) / (2 * math.pi * sigma * sigma)
    return torch.from_numpy(table / table.sum(1, keepdims=True)).float()


class FeatureEqualisation(nn.Module):
    """MEDFE ``BASE`` (Eq. 9–12): SE channel equalisation, spatial Gaussian and 3×3 range similarity, 1×1 fuse."""

    def __init__(self, channels: int, reduction: int, sigma: float, grid: int, softmax_dim: str,
                 raw_reshape: bool) -> None:
        super().__init__()
        self.model = nn.Sequential(SqueezeExcitation(channels, reduction))
        self.down = nn.Sequential(*_conv_in_lrelu(2 * channels, channels, 1, 1, 0))
        self.register_buffer("gaussian", gaussian_table(grid, sigma), persistent=False)
        self.softmax_dim, self.raw_reshape = softmax_dim, raw_reshape

    def _as_map(self, y: Tensor, like: Tensor) -> Tensor:
        """(B, HW, C) -> (B, C, H, W): the code's raw memory-order reshape [QUIRK] or a proper transpose."""
        if self.raw_reshape:
            return y.reshape(like.shape)
        return y.transpose(1, 2).reshape(like.shape)

    def forward(self, x: Tensor) -> Tensor:
        x = self.model(x)
        b, c, h, w = x.shape
        flat = x.flatten(2).transpose(1, 2)  # B×HW×C
        spatial = torch.matmul(self.gaussian.to(x.dtype), flat)
        prob = F.pad(torch.sigmoid(x), (1, 1, 1, 1))
        padded = F.pad(x, (1, 1, 1, 1))
        centre = torch.sigmoid(x)
        shifted_prob = [prob[:, :, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)]
        shifted_x = [padded[:, :, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)]
        sim = torch.stack([(centre * p).mean(dim=1) for p in shifted_prob], dim=-1).view(b, h * w, 9)
        weights = sim.softmax(dim=1 if self.softmax_dim == "positions" else 2)
        values = torch.stack(shifted_x, dim=-1).view(b, c, h * w, 9)
        ranged = (values * weights.unsqueeze(1)).sum(-1).transpose(1, 2)  # B×HW×C
        merged = torch.cat([self._as_map(spatial, x), self._as_map(ranged, x)], dim=1)
        return self.down(merged)


class BalanceModule(nn.Module):
    """MEDFE multi-scale partial-conv fill + feature equalisation over six encoder maps (§3.4)."""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        c = cfg.cnum
        self.down_128 = ConvStack([(c, 2 * c, 4, 2, 1, True), (2 * c, 4 * c, 4, 2, 1, True)])
        self.down_64 = ConvStack([(2 * c, 4 * c, 4, 2, 1, True)])
        self.down_32 = ConvStack([(4 * c, 4 * c, 1, 1, 0, True)])
        self.down_16 = ConvStack([(8 * c, 8 * c, 4, 2, 1, False)])
        self.down_8 = ConvStack([(8 * c, 8 * c, 4, 2, 1, True), (8 * c, 8 * c, 4, 2, 1, False)])
        self.down_4 = ConvStack([(8 * c, 8 * c, 4, 2, 1, True)] * 2 + [(8 * c, 8 * c, 4, 2, 1, False)])
        self.down = ConvStack([(12 * c, 4 * c, 1, 1, 0, True)])
        self.fuse = ConvStack([(8 * c, 8 * c, 1, 1, 0, True)])
        self.up = ConvUp(8 * c, 4 * c)
        self.up_128 = ConvUp(8 * c, c)
        self.up_64 = ConvUp(8 * c, 2 * c)
        self.up_32 = ConvUp(8 * c, 4 * c)
        self.base = FeatureEqualisation(8 * c, cfg.se_reduction, cfg.gaussian_sigma, cfg.image_size // 8,
                                        cfg.clb_range_softmax_dim, cfg.clb_raw_reshape)
        for kernel in (3, 5, 7):
            blocks = [PartialConvBlock(4 * c, kernel, cfg.clb_mask_conv) for _ in range(5)]
            setattr(self, f"cov_{kernel}", nn.ModuleList(blocks))
        self.use_hole_mask = cfg.clb_mask == "holes"

    def _valid_mask(self, holes: Tensor) -> Tensor:
        """32×32 valid mask. The code thresholds three 4×4 averages with "> 1": always empty, so all valid."""
        pooled = holes
        for _ in range(3):
            pooled = F.avg_pool2d(pooled, 4, 2, 1, count_include_pad=True)
        threshold = 0.5 if self.use_hole_mask else 1.0
        return 1.0 - (pooled > threshold).to(holes.dtype)

    def _fill(self, x: Tensor, mask: Tensor) -> Tensor:
        streams = []
        for blocks in (self.cov_3, self.cov_5, self.cov_7):
            y, m = x, mask
            for block in blocks:
                y, m = block(y, m)
            streams.append(y)
        return self.down(torch.cat(streams, dim=1))

    def forward(self, feats: list[Tensor], holes: Tensor) -> list[Tensor]:
        grid = feats[2].shape[2:]
        act = [F.leaky_relu(f, 0.2) for f in feats]
        early = self.down(torch.cat([self.down_128(act[0]), self.down_64(act[1]), self.down_32(act[2])], 1))
        late = self.down(torch.cat([self.up(a, grid) for a in act[3:]], 1))
        mask = self._valid_mask(holes)
        fused = self.fuse(torch.cat([self._fill(late, mask), self._fill(early, mask)], 1))
        eq = self.base(fused)
        return [
            self.up_128(eq, feats[0].shape[2:]) + feats[0],
            self.up_64(eq, feats[1].shape[2:]) + feats[1],
            self.up_32(eq, grid) + feats[2],
            self.down_16(eq) + feats[3],
            self.down_8(eq) + feats[4],
            self.down_4(eq) + feats[5],
        ]


# ------------------------------------------------------------------------------------------------- §3.5-3.6 decoders
class UpBlock(nn.Module):
    """MEDFE decoder block: ReLU, ConvTranspose 4×4/2, BatchNorm (outermost: tanh)."""

    def __init__(self, cin: int, cout: int, outermost: bool = False) -> None:
        super().__init__()
        last: nn.Module = nn.Tanh() if outermost else nn.BatchNorm2d(cout)
        self.model = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(cin, cout, 4, 2, 1), last)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class StructureResolver(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + x)


class EdgeHead(nn.Module):
    """``Feature2High``: residual block, then 1×1 conv + sigmoid → edge probability."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.structure_resolver = StructureResolver(channels)
        self.out_layer = nn.Sequential(nn.Conv2d(channels, 1, 1), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        return self.out_layer(self.structure_resolver(x))


# ------------------------------------------------------------------------------------------------- §3 generator
class TSGL(nn.Module):
    """TSGL-MEDFE generator. Attribute names follow the official state_dict (strict loading, no renames).

    forward(image, edge, texture, gray, mask): image/texture B×3×256×256 in [−1, 1], edge {0,1} and gray [0,1]
    B×1×256×256, mask B×1×256×256 with 1 = KNOWN; every input already multiplied by the mask.
    Returns the raw tanh output B×3×256×256 in [−1, 1].
    """

    def __init__(self, cfg: Config | None = None) -> None:
        super().__init__()
        cfg = cfg or Config()
        self.config = cfg
        c, t, size = cfg.cnum, cfg.tdim, cfg.image_size
        self.en_high_1 = StructurePartialConv(3, c, 7, 2, bn=False)
        self.en_high_2 = StructurePartialConv(c, 2 * c, 5, 2)
        self.en_high_3 = StructurePartialConv(2 * c, 4 * c, 5, 2)
        self.en_high_4 = StructurePartialConv(4 * c, 8 * c, 3, 2)
        self.en_high_5 = StructurePartialConv(8 * c, 16 * c, 3, 2)
        self.en_low_1_f = PartialEqualizedConv(7, t, 3, down=1)
        self.en_low_1_s = PartialEqualizedConv(t, t, 3, down=2)
        for i, depth in enumerate(cfg.depths):
            stage = TransformerStage(t, depth, size // 2 ** (i + 2), cfg.num_heads, cfg.window_size,
                                     cfg.mlp_ratio, cfg.token_mask_penalty)
            setattr(self, f"en_low_{i + 2}", stage)
        fusion_widths = (c, 2 * c, 4 * c, 8 * c, 8 * c)
        for i, width in enumerate(fusion_widths):
            setattr(self, f"en_fusion_{i + 1}", nn.Sequential(nn.Conv2d(t, width, 1), nn.ReLU()))
        for i, structure in enumerate((c, 2 * c, 4 * c, 8 * c, 16 * c)):
            setattr(self, f"h2l_{i + 1}", Reconstruction(t, structure, t, cfg.spade_hidden, False, cfg.global_norm,
                                                         cfg.spade_scale, cfg.positional_var))
        self.en_fusion_6 = nn.Sequential(nn.Conv2d(sum(fusion_widths), 8 * c, 3, 2, 1), nn.ReLU())
        self.pc_block = BalanceModule(cfg)
        self.Decoder_1 = UpBlock(8 * c, 8 * c)
        self.Decoder_2 = UpBlock(16 * c, 8 * c)
        self.Decoder_3 = UpBlock(16 * c, 4 * c)
        self.Decoder_4 = UpBlock(8 * c, 2 * c)
        self.Decoder_5 = UpBlock(4 * c, c)
        self.Decoder_6 = UpBlock(2 * c, 3, outermost=True)
        # auxiliary structure decoder (training loss only; present in the checkpoint)
        self.en_high_6 = StructurePartialConv(16 * c, 16 * c, 3, 2)
        self.en_high_7 = StructurePartialConv(16 * c, 16 * c, 3, 2)
        aux = {7: (16, 16), 6: (16, 16), 5: (16, 16), 4: (16, 8), 3: (8, 4), 2: (4, 2), 1: (2, 1)}
        for j, (cin, cout) in aux.items():
            setattr(self, f"de_high_{j}", StructurePartialConv(cin * c, cout * c, 3, 1, act="lrelu"))
        self.de_high_0 = EdgeHead(c)

    def encode_structure(self, edge: Tensor, gray: Tensor, mask: Tensor) -> tuple[list[Tensor], Tensor]:
        x, m = torch.cat([edge, gray, mask], 1), mask
        maps = []
        for i in range(1, 6):
            x, m = getattr(self, f"en_high_{i}")(x, m)
            maps.append(x)
        return maps, m

    def encode_texture(self, image: Tensor, texture: Tensor, mask: Tensor, structure: list[Tensor]) -> list[Tensor]:
        t0, m = self.en_low_1_f(torch.cat([image, texture, mask], 1), mask)
        raw, m = self.en_low_1_s(t0, m)
        current = self.h2l_1(raw, local_residual(t0, raw), structure[0])
        recon = [current]
        for k in range(2, 6):
            # the last stage runs without a token mask (the code passes none)
            raw, m = getattr(self, f"en_low_{k}")(current, m if k < 5 else None)
            current = getattr(self, f"h2l_{k}")(raw, local_residual(current, raw), structure[k - 1])
            recon.append(current)
        return recon

    def fuse(self, recon: list[Tensor]) -> list[Tensor]:
        feats = [getattr(self, f"en_fusion_{i + 1}")(r) for i, r in enumerate(recon)]
        size = feats[4].shape[2:]
        pooled = [F.interpolate(f, size=size, mode="bilinear", align_corners=True) for f in feats[:4]]
        feats.append(self.en_fusion_6(torch.cat(pooled + [feats[4]], 1)))
        return feats

    def decode(self, feats: list[Tensor]) -> Tensor:
        y = self.Decoder_1(feats[5])
        for i, skip in zip(range(2, 7), reversed(feats[:5])):
            y = getattr(self, f"Decoder_{i}")(torch.cat([y, skip], 1))
        return y

    def predict_edges(self, s5: Tensor, m5: Tensor) -> Tensor:
        """Auxiliary structure decoder: S5 → edge probability map at full resolution."""
        x, m = self.en_high_6(s5, m5)
        x, m = self.en_high_7(x, m)
        for j in range(7, 0, -1):
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            m = F.interpolate(m, scale_factor=2, mode="nearest")
            x, m = getattr(self, f"de_high_{j}")(x, m)
        return self.de_high_0(x)

    def run(self, image: Tensor, edge: Tensor, texture: Tensor, gray: Tensor, mask: Tensor,
            with_edges: bool = False) -> tuple[Tensor, Tensor | None]:
        size = self.config.image_size
        if image.shape[-2:] != (size, size):
            raise ValueError(f"TSGL runs at exactly {size}×{size}; got {tuple(image.shape[-2:])}")
        structure, m5 = self.encode_structure(edge, gray, mask)
        feats = self.fuse(self.encode_texture(image, texture, mask, structure))
        out = self.decode(self.pc_block(feats, 1 - mask))
        return out, (self.predict_edges(structure[4], m5) if with_edges else None)

    def forward(self, image: Tensor, edge: Tensor, texture: Tensor, gray: Tensor, mask: Tensor) -> Tensor:
        return self.run(image, edge, texture, gray, mask)[0]


# ------------------------------------------------------------------------------------------------- §9 LaMa variant
class FourierUnit(nn.Module):
    """rFFT (ortho) → [real, imag] per channel → 1×1 conv + BN + ReLU → inverse rFFT."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_layer = nn.Conv2d(2 * channels, 2 * channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(2 * channels)

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        spec = torch.fft.rfftn(x.float(), dim=(-2, -1), norm="ortho")
        stacked = torch.stack((spec.real, spec.imag), dim=2).reshape(b, -1, h, w // 2 + 1).to(x.dtype)
        stacked = F.relu(self.bn(self.conv_layer(stacked)))
        stacked = stacked.view(b, -1, 2, h, w // 2 + 1).float()
        spec = torch.complex(stacked[:, :, 0], stacked[:, :, 1])
        return torch.fft.irfftn(spec, s=(h, w), dim=(-2, -1), norm="ortho").to(x.dtype)


class SpectralTransform(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv1 = nn.Sequential(nn.Conv2d(cin, cout // 2, 1, bias=False), nn.BatchNorm2d(cout // 2), nn.ReLU())
        self.fu = FourierUnit(cout // 2)
        self.conv2 = nn.Conv2d(cout // 2, cout, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 2:
            x = F.avg_pool2d(x, 2, 2)
        x = self.conv1(x)
        return self.conv2(x + self.fu(x))


FeaturePair = tuple[Tensor, Tensor | None]


class FFC(nn.Module):
    """LaMa fast Fourier convolution: local/global channel split, reflect-padded convs, spectral global path."""

    def __init__(self, cin: int, cout: int, kernel: int, ratio_in: float, ratio_out: float, stride: int = 1,
                 padding: int = 0) -> None:
        super().__init__()
        in_g, out_g = int(cin * ratio_in), int(cout * ratio_out)
        in_l, out_l = cin - in_g, cout - out_g

        def conv(a: int, b: int) -> nn.Module | None:
            if a == 0 or b == 0:
                return None
            return nn.Conv2d(a, b, kernel, stride, padding, bias=False, padding_mode="reflect")

        self.convl2l = conv(in_l, out_l)
        self.convl2g = conv(in_l, out_g)
        self.convg2l = conv(in_g, out_l)
        self.convg2g = SpectralTransform(in_g, out_g, stride) if in_g and out_g else None
        self.out_l, self.out_g = out_l, out_g

    def forward(self, x: FeaturePair) -> FeaturePair:
        x_l, x_g = x
        out_l = out_g = None
        if self.out_l:
            out_l = self.convl2l(x_l)
            if self.convg2l is not None and x_g is not None:
                out_l = out_l + self.convg2l(x_g)
        if self.out_g:
            out_g = self.convl2g(x_l) if self.convl2g is not None else 0
            if self.convg2g is not None and x_g is not None:
                out_g = out_g + self.convg2g(x_g)
        return out_l, out_g


class FFCBNAct(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, ratio_in: float = 0.0, ratio_out: float = 0.0,
                 stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.ffc = FFC(cin, cout, kernel, ratio_in, ratio_out, stride, padding)
        out_g = int(cout * ratio_out)
        self.bn_l = nn.BatchNorm2d(cout - out_g) if cout - out_g else None
        self.bn_g = nn.BatchNorm2d(out_g) if out_g else None

    def forward(self, x: FeaturePair) -> FeaturePair:
        x_l, x_g = self.ffc(x)
        x_l = F.relu(self.bn_l(x_l)) if self.bn_l is not None else x_l
        x_g = F.relu(self.bn_g(x_g)) if self.bn_g is not None else x_g
        return x_l, x_g


class FFCResBlock(nn.Module):
    def __init__(self, dim: int, ratio: float) -> None:
        super().__init__()
        self.conv1 = FFCBNAct(dim, dim, 3, ratio, ratio, padding=1)
        self.conv2 = FFCBNAct(dim, dim, 3, ratio, ratio, padding=1)

    def forward(self, x: FeaturePair) -> FeaturePair:
        y_l, y_g = self.conv2(self.conv1(x))
        return x[0] + y_l, x[1] + y_g


class ConcatPair(nn.Module):
    def forward(self, x: FeaturePair) -> Tensor:
        return torch.cat([x[0], x[1]], dim=1) if x[1] is not None else x[0]


class PairSequential(nn.Sequential):
    """A Sequential over (local, global) pairs; a pad layer before the first FFC acts on the local part (LaMa
    feeds a plain tensor there). After ``ConcatPair`` the layers see a plain tensor."""

    def forward(self, x: FeaturePair | Tensor) -> FeaturePair | Tensor:  # type: ignore[override]
        for layer in self:
            if isinstance(layer, nn.ReflectionPad2d) and isinstance(x, tuple):
                x = (layer(x[0]), x[1])
            else:
                x = layer(x)
        return x


def _lama_upsampler(widths: list[tuple[int, int]], out_channels: int, blocks: list[nn.Module],
                    final: nn.Module) -> list[nn.Module]:
    layers = blocks + [ConcatPair()]
    for cin, cout in widths:
        layers += [nn.ConvTranspose2d(cin, cout, 3, 2, 1, output_padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
    return layers + [nn.ReflectionPad2d(3), nn.Conv2d(widths[-1][1], out_channels, 7), final]


class TSGLLama(nn.Module):
    """TSGL-LaMa generator (§9). forward(image, edge, gray, holes): image B×3×H×W in [−1, 1], edge/gray
    B×1×H×W, all multiplied by the KNOWN mask; ``holes`` B×1×H×W with 1 = HOLE. H, W multiples of 32.
    Returns the tanh output B×3×H×W."""

    def __init__(self, cfg: LamaConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or LamaConfig()
        self.config = cfg
        r, cap, t = cfg.ratio_global, cfg.max_features, cfg.texture_width
        widths = [min(cap, cfg.ngf * 2**i) for i in range(cfg.n_downsampling + 1)]
        self.model_high = PairSequential(nn.ReflectionPad2d(3), FFCBNAct(3, cfg.ngf, 7))
        for i in range(cfg.n_downsampling):
            last = i == cfg.n_downsampling - 1
            layer = FFCBNAct(widths[i], widths[i + 1], 3, 0.0, r if last else 0.0, stride=2, padding=1)
            setattr(self, f"model_high_{i}", PairSequential(layer))
        self.model_low = PairSequential(nn.ReflectionPad2d(3), FFCBNAct(4, t, 7))
        for i in range(cfg.n_downsampling):
            last = i == cfg.n_downsampling - 1
            setattr(self, f"model_low_{i}", PairSequential(FFCBNAct(t, t, 3, 0.0, r if last else 0.0, 2, 1)))
        options = {"global_norm": cfg.global_norm, "scale": cfg.spade_scale, "positional_var": cfg.positional_var}
        for i in range(cfg.n_downsampling - 1):
            setattr(self, f"h2l_{i}_l", Reconstruction(t, widths[i + 1], t, cfg.spade_hidden, cfg.recon_identity,
                                                       **options))
        t_g = int(t * r)
        s_g = int(widths[-1] * r)
        last = cfg.n_downsampling - 1
        setattr(self, f"h2l_{last}_l", Reconstruction(t - t_g, widths[-1] - s_g, t - t_g, cfg.spade_hidden,
                                                      cfg.recon_identity, **options))
        setattr(self, f"h2l_{last}_g", Reconstruction(t_g, s_g, t_g, cfg.spade_hidden, cfg.recon_identity,
                                                      **options))
        bottleneck = widths[-1]
        ups = [(widths[i], widths[i - 1]) for i in range(cfg.n_downsampling, 0, -1)]
        self.model = PairSequential(*_lama_upsampler(
            ups, 3, [FFCResBlock(bottleneck, r) for _ in range(cfg.n_blocks)], nn.Tanh()))
        self.up_high = PairSequential(*_lama_upsampler(
            ups, 1, [FFCResBlock(bottleneck, r) for _ in range(cfg.aux_blocks)], nn.Sigmoid()))

    def run(self, image: Tensor, edge: Tensor, gray: Tensor, holes: Tensor,
            with_edges: bool = False) -> tuple[Tensor, Tensor | None]:
        n = self.config.n_downsampling
        s: FeaturePair = self.model_high((torch.cat([edge, gray, holes], 1), None))
        structure = []
        for i in range(n):
            s = getattr(self, f"model_high_{i}")(s)
            structure.append(s)
        x: FeaturePair = self.model_low((torch.cat([image, holes], 1), None))
        previous = x[0]
        for i in range(n - 1):
            raw = getattr(self, f"model_low_{i}")((previous, None))[0]
            residual = previous - F.interpolate(raw, scale_factor=2, mode="nearest")
            previous = getattr(self, f"h2l_{i}_l")(raw, residual, structure[i][0])
        local, glob = getattr(self, f"model_low_{n - 1}")((previous, None))
        residual = previous - F.interpolate(torch.cat([local, glob], 1), scale_factor=2, mode="nearest")
        split = local.shape[1]
        local = getattr(self, f"h2l_{n - 1}_l")(local, residual[:, :split], structure[-1][0])
        glob = getattr(self, f"h2l_{n - 1}_g")(glob, residual[:, split:], structure[-1][1])
        out = self.model((local, glob))
        return out, (self.up_high(structure[-1]) if with_edges else None)

    def forward(self, image: Tensor, edge: Tensor, gray: Tensor, holes: Tensor) -> Tensor:
        return self.run(image, edge, gray, holes)[0]


# ------------------------------------------------------------------------------------------------- preprocessing (§1)
def fold_to_uint8(image: Tensor) -> np.ndarray:
    """[QUIRK] ``ToPILImage`` of a normalised tensor: trunc(255·v) wrapped modulo 256. image 3×H×W in [−1, 1]."""
    scaled = torch.trunc(image.detach().float().cpu() * 255).to(torch.int64).remainder(256).to(torch.uint8)
    return scaled.permute(1, 2, 0).numpy()


def to_uint8(image: Tensor) -> np.ndarray:
    """The true 8-bit image of a 3×H×W tensor in [−1, 1] (rounded)."""
    unit = ((image.detach().float().cpu() + 1) / 2).clamp(0, 1)
    return torch.round(unit * 255).to(torch.uint8).permute(1, 2, 0).numpy()


def structure_inputs(rgb_uint8: np.ndarray, sigma: float = 2.0,
                     known: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Grey (scikit-image ``rgb2gray``, float32 [0, 1]) and Canny edges (``feature.canny`` σ, default thresholds,
    float32 {0, 1}). ``known`` (bool H×W) restricts Canny to known pixels, so a hole fill draws no edges."""
    from skimage.color import rgb2gray
    from skimage.feature import canny

    gray = rgb2gray(rgb_uint8)
    if known is not None and not known.all():
        edges = canny(gray, sigma=sigma, mask=known)
    else:
        edges = canny(gray, sigma=sigma)
    return gray.astype(np.float32), edges.astype(np.float32)


def _gaussian_taps(sigma: float) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', [1, bitor(round(5σ), 1)], σ)``."""
    size = int(math.floor(5 * sigma + 0.5)) | 1
    x = np.arange(size) - (size - 1) / 2
    taps = np.exp(-(x**2) / (2 * sigma * sigma))
    taps[taps < np.finfo(float).eps * taps.max()] = 0
    return taps / taps.sum()


def _rtv_weights(x: np.ndarray, sigma: float, sharpness: float) -> tuple[np.ndarray, np.ndarray]:
    """``computeTextureWeights``: 1/(windowed inherent variation · total variation) per forward difference."""
    from scipy.ndimage import convolve1d

    channels = x.shape[2]
    fx = np.zeros_like(x)
    fy = np.zeros_like(x)
    fx[:, :-1] = np.diff(x, axis=1)
    fy[:-1, :] = np.diff(x, axis=0)
    wto = 1.0 / np.maximum(np.sqrt(fx**2 + fy**2).sum(2) / channels, sharpness)
    taps = _gaussian_taps(sigma)
    smooth = convolve1d(convolve1d(x, taps, axis=1, mode="constant"), taps, axis=0, mode="constant")
    gfx = np.zeros_like(x)
    gfy = np.zeros_like(x)
    gfx[:, :-1] = np.diff(smooth, axis=1)
    gfy[:-1, :] = np.diff(smooth, axis=0)
    wx = wto / np.maximum(np.abs(gfx).sum(2) / channels, 0.001)
    wy = wto / np.maximum(np.abs(gfy).sum(2) / channels, 0.001)
    wx[:, -1] = 0
    wy[-1, :] = 0
    return wx, wy


def _rtv_system(wx: np.ndarray, wy: np.ndarray, lam: float) -> tuple[object, np.ndarray]:
    """``I + λ·L_w`` (weighted 4-neighbour graph Laplacian) over pixels in MATLAB's column-major order."""
    from scipy.sparse import coo_matrix

    h, w = wx.shape
    index = np.arange(h)[:, None] + h * np.arange(w)[None, :]
    rows = np.concatenate([index[:, :-1].ravel(), index[:-1, :].ravel()])
    cols = np.concatenate([index[:, 1:].ravel(), index[1:, :].ravel()])
    weights = lam * np.concatenate([wx[:, :-1].ravel(), wy[:-1, :].ravel()])
    diagonal = np.ones(h * w)
    np.add.at(diagonal, rows, weights)
    np.add.at(diagonal, cols, weights)
    matrix = coo_matrix(
        (np.concatenate([-weights, -weights, diagonal]),
         (np.concatenate([rows, cols, np.arange(h * w)]), np.concatenate([cols, rows, np.arange(h * w)]))),
        shape=(h * w, h * w),
    ).tocsr()
    return matrix, index


def _modified_incomplete_cholesky(diagonal: np.ndarray, down: np.ndarray, right: np.ndarray) -> np.ndarray:
    """MATLAB ``ichol(A, struct('michol', 'on'))`` for a 5-point matrix in column-major order: returns the squared
    pivots d². ``down``/``right`` are the couplings of pixel (i, k) to (i+1, k) / (i, k+1). Fill-in that IC(0)
    drops is subtracted from the diagonal of both rows it touches (row sums preserved). Runs along anti-diagonals,
    whose pixels depend only on their upper and left neighbours."""
    h, w = diagonal.shape
    pivots = np.zeros_like(diagonal)
    for step in range(h + w - 1):
        i = np.arange(max(0, step - w + 1), min(h, step + 1))
        k = step - i
        d = diagonal[i, k].copy()
        up = i > 0
        iu, ku = i[up] - 1, k[up]
        d[up] -= (down[iu, ku] ** 2 + down[iu, ku] * right[iu, ku]) / pivots[iu, ku]
        left = k > 0
        il, kl = i[left], k[left] - 1
        d[left] -= (right[il, kl] ** 2 + right[il, kl] * down[il, kl]) / pivots[il, kl]
        pivots[i, k] = d
    return pivots


def _rtv_solve(target: np.ndarray, wx: np.ndarray, wy: np.ndarray, lam: float, solver: str = "pcg") -> np.ndarray:
    """Solve (I + λ·L_w) s = target per channel, as ``tsmooth``'s ``solveLinearEquation``.

    ``pcg``: MATLAB's branch, preconditioned conjugate gradients from 0 with a modified incomplete Cholesky
    preconditioner, stopped at relative residual 0.1 (max 100 iterations). ``direct``: exact sparse LU solve.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import splu

    h, w, channels = target.shape
    matrix, index = _rtv_system(wx, wy, lam)
    order = index.ravel()
    rhs = np.zeros((h * w, channels))
    rhs[order] = target.reshape(h * w, channels)
    if solver == "direct":
        solution = splu(matrix.tocsc()).solve(rhs)
        return solution[order].reshape(h, w, channels)
    down, right = -lam * wy, -lam * wx
    pivots = np.sqrt(_modified_incomplete_cholesky(np.asarray(matrix.diagonal())[index], down, right))
    below = (down[:-1, :] / pivots[:-1, :]).ravel()
    beside = (right[:, :-1] / pivots[:, :-1]).ravel()
    factor = coo_matrix(
        (np.concatenate([pivots.ravel(), below, beside]),
         (np.concatenate([order, index[1:, :].ravel(), index[:, 1:].ravel()]),
          np.concatenate([order, index[:-1, :].ravel(), index[:, :-1].ravel()]))),
        shape=(h * w, h * w),
    ).tocsc()
    triangular = splu(factor, permc_spec="NATURAL", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    solution = np.zeros_like(rhs)
    for c in range(channels):
        b = rhs[:, c]
        x, r = np.zeros_like(b), b.copy()
        limit = 0.1 * np.linalg.norm(b)
        rho, p = 1.0, np.zeros_like(b)
        for iteration in range(100):
            if np.linalg.norm(r) <= limit:
                break
            z = triangular.solve(triangular.solve(r), trans="T")
            rho_previous, rho = rho, float(r @ z)
            p = z if iteration == 0 else z + (rho / rho_previous) * p
            q = matrix @ p
            alpha = rho / float(p @ q)
            x += alpha * p
            r -= alpha * q
        solution[:, c] = x
    return solution[order].reshape(h, w, channels)


def rtv_smooth(image: np.ndarray, lam: float = 0.015, sigma: float = 3.0, sharpness: float = 0.001,
               iterations: int = 3, solver: str = "pcg") -> np.ndarray:
    """Relative-total-variation smoothing (Xu et al. 2012, ``tsmooth``). image H×W×C float in [0, 1] -> same.

    Each pass recomputes the texture weights from the current estimate with σ halved (floor 0.5) and solves
    ``(I + λ/2·L_w) s = image`` (see :func:`_rtv_solve` for ``solver``).
    """
    target = np.asarray(image, dtype=np.float64)
    estimate = target
    for _ in range(iterations):
        wx, wy = _rtv_weights(estimate, sigma, sharpness)
        estimate = _rtv_solve(target, wx, wy, lam / 2.0, solver)
        sigma = max(sigma / 2.0, 0.5)
    return estimate


def _normalise_uint8(pixels: np.ndarray) -> Tensor:
    """``ToTensor`` + ``Normalize(0.5, 0.5)``: H×W×3 uint8 -> 3×H×W float32 in [−1, 1]."""
    unit = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1).float().div(255)
    return (unit - 0.5) / 0.5


def prepare_official_inputs(rgb_uint8: np.ndarray, rtv_uint8: np.ndarray, cfg: Config | None = None) -> dict:
    """The released 256 data pipeline for one 256×256 image: ``image``, ``texture`` (1×3×H×W, [−1, 1]), ``gray``,
    ``edge`` (1×1×H×W) and the ``folded`` uint8 image grey/Canny were computed from (if folding)."""
    cfg = cfg or Config()
    image = _normalise_uint8(rgb_uint8)
    source = fold_to_uint8(image) if cfg.fold_structure_inputs else rgb_uint8
    gray, edge = structure_inputs(source, cfg.canny_sigma)
    return {
        "image": image[None],
        "texture": _normalise_uint8(rtv_uint8)[None],
        "gray": torch.from_numpy(gray)[None, None],
        "edge": torch.from_numpy(edge)[None, None],
        "folded": source,
    }


def _structure_batch(image: Tensor, known: Tensor, fold: bool, sigma: float) -> tuple[Tensor, Tensor]:
    grays, edges = [], []
    for img, keep in zip(image, known):
        pixels = fold_to_uint8(img) if fold else to_uint8(img)
        gray, edge = structure_inputs(pixels, sigma, known=keep[0].detach().cpu().numpy() > 0.5)
        grays.append(torch.from_numpy(gray))
        edges.append(torch.from_numpy(edge))
    device = image.device
    return torch.stack(grays)[:, None].to(device), torch.stack(edges)[:, None].to(device)


def _texture_batch(image: Tensor, cfg: Config) -> Tensor:
    out = []
    for img in image:
        unit = ((img.detach().float().cpu() + 1) / 2).clamp(0, 1).permute(1, 2, 0).numpy()
        smooth = rtv_smooth(unit, cfg.rtv_lambda, cfg.rtv_sigma, cfg.rtv_sharpness, cfg.rtv_iterations,
                            cfg.rtv_solver)
        stored = np.round(np.clip(smooth, 0, 1) * 255).astype(np.uint8)  # written as an 8-bit file offline
        out.append(_normalise_uint8(stored))
    return torch.stack(out).to(image.device)


# ------------------------------------------------------------------------------------------------- contract
def build(cfg: Config | LamaConfig | None = None) -> nn.Module:
    """The network for ``cfg`` (``Config`` → 256 TSGL-MEDFE, ``LamaConfig`` → 512 TSGL-LaMa)."""
    if isinstance(cfg, LamaConfig):
        return TSGLLama(cfg)
    return TSGL(cfg or Config())


def config_from_fixture(fixture_json: dict) -> Config:
    """Config of a parity fixture (config.json parsed): its ``config`` block; other fields keep their defaults."""
    values = dict(fixture_json.get("config", fixture_json))
    if "depths" in values:
        values["depths"] = tuple(values["depths"])
    known = set(Config.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown TSGL config keys in fixture: {unknown}")
    return Config(**values)


def parity_forward(net: nn.Module, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
    """Official test call ``G(I·M, E·M, T·M, G·M, M)`` (M = 1 known) plus the training script's edge output."""
    image, mask = inputs["image"], inputs["mask"]
    out, edges = net.run(image * mask, inputs["edge"] * mask, inputs["texture"] * mask, inputs["gray"] * mask, mask,
                         with_edges=True)
    return {
        "output_raw": out,
        "output_composite": image * mask + out * (1 - mask),
        "aux_edge_prediction_trainscript": edges,
    }


def remap_official_state_dict(sd: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict]:
    """Official ``G_<n>.pth`` (``module.`` already stripped) -> ours. The names are the official ones, so this
    only refuses discriminator checkpoints (``D_<n>.pth``), which would otherwise fail with a long key list."""
    if any(key.startswith(("encoder.", "classifier.")) for key in sd) and not any(k.startswith("en_") for k in sd):
        raise ValueError("this is a TSGL discriminator checkpoint (D_<n>.pth); import the generator G_<n>.pth")
    return dict(sd), {"dropped": [], "renamed": {}}


def predict(net: nn.Module, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
    """image B×3×H×W in [−1, 1] with holes filled (0); mask in the card's polarity (tsgl: 1 = known;
    tsgl_512: 1 = hole). Grey, Canny edges and (256 model) the RTV texture image are computed here."""
    cfg = net.config
    if isinstance(net, TSGLLama):
        holes = mask
        known = 1 - holes
        gray, edge = _structure_batch(image, known, cfg.fold_structure_inputs, cfg.canny_sigma)
        return {"image": net(image * known, edge * known, gray * known, holes)}
    known = mask
    gray, edge = _structure_batch(image, known, cfg.fold_structure_inputs, cfg.canny_sigma)
    texture = _texture_batch(image, cfg)
    return {"image": net(image * known, edge * known, texture * known, gray * known, known)}


def training_forward(
    net: nn.Module, image01: Tensor, hole: Tensor, texture01: Tensor | None = None
) -> dict[str, Tensor]:
    """TSGL's training call: grey and Canny computed from the **full** image (folded as the release does when
    ``fold_structure_inputs``), all inputs multiplied by the known mask, with the auxiliary edge prediction.

    Returns the raw output in [−1, 1], the edge prediction and its target (the full Canny map). ``texture01`` is the
    RTV image in [0, 1]; without it the RTV smoothing runs here (seconds per 256² image). The 512 (LaMa host)
    variant has no texture branch or edge head and trains through :func:`predict` (mask 1 = hole, holes 0).
    """
    if isinstance(net, TSGLLama):
        x = image01 * 2 - 1
        return predict(net, x * (1 - hole), hole)
    cfg = net.config
    x = image01 * 2 - 1
    known = 1 - hole
    grays, edges = [], []
    for img in x:
        pixels = fold_to_uint8(img) if cfg.fold_structure_inputs else to_uint8(img)
        gray, edge = structure_inputs(pixels, cfg.canny_sigma)
        grays.append(torch.from_numpy(gray))
        edges.append(torch.from_numpy(edge))
    gray = torch.stack(grays)[:, None].to(x.device)
    edge = torch.stack(edges)[:, None].to(x.device)
    if texture01 is None:
        smooth = [rtv_smooth(i.detach().float().cpu().permute(1, 2, 0).numpy(), cfg.rtv_lambda, cfg.rtv_sigma,
                             cfg.rtv_sharpness, cfg.rtv_iterations) for i in image01]
        texture01 = torch.stack([torch.from_numpy(np.round(np.clip(s, 0, 1) * 255) / 255).permute(2, 0, 1).float()
                                 for s in smooth]).to(x.device)
    texture = texture01.to(x.device) * 2 - 1
    out, edge_pred = net.run(x * known, edge * known, texture * known, gray * known, known, with_edges=True)
    return {"image": out, "edge": edge_pred, "edge_target": edge}


# Training (both variants): 5·L1 on the hole + 1·L1 elsewhere, the same on the auxiliary edge map, hinge GAN with
# weight 0.1 on the composite against a 5×5 spectral-norm discriminator; Adam (0.5, 0.99) 5e-4, D 1e-4, constant.
TRAINING = TrainingSpec(
    loss=LossConfig(l1=1.0, l1_mode="hole_valid", hole_weight=5.0, perceptual=0.0, style=0.0, adversarial=0.1,
                    gan="hinge", adv_input="composite", edge=1.0),
    optim=OptimConfig(lr=5e-4, betas=(0.5, 0.99), d_lr=1e-4),
    discriminator=TSGLDiscriminator,
    forward=training_forward,
)
