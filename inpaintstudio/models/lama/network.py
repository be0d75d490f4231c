"""LaMa: large-mask inpainting with fast Fourier convolutions (the Big-LaMa generator).

Paper: R. Suvorov, E. Logacheva, A. Mashikhin, A. Remizova, A. Ashukha, A. Silvestrov, N. Kong, H. Goka, K. Park,
V. Lempitsky, "Resolution-robust Large Mask Inpainting with Fourier Convolutions", WACV 2022 (arXiv 2109.07161).
Official code: github.com/advimman/lama (commit 786f593, Apache-2.0), class ``FFCResNetGenerator`` built from the
``generator`` section of ``configs/training/big-lama.yaml``. Re-implemented here; no code copied.

Network (one ``model`` Sequential, so the official ``state_dict`` names load as they are): reflection pad 3 and a
7×7 purely local FFC, three stride-2 3×3 FFC down-samplings (the last one splits the channels into 25 % local and
75 % global), ``n_blocks`` FFC residual blocks whose global path works in the Fourier domain (receptive field of the
whole image from the first block), concatenation of both branches, three transposed-conv up-samplings, a 7×7 output
conv and a sigmoid. Image in [0, 1], mask 1 = hole; holes are zeroed and the mask is the fourth input channel.

Checkpoints: the Lightning ``best.ckpt`` of ``big-lama.zip`` (generator under ``state_dict`` with the prefix
``generator.``) and IOPaint's TorchScript ``big-lama.pt`` (prefix ``model.generator.``) both import through
:func:`read_official_checkpoint` and :func:`remap_official_state_dict`; the TorchScript archive is opened with
``torch.jit.load`` on the CPU and only its tensors are copied out (its code is never run).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from inpaintstudio.models.layers.ffc import (
    GENERATOR_KEYS,
    ConcatPair,
    FFCBNAct,
    FFCResBlock,
    PairSequential,
    generator_options,
    upsampling_layers,
)
from inpaintstudio.weights import formats

__all__ = [
    "Config",
    "LaMa",
    "build",
    "config_from_fixture",
    "parity_forward",
    "read_official_checkpoint",
    "remap_official_state_dict",
    "predict",
    "official_predict",
]


@dataclass(frozen=True)
class Config:
    """Big-LaMa generator; defaults are ``big-lama.yaml`` with the constructor defaults it leaves unset.

    Args:
        input_nc: input channels (RGB with holes zeroed + mask). output_nc: output channels.
        ngf: base width (init conv); each down-sampling doubles it, capped at ``max_features``.
        n_downsampling: stride-2 FFC convs and transposed convs; H and W must be multiples of 2**n_downsampling.
        n_blocks: FFC residual blocks at the bottleneck (``lama-fourier``: 9).
        ratio_global: share of global (spectral) channels in the residual blocks and after the last down-sampling.
        padding_mode: padding of every 3×3 FFC conv (the code's default ``reflect``).
        output_activation: ``sigmoid`` (Big-LaMa), ``tanh`` or ``none`` (the code's ``add_out_act``).
    """

    input_nc: int = 4
    output_nc: int = 3
    ngf: int = 64
    n_downsampling: int = 3
    n_blocks: int = 18
    max_features: int = 1024
    ratio_global: float = 0.75
    padding_mode: Literal["reflect", "zeros"] = "reflect"
    output_activation: Literal["sigmoid", "tanh", "none"] = "sigmoid"


class LaMa(nn.Module):
    """``FFCResNetGenerator``. forward(x): x B×4×H×W = [image·(1−mask), mask] -> B×3×H×W (sigmoid, not composited).

    H and W must be multiples of 2**n_downsampling and at least twice that (reflect padding at the bottleneck).
    """

    def __init__(self, cfg: Config | None = None) -> None:
        super().__init__()
        cfg = cfg or Config()
        self.config = cfg
        d, cap, ratio, pad = cfg.n_downsampling, cfg.max_features, cfg.ratio_global, cfg.padding_mode
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), FFCBNAct(cfg.input_nc, cfg.ngf, 7, padding_mode=pad)]
        for i in range(d):
            cin, cout = min(cap, cfg.ngf * 2**i), min(cap, cfg.ngf * 2 ** (i + 1))
            ratio_out = ratio if i == d - 1 else 0.0  # the last down-sampling creates the global branch
            layers.append(FFCBNAct(cin, cout, 3, 0.0, ratio_out, stride=2, padding=1, padding_mode=pad))
        bottleneck = min(cap, cfg.ngf * 2**d)
        layers += [FFCResBlock(bottleneck, ratio, pad) for _ in range(cfg.n_blocks)]
        layers.append(ConcatPair())
        ups = [(min(cap, cfg.ngf * 2 ** (d - i)), min(cap, cfg.ngf * 2 ** (d - i - 1))) for i in range(d)]
        layers += upsampling_layers(ups)
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(cfg.ngf, cfg.output_nc, 7)]
        if cfg.output_activation == "sigmoid":
            layers.append(nn.Sigmoid())
        elif cfg.output_activation == "tanh":
            layers.append(nn.Tanh())
        self.model = PairSequential(*layers)

    @property
    def multiple(self) -> int:
        return 2**self.config.n_downsampling

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        m = self.multiple
        if h % m or w % m or h < 2 * m or w < 2 * m:
            raise ValueError(f"LaMa needs H and W that are multiples of {m} and at least {2 * m}; got {h}×{w}")
        return self.model(x)


def build(cfg: Config | None = None) -> LaMa:
    return LaMa(cfg or Config())


# ------------------------------------------------------------------------------------------------- parity fixture
_PLAIN_KEYS = ("input_nc", "output_nc", "ngf", "n_downsampling", "n_blocks", "max_features")
_ACTIVATIONS = {"sigmoid": "sigmoid", "tanh": "tanh"}


def config_from_fixture(fixture_json: dict) -> Config:
    """The ``FFCResNetGenerator`` arguments of a fixture's config.json mapped onto :class:`Config`.

    Unknown keys are refused, and so are values this implementation does not build (see
    :func:`~inpaintstudio.models.layers.ffc.generator_options`).
    """
    values = dict(fixture_json.get("config", fixture_json))
    unknown = sorted(set(values) - set(GENERATOR_KEYS) - set(_PLAIN_KEYS) - {"kind", "add_out_act"})
    if unknown:
        raise ValueError(f"unknown LaMa config keys in fixture: {unknown}")
    if values.get("kind", "ffc_resnet") != "ffc_resnet":
        raise ValueError(f"LaMa fixture kind {values['kind']!r}: only 'ffc_resnet' is implemented")
    options: dict[str, Any] = {key: int(values[key]) for key in _PLAIN_KEYS if key in values}
    options.update(generator_options(values, "LaMa"))
    if "add_out_act" in values:
        act = values["add_out_act"]  # the code's True means tanh, False none
        options["output_activation"] = "tanh" if act is True else "none" if act is False else _ACTIVATIONS.get(act)
        if options["output_activation"] is None:
            raise ValueError(f"LaMa fixture: unknown add_out_act {act!r}")
    return Config(**options)


def network_input(image: Tensor, mask: Tensor) -> Tensor:
    """``cat([image·(1−mask), mask])``: holes zeroed, RGB first, mask last."""
    return torch.cat([image * (1 - mask), mask], dim=1)


def parity_forward(net: nn.Module, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
    """The official eval call on a fixture's ``image`` ([0, 1]) and ``mask`` (1 = hole)."""
    image, mask = inputs["image"], inputs["mask"]
    predicted = net(network_input(image, mask))
    return {"predicted": predicted, "inpainted": mask * predicted + (1 - mask) * image}


def predict(net: nn.Module, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
    """image B×3×H×W in [0, 1], mask B×1×H×W with 1 = hole, H and W padded to multiples of 8."""
    return {"image": net(network_input(image, mask))}


def official_predict(net: nn.Module, rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """LaMa's ``bin/predict.py`` on one image: H×W×3 uint8 RGB and H×W uint8 mask (non-zero = hole) -> uint8 RGB.

    Pads bottom and right to a multiple of 8 with numpy ``symmetric`` (the edge pixel repeated), binarises the mask
    after padding, composites, crops back and truncates ``x·255`` to uint8.
    """
    h, w = mask.shape
    m = net.multiple if isinstance(net, LaMa) else 8
    pad = ((0, -h % m), (0, -w % m))
    image = np.pad(rgb, pad + ((0, 0),), mode="symmetric").astype(np.float32) / 255
    holes = (np.pad(mask, pad, mode="symmetric").astype(np.float32) / 255 > 0).astype(np.float32)
    image_t = torch.from_numpy(image).permute(2, 0, 1)[None]
    holes_t = torch.from_numpy(holes)[None, None]
    with torch.no_grad():
        out = parity_forward(net, {"image": image_t, "mask": holes_t})["inpainted"]
    out = out[0, :, :h, :w].permute(1, 2, 0).numpy()
    return np.clip(out * 255, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------------- checkpoints
_GENERATOR_PREFIXES = ("generator.", "model.generator.")


def read_official_checkpoint(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Tensors of a LaMa checkpoint in either public form (IOPaint's TorchScript ``big-lama.pt`` or the authors'
    Lightning ``best.ckpt``), ``(tensors, metadata)``: see :func:`inpaintstudio.weights.formats.read_packaged`."""
    return formats.read_packaged(path)


def remap_official_state_dict(sd: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict]:
    """Keep the generator: keys under ``generator.`` (Lightning) or ``model.generator.`` (TorchScript) with that
    prefix removed, or bare generator keys (``model.<i>…``). Everything else (discriminator, perceptual-loss
    network, evaluators, averaged generator) is dropped and named."""
    prefix = next((p for p in _GENERATOR_PREFIXES if any(key.startswith(p) for key in sd)), None)
    if prefix is None:
        if any(key.startswith("model.") for key in sd):
            return dict(sd), {"dropped": [], "renamed": {}}
        raise ValueError("no LaMa generator keys (generator.… or model.generator.…) in this checkpoint")
    kept = {key[len(prefix):]: value for key, value in sd.items() if key.startswith(prefix)}
    dropped = sorted(key for key in sd if not key.startswith(prefix))
    return kept, {"dropped": dropped, "renamed": {}}
