"""What differs between families during training: discriminator, optimiser defaults, how the net is fed.

The generator is always run through the model module's ``predict`` (MODEL_CONTRACT.md) with the card's input
convention applied exactly as :class:`inpaintstudio.engines.TorchEngine` applies it at inference: image mapped to
the card's value range, holes filled with ``hole_fill``, mask in the card's polarity. So training sees the network
the way the studio runs it, and a loss never needs to know a family's polarity: losses get ``hole`` (1 = hole).

Optimiser defaults are the released code's (see each spec's "Training procedure"):

=========  ====================  ===============  ========  ================================================
family     G lr                  betas            D lr      schedule
=========  ====================  ===============  ========  ================================================
sem_net    1e-4                  (0.9, 0.999)     1e-5      none (sem_net.md §7)
mxt        1e-4                  (0.9, 0.999)     1e-5      none (mxt.md §3)
hint       1e-4                  (0.9, 0.999)     1e-5      ×0.5 at 75 % of the run (thesis; hint.md §7)
inclg      2.92e-4               (0.0, 0.9)       2.92e-5   ×0.78 at 20k, 40k, …, 120k (inclg.md §6)
tsgl       5e-4                  (0.5, 0.99)      1e-4      constant (tsgl.md §5 recommends; code: StepLR)
csfc       1e-4                  (0.9, 0.999)     —         constant, no discriminator (cross_scale.md §5)
=========  ====================  ===============  ========  ================================================
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from torch import Tensor, nn

from inpaintstudio.modelcard import ModelCard
from inpaintstudio.training.discriminators import PatchDiscriminator, TSGLDiscriminator

__all__ = ["OptimConfig", "FAMILY_OPTIM", "optim_config_for", "make_discriminator", "run_generator", "to_range",
           "from_range", "uses_landmarks"]


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


FAMILY_OPTIM: dict[str, OptimConfig] = {
    "sem_net": OptimConfig(),
    "mxt": OptimConfig(),
    "hint": OptimConfig(milestones=(0.75,), gamma=0.5),
    "inclg": OptimConfig(lr=2.92e-4, betas=(0.0, 0.9), d_lr=2.92e-5,
                         milestones=(20000, 40000, 60000, 80000, 100000, 120000), gamma=0.78),
    "tsgl": OptimConfig(lr=5e-4, betas=(0.5, 0.99), d_lr=1e-4),
    "csfc": OptimConfig(lr=1e-4, betas=(0.9, 0.999), d_lr=0.0),
}


def _family(card_or_name: ModelCard | str) -> str:
    name = card_or_name.family if isinstance(card_or_name, ModelCard) else card_or_name
    return name.split(".")[0].removesuffix("_512")


def optim_config_for(family: str, overrides: dict[str, Any] | None = None) -> OptimConfig:
    base = FAMILY_OPTIM.get(_family(family), OptimConfig())
    overrides = dict(overrides or {})
    known = {f.name for f in fields(OptimConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown optimiser settings {unknown}; known: {sorted(known)}")
    for key in ("betas", "d_betas", "milestones"):
        if overrides.get(key) is not None:
            overrides[key] = tuple(overrides[key])
    return replace(base, **overrides)


def make_discriminator(card: ModelCard, width: int = 64) -> nn.Module | None:
    """The family's discriminator (``None`` for CSFC, which trains without one)."""
    family = _family(card)
    if family == "csfc":
        return None
    if family == "tsgl":
        return TSGLDiscriminator(width=width)
    return PatchDiscriminator(width=width, attention=family == "inclg")


def uses_landmarks(card: ModelCard) -> bool:
    return "landmarks" in card.capabilities


def to_range(image01: Tensor, card: ModelCard) -> Tensor:
    low, high = card.input.value_range
    return image01 * (high - low) + low


def from_range(image: Tensor, card: ModelCard) -> Tensor:
    low, high = card.input.value_range
    return (image - low) / (high - low)


def run_generator(module: Any, card: ModelCard, net: nn.Module, image01: Tensor, hole: Tensor,
                  texture01: Tensor | None = None, training: bool = False) -> dict[str, Tensor]:
    """``predict`` on (image, hole) with the card's convention; the output image stays in the card's range.

    TSGL (256 model) in training runs its own path instead (:func:`tsgl_training_forward`): structure inputs from the
    full image, the texture image from the data when given, and the auxiliary edge prediction for its loss.
    """
    if training and card.family == "tsgl" and hasattr(net, "encode_texture"):
        return tsgl_training_forward(module, net, image01, hole, texture01)
    conv = card.input
    x = to_range(image01, card)
    if conv.hole_fill is not None:
        x = x * (1 - hole) + conv.hole_fill * hole
    mask = hole if conv.mask_hole_value == 1 else 1 - hole
    return module.predict(net, x, mask)


def tsgl_training_forward(module: Any, net: nn.Module, image01: Tensor, hole: Tensor,
                          texture01: Tensor | None = None) -> dict[str, Tensor]:
    """TSGL's training call (tsgl.md §1.2–1.3, §4.2): grey and Canny computed from the **full** image (folded as the
    release does when ``fold_structure_inputs``), all inputs multiplied by the known mask, ``with_edges=True``.

    Returns the raw output in [−1, 1], the auxiliary edge prediction and its target (the full Canny map).
    ``texture01`` is the RTV image in [0, 1]; without it the RTV smoothing runs here (seconds per 256² image).
    """
    import numpy as np
    import torch

    cfg = net.config
    x = image01 * 2 - 1
    known = 1 - hole
    grays, edges = [], []
    for img in x:
        pixels = module.fold_to_uint8(img) if cfg.fold_structure_inputs else module.to_uint8(img)
        gray, edge = module.structure_inputs(pixels, cfg.canny_sigma)
        grays.append(torch.from_numpy(gray))
        edges.append(torch.from_numpy(edge))
    gray = torch.stack(grays)[:, None].to(x.device)
    edge = torch.stack(edges)[:, None].to(x.device)
    if texture01 is None:
        smooth = [module.rtv_smooth(i.detach().float().cpu().permute(1, 2, 0).numpy(), cfg.rtv_lambda, cfg.rtv_sigma,
                                    cfg.rtv_sharpness, cfg.rtv_iterations) for i in image01]
        texture01 = torch.stack([torch.from_numpy(np.round(np.clip(s, 0, 1) * 255) / 255).permute(2, 0, 1).float()
                                 for s in smooth]).to(x.device)
    texture = texture01.to(x.device) * 2 - 1
    out, edge_pred = net.run(x * known, edge * known, texture * known, gray * known, known, with_edges=True)
    return {"image": out, "edge": edge_pred, "edge_target": edge}
