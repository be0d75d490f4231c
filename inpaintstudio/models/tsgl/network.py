"""TSGL: texture reconstructed from structure under global and local views ("Thinking inside the Convolution").

Paper: Liu, Wang, Qian, Rui, Wang, "Thinking inside the Convolution for Image Inpainting: Reconstructing Texture via
Structure under Global and Local Side", arXiv 2602.03013. Official code: github.com/htyjers/ConvInpaint-TSGL
(commit e9f6438, ``TSGL_MEDFE/`` for this 256 model; ``TSGL_Lama/`` for the 512 model, which lives in
:mod:`inpaintstudio.models.tsgl_512.network`). Licences: the repository's LICENSE is Apache-2.0; its ``spade.py`` files
carry NVIDIA's CC BY-NC-SA 4.0 header (non-commercial); the weights (a Baidu Netdisk share) are published without a
stated licence. Re-implemented here; no code copied.

:class:`TSGL` (``tsgl``, 256×256, the paper's "Ours"): a partial-conv structure branch on (Canny edges, grey, mask)
and a MAT-style texture branch (partial-conv head + four mask-aware window-transformer stages); after each texture
down-sampling a reconstruction block re-normalises the texture globally (BatchNorm) and per position, and
de-normalises it with the structure map and the local residual structure (what the down-sampling removed). The
reconstructed maps feed MEDFE's cross-layer balance module and U-Net decoder. An auxiliary structure decoder
(training only) is kept so that checkpoints load strictly. Mask: 1 = KNOWN pixel; image and texture in [−1, 1].

Differences between paper and released code, and the switch that selects each (defaults = released code, so that
the published checkpoints behave as trained):

* SPADE de-normalisation ``x̂·(1+γ)+β`` (code) vs ``γ·x̂+β`` (paper Eq. 6): ``spade_scale``.
* Global statistics are BatchNorm running statistics (code) vs per-sample instance statistics (paper Eq. 7):
  ``global_norm``.
* Positional normalisation uses the unbiased channel variance (code): ``positional_var``.
* Last transformer stage has 6 blocks (code, since 2024-10-11) vs 2 (paper): ``depths``.
* Attention: the −100 key penalty is added after the 1/√d scaling, with L2-normalised q/k inputs (code form only).
* Structure inputs (grey, Canny) are computed from the brightness-folded uint8 image that ``ToPILImage`` makes of the
  already-normalised tensor [QUIRK]: ``fold_structure_inputs``.
* Balance module [QUIRKS]: the internal 32×32 hole mask is always empty (threshold "> 1" on averages):
  ``clb_mask``; the partial-conv normalisers use the frozen *random* ``mask_conv`` weights left by the weight
  initialiser: ``clb_mask_conv``; the range-similarity softmax runs over the 1024 positions rather than the 9
  neighbours: ``clb_range_softmax_dim``; the equalised maps are re-interpreted in memory order (B,1024,C) →
  (B,C,32,32) instead of transposed: ``clb_raw_reshape``.
* Texture image: the code's README uses RTV smoothing (Xu et al. 2012, ``tsmooth(img, 0.015, 3, 0.001, 3)``), the
  paper cites L0 smoothing. RTV is implemented in :mod:`inpaintstudio.models.layers.rtv`, including MATLAB's inexact
  solve (PCG to relative residual 0.1 with a modified incomplete Cholesky preconditioner): ``rtv_solver``
  ("direct" = exact).
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
from inpaintstudio.models.layers.partial_conv import PartialConv2d
from inpaintstudio.models.layers.rtv import rtv_smooth
from inpaintstudio.models.layers.spade import SPADE, Reconstruction
from inpaintstudio.trainspec import LossConfig, OptimConfig, TrainingSpec

__all__ = [
    "Config",
    "TSGL",
    "SPADE",
    "Reconstruction",
    "build",
    "config_from_fixture",
    "parity_forward",
    "remap_official_state_dict",
    "predict",
    "fold_to_uint8",
    "to_uint8",
    "structure_inputs",
    "rtv_smooth",
    "prepare_official_inputs",
]


# -------------------------------------------------------------------------------------------------------------- configs
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


# --------------------------------------------------------------------------------------------------------- partial conv
class StructurePartialConv(nn.Module):
    """Partial conv (input multiplied by the mask, window/count renormalisation) + optional BatchNorm + activation,
    for the structure branch and the aux decoder. The mask travels as B×1×H×W (the official multi-channel mask has
    identical channels, so the counts are the same)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, bn: bool = True, act: str = "relu") -> None:
        super().__init__()
        self.conv = PartialConv2d(cin, cout, kernel, stride, multiply_input=True)
        self.bn = nn.BatchNorm2d(cout) if bn else None
        self.act = nn.ReLU() if act == "relu" else nn.LeakyReLU(0.2)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        y, new_mask = self.conv(x, mask)
        if self.bn is not None:
            y = self.bn(y)
        return self.act(y), new_mask[:, :1]


# ----------------------------------------------------------------------------------------------------------- MAT layers
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
    """Mask-aware window attention: q, k from L2-normalised tokens, v from raw tokens."""

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
    """MAT stage: patch merging (÷2), ``depth`` blocks alternating shift 0 / window/2, partial conv, stage residual."""

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


# --------------------------------------------------------------------------------------------- local residual structure
def local_residual(previous: Tensor, current: Tensor) -> Tensor:
    """``R_k = bilinear_ac(T_{k-1} − up2_nearest(T_k^raw))`` at the resolution of ``T_k``."""
    diff = previous - F.interpolate(current, scale_factor=2, mode="nearest")
    return F.interpolate(diff, size=current.shape[2:], mode="bilinear", align_corners=True)


# ------------------------------------------------------------------------------------------------------- balance module
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
    """MEDFE multi-scale partial-conv fill + feature equalisation over six encoder maps."""

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


# ------------------------------------------------------------------------------------------------------------- decoders
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


# ------------------------------------------------------------------------------------------------------------ generator
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


# -------------------------------------------------------------------------------------------------------- preprocessing
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


# ------------------------------------------------------------------------------------------------------------- contract
def build(cfg: Config | None = None) -> TSGL:
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
    """image B×3×256×256 in [−1, 1] with holes filled (0); mask 1 = KNOWN. Grey, Canny edges and the RTV texture
    image are computed here."""
    cfg = net.config
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
    RTV image in [0, 1]; without it the RTV smoothing runs here (seconds per 256² image).
    """
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


# Training: 5·L1 on the hole + 1·L1 elsewhere, the same on the auxiliary edge map, hinge GAN with
# weight 0.1 on the composite against a 5×5 spectral-norm discriminator; Adam (0.5, 0.99) 5e-4, D 1e-4, constant.
TRAINING = TrainingSpec(
    loss=LossConfig(l1=1.0, l1_mode="hole_valid", hole_weight=5.0, perceptual=0.0, style=0.0, adversarial=0.1,
                    gan="hinge", adv_input="composite", edge=1.0),
    optim=OptimConfig(lr=5e-4, betas=(0.5, 0.99), d_lr=1e-4),
    discriminator=TSGLDiscriminator,
    forward=training_forward,
)
