"""INCLG: multi-task inpainting (image + 68 face landmarks) for non-cleft lip generation.

Paper: S. Chen, A. Atapour-Abarghouei, J. Kerby, E. S. L. Ho, D. C. G. Sainsbury, S. Butterworth,
H. P. H. Shum, "A Feasibility Study on Image Inpainting for Non-cleft Lip Generation from Patients with
Cleft Lip", IEEE BHI 2022 (arXiv 2208.01149); "INCLG: Inpainting for Non-Cleft Lip Generation with a
Multi-Task Image Processing Network", Software Impacts 17 (2023) 100517; PhD thesis of S. Chen
(Durham, 2025), chapter 3.
Official code: https://github.com/ChrisChen1023/INCLG (commit 0cbf1ca3bb161eb486b790293145cc42a34dd398;
network identical to ChrisChen1023/NCLG-MT d1699f0a), built on LaFIn (YaN9-Y/lafin), EdgeConnect and
Pluralistic Image Completion. Licence of the release: see the repository (the card says what is known).
Documentation: docs/models/inclg.md.

Tensor contract of :class:`InpaintGenerator`: ``forward(x, mask, mask_half, mask_quarter)`` with
``x = I·(1−M) + M`` (B×3×256×256 RGB in [0, 1], holes white), ``mask`` B×1×256×256 with 1 = hole, and the
bilinear (align_corners=True) 128² and 64² versions of the mask. It returns an :class:`INCLGOutput` with
the raw image ``(tanh(z)+1)/2`` (not composited), the landmarks B×136 (x0, y0, x1, y1, … as fractions of
the side, no activation) and the integer 128×128 map cells the landmarks were rendered at.

Module and parameter names follow the official ``InpaintGenerator`` (including its spellings
``fushion*`` and ``conv_afterarr_node3``), so official state_dicts load with ``strict=True``:
the spectral-normalised convolutions of the attention block keep PyTorch's old ``weight_orig /
weight_u / weight_v`` form (``torch.nn.utils.spectral_norm``), and the residual block of the attention
layer registers its convolutions twice (``conv1``/``model.1``, ``conv2``/``model.3``,
``bypass``/``shortcut.0``) exactly as the official code does, so the aliased keys exist and share
storage. The unused ``before_share1`` is kept (switch ``keep_unused_before_share1``) so that the 92-key
official state_dict loads strictly.

Differences between thesis and released code (reference = code; thesis variant = switch):
- Hole fill of the generator input: white (code) vs zero (thesis eq. 3.1) -> ``Config.hole_fill``
  (1.0 | 0.0); :func:`predict` re-applies it, so a zero-fill variant needs no change elsewhere.
- Landmark map fed to F2: the code writes every point into all 68 channels ("replicated"); the thesis
  reads as one channel per landmark -> ``Config.landmark_map_mode`` ("replicated" | "one_hot_per_point").
- Number of down-samplings: thesis "three times", code two (bottleneck 64×64). Only the code is
  implemented (the official weights fix it).
- Whether the released checkpoint was trained with the F2 landmark fusion: open (the first upload lacked
  the call) -> ``Config.landmark_fusion`` (True | False; False feeds F1's output straight to D2).
- Thesis ablations (Table 3.4): ``Config.gated=False`` uses plain (de)convolutions with the same in/out
  widths ("Base+Lmk"); additionally ``Config.landmark_branch=False`` removes P1–P4, FC and F2
  ("Baseline"; no landmarks are returned). Neither variant has official weights.
- Loss, discriminator and training differences (style weight, GAN type, landmark-loss form, VGG
  layers) belong to training and are not part of this file.

Other implementation notes: the landmark map is built from detached integer cells (no gradient flows
through it, as in the official code), allocated on the input's device (the official ``.cuda()`` is not
copied); GAP is ``x.mean(3).mean(2)`` as in the official code. The network only runs at exactly
2·``landmark_map_size`` (256) pixels: the map is hard-wired to 128×128 and concatenated with the
128×128 decoder feature.

The thesis: S. Chen, PhD thesis, Durham University, 2025 (INCLG, HINT, M×T and SEM-Net are its chapters 3–5).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from typing import Any, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inpaintstudio.models.layers.discriminators import PatchDiscriminator
from inpaintstudio.trainspec import LossConfig, OptimConfig, TrainingSpec

__all__ = [
    "Config",
    "INCLGOutput",
    "InpaintGenerator",
    "build",
    "config_from_fixture",
    "parity_forward",
    "predict",
    "remap_official_state_dict",
    "render_landmark_map",
    "landmark_cells",
    "downscaled_masks",
    "ALIAS_PREFIXES",
]


@dataclass(frozen=True)
class Config:
    """INCLG generator configuration; defaults = the official ``InpaintGenerator()``.

    Args:
        ngf: base width (official 64): encoder ngf/2ngf/4ngf, bottleneck 4ngf.
        lmk_hidden: P1 expansion width (official 1280).
        residual_blocks: dilated residual blocks in the middle (official 7).
        points_num: number of landmarks (68, iBUG order).
        landmark_map_size: side of the rendered landmark map (128 = input side / 2).
        landmark_scale: map cell = ``landmark_scale`` · prediction (128).
        landmark_map_mode: ``"replicated"`` (code: all points in every channel) or
            ``"one_hot_per_point"`` (thesis reading: channel p holds point p only).
        landmark_fusion: inject the landmark map through F2 (code as released). False = first upload.
        gated: gated convolutions in E1–E3, D1, D2 (code). False = plain convolutions (thesis ablation).
        landmark_branch: landmark head P1–P4/FC and F2 (code). False = thesis "Baseline".
        keep_unused_before_share1: register the official, never-used ``before_share1`` (strict loading).
        hole_fill: value written into holes before the network (code 1.0, thesis 0.0).
    """

    ngf: int = 64
    lmk_hidden: int = 1280
    residual_blocks: int = 7
    points_num: int = 68
    landmark_map_size: int = 128
    landmark_scale: int = 128
    landmark_map_mode: Literal["replicated", "one_hot_per_point"] = "replicated"
    landmark_fusion: bool = True
    gated: bool = True
    landmark_branch: bool = True
    keep_unused_before_share1: bool = True
    hole_fill: float = 1.0

    @property
    def input_size(self) -> int:
        return 2 * self.landmark_map_size


class INCLGOutput(NamedTuple):
    """Generator outputs: raw image B×3×H×W in [0,1], landmarks B×2P (fractions), cells B×P×2 (row, col)."""

    image: Tensor
    landmarks: Tensor | None
    cells_yx: Tensor | None


# ----------------------------------------------------------------------------------------- layers
class GateConv(nn.Module):
    """Gated (transposed) convolution: one conv with 2·C_out channels; feature half · sigmoid(gate half)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
        transpose: bool = False,
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        conv = nn.ConvTranspose2d if transpose else nn.Conv2d
        self.gate_conv = conv(in_channels, out_channels * 2, kernel_size=kernel_size, stride=stride, padding=padding)

    def forward(self, x: Tensor) -> Tensor:
        feature, gate = torch.split(self.gate_conv(x), self.out_channels, dim=1)
        return feature * torch.sigmoid(gate)


