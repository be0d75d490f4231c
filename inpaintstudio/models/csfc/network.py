"""CSFC: cross-scale space semantic-feature-coherent image inpainting (partial convolutions + CCSA + SRA).

Paper: "a cross-scale space semantic feature coherent image inpainting approach", *Mobile Information Systems*
(Hindawi) 2022, article ID 5165962, hindawi.com/journals/misy/2022/5165962/ (title and authors not recovered;
"CSFC" is this project's name for the method). Keras 2.7 / TensorFlow in the paper.
Official code: none published (none found). Official weights: none; ``csfc.safetensors`` comes from training
with InpaintStudio's trainer. Licence: this implementation is InpaintStudio's own; there is no upstream licence.
The closest public relative is PSR-Net (Jin et al., WWW'21 Companion, github.com/sfwyly/PSR-Net, TensorFlow);
where the paper is silent this module follows it. ``docs/models/csfc.md`` describes the reconstruction; every
inferred point below is a ``Config`` switch where it is a choice.

Default network: **26,829,141 parameters** (``DEFAULT_PARAMETER_COUNT``; the test suite checks it).

Tensor contract: ``CSFC.forward(image: B×3×H×W in [0, 1], mask: B×1×H×W (or B×3×H×W), 1 = KNOWN, 0 = hole)
-> B×3×H×W in [0, 1]`` (sigmoid output, not composited). H and W must be multiples of
``Config.pad_multiple`` = 2**(1 + max(bb_depths)) (64 by default); anything else raises ``ValueError``.
The network reads ``image·mask`` only, so pixel values inside holes never reach it.

Layout:

- stem: PC(3→64, k7, s2) → ReLU → PC(64→64, k7) + BN + LReLU, at H/2;
- four basic blocks BB₁…BB₄: one partial-conv U-Net whose down/up layers are shared by all BBs, run to depth
  D_j = ``bb_depths[j]``; BB_j's output is the H/2 feature times its mask;
- CCSA(j), j = 2…4, at level 2 (H/8, 256 ch) of BB_j: cosine similarity of 3×3 patches of BB_j's feature
  (Eq. 3) → 3×3 mean over the query's neighbourhood (Eq. 4) → softmax scores → blend with the previous link's
  scores (Eq. 5) → reconstruct BB_{j−1}'s level-2 feature with them ("deep → shallow" transfer, Eq. 6) →
  coherent-semantic refinement of the positions the input hole covers (SCA, Eqs. 1–2) → dilated multi-scale
  selection (Eqs. 7–8) → 1×1 fusion with BB_j's feature (Eq. 9), which replaces that feature;
- SRA(j), j = 2…4: gated semantic residual between consecutive BB outputs feeding BB_j;
- head: last two BB outputs → gated 1×1 → transposed conv → PC with the image → bottleneck → sigmoid.

Every part the paper does not state, and how it is resolved here:

1. The whole BB architecture (channels 64/128/256/512, kernels 7/7/5/3, shared down/up layers, skip
   concatenation, nearest ×2 up-sampling of features and masks) is PSR-Net's. The paper's "the input of a
   basic block is split into two paths" is read as the block's contracting (down) and expanding (up) paths
   of that U-Net, joined by skips; no second parallel branch is built (the text names no layers, widths or
   merge for one; ``docs/models/csfc.md`` gives the reasoning).
2. Depths ``bb_depths=(2, 3, 4, 5)`` at 128×128; (2, 4, 6, 6) suits 256×256.
3. Partial convolutions follow PSR's form (``layers.partial_conv``): no input·mask product, renormalisation
   ``k²·cin/count`` with a multi-channel mask, no bias. As in PSR (``mul=False``), down levels 3+ and the
   up layers u2, u3, u4, u5 do not renormalise (``renormalize=False``); the stem, down levels 1–2, u0 and u1 do.
4. "PC(...) then ReLU" where the PC has BN + LReLU is implemented as BN + ReLU (ReLU∘LReLU = ReLU).
5. Symmetric padding ``(k−1)/2`` instead of TensorFlow's asymmetric ``'same'`` for stride 2 (same sizes).
6. BatchNorm uses Keras' defaults (eps 1e−3, momentum 0.99 ⇒ PyTorch momentum 0.01); initialisation is
   Keras' (Glorot-uniform kernels, zero biases). Layers whose bias nobody states (SRA gate, head bottleneck
   convs, CCSA MLP) keep Keras' default bias.
7. CCSA operates at level 2 of each BB (PSR wiring). ``f_lo`` is BB_{j−1}'s level-2 feature *as that BB
   used it* (after its own CCSA for j−1 ≥ 2); the paper does not say before or after.
8. Similarity normalises both patches (``sim_norm="both"``, paper form; PSR normalises the candidate only),
   norms clamped at 1e−4; every position is a candidate (no known-only restriction is stated).
9. Eq. 4 averages over the k×k neighbourhood of the *query* with the candidate fixed, zero outside the map
   (``smooth="mean"``, the paper's sim/(k·k)); ``"sum"`` is PSR/RFR's unscaled form; ``"diagonal"`` shifts
   query and candidate together (DeepFill-style propagation), an earlier reading kept as a switch.
10. Scores are ``softmax_q(10·s')`` (``softmax_scale=10``, from PSR/RFR; the paper names no softmax).
11. Blend ``λ·A_j + (1−λ)·A_{j−1}``, λ trainable, init 0.5, clamped to [0, 1] (``blend="lambda"``); the
    first link has no previous scores and therefore no λ. ``blend="validity"`` is RFR/PSR's
    ``(A_{j−1}·v + |r|·A_j)/(v + |r|)`` with v(q) = candidate 3×3 patch fully valid in the previous link's
    mask (border patches count as not fully valid) and trainable r (init 1); its rows do not sum to 1.
12. Reconstruction is the per-pixel sum (``reconstruct="pixel"``); ``"patch"`` pastes 3×3 patches of
    ``f_lo`` (transposed-convolution form, overlaps summed, no averaging).
13. SCA (``use_sca=True``) refines the reconstructed feature on the **input hole brought to level 2**
    (:func:`refinement_known`: max-pool of the hole over 8×8 cells, so a position is refined when any input
    pixel under it is missing); candidates are the other positions. The block's own level-2 mask is not used:
    the partial convolutions have closed it by then (empty for 25 % and 50 % holes at 128²), so the step would
    never act. 1×1 patches; raster order per image; ``Dad_i`` compares the original feature at i with the
    generated feature of the previous hole position. Degenerate cases: an image with no known position at
    that level is left unchanged; if ``Dad_i + Dmax_i`` vanishes (|·| < 1e−8) the match is used alone.
    ``sca_mode="parallel"`` is a one-pass approximation (Dad from the predecessor's initial match).
14. Multi-scale selection: dilations 1/2/4/8, 3×3 256→256 convs with bias + ReLU, shared MLP
    256→32→1024 (Dense, bias), softmax over the 4 branches per channel (reshape [4, 256], branch-major).
15. Fusion ``Conv1×1([F, f_hi])`` — channel order [selected, high-level].
16. CCSA modules are separate per link (``ccsa_share_weights=False``, the paper counts three); ``True``
    shares one (PSR).
17. SRA (no detail in the paper): r = x^(j−1) − x^(j−2) (x^(0) = stem output),
    a = σ(Conv1×1([x^(j−1), r])), BB_j input = x^(j−1) + a⊙r with BB_{j−1}'s output mask. ``use_sra=False``
    is the paper's "RES0" ablation; ``use_ccsa=False`` its "ATT0" ablation (BB features pass unchanged).
18. Head: ``head_inputs=2`` last BBs (PSR used 3); the gate reads [c, masks of those BBs]; the head PC's
    mask is [M (3 ch), up2(gate)] — a soft mask; the bottleneck output is concatenated before its input
    ([block, input]).
19. Value range [0, 1] in and out; mask 1 = known; working size 128 (the paper times 128×128 inputs).
20. ``TRAINING`` (end of this module) holds the losses (PSR's released ones) and the optimiser;
    ``configs/train/csfc.yaml`` adds the paper's schedule, image size and PSR's batch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inpaintstudio.models.layers.partial_conv import PartialConv2d
from inpaintstudio.trainspec import LossConfig, OptimConfig, TrainingSpec

__all__ = [
    "Config",
    "CSFC",
    "CrossScaleCoherentAttention",
    "SemanticResidualAttention",
    "PConvBlock",
    "SharedPartialUNet",
    "patch_similarity",
    "smooth_scores",
    "reconstruct_pixels",
    "reconstruct_patches",
    "fully_valid_patches",
    "coherent_semantic_refinement",
    "refinement_known",
    "SMOOTH_MODES",
    "DEFAULT_PARAMETER_COUNT",
    "build",
    "config_from_fixture",
    "parity_forward",
    "remap_official_state_dict",
    "predict",
]

DEFAULT_PARAMETER_COUNT = 26_829_141

# Channels at level ℓ of the basic-block U-Net (ℓ = 0 is the stem output at H/2, ℓ at H/2^(ℓ+1)).
LEVEL_CHANNELS = (64, 128, 256, 512, 512, 512, 512)
MAX_DEPTH = len(LEVEL_CHANNELS) - 1
ATTENTION_LEVEL = 2  # CCSA works on the 256-channel level-2 feature (H/8)
ATTENTION_STRIDE = 2 ** (ATTENTION_LEVEL + 1)  # stem stride 2, then 2 per level
DILATIONS = (1, 2, 4, 8)
SMOOTH_MODES = ("mean", "sum", "diagonal")
LEAKY_SLOPE = 0.2
_NORM_FLOOR = 1e-4
_EPS = 1e-8


@dataclass(frozen=True)
class Config:
    """CSFC configuration (no released code exists; every inferred choice is listed in the module docstring)."""

    input_size: int = 128  # working/training size (the card's working_size); the layers are size-agnostic
    bb_depths: tuple[int, ...] = (2, 3, 4, 5)
    use_ccsa: bool = True
    ccsa_share_weights: bool = False
    sim_norm: Literal["both", "candidate"] = "both"
    smooth: Literal["mean", "sum", "diagonal"] = "mean"
    softmax_scale: float = 10.0
    blend: Literal["lambda", "validity"] = "lambda"
    reconstruct: Literal["pixel", "patch"] = "pixel"
    use_sca: bool = True
    sca_mode: Literal["sequential", "parallel"] = "sequential"
    use_sra: bool = True
    head_inputs: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "bb_depths", tuple(int(d) for d in self.bb_depths))
        if len(self.bb_depths) < 1:
            raise ValueError("bb_depths needs at least one basic block")
        if any(d < 1 or d > MAX_DEPTH for d in self.bb_depths):
            raise ValueError(f"each basic-block depth must lie in 1..{MAX_DEPTH}, got {self.bb_depths}")
        if self.use_ccsa and any(d < ATTENTION_LEVEL for d in self.bb_depths):
            raise ValueError(f"CCSA works at level {ATTENTION_LEVEL}; every depth must be ≥ 2, got {self.bb_depths}")
        if not 1 <= self.head_inputs <= len(self.bb_depths):
            raise ValueError(f"head_inputs={self.head_inputs} but there are {len(self.bb_depths)} basic blocks")
        choices = {"sim_norm": ("both", "candidate"), "smooth": SMOOTH_MODES, "blend": ("lambda", "validity"),
                   "reconstruct": ("pixel", "patch"), "sca_mode": ("sequential", "parallel")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r}; expected one of {allowed}")

    @property
    def pad_multiple(self) -> int:
        """Height and width must be multiples of this: stem stride 2 times 2 per level of the deepest BB."""
        return 2 ** (1 + max(self.bb_depths))


# --------------------------------------------------------------------------------------------------------
# Partial-convolution blocks and the shared basic-block U-Net
# --------------------------------------------------------------------------------------------------------


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)  # Keras defaults


def _activate(x: Tensor, activation: str | None) -> Tensor:
    if activation == "relu":
        return F.relu(x)
    if activation == "leaky_relu":
        return F.leaky_relu(x, LEAKY_SLOPE)
    return x


class PConvBlock(nn.Module):
    """Partial convolution (no bias) → optional BatchNorm → optional activation; returns ``(y, mask)``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        renormalize: bool = True,
        norm: bool = True,
        activation: str | None = "leaky_relu",
    ) -> None:
        super().__init__()
        self.conv = PartialConv2d(in_channels, out_channels, kernel_size, stride, renormalize=renormalize)
        self.norm = _batch_norm(out_channels) if norm else None
        self.activation = activation

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        y, new_mask = self.conv(x, mask)
        if self.norm is not None:
            y = self.norm(y)
        return _activate(y, self.activation), new_mask


