"""SEM-Net: Spatially-Enhanced Mamba Network for image inpainting.

Paper: S. Chen, H. Zhang, A. Atapour-Abarghouei, H. P. H. Shum, "SEM-Net: Efficient Pixel Modelling for Image
Inpainting with Spatially Enhanced SSM", WACV 2025 (arXiv 2411.06318). Official code: https://github.com/
ChrisChen1023/SEM-Net, commit 1a5dcd0fac06dbd9b1ff99656ead06afe741f48e (``src/networks.py`` class ``SEM``, wrapper
``InpaintingModel.forward`` in ``src/models.py``); it imports ``mamba_ssm`` v1 ``Mamba``, re-implemented in
``inpaintstudio.models.layers.ssm``. Licence of the official code: MIT (its LICENSE file).
Documentation: ``docs/models/sem_net.md``.

Tensor contract: ``SEMNet.forward(image B×3×H×W RGB in [0, 1] with holes already set to 1.0, mask B×1×H×W float,
1 = hole) -> B×3×H×W in [0, 1]`` (the full image, not composited); H and W multiples of 16.

Code-vs-paper differences (the released code is the default; switches in ``Config`` select the alternatives):

- Hole fill is white (``I·(1−M) + M``) with mask 1 = hole; the paper writes ``I ⊙ M`` (zero fill, opposite
  polarity). Handled by the card's ``InputConvention`` (``hole_fill=1.0``), not by the network.
- Mamba discretises ``B̄ = Δ·B`` (kernel), not the paper's zero-order hold (see ``layers/ssm.py``).
- The released generator registers modules that its forward never calls: per block ``norm1_1`` and
  ``ffn1``, the ``refinement`` stack, ``output_before`` and the downsamplers' ``proj``. They are kept so official
  checkpoints load with ``strict=True``; ``Config.register_unused_modules=False`` omits them (81 438 048 parameters
  instead of 138 099 744 for the default config).
- The official wrapper builds positional tables of 20 M rows per width on every forward; only the first H·W rows are
  used, so this file builds exactly H·W rows (bit-identical values) and caches them.
- Downsampled masks (½, ¼, ⅛) that the official wrapper threads through the network are never used by any layer
  and are not computed here.
- Ablation variants of the paper as switches: ``snake`` (False = raster scans),
  ``bidirectional`` (False = row scan only, no ``mamba2``/``norm2`` in the SMB), ``positional_embedding``,
  ``spatial_ffn`` (False = Restormer gated-dconv FFN, the paper's "FN"), ``reduce_last_skip`` (True = 1×1 conv
  2C→C after the last skip concat, decoder level 1 at width C), ``layer_norm_type`` ("BiasFree" variant defined but
  unused by the code). The paper's motion-deblurring variant is not implemented: its head and inputs are not published.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inpaintstudio.models.layers.discriminators import PatchDiscriminator
from inpaintstudio.models.layers.fused import gated_dconv_ffn, gather_rows, spatial_gated_dconv_ffn
from inpaintstudio.models.layers.norm import ChannelLayerNorm
from inpaintstudio.models.layers.ssm import DEFAULT_CHUNK, Mamba, ScanPath, gather_layer_norm
from inpaintstudio.models.layers.stage import Stage
from inpaintstudio.trainspec import LossConfig, OptimConfig, TrainingSpec

__all__ = [
    "Config",
    "SEMNet",
    "SnakeMambaBlock",
    "SEFN",
    "SEMBlock",
    "snake_order",
    "positional_table",
    "build",
    "config_from_fixture",
    "parity_forward",
    "predict",
    "remap_official_state_dict",
    "infer_config",
]

SIZE_MULTIPLE = 16  # three pixel-unshuffles, then the SEFN 2x2 average pool at the deepest level


@dataclass(frozen=True)
class Config:
    """SEM-Net generator hyper-parameters; defaults are the released ``SEM()`` constructor.

    Args:
        dim: base width C. Level widths C, 2C, 4C, 8C; decoder level 1 runs at 2C.
        num_blocks: SEM blocks of [enc L1, enc L2, enc L3, latent]; decoders reuse [2], [1], [0].
        num_refinement_blocks: blocks of the registered-but-never-called ``refinement`` stack (width 2C).
        heads: constructor argument the released code never uses; kept for completeness.
        ffn_expansion_factor: SEFN hidden width F = int(width · factor).
        bias: bias of the embed/resampling/1×1/SEFN convs (the SEFN spatial 3×3 convs always have one).
        layer_norm_type: "WithBias" (code) or "BiasFree" channel LayerNorm for norm1/norm2/SEFN.
        inp_channels: network input channels (RGB + mask).
        out_channels: output channels (RGB).
        d_state, d_conv, expand: Mamba arguments of every scan (dt_rank = ceil(width/16)).
        register_unused_modules: register the modules forward never calls (needed for strict official loading).
        snake: snake (boustrophedon) scan orders (code/paper); False = plain raster orders (ablation).
        bidirectional: row and column scans (code/paper); False = row scan only (ablation).
        positional_embedding: add the sinusoidal table to each sequence (code/paper); False = ablation.
        spatial_ffn: SEFN (code/paper); False = Restormer gated-dconv FFN (ablation "FN").
        reduce_last_skip: 1×1 reduction after the last skip concat (supp. Tab. 5 variant); False = code.
        scan_path: ``selective_scan`` path of every Mamba ("auto", "cpu", "triton", "cuda", "chunked", "reference").
        scan_chunk: chunk length of the chunked scan.
        checkpoint_blocks: recompute each SEM block's activations in backward (training memory, not the math).
    """

    dim: int = 48
    num_blocks: tuple[int, int, int, int] = (4, 6, 6, 8)
    num_refinement_blocks: int = 4
    heads: tuple[int, int, int, int] = (1, 2, 4, 8)
    ffn_expansion_factor: float = 2.0
    bias: bool = False
    layer_norm_type: Literal["WithBias", "BiasFree"] = "WithBias"
    inp_channels: int = 4
    out_channels: int = 3
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    register_unused_modules: bool = True
    snake: bool = True
    bidirectional: bool = True
    positional_embedding: bool = True
    spatial_ffn: bool = True
    reduce_last_skip: bool = False
    scan_path: ScanPath = "auto"
    scan_chunk: int = DEFAULT_CHUNK
    checkpoint_blocks: bool = False


# --------------------------------------------------------------------------------------------- helpers


def snake_order(height: int, width: int, by_columns: bool, snake: bool = True, device: torch.device | None = None
                ) -> Tensor:
    """Flat pixel indices (i·W + j) in scan order. Rows: even rows left→right, odd rows right→left;
    columns: even columns top→bottom, odd columns bottom→top. ``snake=False`` gives plain raster orders."""
    grid = torch.arange(height * width, device=device).reshape(height, width)
    if by_columns:
        grid = grid.t()
    if snake:
        grid = grid.clone()
        grid[1::2] = grid[1::2].flip(-1)
    return grid.reshape(-1)


def positional_table(length: int, width: int, device: torch.device | None = None) -> Tensor:
    """Sinusoidal table L×D: ``PE[n, 2k] = sin(n·ω_k)``, ``PE[n, 2k+1] = cos(n·ω_k)``, ω_k = 10000^(−2k/D)."""
    position = torch.arange(length, dtype=torch.float32, device=device)[:, None]
    frequency = torch.exp(torch.arange(0, width, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / width))
    table = torch.zeros(length, width, dtype=torch.float32, device=device)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)
    return table


_TABLES: OrderedDict[tuple, object] = OrderedDict()  # scan orders and PE tables shared by all blocks
_TABLES_KEPT = 16


def _cached(key: tuple, make: Callable[[], object]):  # noqa: ANN202 - returns what ``make`` returns
    """Small LRU cache of constant tables. Built outside inference mode so that autograd may use them later."""
    if key in _TABLES:
        _TABLES.move_to_end(key)
        return _TABLES[key]
    with torch.inference_mode(False):
        value = make()
    _TABLES[key] = value
    while len(_TABLES) > _TABLES_KEPT:
        _TABLES.popitem(last=False)
    return value


def _order_pair(height: int, width: int, by_columns: bool, snake: bool, device: torch.device) -> tuple[Tensor, Tensor]:
    order = snake_order(height, width, by_columns, snake, device)
    return order, torch.argsort(order)


# --------------------------------------------------------------------------------------------- blocks


class SnakeMambaBlock(nn.Module):
    """SMB: row-snake (``norm``, ``mamba``) and column-snake (``norm2``, ``mamba2``) scans, summed. No residual.

    Each direction: gather pixels in scan order → add the PE table → LayerNorm → Mamba → scatter back. Runs in
    float32 with autocast off (as the official code does).
    """

    def __init__(self, dim: int, cfg: Config) -> None:
        super().__init__()
        self.snake = cfg.snake
        self.use_pe = cfg.positional_embedding
        mamba_kwargs = {"d_state": cfg.d_state, "d_conv": cfg.d_conv, "expand": cfg.expand,
                        "scan_path": cfg.scan_path, "scan_chunk": cfg.scan_chunk}
        self.norm = nn.LayerNorm(dim)
        if cfg.bidirectional:
            self.norm2 = nn.LayerNorm(dim)
        self.mamba = Mamba(dim, **mamba_kwargs)
        if cfg.bidirectional:
            self.mamba2 = Mamba(dim, **mamba_kwargs)

    def _orders(self, height: int, width: int, device: torch.device) -> list[tuple[Tensor, Tensor]]:
        """(scan order, its inverse) for the row scan and, when bidirectional, the column scan."""
        directions = (False, True) if hasattr(self, "mamba2") else (False,)
        return [
            _cached(("order", height, width, by_columns, self.snake, device),
                    lambda by_columns=by_columns: _order_pair(height, width, by_columns, self.snake, device))
            for by_columns in directions
        ]

    def _scan(self, pixels: Tensor, order: Tensor, inverse: Tensor, norm: nn.LayerNorm, mamba: Mamba) -> Tensor:
        """pixels: B×L×D in raster order -> B×L×D in raster order, through one scan direction."""
        length, channels = pixels.shape[1:]
        pe = None
        if self.use_pe:
            device = pixels.device
            pe = _cached(("pe", length, channels, device), lambda: positional_table(length, channels, device))
        path = mamba.scan_path if mamba.use_fast_path else "chunked"
        seq = gather_layer_norm(pixels, order, pe, norm, path)  # B×L×D in scan order, + PE, normalised
        return mamba(seq)

    def forward(self, x: Tensor) -> Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = x.float()
            batch, channels, height, width = x.shape
            orders = self._orders(height, width, x.device)
            pixels = x.permute(0, 2, 3, 1).reshape(batch, height * width, channels)  # one channels-last copy
            out = gather_rows(self._scan(pixels, *orders[0], self.norm, self.mamba), orders[0][1])
            if len(orders) > 1:
                out = gather_rows(self._scan(pixels, *orders[1], self.norm2, self.mamba2), orders[1][1], add_to=out)
        return out.view(batch, height, width, channels).permute(0, 3, 1, 2)  # channels-last, as the convs run


class SEFN(nn.Module):
    """Spatially-Enhanced Feed-forward Network; ``spatial=False`` gives Restormer's gated-dconv FFN.

    forward(u: normalised features, s: raw block input) -> B×D×H×W.
    """

    def __init__(self, dim: int, expansion: float, bias: bool, norm_kind: str, spatial: bool = True) -> None:
        super().__init__()
        hidden = int(dim * expansion)
        self.spatial = spatial
        self.project_in = nn.Conv2d(dim, hidden * 2, 1, bias=bias)
        if spatial:
            self.fusion = nn.Conv2d(hidden + dim, hidden, 1, bias=bias)
            self.dwconv_afterfusion = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=bias)
        if spatial:
            self.conv = nn.Sequential(
                nn.Conv2d(dim, dim, 3, padding=1), ChannelLayerNorm(dim, norm_kind), nn.ReLU(inplace=True),
                nn.Conv2d(dim, dim, 3, padding=1), ChannelLayerNorm(dim, norm_kind), nn.ReLU(inplace=True),
            )

    def forward(self, u: Tensor, s: Tensor) -> Tensor:
        if not self.spatial:
            return gated_dconv_ffn(u, self.project_in, self.dwconv, self.project_out)
        indicator = F.interpolate(self.conv(F.avg_pool2d(s, 2)), scale_factor=2, mode="nearest")
        return spatial_gated_dconv_ffn(u, indicator, self.project_in, self.dwconv, self.fusion,
                                       self.dwconv_afterfusion, self.project_out)


class SEMBlock(nn.Module):
    """SEM block: ``x = x + SMB(norm1(x))``; ``x = x + SEFN(norm2(x), block input)``."""

    def __init__(self, dim: int, cfg: Config) -> None:
        super().__init__()
        kind = cfg.layer_norm_type
        if cfg.register_unused_modules:  # registered by the official code, never called
            self.norm1_1 = ChannelLayerNorm(dim, kind)
            self.ffn1 = SEFN(dim, cfg.ffn_expansion_factor, cfg.bias, kind, cfg.spatial_ffn)
        self.norm1 = ChannelLayerNorm(dim, kind)
        self.attn = SnakeMambaBlock(dim, cfg)
        self.norm2 = ChannelLayerNorm(dim, kind)
        self.ffn = SEFN(dim, cfg.ffn_expansion_factor, cfg.bias, kind, cfg.spatial_ffn)

    def forward(self, x: Tensor) -> Tensor:
        block_input = x
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x), block_input)


def _stage(count: int, dim: int, cfg: Config) -> Stage:
    return Stage(*(SEMBlock(dim, cfg) for _ in range(count)), checkpoint_blocks=cfg.checkpoint_blocks)


class PatchEmbed(nn.Module):
    """Conv3×3 in→C (official ``OverlapPatchEmbed``, parameter ``gproj1``)."""

    def __init__(self, in_channels: int, dim: int, bias: bool) -> None:
        super().__init__()
        self.gproj1 = nn.Conv2d(in_channels, dim, 3, padding=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.gproj1(x)


class Downsample(nn.Module):
    """Conv3×3 D→D/2 then PixelUnshuffle(2): width D → 2D, resolution ÷2. ``proj`` is registered, never used."""

    def __init__(self, dim: int, bias: bool, register_unused: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(dim, dim // 2, 3, padding=1, bias=bias), nn.PixelUnshuffle(2))
        if register_unused:  # weight (2D, 2, 3, 3) as in the official state dict
            self.proj = nn.Conv2d(dim * 4, dim * 2, 3, padding=1, groups=dim * 2, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class Upsample(nn.Module):
    """Conv3×3 D→2D then PixelShuffle(2): width D → D/2, resolution ×2."""

    def __init__(self, dim: int, bias: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(dim, dim * 2, 3, padding=1, bias=bias), nn.PixelShuffle(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


# --------------------------------------------------------------------------------------------- network


class SEMNet(nn.Module):
    """SEM-Net generator (official class ``SEM``); attribute names follow the official state dict.

    forward(image B×3×H×W in [0,1] with holes filled white, mask B×1×H×W, 1 = hole) -> B×3×H×W in [0,1].
    """

    def __init__(self, cfg: Config | None = None) -> None:
        super().__init__()
        cfg = cfg or Config()
        self.cfg = cfg
        c, blocks, unused = cfg.dim, cfg.num_blocks, cfg.register_unused_modules
        last_width = c if cfg.reduce_last_skip else 2 * c
        self.patch_embed = PatchEmbed(cfg.inp_channels, c, cfg.bias)
        self.encoder_level1 = _stage(blocks[0], c, cfg)
        self.down1_2 = Downsample(c, cfg.bias, unused)
        self.encoder_level2 = _stage(blocks[1], 2 * c, cfg)
        self.down2_3 = Downsample(2 * c, cfg.bias, unused)
        self.encoder_level3 = _stage(blocks[2], 4 * c, cfg)
        self.down3_4 = Downsample(4 * c, cfg.bias, unused)
        self.latent = _stage(blocks[3], 8 * c, cfg)
        self.up4_3 = Upsample(8 * c, cfg.bias)
        self.reduce_chan_level3 = nn.Conv2d(8 * c, 4 * c, 1, bias=cfg.bias)
        self.decoder_level3 = _stage(blocks[2], 4 * c, cfg)
        self.up3_2 = Upsample(4 * c, cfg.bias)
        self.reduce_chan_level2 = nn.Conv2d(4 * c, 2 * c, 1, bias=cfg.bias)
        self.decoder_level2 = _stage(blocks[1], 2 * c, cfg)
        self.up2_1 = Upsample(2 * c, cfg.bias)
        if cfg.reduce_last_skip:
            self.reduce_chan_level1 = nn.Conv2d(2 * c, c, 1, bias=cfg.bias)
        self.decoder_level1 = _stage(blocks[0], last_width, cfg)
        if unused:
            self.refinement = _stage(cfg.num_refinement_blocks, last_width, cfg)
            self.output_before = nn.Conv2d(last_width, c, 3, padding=1, bias=cfg.bias)
        self.output = nn.Sequential(nn.Conv2d(last_width, cfg.out_channels, 3, padding=1, bias=cfg.bias))

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        height, width = image.shape[-2:]
        if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
            raise ValueError(f"SEM-Net needs H and W multiples of {SIZE_MULTIPLE}, got {height}×{width}")
        # Channels-last throughout: oneDNN runs its convolutions without reordering, the channel LayerNorms read
        # contiguous pixel rows, and the scans flatten pixels without a copy.
        x = torch.cat([image, mask.to(image.dtype)], dim=1).contiguous(memory_format=torch.channels_last)
        x = self.patch_embed(x)
        skip1 = self.encoder_level1(x)
        skip2 = self.encoder_level2(self.down1_2(skip1))
        skip3 = self.encoder_level3(self.down2_3(skip2))
        x = self.latent(self.down3_4(skip3))
        x = self.reduce_chan_level3(torch.cat([self.up4_3(x), skip3], dim=1))
        x = self.decoder_level3(x)
        x = self.reduce_chan_level2(torch.cat([self.up3_2(x), skip2], dim=1))
        x = self.decoder_level2(x)
        x = torch.cat([self.up2_1(x), skip1], dim=1)
        if hasattr(self, "reduce_chan_level1"):
            x = self.reduce_chan_level1(x)
        x = self.decoder_level1(x)
        return (torch.tanh(self.output(x)) + 1) / 2


def build(cfg: Config | None = None) -> SEMNet:
    """Build the generator (works under ``with torch.device("meta"):``)."""
    return SEMNet(cfg or Config())


# --------------------------------------------------------------------------------------------- checkpoints


def config_from_fixture(fixture_json: dict) -> Config:
    """Config from a parity fixture's parsed ``config.json``."""
    raw = fixture_json.get("config", fixture_json)
    mamba = raw.get("mamba", {})
    if mamba.get("bias", False) or not mamba.get("conv_bias", True):
        raise ValueError(f"unsupported Mamba bias settings in fixture: {mamba}")
    return Config(
        dim=int(raw["dim"]),
        num_blocks=tuple(int(n) for n in raw["num_blocks"]),
        num_refinement_blocks=int(raw["num_refinement_blocks"]),
        heads=tuple(int(n) for n in raw["heads"]),
        ffn_expansion_factor=float(raw["ffn_expansion_factor"]),
        bias=bool(raw["bias"]),
        layer_norm_type=raw["LayerNorm_type"],
        inp_channels=int(raw["inp_channels"]),
        out_channels=int(raw["out_channels"]),
        d_state=int(mamba.get("d_state", 16)),
        d_conv=int(mamba.get("d_conv", 4)),
        expand=int(mamba.get("expand", 2)),
    )


