"""TSGL-LaMa: TSGL's texture-from-structure reconstruction inside a LaMa FFC generator (the 512×512 variant).

Paper: Liu, Wang, Qian, Rui, Wang, "Thinking inside the Convolution for Image Inpainting: Reconstructing Texture via
Structure under Global and Local Side", arXiv 2602.03013 ("Ours (LaMa)" of its Table III). Official code:
github.com/htyjers/ConvInpaint-TSGL, commit e9f6438, ``TSGL_Lama/test/model.py`` (class ``FFCResNetGenerator``).
Re-implemented here; no code copied.

Network: a structure branch (edges, grey, hole mask) and a texture branch (image, hole mask), each a 7×7 local FFC
and five stride-2 FFC down-samplings, the last one splitting the channels into local and global parts. After every
texture down-sampling a reconstruction block (:class:`~inpaintstudio.models.layers.spade.Reconstruction`, here with
the identity term ``g + l + x``) re-normalises the texture and de-normalises it with the structure map of the same
level and with the local residual (what the down-sampling removed, ``X_k − up2_nearest(X_{k+1})``). The bottleneck
is LaMa's: FFC residual blocks, concatenation, five transposed-conv up-samplings, a 7×7 conv and tanh. An auxiliary
structure decoder (``up_high``, training only) is built so that the released checkpoints load strictly.

Conventions of the released test script (``test.py``): the image is fed in [0, 1], un-normalised, and the call is
``netG(image·K, edge·K, gray·K, 1−K)`` with K = 1 on known pixels; edges and grey come from the un-normalised image
(Canny σ 2). The training loader gained a [−1, 1] normalisation on 2024-10-20, nine days after the Places2-512
weights were published (2024-10-11), so [0, 1] is the default here and ``image_range="signed"`` selects [−1, 1] for
checkpoints trained after that change.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inpaintstudio.models.layers.ffc import (
    GENERATOR_KEYS,
    ConcatPair,
    FeaturePair,
    FFCBNAct,
    FFCResBlock,
    PairSequential,
    generator_options,
    upsampling_layers,
)
from inpaintstudio.models.layers.spade import Reconstruction
from inpaintstudio.models.tsgl.network import TRAINING as TSGL_TRAINING
from inpaintstudio.models.tsgl.network import structure_inputs

__all__ = [
    "LamaConfig",
    "Config",
    "TSGLLama",
    "build",
    "config_from_fixture",
    "parity_forward",
    "remap_official_state_dict",
    "predict",
]


@dataclass(frozen=True)
class LamaConfig:
    """TSGL-LaMa; defaults are the released code (``FFCResNetGenerator()`` of ``TSGL_Lama/test/model.py``).

    Args:
        ngf: width of the first structure layer; max_features: width cap; texture_width: texture-branch width
            (the code uses ``max_features`` for it).
        n_downsampling: stride-2 FFC down-samplings per branch (the code's literal 5).
        n_blocks: FFC residual blocks of the bottleneck; aux_blocks: those of the auxiliary structure decoder.
        ratio_global: share of global (spectral) channels at the bottleneck.
        spade_hidden: SPADE shared-MLP width (the code's literal 128).
        recon_identity: reconstruction blocks return ``g + l + x`` (this variant's code).
        global_norm / spade_scale / positional_var: see :mod:`inpaintstudio.models.layers.spade`.
        image_range: ``unit`` feeds the image in [0, 1] and reads the tanh output as [0, 1] pixels (the released
            test script, which the published weights go with); ``signed`` feeds [−1, 1] and maps the output back
            from [−1, 1] (the training loader since 2024-10-20, for checkpoints trained after that change).
        fold_structure_inputs: compute grey/Canny from the brightness-folded image (False: the test loader feeds
            an un-normalised image, so there is nothing to fold).
        canny_sigma: Canny σ on the grey image.
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
    image_range: Literal["unit", "signed"] = "unit"
    fold_structure_inputs: bool = False
    canny_sigma: float = 2.0

    image_size: int = 512


Config = LamaConfig  # the module's config under the contract's name


def _decoder(ups: list[tuple[int, int]], blocks: list[nn.Module], out_channels: int, final: nn.Module) -> list:
    return blocks + [ConcatPair()] + upsampling_layers(ups) + [
        nn.ReflectionPad2d(3), nn.Conv2d(ups[-1][1], out_channels, 7), final]


class TSGLLama(nn.Module):
    """TSGL-LaMa generator. Attribute names follow the official state_dict (strict loading, no renames).

    forward(image, edge, gray, holes): image B×3×H×W, edge/gray B×1×H×W, all multiplied by the KNOWN mask;
    ``holes`` B×1×H×W with 1 = HOLE. H, W multiples of 32 and at least 64. Returns the tanh output B×3×H×W.
    """

    def __init__(self, cfg: LamaConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or LamaConfig()
        self.config = cfg
        r, cap, t, n = cfg.ratio_global, cfg.max_features, cfg.texture_width, cfg.n_downsampling
        widths = [min(cap, cfg.ngf * 2**i) for i in range(n + 1)]
        self.model_high = PairSequential(nn.ReflectionPad2d(3), FFCBNAct(3, cfg.ngf, 7))
        for i in range(n):
            ratio_out = r if i == n - 1 else 0.0
            setattr(self, f"model_high_{i}", PairSequential(FFCBNAct(widths[i], widths[i + 1], 3, 0.0, ratio_out,
                                                                     stride=2, padding=1)))
        self.model_low = PairSequential(nn.ReflectionPad2d(3), FFCBNAct(4, t, 7))
        for i in range(n):
            ratio_out = r if i == n - 1 else 0.0
            setattr(self, f"model_low_{i}", PairSequential(FFCBNAct(t, t, 3, 0.0, ratio_out, stride=2, padding=1)))
        options = {"global_norm": cfg.global_norm, "scale": cfg.spade_scale, "positional_var": cfg.positional_var}
        for i in range(n - 1):
            setattr(self, f"h2l_{i}_l", Reconstruction(t, widths[i + 1], t, cfg.spade_hidden, cfg.recon_identity,
                                                       **options))
        t_g, s_g = int(t * r), int(widths[-1] * r)
        setattr(self, f"h2l_{n - 1}_l", Reconstruction(t - t_g, widths[-1] - s_g, t - t_g, cfg.spade_hidden,
                                                       cfg.recon_identity, **options))
        setattr(self, f"h2l_{n - 1}_g", Reconstruction(t_g, s_g, t_g, cfg.spade_hidden, cfg.recon_identity,
                                                       **options))
        ups = [(widths[i], widths[i - 1]) for i in range(n, 0, -1)]
        self.model = PairSequential(*_decoder(ups, [FFCResBlock(widths[-1], r) for _ in range(cfg.n_blocks)], 3,
                                              nn.Tanh()))
        self.up_high = PairSequential(*_decoder(ups, [FFCResBlock(widths[-1], r) for _ in range(cfg.aux_blocks)],
                                                1, nn.Sigmoid()))

    def run(self, image: Tensor, edge: Tensor, gray: Tensor, holes: Tensor,
            with_edges: bool = False) -> tuple[Tensor, Tensor | None]:
        n = self.config.n_downsampling
        multiple = 2**n
        h, w = image.shape[-2:]
        if h % multiple or w % multiple or h < 2 * multiple or w < 2 * multiple:
            raise ValueError(f"TSGL-LaMa needs H and W that are multiples of {multiple} and at least "
                             f"{2 * multiple}; got {h}×{w}")
        s: FeaturePair = self.model_high(torch.cat([edge, gray, holes], 1))
        structure = []
        for i in range(n):
            s = getattr(self, f"model_high_{i}")(s)
            structure.append(s)
        previous = self.model_low(torch.cat([image, holes], 1))[0]
        for i in range(n - 1):
            raw = getattr(self, f"model_low_{i}")(previous)[0]
            residual = previous - F.interpolate(raw, scale_factor=2, mode="nearest")
            previous = getattr(self, f"h2l_{i}_l")(raw, residual, structure[i][0])
        local, glob = getattr(self, f"model_low_{n - 1}")(previous)
        residual = previous - F.interpolate(torch.cat([local, glob], 1), scale_factor=2, mode="nearest")
        split = local.shape[1]
        local = getattr(self, f"h2l_{n - 1}_l")(local, residual[:, :split], structure[-1][0])
        glob = getattr(self, f"h2l_{n - 1}_g")(glob, residual[:, split:], structure[-1][1])
        out = self.model((local, glob))
        return out, (self.up_high(structure[-1]) if with_edges else None)

    def forward(self, image: Tensor, edge: Tensor, gray: Tensor, holes: Tensor) -> Tensor:
        return self.run(image, edge, gray, holes)[0]


def build(cfg: LamaConfig | None = None) -> TSGLLama:
    return TSGLLama(cfg or LamaConfig())


# ------------------------------------------------------------------------------------------------- parity fixture
# Fixture keys that are code literals of the official generator, with the one value the code has.
_LITERALS = {"input_nc": 4, "output_nc": 3, "add_out_act": "sigmoid", "output_activation": "tanh"}


def config_from_fixture(fixture_json: dict) -> LamaConfig:
    """The official ``FFCResNetGenerator`` arguments (plus the literals the fixture names) mapped onto
    :class:`LamaConfig`; unknown keys and values this implementation does not build are refused.

    ``n_downsampling`` is accepted and ignored: the official constructor overwrites it with the literal 5.
    ``max_features`` is also the texture-branch width.
    """
    values = dict(fixture_json.get("config", fixture_json))
    known = set(GENERATOR_KEYS) | set(_LITERALS) | {"ngf", "n_downsampling", "n_blocks", "max_features",
                                                     "spade_hidden", "aux_blocks"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown TSGL-LaMa config keys in fixture: {unknown}")
    for key, literal in _LITERALS.items():
        if key in values and values[key] != literal:
            raise ValueError(f"TSGL-LaMa fixture sets {key}={values[key]!r}; the official code has {literal!r}")
    options = generator_options(values, "TSGL-LaMa")
    if options.pop("padding_mode", "reflect") != "reflect":
        raise ValueError("TSGL-LaMa: only padding_type 'reflect' is implemented")
    for key in ("ngf", "n_blocks", "spade_hidden", "aux_blocks"):
        if key in values:
            options[key] = int(values[key])
    if "max_features" in values:
        options["max_features"] = options["texture_width"] = int(values["max_features"])
    return LamaConfig(**options)


def parity_forward(net: nn.Module, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
    """``test.py``'s call ``G(I·K, E·K, G·K, H)`` on the fixture's ``image``, ``edge``, ``gray`` and ``mask``
    (H, 1 = hole; K = 1 − H), its composite, and the training script's auxiliary edge output."""
    image, holes = inputs["image"], inputs["mask"]
    known = 1 - holes
    out, edges = net.run(image * known, inputs["edge"] * known, inputs["gray"] * known, holes, with_edges=True)
    return {
        "output_raw": out,
        "output_composite": image * known + out * holes,
        "aux_edge_prediction_trainscript": edges,
    }


def remap_official_state_dict(sd: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict]:
    """Official ``G_<n>.pth`` (DataParallel's ``module.`` already stripped) -> ours: the names are the official
    ones. A discriminator checkpoint (``D_<n>.pth``, keys ``model0…``) is refused with a clear message."""
    if any(key.startswith("model0") for key in sd) and not any(key.startswith("model_low") for key in sd):
        raise ValueError("this is a TSGL-LaMa discriminator checkpoint (D_<n>.pth); import the generator G_<n>.pth")
    return dict(sd), {"dropped": [], "renamed": {}}


def _structure_batch(image01: Tensor, known: Tensor, sigma: float) -> tuple[Tensor, Tensor]:
    """Grey and Canny of each [0, 1] image; Canny only on known pixels, so a hole fill draws no edges."""
    grays, edges = [], []
    for img, keep in zip(image01, known):
        pixels = torch.round(img.detach().float().cpu().clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0).numpy()
        gray, edge = structure_inputs(pixels, sigma, known=keep[0].detach().cpu().numpy() > 0.5)
        grays.append(torch.from_numpy(gray))
        edges.append(torch.from_numpy(edge))
    return torch.stack(grays)[:, None].to(image01.device), torch.stack(edges)[:, None].to(image01.device)


def predict(net: nn.Module, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
    """image B×3×H×W in [0, 1] (the card's range) with holes filled; mask B×1×H×W with 1 = HOLE.

    Grey and Canny edges are computed here. With ``image_range="signed"`` the network sees [−1, 1] and its output
    is mapped back to [0, 1]; with ``unit`` (default) the tanh output is returned as it is, read as [0, 1] pixels,
    as the released test script writes it.
    """
    cfg: LamaConfig = net.config
    holes = mask
    known = 1 - holes
    gray, edge = _structure_batch(image, known, cfg.canny_sigma)
    x = image * 2 - 1 if cfg.image_range == "signed" else image
    out = net(x * known, edge * known, gray * known, holes)
    return {"image": (out + 1) / 2 if cfg.image_range == "signed" else out}


# Training: TSGL's recipe (losses, optimiser, discriminator), fed through predict with the card's convention: this
# variant has no texture branch and no edge head, so it needs no custom forward.
TRAINING = replace(TSGL_TRAINING, forward=None)