def _down_block(level: int) -> PConvBlock:
    """Down layer producing level ``level``: 7×7 to level 1, 5×5 to level 2, then 3×3 without renormalisation."""
    cin, cout = LEVEL_CHANNELS[level - 1], LEVEL_CHANNELS[level]
    if level == 1:  # PC(k7, s2) + BN + LReLU, then ReLU  ==  BN + ReLU
        return PConvBlock(cin, cout, 7, 2, renormalize=True, norm=True, activation="relu")
    if level == 2:  # PC(k5, s2, no BN/act), then ReLU
        return PConvBlock(cin, cout, 5, 2, renormalize=True, norm=False, activation="relu")
    # PC(k3, s2, renorm=False) + BN + LReLU, then ReLU  ==  BN + ReLU
    return PConvBlock(cin, cout, 3, 2, renormalize=False, norm=True, activation="relu")


def _up_block(level: int) -> PConvBlock:
    """Up layer u_level: [up2(level+1), skip(level)] → channels of ``level``, 3×3, BN + LReLU.

    u2…u5 do not renormalise (PSR-Net's ``u_Pconv22/23/34/35`` use ``mul=False``); u0 and u1 do.
    """
    cin = LEVEL_CHANNELS[level + 1] + LEVEL_CHANNELS[level]
    return PConvBlock(cin, LEVEL_CHANNELS[level], 3, 1, renormalize=level < ATTENTION_LEVEL, norm=True)