class PlainConv(nn.Module):
    """The ablation's ungated (transposed) convolution with the same in/out widths as :class:`GateConv`."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
        transpose: bool = False,
    ) -> None:
        super().__init__()
        conv = nn.ConvTranspose2d if transpose else nn.Conv2d
        self.conv = conv(in_channels, out_channels, kernel_size=kernel_size, stride=stride, padding=padding)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


def _instance_norm(channels: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, track_running_stats=False)


class ResnetBlock(nn.Module):
    """Dilated residual block: x + IN(conv3(pad1(ReLU(IN(conv3_dil(pad_dil(x))))))), both convs with bias."""

    def __init__(self, dim: int, dilation: int = 2) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(dilation),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, dilation=dilation),
            _instance_norm(dim),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, dilation=1),
            _instance_norm(dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


class AttentionResBlock(nn.Module):
    """Pre-activation residual block R of the attention layer (no normalisation, spectral norm).

    The official class registers ``conv1``, ``conv2`` and ``bypass`` and then again inside
    ``model`` (indices 1, 3) and ``shortcut`` (index 0); the same modules are reused here so the
    aliased state_dict keys exist and share storage.
    """

    def __init__(self, input_nc: int, output_nc: int, hidden_nc: int) -> None:
        super().__init__()
        spectral = nn.utils.spectral_norm
        self.conv1 = spectral(nn.Conv2d(input_nc, hidden_nc, kernel_size=3, stride=1, padding=1))
        self.conv2 = spectral(nn.Conv2d(hidden_nc, output_nc, kernel_size=3, stride=1, padding=1))
        self.bypass = spectral(nn.Conv2d(input_nc, output_nc, kernel_size=1, stride=1, padding=0))
        nonlinearity = nn.LeakyReLU(0.01)
        self.model = nn.Sequential(nonlinearity, self.conv1, nonlinearity, self.conv2)
        self.shortcut = nn.Sequential(self.bypass)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x) + self.shortcut(x)


class ShortLongAttention(nn.Module):
    """Short+long attention (PIC ``Auto_Attn``): self-attention on x, context copied from ``pre`` in holes.

    Keys are the queries; values are x (short) and ``pre`` (long). ``gamma`` and ``alpha`` start at 0.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.query_conv = nn.Conv2d(channels, channels // 4, kernel_size=1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.alpha = nn.Parameter(torch.zeros(1))
        self.model = AttentionResBlock(channels * 2, channels, channels)

    def forward(self, x: Tensor, pre: Tensor, mask: Tensor) -> Tensor:
        b, c, h, w = x.shape
        query = self.query_conv(x).view(b, -1, h * w)
        energy = torch.bmm(query.permute(0, 2, 1), query)
        attention = torch.softmax(energy, dim=-1)
        out = torch.bmm(x.view(b, c, h * w), attention.permute(0, 2, 1)).view(b, c, h, w)
        out = self.gamma * out + x
        context = torch.bmm(pre.view(b, -1, h * w), attention.permute(0, 2, 1)).view(b, -1, h, w)
        context = self.alpha * mask * context + (1 - mask) * pre
        return self.model(torch.cat([out, context], dim=1))


def _gap(x: Tensor) -> Tensor:
    """Global average pool as the official code writes it (mean over W, then H)."""
    return x.mean(3).mean(2)


# -------------------------------------------------------------------------------- landmark map
def landmark_cells(landmarks: Tensor, points_num: int, scale: float, map_size: int) -> Tensor:
    """Integer map cells (row, col) of predicted landmarks: ·scale, clamp to [0, size−1], truncate."""
    xy = landmarks.detach().reshape(-1, points_num, 2) * scale
    top = float(map_size - 1)
    xy = torch.where(xy >= top, torch.full_like(xy, top), xy)
    xy = torch.where(xy < 0, torch.zeros_like(xy), xy)
    xy = xy.int().long()
    return xy.flip(-1)


def render_landmark_map(
    cells_yx: Tensor, map_size: int, mode: Literal["replicated", "one_hot_per_point"] = "replicated",
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """The binary B×P×S×S landmark map fed to F2 (no gradient).

    ``replicated``: every channel holds all P points (official code). ``one_hot_per_point``: channel p
    holds point p only (thesis reading of eq. 3.6).
    """
    b, p, _ = cells_yx.shape
    flat = cells_yx[..., 0] * map_size + cells_yx[..., 1]  # B×P
    out = torch.zeros(b, p, map_size * map_size, dtype=dtype, device=cells_yx.device)
    if mode == "replicated":
        out.scatter_(2, flat[:, None, :].expand(b, p, p), 1.0)
    elif mode == "one_hot_per_point":
        out.scatter_(2, flat[:, :, None], 1.0)
    else:
        raise ValueError(f"landmark_map_mode must be 'replicated' or 'one_hot_per_point', got {mode!r}")
    return out.view(b, p, map_size, map_size)


def downscaled_masks(mask: Tensor, map_size: int) -> tuple[Tensor, Tensor]:
    """Bilinear (align_corners=True) half and quarter masks, soft at hole borders (not re-binarised)."""
    half = F.interpolate(mask, size=(map_size, map_size), mode="bilinear", align_corners=True)
    quarter = F.interpolate(mask, size=(map_size // 2, map_size // 2), mode="bilinear", align_corners=True)
    return half, quarter


# ------------------------------------------------------------------------------------- network
class InpaintGenerator(nn.Module):
    """The INCLG generator (official ``InpaintGenerator``), configurable widths and thesis switches."""

    def __init__(self, cfg: Config | None = None) -> None:
        super().__init__()
        cfg = cfg or Config()
        self.cfg = cfg
        n1, n2, n4 = cfg.ngf, cfg.ngf * 2, cfg.ngf * 4
        conv = GateConv if cfg.gated else PlainConv
        self.landmark_gamma = nn.Parameter(torch.zeros(1)) if cfg.landmark_branch else None
        self.encoder1 = nn.Sequential(nn.ReflectionPad2d(3), conv(3, n1, 7, 1, 0), _instance_norm(n1), nn.ReLU(True))
        self.encoder2 = nn.Sequential(conv(n1, n2, 4, 2, 1), _instance_norm(n2), nn.ReLU(True))
        self.encoder3 = nn.Sequential(conv(n2, n4, 4, 2, 1), _instance_norm(n4), nn.ReLU(True))
        self.fushion1 = nn.Sequential(nn.Conv2d(2 * n2, n4, 1), _instance_norm(n4), nn.ReLU(True))
        fuse_lmk = cfg.landmark_branch and cfg.landmark_fusion
        self.fushion1_1 = (
            nn.Sequential(nn.Conv2d(n4 + cfg.points_num, n4, 1), _instance_norm(n4), nn.ReLU(True))
            if fuse_lmk else None
        )
        self.fushion2 = nn.Sequential(nn.Conv2d(2 * n1, n2, 1), _instance_norm(n2), nn.ReLU(True))
        self.decoder1 = nn.Sequential(conv(n4, n2, 4, 2, 1, transpose=True), _instance_norm(n2), nn.ReLU(True))
        self.decoder2 = nn.Sequential(conv(n4, n1, 4, 2, 1, transpose=True), _instance_norm(n1), nn.ReLU(True))
        self.decoder3 = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(n2, 3, kernel_size=7, padding=0))
        self.middle = nn.Sequential(*[ResnetBlock(n4, 2) for _ in range(cfg.residual_blocks)])
        self.auto_attn = ShortLongAttention(n4)
        if cfg.landmark_branch:
            self.prelu = nn.PReLU()
            self.fc_landmark = nn.Linear(n4, cfg.points_num * 2)
            self.conv_afteratt_first = nn.Sequential(
                nn.Conv2d(n4, cfg.lmk_hidden, 1, bias=False), nn.BatchNorm2d(cfg.lmk_hidden), nn.ReLU6(True)
            )
            self.conv_afteratt_node1 = nn.Conv2d(n4, n1, 1)
            self.conv_afteratt_node2 = nn.Conv2d(cfg.lmk_hidden, n1, 1)
            self.conv_afterarr_node3 = nn.Conv2d(cfg.lmk_hidden, n2, 1)
        if cfg.keep_unused_before_share1:
            # Constructed by the official code and never used in forward; kept for strict loading.
            self.before_share1 = nn.Sequential(nn.ConvTranspose2d(n4, n2, kernel_size=4, stride=2, padding=1))
        self.init_weights()

    def init_weights(self, gain: float = 0.02) -> None:
        """Official (EdgeConnect) initialisation: conv/linear N(0, gain), bias 0; BN weight N(1, gain)."""
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                weight = module.weight_orig if hasattr(module, "weight_orig") else module.weight
                nn.init.normal_(weight.data, 0.0, gain)
                if module.bias is not None:
                    nn.init.zeros_(module.bias.data)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.normal_(module.weight.data, 1.0, gain)
                nn.init.zeros_(module.bias.data)

    def _landmark_features(self, shared: Tensor) -> Tensor:
        expanded = self.conv_afteratt_first(shared)
        node1 = _gap(self.conv_afteratt_node1(shared))
        node2 = _gap(self.conv_afteratt_node2(expanded))
        node3 = self.prelu(_gap(self.conv_afterarr_node3(expanded)))
        return torch.cat([node1, node2, node3], dim=1)

    def forward(self, x: Tensor, mask: Tensor, mask_half: Tensor, mask_quarter: Tensor) -> INCLGOutput:
        cfg = self.cfg
        size = cfg.input_size
        if x.shape[-2:] != (size, size):
            raise ValueError(f"INCLG runs only at {size}×{size} (landmark map {cfg.landmark_map_size}²), got "
                             f"{tuple(x.shape[-2:])}")
        f_e1 = self.encoder1(x)
        f_e2 = self.encoder2(f_e1)
        f_e3 = self.encoder3(f_e2)
        shared = self.auto_attn(self.middle(f_e3), f_e3, mask_quarter)
        fused = self.fushion1(torch.cat([f_e2 * (1 - mask_half), self.decoder1(shared)], dim=1))
        landmarks = cells = None
        if cfg.landmark_branch:
            mixed = self._landmark_features(shared) + self.landmark_gamma * _gap(fused)
            landmarks = self.fc_landmark(mixed)
            cells = landmark_cells(landmarks, cfg.points_num, cfg.landmark_scale, cfg.landmark_map_size)
            if self.fushion1_1 is not None:
                lmk_map = render_landmark_map(cells, cfg.landmark_map_size, cfg.landmark_map_mode, fused.dtype)
                fused = self.fushion1_1(torch.cat([lmk_map, fused], dim=1))
        out = self.decoder2(fused)
        out = self.fushion2(torch.cat([f_e1 * (1 - mask), out], dim=1))
        image = (torch.tanh(self.decoder3(out)) + 1) / 2
        return INCLGOutput(image, landmarks, cells)


# ------------------------------------------------------------------------------ module interface
def build(cfg: Config | None = None) -> InpaintGenerator:
    """The INCLG generator for ``cfg`` (defaults = official); works under ``torch.device("meta")``."""
    return InpaintGenerator(cfg or Config())


def config_from_fixture(fixture_json: dict[str, Any]) -> Config:
    """A :class:`Config` from a parity fixture's parsed ``config.json`` (its ``config`` block)."""
    known = {f.name for f in fields(Config)}
    values = fixture_json.get("config", fixture_json)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"INCLG fixture config has unknown keys: {unknown}")
    return Config(**values)


# Spectral-norm convolutions registered twice by the official residual block: alias -> canonical.
ALIAS_PREFIXES: dict[str, str] = {
    "auto_attn.model.model.1.": "auto_attn.model.conv1.",
    "auto_attn.model.model.3.": "auto_attn.model.conv2.",
    "auto_attn.model.shortcut.0.": "auto_attn.model.bypass.",
}


def remap_official_state_dict(sd: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Official generator state_dict -> ours. Names are identical; only the aliased keys need care.

    The module registers the official aliasing, so both spellings of each spectral-norm convolution
    are part of our state_dict. A checkpoint that carries only one spelling (e.g. saved after
    dropping aliases) gets the other filled from it (listed under ``"aliases_filled"``); a checkpoint
    whose two spellings disagree is refused, since they must be one tensor.
    """
    out = dict(sd)
    filled: dict[str, str] = {}
    for alias, canonical in ALIAS_PREFIXES.items():
        for suffix in ("bias", "weight_orig", "weight_u", "weight_v"):
            a, c = alias + suffix, canonical + suffix
            if a in out and c in out:
                if out[a].shape != out[c].shape or not torch.equal(out[a], out[c]):
                    raise ValueError(f"aliased keys {a} and {c} hold different tensors; the checkpoint is inconsistent")
            elif c in out:
                out[a] = out[c]
                filled[a] = c
            elif a in out:
                out[c] = out[a]
                filled[c] = a
    return out, {"dropped": [], "renamed": {}, "aliases_filled": filled}


def _generator_input(image: Tensor, mask: Tensor, hole_fill: float) -> Tensor:
    return image * (1 - mask) + hole_fill * mask


def parity_forward(net: InpaintGenerator, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
    """Fixture forward: ``I·(1−M)+M`` with the stored half/quarter masks; every fixture output name."""
    image, mask = inputs["image"], inputs["mask"]
    out = net(_generator_input(image, mask, net.cfg.hole_fill), mask, inputs["mask_half"], inputs["mask_quarter"])
    produced = {
        "output_raw": out.image,
        "output_composite": out.image * mask + image * (1 - mask),
    }
    if out.landmarks is not None:
        lmk_map = render_landmark_map(out.cells_yx, net.cfg.landmark_map_size, net.cfg.landmark_map_mode)
        produced.update(
            landmarks=out.landmarks,
            landmarks_float64_reference=out.landmarks,
            landmark_cells_yx=out.cells_yx,
            landmark_map_single=lmk_map[:, :1],
        )
    return produced


def predict(net: InpaintGenerator, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
    """Pipeline entry: B×3×256×256 in [0,1] (holes filled), B×1×256×256 mask (1 = hole).

    Returns ``{"image": raw output, "landmarks": B×68×2 (x, y) fractions of width/height}`` (no
    landmarks for the ``landmark_branch=False`` ablation).
    """
    cfg = net.cfg
    mask = mask.to(image.dtype)
    half, quarter = downscaled_masks(mask, cfg.landmark_map_size)
    out = net(_generator_input(image, mask, cfg.hole_fill), mask, half, quarter)
    result = {"image": out.image}
    if out.landmarks is not None:
        result["landmarks"] = out.landmarks.reshape(image.shape[0], cfg.points_num, 2)
    return result


# Training: SEM-Net's objective plus total variation on the composite and the landmark term; Adam (0, 0.9) at
# 2.92e-4 (D 2.92e-5) multiplied by 0.78 every 20k iterations up to 120k; the discriminator has self-attention.
TRAINING = TrainingSpec(
    loss=LossConfig(tv=0.1, landmark=0.00046),
    optim=OptimConfig(lr=2.92e-4, betas=(0.0, 0.9), d_lr=2.92e-5,
                      milestones=(20000, 40000, 60000, 80000, 100000, 120000), gamma=0.78),
    discriminator=functools.partial(PatchDiscriminator, attention=True),
)
