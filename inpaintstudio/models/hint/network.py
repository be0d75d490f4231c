"""HINT — High-quality INpainting Transformer (mask-aware encoding, enhanced attention).

Paper::

    @article{chen2024hint,
      title   = {HINT: High-quality INpainting Transformer with Mask-Aware Encoding and Enhanced Attention},
      author  = {Chen, Shuang and Atapour-Abarghouei, Amir and Shum, Hubert P. H.},
      journal = {IEEE Transactions on Multimedia},
      year    = {2024},
      doi     = {10.1109/TMM.2024.3369897},
      note    = {arXiv:2402.14185; also chapter 4 of S. Chen's PhD thesis, Durham University, 2025}
    }

Official code and weights: https://github.com/ChrisChen1023/HINT (``src/networks.py``, class ``HINT``; parity
fixture made at commit 15e867d8c8689b9d5050383fc3884537ae876145). Weights: per-dataset ``InpaintingModel_gen.pth``
files (CelebA-HQ, CelebA, Places2, Dunhuang) on Google Drive, linked from the repository README. Licence of the
official code: MIT (its LICENSE file); the weights carry their training sets' terms.
Documentation: ``docs/models/hint.md``.

Network (Restormer family, 4 scales / 7 stages): gated 3x3 embedding -> stacks of Sandwich blocks
(FFN -> SCAL -> FFN, each pre-normalised and residual) -> three Mask-aware Pixel-shuffle Down-samplings (MPD) ->
latent -> three conv + pixel-shuffle up-samplings with skips (1x1 reduction at levels 3 and 2, none at level 1)
-> 3x3 head -> ``(tanh + 1) / 2``. Tensor contract of :class:`HINT`:
``forward(image B x 3 x H x W RGB in [0, 1], mask B x 1 x H x W, 1 = hole) -> B x 3 x H x W in [0, 1]``
(raw, not composited), H and W multiples of 16.

Differences between the thesis/paper and the released code; the defaults follow the released code so that
official checkpoints load and behave the same:

* Hole fill and mask polarity [CODE != PAPER]: the code fills holes with white, ``I * (1 - M) + M`` with
  M = 1 on holes; the thesis writes ``I * M`` (zero fill, M = 1 on known pixels). The fill is part of the
  input convention (the card: ``hole_fill=1.0``, ``mask_hole_value=1``); :class:`HINT` re-applies the same
  (idempotent) fill itself so a caller cannot feed it an unfilled image.
* SCAL temperature [CODE != PAPER]: the code multiplies the channel-attention logits by a learnable
  ``temperature`` (init 1); the thesis divides by a learnable gamma. Switch ``Config.temperature_mode``
  (``"multiply"`` = code, ``"divide"`` = thesis); both use the parameter name ``attn.temperature``.
* q/k L2 normalisation [CODE-ONLY]: the code L2-normalises q and k along the pixel axis; the thesis
  equation shows none. Switch ``Config.normalize_qk`` (True = code).
* SCAL spatial branch [CODE-ONLY]: 2x2 average pool -> (3x3 conv with bias -> channel LayerNorm -> ReLU) x 2
  -> nearest x2 up-sampling, used as an unbounded multiplicative map (no sigmoid).
* The thesis' "Algorithm 3" (a CBAM-like SCAL) contradicts its own equations, figure and the code; it is
  ignored.
* Refinement blocks: the released definition has none, but the released checkpoints carry untrained
  ``refinement.*`` tensors; :func:`remap_official_state_dict` drops them and names them.
* Thesis parameter count 139 M vs 72 265 248 for the released definition (default :class:`Config`); the
  latter is what the checkpoints hold.
* [INFERRED] Which convolutions follow the ``bias`` flag (False in every released configuration, so it
  never matters for official weights): as in Restormer, the FFN, SCAL q/k/v/out, skip 1x1 and head convs;
  the embedding, MPD and up-sampling convs never have a bias. The SCAL spatial-branch convs always do.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inpaintstudio.models.layers.discriminators import PatchDiscriminator
from inpaintstudio.models.layers.fused import column_norms, gated_dconv_ffn, gelu_mul, pixel_rows, pointwise_depthwise
from inpaintstudio.models.layers.norm import ChannelLayerNorm
from inpaintstudio.models.layers.stage import Stage
from inpaintstudio.trainspec import LossConfig, OptimConfig, TrainingSpec

__all__ = [
    "Config",
    "ChannelLayerNorm",
    "GatedEmbedding",
    "GatedDconvFFN",
    "SCAL",
    "SandwichBlock",
    "MaskAwarePixelShuffleDownsample",
    "PixelShuffleUpsample",
    "HINT",
    "build",
    "config_from_fixture",
    "parity_forward",
    "remap_official_state_dict",
    "predict",
    "downsample_mask",
    "network_input",
]

SIZE_MULTIPLE = 16  # three x1/2 MPDs, then the 2x2 average pool inside the latent SCAL


@dataclass(frozen=True)
class Config:
    """HINT generator hyper-parameters; defaults are the released ``HINT()`` constructor.

    Args:
        dim: base width C. Stage widths C, 2C, 4C, 8C; decoder level 1 runs at 2C.
        num_blocks: Sandwich blocks of [enc L1, enc L2, enc L3, latent]; decoders reuse [2], [1], [0].
        heads: SCAL heads of [L1, L2, L3, latent]; decoders reuse [2], [1], [0].
        ffn_expansion_factor: FFN hidden width ``int(width * factor)``.
        bias: bias flag of the FFN, SCAL q/k/v/out, skip 1x1 and head convs (see module docstring).
        layer_norm_type: only ``"WithBias"`` (channel LayerNorm with bias) is used by the released code.
        in_channels: network input channels (RGB + mask).
        out_channels: output channels (RGB).
        temperature_mode: ``"multiply"`` (code) or ``"divide"`` (thesis) the attention logits by ``temperature``.
        normalize_qk: L2-normalise q and k along the pixel axis (code) or not (thesis equation).
        checkpoint_blocks: recompute each Sandwich block's activations in backward (training memory, not the math).
    """

    dim: int = 48
    num_blocks: tuple[int, int, int, int] = (4, 6, 6, 8)
    heads: tuple[int, int, int, int] = (1, 2, 4, 8)
    ffn_expansion_factor: float = 2.66
    bias: bool = False
    layer_norm_type: Literal["WithBias"] = "WithBias"
    in_channels: int = 4
    out_channels: int = 3
    temperature_mode: Literal["multiply", "divide"] = "multiply"
    normalize_qk: bool = True
    checkpoint_blocks: bool = False

    def __post_init__(self) -> None:
        if self.layer_norm_type != "WithBias":
            raise ValueError(f"layer_norm_type {self.layer_norm_type!r}: the released HINT uses only 'WithBias'")
        if self.temperature_mode not in ("multiply", "divide"):
            raise ValueError(f"temperature_mode {self.temperature_mode!r}: expected 'multiply' or 'divide'")
        if len(self.num_blocks) != 4 or len(self.heads) != 4:
            raise ValueError(f"num_blocks {self.num_blocks} and heads {self.heads} need 4 entries each")
        if self.dim % 2:
            raise ValueError(f"dim {self.dim} must be even (the MPD halves it before pixel-unshuffling)")
        widths = (self.dim, 2 * self.dim, 4 * self.dim, 8 * self.dim)
        for width, head_count in zip((*widths, 2 * self.dim), (*self.heads, self.heads[0])):
            if width % head_count:
                raise ValueError(f"width {width} is not divisible by {head_count} heads")


# ------------------------------------------------------------------------------------------------ layers
class GatedEmbedding(nn.Module):
    """One 3x3 conv ``in -> 2C`` split in halves (a, b); returns ``GELU(a) * b`` (B x C x H x W)."""

    def __init__(self, in_channels: int, dim: int) -> None:
        super().__init__()
        self.gproj1 = nn.Conv2d(in_channels, 2 * dim, kernel_size=3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        gate, value = self.gproj1(x).chunk(2, dim=1)
        return gelu_mul(gate, value)


class GatedDconvFFN(nn.Module):
    """Restormer's gated depth-wise FFN: 1x1 ``D -> 2F``, depth-wise 3x3, ``GELU(u1) * u2``, 1x1 ``F -> D``."""

    def __init__(self, dim: int, expansion: float, bias: bool) -> None:
        super().__init__()
        hidden = int(dim * expansion)
        self.project_in = nn.Conv2d(dim, 2 * hidden, kernel_size=1, bias=bias)
        self.dwconv = nn.Conv2d(2 * hidden, 2 * hidden, kernel_size=3, padding=1, groups=2 * hidden, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, kernel_size=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return gated_dconv_ffn(x, self.project_in, self.dwconv, self.project_out)


class SCAL(nn.Module):
    """Spatially-activated Channel Attention Layer.

    Channel (transposed) self-attention, one ``d x d`` attention matrix per head (heads are contiguous channel
    groups), multiplied element-wise by a spatial map computed at half resolution, then a 1x1 projection.
    The input is the already layer-normalised block input; both branches read it.
    """

    def __init__(self, dim: int, heads: int, bias: bool, temperature_mode: str, normalize_qk: bool) -> None:
        super().__init__()
        self.heads = heads
        self.temperature_mode = temperature_mode
        self.normalize_qk = normalize_qk
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(dim, 3 * dim, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(3 * dim, 3 * dim, kernel_size=3, padding=1, groups=3 * dim, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)
        # indices 0..5 are the official key names (conv.0, conv.1.body, conv.3, conv.4.body)
        self.conv = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=3, padding=1, bias=True),
            ChannelLayerNorm(dim),
            nn.ReLU(),
            nn.Conv2d(dim, dim, kernel_size=3, padding=1, bias=True),
            ChannelLayerNorm(dim),
            nn.ReLU(),
        )

    def channel_attention(self, z: Tensor) -> Tensor:
        b, c, h, w = z.shape
        (qkv,) = pointwise_depthwise(z, self.qkv, self.qkv_dwconv)
        rows = pixel_rows(qkv)
        if rows is not None:
            return self._channel_attention_rows(rows.view(b, h * w, 3 * c)).view(b, h, w, c).permute(0, 3, 1, 2)
        q, k, v = (t.reshape(b, self.heads, c // self.heads, h * w) for t in qkv.chunk(3, 1))
        if self.normalize_qk:
            q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        logits = q @ k.transpose(-2, -1)
        logits = logits * self.temperature if self.temperature_mode == "multiply" else logits / self.temperature
        return (logits.softmax(dim=-1) @ v).reshape(b, c, h, w)

    def _channel_attention_rows(self, qkv: Tensor) -> Tensor:
        """``channel_attention`` on channels-last data, B×P×3C pixel rows -> B×P×C: the products read the rows in
        place (no transposed copies of q, k, v), and the L2 norms along the pixels scale the d×d logits instead of
        q and k themselves (the same quotient)."""
        batch, pixels, width = qkv.shape
        c = width // 3
        d = c // self.heads
        out = qkv.new_empty(batch, pixels, c)
        for i in range(batch):
            q, k, v = (t.view(pixels, self.heads, d).permute(1, 0, 2) for t in qkv[i].split(c, dim=1))  # heads×P×d
            logits = q.transpose(1, 2) @ k  # heads×d×d
            if self.normalize_qk:
                norms = column_norms(qkv[i, :, : 2 * c]).clamp_min(1e-12)  # q's and k's in one pass
                q_norm, k_norm = norms[:c].view(self.heads, d, 1), norms[c:].view(self.heads, 1, d)
                logits = logits / q_norm / k_norm
            logits = logits * self.temperature if self.temperature_mode == "multiply" else logits / self.temperature
            attended = v @ logits.softmax(dim=-1).transpose(1, 2)  # heads×P×d
            out[i] = attended.permute(1, 0, 2).reshape(pixels, c)
        return out

    def spatial_activation(self, z: Tensor) -> Tensor:
        coarse = self.conv(F.avg_pool2d(z, kernel_size=2, stride=2))
        return F.interpolate(coarse, scale_factor=2.0, mode="nearest")

    def forward(self, z: Tensor) -> Tensor:
        return self.project_out(self.channel_attention(z) * self.spatial_activation(z))


class SandwichBlock(nn.Module):
    """``x += FFN1(LN(x)); x += SCAL(LN(x)); x += FFN2(LN(x))`` with three independent LayerNorms."""

    def __init__(self, dim: int, heads: int, cfg: Config) -> None:
        super().__init__()
        self.norm1_1 = ChannelLayerNorm(dim)
        self.ffn1 = GatedDconvFFN(dim, cfg.ffn_expansion_factor, cfg.bias)
        self.norm1 = ChannelLayerNorm(dim)
        self.attn = SCAL(dim, heads, cfg.bias, cfg.temperature_mode, cfg.normalize_qk)
        self.norm2 = ChannelLayerNorm(dim)
        self.ffn = GatedDconvFFN(dim, cfg.ffn_expansion_factor, cfg.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.ffn1(self.norm1_1(x))
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


def _stage(count: int, dim: int, heads: int, cfg: Config) -> Stage:
    return Stage(*(SandwichBlock(dim, heads, cfg) for _ in range(count)), checkpoint_blocks=cfg.checkpoint_blocks)


class MaskAwarePixelShuffleDownsample(nn.Module):
    """MPD: ``D -> 2D`` channels, ``H -> H/2``, with the mask at the input resolution.

    3x3 conv ``D -> D/2``, pixel-unshuffle to ``2D`` channels (channel ``k`` holds cell position ``k mod 4``),
    interleave each feature channel ``k`` with the unshuffled mask channel of the same position
    (``Z[2k] = X[k]``, ``Z[2k+1] = M[k mod 4]``), then a grouped 3x3 conv with one ``(feature, mask)`` pair
    per output channel.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(dim, dim // 2, kernel_size=3, padding=1, bias=False),
            nn.PixelUnshuffle(2),
        )
        self.proj = nn.Conv2d(4 * dim, 2 * dim, kernel_size=3, padding=1, groups=2 * dim, bias=False)

    @staticmethod
    def interleave(features: Tensor, mask: Tensor) -> Tensor:
        """Pair unshuffled feature channel ``k`` with unshuffled mask channel ``k mod 4``."""
        mask_phases = F.pixel_unshuffle(mask.to(features.dtype), 2)  # B x 4 x H/2 x W/2
        tiled = mask_phases.repeat(1, features.shape[1] // 4, 1, 1)
        return torch.stack((features, tiled), dim=2).flatten(1, 2)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return self.proj(self.interleave(self.body(x), mask))


class PixelShuffleUpsample(nn.Module):
    """3x3 conv ``D -> 2D`` then pixel-shuffle(2): ``D/2`` channels at twice the resolution."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(dim, 2 * dim, kernel_size=3, padding=1, bias=False),
            nn.PixelShuffle(2),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


# ------------------------------------------------------------------------------------------------ network
def downsample_mask(mask: Tensor, factor: int) -> Tensor:
    """Nearest resize by ``1/factor`` as the official wrapper does (keeps the top-left pixel of each cell)."""
    h, w = mask.shape[-2:]
    return F.interpolate(mask, size=(h // factor, w // factor), mode="nearest")


def _channels_last(x: Tensor) -> Tensor:
    return x.contiguous(memory_format=torch.channels_last)


def network_input(image: Tensor, mask: Tensor) -> Tensor:
    """``concat([I * (1 - M) + M, M])``: holes filled with white, RGB first, mask last."""
    mask = mask.to(image.dtype)
    return torch.cat((image * (1 - mask) + mask, mask), dim=1)


class HINT(nn.Module):
    """HINT generator. ``forward(image, mask) -> image``; see the module docstring for the tensor contract."""

    def __init__(self, cfg: Config | None = None) -> None:
        super().__init__()
        cfg = cfg or Config()
        self.cfg = cfg
        c, blocks, heads = cfg.dim, cfg.num_blocks, cfg.heads
        self.patch_embed = GatedEmbedding(cfg.in_channels, c)
        self.encoder_level1 = _stage(blocks[0], c, heads[0], cfg)
        self.down1_2 = MaskAwarePixelShuffleDownsample(c)
        self.encoder_level2 = _stage(blocks[1], 2 * c, heads[1], cfg)
        self.down2_3 = MaskAwarePixelShuffleDownsample(2 * c)
        self.encoder_level3 = _stage(blocks[2], 4 * c, heads[2], cfg)
        self.down3_4 = MaskAwarePixelShuffleDownsample(4 * c)
        self.latent = _stage(blocks[3], 8 * c, heads[3], cfg)
        self.up4_3 = PixelShuffleUpsample(8 * c)
        self.reduce_chan_level3 = nn.Conv2d(8 * c, 4 * c, kernel_size=1, bias=cfg.bias)
        self.decoder_level3 = _stage(blocks[2], 4 * c, heads[2], cfg)
        self.up3_2 = PixelShuffleUpsample(4 * c)
        self.reduce_chan_level2 = nn.Conv2d(4 * c, 2 * c, kernel_size=1, bias=cfg.bias)
        self.decoder_level2 = _stage(blocks[1], 2 * c, heads[1], cfg)
        self.up2_1 = PixelShuffleUpsample(2 * c)
        # level 1: concat only, no 1x1 reduction (thesis Table 4.6); the stage runs at 2C
        self.decoder_level1 = _stage(blocks[0], 2 * c, heads[0], cfg)
        self.output = nn.Sequential(nn.Conv2d(2 * c, cfg.out_channels, kernel_size=3, padding=1, bias=cfg.bias))

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        h, w = image.shape[-2:]
        if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
            raise ValueError(f"HINT needs height and width divisible by {SIZE_MULTIPLE}, got {h}x{w}")
        mask = mask.to(image.dtype)
        # Channels-last throughout: oneDNN runs its convolutions without reordering, the channel LayerNorms read
        # contiguous pixel rows, and the residual adds see one layout (pixel (un)shuffle and the interleave return
        # channel-major tensors, so every stage input is made channels-last).
        skip1 = self.encoder_level1(_channels_last(self.patch_embed(_channels_last(network_input(image, mask)))))
        skip2 = self.encoder_level2(_channels_last(self.down1_2(skip1, mask)))
        skip3 = self.encoder_level3(_channels_last(self.down2_3(skip2, downsample_mask(mask, 2))))
        latent = self.latent(_channels_last(self.down3_4(skip3, downsample_mask(mask, 4))))
        up3 = _channels_last(self.up4_3(latent))
        dec3 = self.decoder_level3(_channels_last(self.reduce_chan_level3(torch.cat((up3, skip3), dim=1))))
        up2 = _channels_last(self.up3_2(dec3))
        dec2 = self.decoder_level2(_channels_last(self.reduce_chan_level2(torch.cat((up2, skip2), dim=1))))
        dec1 = self.decoder_level1(torch.cat((_channels_last(self.up2_1(dec2)), skip1), dim=1))
        return (torch.tanh(self.output(dec1)) + 1) / 2


def build(cfg: Config | None = None) -> HINT:
    """The HINT generator (works under ``with torch.device("meta"):``)."""
    return HINT(cfg or Config())


# ------------------------------------------------------------------------------------------------ studio glue
_FIXTURE_KEYS = {
    "dim": "dim",
    "num_blocks": "num_blocks",
    "heads": "heads",
    "ffn_expansion_factor": "ffn_expansion_factor",
    "bias": "bias",
    "LayerNorm_type": "layer_norm_type",
    "inp_channels": "in_channels",
    "out_channels": "out_channels",
}


def config_from_fixture(fixture_json: dict) -> Config:
    """Config from a parity fixture's parsed ``config.json`` (official constructor argument names)."""
    official = fixture_json["config"]
    unknown = sorted(set(official) - set(_FIXTURE_KEYS))
    if unknown:
        raise ValueError(f"unknown HINT fixture config keys: {unknown}")
    values = {ours: official[theirs] for theirs, ours in _FIXTURE_KEYS.items() if theirs in official}
    for key in ("num_blocks", "heads"):
        if key in values:
            values[key] = tuple(values[key])
    return Config(**values)


def parity_forward(net: nn.Module, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
    """Fixture outputs: raw output, composite, and the same network run in float64."""
    image, mask = inputs["image"], inputs["mask"]
    raw = net(image, mask)
    net64 = copy.deepcopy(net).double()
    raw64 = net64(image.double(), mask.double()).float()
    return {
        "output_raw": raw,
        "output_composite": raw * mask + image * (1 - mask),
        "output_float64_reference": raw64,
    }


_UNUSED_OFFICIAL_PREFIXES = ("refinement.",)


def remap_official_state_dict(sd: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict]:
    """Official generator state_dict -> ours: names are identical; the unused ``refinement.*`` blocks go.

    The released checkpoints hold Sandwich blocks under ``refinement.<i>.*`` that the released network
    never registers or calls (untrained initial values); they are dropped and listed. Every other key is
    kept as is, so a missing or extra key is reported by the caller's strict check.
    """
    dropped = [key for key in sd if key.startswith(_UNUSED_OFFICIAL_PREFIXES)]
    kept = {key: value for key, value in sd.items() if not key.startswith(_UNUSED_OFFICIAL_PREFIXES)}
    return kept, {"dropped": dropped, "renamed": {}}


def predict(net: nn.Module, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
    """``image`` B x 3 x H x W in [0, 1] (holes white), ``mask`` B x 1 x H x W (1 = hole), H, W multiples of 16."""
    return {"image": net(image, mask)}


# Training: SEM-Net's objective; the learning rates are halved at 75 % of the run (thesis).
TRAINING = TrainingSpec(
    loss=LossConfig(), optim=OptimConfig(milestones=(0.75,), gamma=0.5), discriminator=PatchDiscriminator
)