def _up2(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


class SharedPartialUNet(nn.Module):
    """The layers every basic block shares: ``down[ℓ−1]`` makes level ℓ, ``up[ℓ]`` returns to level ℓ.

    ``run`` evaluates one basic block of a given depth; ``level2_hook(x, mask) -> x`` replaces the level-2
    feature (where CCSA sits) before the block continues down and before it is used as a skip.
    """

    def __init__(self, max_depth: int) -> None:
        super().__init__()
        self.down = nn.ModuleList(_down_block(level) for level in range(1, max_depth + 1))
        self.up = nn.ModuleList(_up_block(level) for level in range(max_depth))

    def run(self, x: Tensor, mask: Tensor, depth: int, level2_hook: Any = None) -> tuple[Tensor, Tensor]:
        skips = [(x, mask)]
        for level in range(1, depth + 1):
            x, mask = self.down[level - 1](x, mask)
            if level == ATTENTION_LEVEL and level2_hook is not None:
                x = level2_hook(x, mask)
            skips.append((x, mask))
        for level in range(depth - 1, -1, -1):
            skip_x, skip_mask = skips[level]
            x = torch.cat([_up2(x), skip_x], dim=1)
            mask = torch.cat([_up2(mask), skip_mask], dim=1)
            x, mask = self.up[level](x, mask)
        return x * mask, mask


# --------------------------------------------------------------------------------------------------------
# CCSA: cross-scale coherent semantic attention
# --------------------------------------------------------------------------------------------------------


def patch_similarity(features: Tensor, normalize: str = "both", patch: int = 3) -> Tensor:
    """Eq. 3: cosine similarity ``s[b, p, q]`` of the ``patch×patch`` neighbourhoods (zero padded) of p and q.

    ``normalize="both"`` divides by both patch norms; ``"candidate"`` only by the norm of q (PSR).
    """
    patches = F.unfold(features, patch, padding=patch // 2)  # B×(C·k²)×N
    candidates = patches / patches.norm(dim=1, keepdim=True).clamp_min(_NORM_FLOOR)
    queries = candidates if normalize == "both" else patches
    return queries.transpose(1, 2) @ candidates


def smooth_scores(scores: Tensor, height: int, width: int, kernel: int = 3, mode: str = "mean") -> Tensor:
    """Eq. 4: smooth the similarity ``s[b, p, q]`` over the k×k neighbourhood of the query p (zero outside the map).

    - ``"mean"`` (the paper's form): ``s'(p, q) = (1/k²)·Σ_{|δ|≤k//2} s(p+δ, q)``; the candidate q stays fixed.
    - ``"sum"``: the same without the 1/k² (PSR-Net's 3×3 average pool of each candidate's score map times 9).
    - ``"diagonal"``: ``(1/k²)·Σ_δ s(p+δ, q+δ)``, query and candidate shifted together (DeepFill-style
      propagation; an earlier reading of Eq. 4, kept for comparison).
    """
    if mode not in SMOOTH_MODES:
        raise ValueError(f"smooth mode {mode!r}; expected one of {SMOOTH_MODES}")
    batch, queries, candidates = scores.shape
    radius = kernel // 2
    if mode == "diagonal":
        grid = scores.reshape(batch, height, width, height, width)
        padded = F.pad(grid, (radius,) * 8)
        total = torch.zeros_like(grid)
        for dy in range(-radius, radius + 1):
            for dx in range(-radius, radius + 1):
                rows = slice(radius + dy, radius + dy + height)
                cols = slice(radius + dx, radius + dx + width)
                total = total + padded[:, rows, cols, rows, cols]
        return total.reshape(batch, queries, candidates) / (kernel * kernel)
    # One map per candidate over the query grid: B·N_candidates × 1 × H × W, summed over each k×k window.
    maps = scores.transpose(1, 2).reshape(batch * candidates, 1, height, width)
    window = F.avg_pool2d(maps, kernel, stride=1, padding=radius, count_include_pad=True)
    if mode == "sum":
        window = window * (kernel * kernel)
    return window.reshape(batch, candidates, queries).transpose(1, 2)


def reconstruct_pixels(features: Tensor, attention: Tensor) -> Tensor:
    """Eq. 6, per-pixel form: ``out[:, :, p] = Σ_q A[p, q]·features[:, :, q]``."""
    batch, channels, height, width = features.shape
    return torch.bmm(features.flatten(2), attention.transpose(1, 2)).view(batch, channels, height, width)


def reconstruct_patches(features: Tensor, attention: Tensor, patch: int = 3) -> Tensor:
    """PSR form of Eq. 6: paste the 3×3 patches of ``features`` weighted by A; overlaps are summed."""
    height, width = features.shape[-2:]
    columns = F.unfold(features, patch, padding=patch // 2) @ attention.transpose(1, 2)
    return F.fold(columns, (height, width), patch, padding=patch // 2)


def fully_valid_patches(mask: Tensor, patch: int = 3) -> Tensor:
    """B×N: 1 where the ``patch×patch`` neighbourhood of the (B×1×H×W) mask is entirely valid (pad = hole)."""
    window = F.avg_pool2d(mask, patch, stride=1, padding=patch // 2, count_include_pad=True)
    return (window > 1.0 - 1e-6).to(mask.dtype).flatten(1)


def refinement_known(mask: Tensor, stride: int = ATTENTION_STRIDE) -> Tensor:
    """Where Eqs. 1–2 act, at the attention level: B×1×(H/stride)×(W/stride), 1 = known, 0 = refine.

    ``mask`` is the network's input mask (B×1×H×W or B×3×H×W, 1 = known). The input hole is brought to the
    level by a max-pool over stride×stride cells: a position is refined when any input pixel under it was
    missing, and only positions computed from wholly known pixels serve as candidates. (The block's own
    level-2 mask cannot be used: the partial convolutions have closed it by then, so the step would never act.)
    """
    hole = 1.0 - mask.amin(dim=1, keepdim=True)
    return 1.0 - F.max_pool2d(hole, stride)


def _cosine(a: Tensor, b: Tensor) -> Tensor:
    """Cosine along the last axis with norms clamped at 1e−4."""
    norms = a.norm(dim=-1).clamp_min(_NORM_FLOOR) * b.norm(dim=-1).clamp_min(_NORM_FLOOR)
    return (a * b).sum(dim=-1) / norms


def _mix(previous: Tensor, match: Tensor, d_ad: Tensor, d_max: Tensor) -> Tensor:
    """Eq. 2: ``(Dad·previous + Dmax·match)/(Dad + Dmax)``; the match alone where the sum vanishes."""
    total = d_ad + d_max
    usable = total.abs() > _EPS
    safe_total = torch.where(usable, total, torch.ones_like(total))
    mixed = (d_ad[:, None] * previous + d_max[:, None] * match) / safe_total[:, None]
    return torch.where(usable[:, None], mixed, match)


def coherent_semantic_refinement(features: Tensor, known: Tensor, mode: str = "sequential") -> Tensor:
    """SCA (Eqs. 1–2): regenerate hole positions of ``features`` (B×C×H×W) from their best known match.

    ``known`` is B×1×H×W (> 0.5 = known). Known positions are returned unchanged. Search: for each hole
    position i, ``m_i'`` = the known feature of highest cosine similarity, ``Dmax_i`` that similarity.
    Generation in raster order: first hole ``m_1 = m_1'``; then ``m_i = (Dad_i·m_{i−1} + Dmax_i·m_i')/
    (Dad_i + Dmax_i)`` with ``Dad_i = cos(original m_i, generated m_{i−1})``. ``mode="parallel"`` uses the
    predecessor's initial match instead of its generated feature (one pass, an approximation).
    """
    batch, channels, height, width = features.shape
    flat = features.flatten(2)  # B×C×N
    known_flat = known.flatten(1) > 0.5  # B×N
    active = ~known_flat & known_flat.any(dim=1, keepdim=True)  # holes of images that have known positions
    if not bool(active.any()):
        return features
    unit = flat / flat.norm(dim=1, keepdim=True).clamp_min(_NORM_FLOOR)
    similarity = (unit.transpose(1, 2) @ unit).masked_fill(~known_flat[:, None, :], float("-inf"))
    best, index = similarity.max(dim=2)  # B×N
    d_max = torch.where(active, best, torch.zeros_like(best))
    matches = torch.gather(flat, 2, index[:, None, :].expand(-1, channels, -1))  # B×C×N
    if mode == "parallel":
        refined = _refine_parallel(flat, matches, d_max, active)
    else:
        refined = _refine_sequential(flat, matches, d_max, active)
    return refined.view(batch, channels, height, width)


def _refine_sequential(flat: Tensor, matches: Tensor, d_max: Tensor, active: Tensor) -> Tensor:
    batch, channels, _ = flat.shape
    columns = list(flat.unbind(dim=2))
    previous = flat.new_zeros(batch, channels)
    started = torch.zeros(batch, dtype=torch.bool, device=flat.device)
    for position in active.any(dim=0).nonzero().flatten().tolist():
        here = active[:, position]
        current, match = columns[position], matches[:, :, position]
        d_ad = torch.where(started, _cosine(current, previous), torch.zeros_like(d_max[:, position]))
        generated = torch.where(started[:, None], _mix(previous, match, d_ad, d_max[:, position]), match)
        columns[position] = torch.where(here[:, None], generated, current)
        previous = torch.where(here[:, None], generated, previous)
        started = started | here
    return torch.stack(columns, dim=2)


def _refine_parallel(flat: Tensor, matches: Tensor, d_max: Tensor, active: Tensor) -> Tensor:
    positions = torch.arange(flat.shape[2], device=flat.device).expand_as(active)
    marked = torch.where(active, positions, torch.full_like(positions, -1))
    latest = marked.cummax(dim=1).values
    predecessor = torch.cat([torch.full_like(latest[:, :1], -1), latest[:, :-1]], dim=1)  # B×N, −1 = none
    has_predecessor = predecessor >= 0
    previous = torch.gather(matches, 2, predecessor.clamp_min(0)[:, None, :].expand_as(matches))
    d_ad = torch.where(has_predecessor, _cosine(flat.transpose(1, 2), previous.transpose(1, 2)), 0.0)
    total = d_ad + d_max
    usable = has_predecessor & (total.abs() > _EPS)
    safe_total = torch.where(usable, total, torch.ones_like(total))
    mixed = (d_ad[:, None] * previous + d_max[:, None] * matches) / safe_total[:, None]
    generated = torch.where(usable[:, None], mixed, matches)
    return torch.where(active[:, None], generated, flat)


@dataclass
class LinkState:
    """What one basic block leaves for the next CCSA link (all at level 2)."""

    features: Tensor  # BB's level-2 feature as the block used it (B×256×h×w)
    mask: Tensor  # BB's level-2 mask, one channel (B×1×h×w)
    attention: Tensor | None  # this link's scores A (B×N×N), None for BB₁


class CrossScaleCoherentAttention(nn.Module):
    """CCSA(j): scores learnt on BB_j's level-2 feature reconstruct BB_{j−1}'s, then select and fuse.

    Args:
        cfg: network configuration (similarity/smoothing/blend/reconstruction/SCA switches).
        channels: feature channels at the attention level (256).
        with_blend: owns the blend parameter (λ or r); the first link has no previous scores to blend.
    """

    def __init__(self, cfg: Config, channels: int = LEVEL_CHANNELS[ATTENTION_LEVEL], with_blend: bool = True) -> None:
        super().__init__()
        self.cfg = cfg
        self.channels = channels
        hidden = max(channels // 8, 8)
        self.branches = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=r, dilation=r) for r in DILATIONS)
        self.select_mlp = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, len(DILATIONS) * channels)
        )
        self.fuse = nn.Conv2d(2 * channels, channels, 1)
        self.blend_weight: nn.Parameter | None = None
        self.blend_ratio: nn.Parameter | None = None
        if with_blend and cfg.blend == "lambda":
            self.blend_weight = nn.Parameter(torch.tensor(0.5))
        elif with_blend:
            self.blend_ratio = nn.Parameter(torch.tensor(1.0))

    def scores(self, high: Tensor) -> Tensor:
        """Steps A–C: ``softmax_q(scale·smooth(cos-sim of 3×3 patches))``, B×N×N, rows sum to 1."""
        height, width = high.shape[-2:]
        similarity = patch_similarity(high, self.cfg.sim_norm)
        smoothed = smooth_scores(similarity, height, width, 3, self.cfg.smooth)
        return torch.softmax(self.cfg.softmax_scale * smoothed, dim=-1)

    def blend(self, attention: Tensor, previous: LinkState | None) -> Tensor:
        """Step D (Eq. 5) with the previous link's scores, when there are any."""
        if previous is None or previous.attention is None:
            return attention
        if self.blend_weight is not None:
            weight = self.blend_weight.clamp(0.0, 1.0)
            return weight * attention + (1.0 - weight) * previous.attention
        if self.blend_ratio is None:
            raise RuntimeError("this CCSA link was built without a blend parameter but received previous scores")
        valid = fully_valid_patches(previous.mask)[:, None, :]  # v(q)
        ratio = self.blend_ratio.abs() + 1e-7
        return (previous.attention * valid + ratio * attention) / (valid + ratio)

    def select(self, features: Tensor) -> Tensor:
        """Step G (Eqs. 7–8): per-channel softmax selection among the dilated branches."""
        branches = [F.relu(conv(features)) for conv in self.branches]
        combined = torch.stack(branches, dim=1).sum(dim=1)
        descriptor = self.select_mlp(combined.mean(dim=(2, 3))) + self.select_mlp(combined.amax(dim=(2, 3)))
        weights = torch.softmax(descriptor.view(-1, len(DILATIONS), self.channels), dim=1)
        return sum(weights[:, r, :, None, None] * branch for r, branch in enumerate(branches))

    def transfer(
        self, high: Tensor, low: Tensor, known: Tensor, previous: LinkState | None = None
    ) -> tuple[Tensor, Tensor]:
        """Steps A–F: ``(rebuilt low-level feature, attention A_j)``.

        The scores come from ``high`` (BB_j's feature) alone and rebuild ``low`` (BB_{j−1}'s): row p of A_j says
        which positions q of ``low`` make up the new feature at p. The coherent-semantic refinement then
        regenerates the positions where ``known`` (B×1×h×w, see :func:`refinement_known`) is 0.
        """
        attention = self.blend(self.scores(high), previous)
        if self.cfg.reconstruct == "patch":
            reconstructed = reconstruct_patches(low, attention)
        else:
            reconstructed = reconstruct_pixels(low, attention)
        if self.cfg.use_sca:
            reconstructed = coherent_semantic_refinement(reconstructed, known, self.cfg.sca_mode)
        return reconstructed, attention

    def forward(
        self, high: Tensor, low: Tensor, known: Tensor, previous: LinkState | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(fused feature replacing high, attention A_j)``: :meth:`transfer`, then Steps G–H."""
        reconstructed, attention = self.transfer(high, low, known, previous)
        selected = self.select(reconstructed)
        return self.fuse(torch.cat([selected, high], dim=1)), attention


# --------------------------------------------------------------------------------------------------------
# SRA and the output head
# --------------------------------------------------------------------------------------------------------


class SemanticResidualAttention(nn.Module):
    """SRA(j) (design not given by the paper): ``x + σ(Conv1×1([x, x − x_earlier]))·(x − x_earlier)``."""

    def __init__(self, channels: int = LEVEL_CHANNELS[0]) -> None:
        super().__init__()
        self.gate = nn.Conv2d(2 * channels, channels, 1)

    def forward(self, current: Tensor, earlier: Tensor) -> Tensor:
        residual = current - earlier
        weight = torch.sigmoid(self.gate(torch.cat([current, residual], dim=1)))
        return current + weight * residual


class Bottleneck(nn.Module):
    """1×1→c/4, 3×3→c/4, 1×1→c (BN after each, ReLU after the first two), + input, ReLU; out = [block, input]."""

    def __init__(self, channels: int = 32, inner: int = 8) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, inner, 1)
        self.reduce_norm = _batch_norm(inner)
        self.spatial = nn.Conv2d(inner, inner, 3, padding=1)
        self.spatial_norm = _batch_norm(inner)
        self.expand = nn.Conv2d(inner, channels, 1)
        self.expand_norm = _batch_norm(channels)

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.reduce_norm(self.reduce(x)))
        y = F.relu(self.spatial_norm(self.spatial(y)))
        y = F.relu(self.expand_norm(self.expand(y)) + x)
        return torch.cat([y, x], dim=1)


# --------------------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------------------


class CSFC(nn.Module):
    """CSFC generator. ``forward(image B×3×H×W in [0,1], mask B×1×H×W 1 = known) -> B×3×H×W in [0,1]``.

    With ``return_attention=True`` it returns ``(image, [A_2, A_3, A_4])``: each B×N×N over the level-2
    grid (N = H/8·W/8), rows indexed by the query position p, columns by the candidate q.
    """

    def __init__(self, cfg: Config | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or Config()
        width = LEVEL_CHANNELS[0]
        links = len(cfg.bb_depths) - 1
        self.stem1 = PConvBlock(3, width, 7, 2, norm=False, activation="relu")
        self.stem2 = PConvBlock(width, width, 7, 1, norm=True, activation="leaky_relu")
        self.unet = SharedPartialUNet(max(cfg.bb_depths))
        if not cfg.use_ccsa or links == 0:
            self.ccsa = nn.ModuleList()
        elif cfg.ccsa_share_weights:
            self.ccsa = nn.ModuleList([CrossScaleCoherentAttention(cfg, with_blend=links > 1)])
        else:
            self.ccsa = nn.ModuleList(CrossScaleCoherentAttention(cfg, with_blend=k > 0) for k in range(links))
        self.sra = nn.ModuleList(SemanticResidualAttention(width) for _ in range(links if cfg.use_sra else 0))
        fused = width * cfg.head_inputs
        self.head_reduce = nn.Conv2d(fused, width, 1, bias=False)
        self.head_gate = nn.Conv2d(width + fused, width, 1, bias=False)
        self.head_up = nn.ConvTranspose2d(width, width, 4, stride=2, padding=1, bias=False)
        self.head_up_norm = _batch_norm(width)
        self.head_pconv = PartialConv2d(3 + width, 32, 3)
        self.head_bottleneck = Bottleneck(32, 8)
        self.head_out = nn.Conv2d(64, 3, 3, padding=1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Keras defaults: Glorot-uniform kernels, zero biases (BatchNorm keeps γ = 1, β = 0)."""
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, PartialConv2d)):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def check_input(self, image: Tensor, mask: Tensor) -> None:
        multiple = self.cfg.pad_multiple
        height, width = image.shape[-2:]
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"CSFC expects an image B×3×H×W, got shape {tuple(image.shape)}")
        if mask.dim() != 4 or mask.shape[1] not in (1, 3) or mask.shape[-2:] != image.shape[-2:]:
            raise ValueError(f"CSFC expects a mask B×1×H×W matching the image, got {tuple(mask.shape)}")
        if height % multiple or width % multiple:
            raise ValueError(
                f"CSFC needs height and width divisible by {multiple} "
                f"(= 2^(1 + max bb_depths {max(self.cfg.bb_depths)})); got {height}×{width}. "
                "Pad the input first (the pipeline pads to the card's pad_multiple)."
            )

    def _ccsa_for(self, block: int) -> CrossScaleCoherentAttention | None:
        if block == 0 or len(self.ccsa) == 0:
            return None
        return self.ccsa[0] if self.cfg.ccsa_share_weights else self.ccsa[block - 1]

    def forward(self, image: Tensor, mask: Tensor, return_attention: bool = False) -> Any:
        self.check_input(image, mask)
        mask3 = mask.expand(-1, 3, -1, -1) if mask.shape[1] == 1 else mask
        masked = image * mask3
        x, m = self.stem1(masked, mask3)
        stem_out, stem_mask = self.stem2(x, m)
        outputs: list[Tensor] = []
        masks: list[Tensor] = []
        attentions: list[Tensor] = []
        previous: LinkState | None = None
        known = refinement_known(mask3) if len(self.ccsa) > 0 else None
        for block, depth in enumerate(self.cfg.bb_depths):
            if block == 0:
                x_in, m_in = stem_out, stem_mask
            else:
                x_in, m_in = outputs[-1], masks[-1]
                if len(self.sra) > 0:
                    earlier = outputs[-2] if block >= 2 else stem_out
                    x_in = self.sra[block - 1](x_in, earlier)
            hook = _LevelTwoHook(self._ccsa_for(block), previous, known)
            x_out, m_out = self.unet.run(x_in, m_in, depth, hook)
            previous = hook.state
            if hook.state is not None and hook.state.attention is not None:
                attentions.append(hook.state.attention)
            outputs.append(x_out)
            masks.append(m_out)
        result = self.head(masked, mask3, outputs[-self.cfg.head_inputs:], masks[-self.cfg.head_inputs:])
        return (result, attentions) if return_attention else result

    def head(self, masked: Tensor, mask3: Tensor, outputs: list[Tensor], masks: list[Tensor]) -> Tensor:
        """Gated fusion of the last BB outputs, up-sampling, image-aware PC, bottleneck, sigmoid."""
        fused = self.head_reduce(torch.cat(outputs, dim=1))
        gate = torch.sigmoid(self.head_gate(torch.cat([fused, *masks], dim=1)))
        up = F.leaky_relu(self.head_up_norm(self.head_up(fused * gate)), LEAKY_SLOPE)
        y, _ = self.head_pconv(torch.cat([masked, up], dim=1), torch.cat([mask3, _up2(gate)], dim=1))
        y = self.head_bottleneck(F.leaky_relu(y, LEAKY_SLOPE))
        return torch.sigmoid(self.head_out(y))


