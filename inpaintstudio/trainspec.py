"""How a model trains: :class:`TrainingSpec` (losses, optimiser, discriminator, custom forward) and its parts.

Every network module of :mod:`inpaintstudio.models` exports ``TRAINING: TrainingSpec`` beside its ``build`` and
``predict``, with the weights and settings of the authors' released code as defaults; the trainer
(:mod:`inpaintstudio.training`) reads it from the module a card names and refuses a model whose module has none.
This module is plain data (no torch, no package imports), so model modules can import it.

The thesis: S. Chen, PhD thesis, Durham University, 2025 (INCLG, HINT, M×T and SEM-Net are its chapters 3–5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["LossConfig", "OptimConfig", "TrainingSpec"]


@dataclass(frozen=True)
class LossConfig:
    """Weights and switches of one model's generator objective. ``0`` switches a term off.

    Args:
        l1: weight of the reconstruction term.
        l1_mode: ``"hole_normalised"`` mean|O−I|/mean(H) (SEM-Net, HINT, INCLG code); ``"plain"`` mean|O−I|
            (M×T, thesis variants); ``"hole_valid"`` hole_weight·mean(|O−I|·H) + mean(|O−I|·(1−H)) (TSGL);
            ``"plain_plus_hole"`` mean|O−I| + hole_weight·mean(|O−I|·H) (CSFC).
        hole_weight: the hole factor of the last two modes.
        perceptual, style: weights; ``vgg`` selects the taps: ``"vgg19_relu"`` (relu{1..5}_1 / style on relu2_2,
            3_4, 4_4, 5_2, hole region only, L1 of Grams) or ``"vgg16_pool"`` (CSFC: pool1–3 for both, squared
            Gram difference, on O and on Î).
        tv: weight of total variation; ``tv_region``: ``"composite"`` (INCLG, on Î) or ``"dilated_hole"`` (CSFC).
        adversarial: generator GAN weight; ``gan``: ``"lsgan"`` (sigmoid D), ``"hinge"``, ``"nsgan"``;
            ``adv_input``: ``"raw"`` (D sees O) or ``"composite"`` (TSGL: D sees Î).
        landmark: INCLG landmark weight; ``landmark_mode`` ``"l2norm"`` (code) or ``"squared_l2"`` (thesis).
        edge: TSGL auxiliary edge-decoder weight (same hole/valid split as ``hole_valid``).
        vgg_weights: explicit VGG file; else ``vgg19-dcbb9e9d.pth`` / ``vgg16-397923af.pth`` is searched locally.
    """

    l1: float = 1.0
    l1_mode: Literal["hole_normalised", "plain", "hole_valid", "plain_plus_hole"] = "hole_normalised"
    hole_weight: float = 5.0
    perceptual: float = 0.1
    style: float = 250.0
    vgg: Literal["vgg19_relu", "vgg16_pool"] = "vgg19_relu"
    tv: float = 0.0
    tv_region: Literal["composite", "dilated_hole"] = "composite"
    adversarial: float = 0.01
    gan: Literal["lsgan", "hinge", "nsgan"] = "lsgan"
    adv_input: Literal["raw", "composite"] = "raw"
    landmark: float = 0.0
    landmark_mode: Literal["l2norm", "squared_l2"] = "l2norm"
    edge: float = 0.0
    vgg_weights: str | None = None

    @property
    def needs_vgg(self) -> bool:
        return self.perceptual > 0 or self.style > 0

    @property
    def needs_discriminator(self) -> bool:
        return self.adversarial > 0


@dataclass(frozen=True)
class OptimConfig:
    """Adam settings and the learning-rate schedule.

    ``milestones`` below 1 are fractions of the run's iterations (HINT's "halve at 75 %"); the LR is multiplied by
    ``gamma`` at each. ``d_lr`` is the discriminator's LR.
    """

    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    d_lr: float = 1e-5
    d_betas: tuple[float, float] | None = None
    milestones: tuple[float, ...] = ()
    gamma: float = 1.0


@dataclass(frozen=True)
class TrainingSpec:
    """One model's training recipe.

    Args:
        loss, optim: the defaults a training config's ``loss:`` / ``optim:`` entries override.
        discriminator: ``discriminator(width=W)`` builds the discriminator; ``None``: the model trains without one.
        forward: the generator call in training, ``forward(net, image01, hole, texture01) -> {"image": …, …}``
            (image in [0, 1], hole 1 = hole, texture01 the data's texture images or ``None``); ``None``: the module's
            ``predict`` with the card's input convention, as at inference.
    """

    loss: LossConfig
    optim: OptimConfig
    discriminator: Callable[..., Any] | None = None
    forward: Callable[..., dict[str, Any]] | None = None