_STAGE_NAMES = ("encoder_level1", "encoder_level2", "encoder_level3", "latent")


def infer_config(sd: dict[str, Tensor]) -> Config:
    """The official-layout Config a state dict was saved from (width, block counts, channels, d_state)."""
    embed = sd.get("patch_embed.gproj1.weight")
    if embed is None:
        raise KeyError("patch_embed.gproj1.weight missing: not a SEM-Net generator state dict")

    def count(prefix: str) -> int:
        indices = {int(m.group(1)) for key in sd if (m := re.match(rf"{prefix}\.(\d+)\.", key))}
        return max(indices) + 1 if indices else 0

    a_log = sd.get("encoder_level1.0.attn.mamba.A_log")
    head = sd.get("output.0.weight")
    return Config(
        dim=int(embed.shape[0]),
        inp_channels=int(embed.shape[1]),
        out_channels=int(head.shape[0]) if head is not None else 3,
        num_blocks=tuple(count(name) for name in _STAGE_NAMES),
        num_refinement_blocks=count("refinement"),
        d_state=int(a_log.shape[1]) if a_log is not None else 16,
    )


def remap_official_state_dict(sd: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict]:
    """Official generator state dict (unwrapped, ``module.`` stripped) -> ours. Names need no renaming.

    The official loader is ``strict=False``, so a released file may carry keys its definitions lack.
    Every key that the official definition of the inferred configuration does not register is dropped and named;
    keys it registers but that are absent stay absent (the importer reports them as missing and refuses).
    """
    with torch.device("meta"):
        expected = build(infer_config(sd)).state_dict()
    kept = {key: value for key, value in sd.items() if key in expected}
    dropped = [key for key in sd if key not in expected]
    return kept, {"dropped": dropped, "renamed": {}}


# --------------------------------------------------------------------------------------------- running


def parity_forward(net: nn.Module, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
    """Run the fixture inputs (``image``, ``mask``) like the official wrapper.

    ``output_float64_reference`` is this float32 output again, so that the optional row measures its distance to
    the official float64 run.
    """
    image, mask = inputs["image"], inputs["mask"]
    filled = image * (1 - mask) + mask
    raw = net(filled, mask)
    return {
        "output_raw": raw,
        "output_composite": raw * mask + image * (1 - mask),
        "output_float64_reference": raw,
    }


def predict(net: nn.Module, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
    """image B×3×H×W in [0,1], holes already white; mask B×1×H×W, 1 = hole; H, W multiples of 16."""
    return {"image": net(image, mask)}


# Training: the released code's recipe (L1 normalised by the hole share, VGG-19 perceptual and style, LSGAN on a
# spectral-norm PatchGAN; Adam 1e-4 for G, 1e-5 for D, no schedule).
TRAINING = TrainingSpec(loss=LossConfig(), optim=OptimConfig(), discriminator=PatchDiscriminator)