class _LevelTwoHook:
    """Runs CCSA on a block's level-2 feature and records the state the next link needs."""

    def __init__(
        self, ccsa: CrossScaleCoherentAttention | None, previous: LinkState | None, known: Tensor | None
    ) -> None:
        self.ccsa = ccsa
        self.previous = previous
        self.known = known
        self.state: LinkState | None = None

    def __call__(self, features: Tensor, mask: Tensor) -> Tensor:
        single_mask = mask[:, :1]
        attention = None
        if self.ccsa is not None and self.previous is not None and self.known is not None:
            features, attention = self.ccsa(features, self.previous.features, self.known, self.previous)
        self.state = LinkState(features=features, mask=single_mask, attention=attention)
        return features


# --------------------------------------------------------------------------------------------------------
# Contract functions and card
# --------------------------------------------------------------------------------------------------------


def build(cfg: Config | None = None) -> CSFC:
    return CSFC(cfg or Config())


def config_from_fixture(fixture_json: dict[str, Any]) -> Config:
    """A ``Config`` from ``{"config": {...}}`` (or the inner dict itself); unknown keys are refused."""
    values = dict(fixture_json.get("config", fixture_json))
    known = {f.name for f in fields(Config)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown CSFC config keys {unknown}; known: {sorted(known)}")
    if "bb_depths" in values:
        values["bb_depths"] = tuple(values["bb_depths"])
    return Config(**values)


def parity_forward(net: nn.Module, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
    raise NotImplementedError(
        "CSFC has no parity fixture: the authors published neither code nor weights, so there is no reference "
        "output to compare with. The property tests in tests/test_csfc.py check the equations instead."
    )


def remap_official_state_dict(sd: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Identity: no official checkpoint format exists, so only our own state_dicts are accepted as they are."""
    return dict(sd), {
        "dropped": [],
        "renamed": {},
        "note": "no official CSFC checkpoint exists; the state_dict is taken as InpaintStudio's own format",
    }


def predict(net: nn.Module, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
    """``image`` B×3×H×W in [0, 1]; ``mask`` B×1×H×W with 1 = known (the card's polarity)."""
    return {"image": net(image, mask)}


# Training: L1 on the whole image plus 5× on the hole, VGG-16 pool1–3 perceptual and style on the output and the
# composite, TV on the dilated hole, no adversarial term and no discriminator; Adam 1e-4, constant.
TRAINING = TrainingSpec(
    loss=LossConfig(l1=1.0, l1_mode="plain_plus_hole", hole_weight=5.0, perceptual=0.05, style=120.0,
                    vgg="vgg16_pool", tv=0.01, tv_region="dilated_hole", adversarial=0.0),
    optim=OptimConfig(lr=1e-4, betas=(0.9, 0.999), d_lr=0.0),
    discriminator=None,
)
