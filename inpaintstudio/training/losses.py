"""Training objectives of each family, with the weights of the authors' released code as defaults.

Symbols: ``I`` ground truth, ``O`` raw generator output, ``H`` hole mask (1 = hole, whatever the network's own
polarity), ``Î = O·H + I·(1−H)`` the composite. All images here are in the family's value range ([0, 1] for
SEM-Net, M×T, HINT, INCLG, CSFC; [−1, 1] for TSGL). "mean" is over every element of the tensor.

=========  ==========================================================================================
family     generator loss (reference = released code; docs/models/<model>.md)
=========  ==========================================================================================
sem_net    1·L1/mean(H) + 0.1·perc(VGG-19 relu{1..5}_1) + 250·style(VGG-19 relu2_2/3_4/4_4/5_2 of O·H vs I·H)
           + 0.01·LSGAN(D(O))
mxt        as sem_net but plain L1 (no 1/mean(H))
hint       as sem_net
inclg      as sem_net + 0.1·TV(Î) + 0.00046·landmark L2 norm (256-px units)
tsgl       5·L1(O·H, I·H) + 1·L1(O·(1−H), I·(1−H)) + the same on the aux edge map + 0.1·hinge(D(Î))
csfc       mean|O−I| + 5·mean(|O−I|·H) + 0.05·Σ perc(VGG-16 pool1–3, O and Î) + 120·Σ squared-Gram style
           (O and Î) + 0.01·TV on the 3×3-dilated hole, no GAN
=========  ==========================================================================================

VGG inputs are the images as given (no ImageNet normalisation), as all the releases do. Gram(F) = F·Fᵀ/(C·H·W).
Paper variants are switches of :class:`LossConfig` (``l1_mode``, ``gan``, ``adversarial``, ``landmark_mode`` …). Each
model's defaults live beside its network (``TRAINING.loss`` in its module; :mod:`inpaintstudio.training.specs`).

The thesis: S. Chen, PhD thesis, Durham University, 2025 (INCLG, HINT, M×T and SEM-Net are its chapters 3–5).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inpaintstudio.training.backbones import VGGFeatures, vgg_from_file
from inpaintstudio.trainspec import LossConfig

__all__ = [
    "LossConfig",
    "gram",
    "l1_loss",
    "tv_loss",
    "landmark_loss",
    "gan_generator_loss",
    "gan_discriminator_loss",
    "VGGLoss",
    "GeneratorObjective",
    "vgg_available",
]

# Inclusive indices of torchvision's vgg19().features / vgg16().features whose output is tapped.
VGG19_PERCEPTUAL = (1, 6, 11, 20, 29)  # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1
VGG19_STYLE = (8, 17, 26, 31)  # relu2_2, relu3_4, relu4_4, relu5_2
VGG16_POOL = (4, 9, 16)  # pool1, pool2, pool3 (CSFC / PSR)
VGG16_POOL_ALL = (4, 9, 16, 23, 30)  # pool1..5 (thesis variant "vgg16_pool")


# ------------------------------------------------------------------------------------------- pieces
def gram(features: Tensor) -> Tensor:
    """Gram matrix ``F·Fᵀ/(C·H·W)`` per image of B×C×H×W features (computed in float32)."""
    b, c, h, w = features.shape
    f = features.float().reshape(b, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def l1_loss(out: Tensor, target: Tensor, hole: Tensor, mode: str, hole_weight: float = 5.0) -> Tensor:
    """Reconstruction term of :class:`LossConfig` ``l1_mode`` (``hole``: B×1×H×W, 1 = hole)."""
    diff = (out - target).abs()
    if mode == "plain":
        return diff.mean()
    if mode == "hole_normalised":
        return diff.mean() / hole.mean().clamp_min(1e-8)
    if mode == "hole_valid":
        return hole_weight * (diff * hole).mean() + (diff * (1 - hole)).mean()
    if mode == "plain_plus_hole":
        return diff.mean() + hole_weight * (diff * hole).mean()
    raise ValueError(f"unknown l1_mode {mode!r}")


def tv_loss(image: Tensor, region: Tensor | None = None) -> Tensor:
    """Mean |vertical neighbour difference| + mean |horizontal neighbour difference| (of ``image·region``)."""
    x = image if region is None else image * region
    return (x[:, :, 1:, :] - x[:, :, :-1, :]).abs().mean() + (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().mean()


def landmark_loss(pred: Tensor, target_px: Tensor, size: int = 256, mode: str = "l2norm") -> Tensor:
    """INCLG landmark term: mean over the batch of ‖size·pred − target‖₂ (``"squared_l2"``: its square).

    ``pred``: B×68×2 (x, y) fractions of the side (what ``predict`` returns); ``target_px``: B×68×2 integer pixel
    coordinates in the ``size`` frame, clamped to [0, size−1] here as in the release.
    """
    err = (pred.reshape(pred.shape[0], -1) * size - target_px.reshape(target_px.shape[0], -1).clamp(0, size - 1))
    norm2 = (err.float() ** 2).sum(dim=1)
    return norm2.mean() if mode == "squared_l2" else norm2.sqrt().mean()


def gan_generator_loss(fake_scores: Tensor, gan: str) -> Tensor:
    """Generator side: LSGAN mean (D(x̂) − 1)², hinge −mean D(x̂), NS-GAN BCE(D(x̂), 1) on sigmoid scores."""
    if gan == "lsgan":
        return ((fake_scores - 1) ** 2).mean()
    if gan == "hinge":
        return -fake_scores.mean()
    if gan == "nsgan":
        return F.binary_cross_entropy(fake_scores.clamp(1e-7, 1 - 1e-7), torch.ones_like(fake_scores))
    raise ValueError(f"unknown gan {gan!r}")


def gan_discriminator_loss(real_scores: Tensor, fake_scores: Tensor, gan: str) -> Tensor:
    """Discriminator side, halved as in the releases: ½[ℓ(D(I), real) + ℓ(D(x̂), fake)]."""
    if gan == "lsgan":
        return 0.5 * (((real_scores - 1) ** 2).mean() + (fake_scores**2).mean())
    if gan == "hinge":
        return 0.5 * (F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean())
    if gan == "nsgan":
        real = F.binary_cross_entropy(real_scores.clamp(1e-7, 1 - 1e-7), torch.ones_like(real_scores))
        fake = F.binary_cross_entropy(fake_scores.clamp(1e-7, 1 - 1e-7), torch.zeros_like(fake_scores))
        return 0.5 * (real + fake)
    raise ValueError(f"unknown gan {gan!r}")


class VGGLoss(nn.Module):
    """Perceptual + style terms on a frozen VGG (one shared copy; the releases keep two identical ones)."""

    def __init__(self, cfg: LossConfig, vgg: VGGFeatures | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        depth = 19 if cfg.vgg == "vgg19_relu" else 16
        self.vgg = vgg if vgg is not None else vgg_from_file(depth, cfg.vgg_weights)
        if self.vgg.depth != depth:
            raise ValueError(f"{cfg.vgg} needs VGG-{depth}, got VGG-{self.vgg.depth}")
        if cfg.vgg == "vgg19_relu":
            self.perc_taps, self.style_taps = VGG19_PERCEPTUAL, VGG19_STYLE
        else:
            self.perc_taps = self.style_taps = VGG16_POOL

    def perceptual(self, out: Tensor, target: Tensor) -> Tensor:
        fo, ft = self.vgg(out, self.perc_taps), self.vgg(target, self.perc_taps)
        return sum(((fo[k] - ft[k]).abs().mean() for k in self.perc_taps), torch.zeros((), device=out.device))

    def style_l1(self, out: Tensor, target: Tensor) -> Tensor:
        fo, ft = self.vgg(out, self.style_taps), self.vgg(target, self.style_taps)
        return sum(((gram(fo[k]) - gram(ft[k])).abs().mean() for k in self.style_taps),
                   torch.zeros((), device=out.device))

    def style_squared(self, out: Tensor, target: Tensor) -> Tensor:
        fo, ft = self.vgg(out, self.style_taps), self.vgg(target, self.style_taps)
        return sum((((gram(fo[k]) - gram(ft[k])) ** 2).mean() for k in self.style_taps),
                   torch.zeros((), device=out.device))


@dataclass
class GeneratorTerms:
    """Weighted terms of one generator step (``total`` is their sum)."""

    total: Tensor
    parts: dict[str, Tensor] = field(default_factory=dict)


class GeneratorObjective(nn.Module):
    """The family's generator loss. ``forward`` returns the total and each weighted term by name.

    Args:
        cfg: the :class:`LossConfig`.
        vgg: an already loaded VGG (tests, benchmarks); when ``None`` and a VGG term is on, it is loaded from the
            local file, raising :class:`~inpaintstudio.training.backbones.BackboneMissingError` if absent.
    """

    def __init__(self, cfg: LossConfig, vgg: VGGFeatures | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.vgg_loss = VGGLoss(cfg, vgg) if cfg.needs_vgg else None

    def forward(
        self,
        out: Tensor,
        target: Tensor,
        hole: Tensor,
        fake_scores: Tensor | None = None,
        landmarks: Tensor | None = None,
        target_landmarks: Tensor | None = None,
        edge: Tensor | None = None,
        target_edge: Tensor | None = None,
    ) -> GeneratorTerms:
        cfg = self.cfg
        parts: dict[str, Tensor] = {}
        comp = out * hole + target * (1 - hole)
        if cfg.l1:
            parts["l1"] = cfg.l1 * l1_loss(out, target, hole, cfg.l1_mode, cfg.hole_weight)
        if self.vgg_loss is not None:
            with torch.autocast(out.device.type, enabled=False):
                o, t, c = out.float(), target.float(), comp.float()
                if cfg.vgg == "vgg19_relu":
                    if cfg.perceptual:
                        parts["perceptual"] = cfg.perceptual * self.vgg_loss.perceptual(o, t)
                    if cfg.style:
                        parts["style"] = cfg.style * self.vgg_loss.style_l1(o * hole, t * hole)
                else:
                    if cfg.perceptual:
                        parts["perceptual"] = cfg.perceptual * (self.vgg_loss.perceptual(o, t)
                                                                + self.vgg_loss.perceptual(c, t))
                    if cfg.style:
                        parts["style"] = cfg.style * (self.vgg_loss.style_squared(o, t)
                                                      + self.vgg_loss.style_squared(c, t))
        if cfg.tv:
            if cfg.tv_region == "composite":
                parts["tv"] = cfg.tv * tv_loss(comp)
            else:
                dilated = F.max_pool2d(hole, kernel_size=3, stride=1, padding=1)
                parts["tv"] = cfg.tv * tv_loss(comp, dilated)
        if cfg.adversarial and fake_scores is not None:
            parts["adversarial"] = cfg.adversarial * gan_generator_loss(fake_scores, cfg.gan)
        if cfg.landmark and landmarks is not None and target_landmarks is not None:
            parts["landmark"] = cfg.landmark * landmark_loss(landmarks, target_landmarks, out.shape[-1],
                                                             cfg.landmark_mode)
        if cfg.edge and edge is not None and target_edge is not None:
            parts["edge"] = cfg.edge * l1_loss(edge, target_edge, hole, "hole_valid", cfg.hole_weight)
        total = sum(parts.values(), torch.zeros((), device=out.device))
        return GeneratorTerms(total=total, parts=parts)


def vgg_available(cfg: LossConfig) -> bool:
    """Whether the VGG file the config needs is on this machine (no download is ever tried)."""
    from inpaintstudio.training.backbones import VGG16_FILE, VGG19_FILE, BackboneMissingError, find_backbone

    try:
        find_backbone(VGG19_FILE if cfg.vgg == "vgg19_relu" else VGG16_FILE, cfg.vgg_weights)
    except BackboneMissingError:
        return False
    return True

