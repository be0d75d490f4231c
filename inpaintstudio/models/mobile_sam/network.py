"""MobileSAM: a TinyViT-5M image encoder in front of Segment Anything's prompt encoder and mask decoder.

Papers::

    @article{zhang2023mobilesam,
      title   = {Faster Segment Anything: Towards Lightweight SAM for Mobile Applications},
      author  = {Zhang, Chaoning and Han, Dongshen and Qiao, Yu and Kim, Jung Uk and Bae, Sung-Ho and
                 Lee, Seungkyu and Hong, Choong Seon},
      journal = {arXiv preprint arXiv:2306.14289},
      year    = {2023}
    }
    @inproceedings{kirillov2023sam, title = {Segment Anything}, booktitle = {ICCV}, year = {2023}}
    @inproceedings{wu2022tinyvit, title = {TinyViT: Fast Pretraining Distillation for Small Vision
                   Transformers}, booktitle = {ECCV}, year = {2022}}

Official code and weights: https://github.com/ChaoningZhang/MobileSAM (``mobile_sam/modeling/``; parity
fixture made at commit 34bbbfd), weights ``weights/mobile_sam.pt`` in that repository. Licence: Apache-2.0
(code and weights). Written here from the papers and the fixture's description; no code copied.
Documentation: ``docs/models/mobile_sam.md``.

Tensor contracts:

* :meth:`MobileSAM.embed`: ``image`` 1 x 3 x h' x w' float RGB 0..255 with max(h', w') = 1024 (the
  caller resizes) -> ``1 x 256 x 64 x 64`` image embedding. Normalisation and zero padding to 1024² happen
  inside, as in the authors' ``Sam.preprocess``.
* :meth:`MobileSAM.decode`: the embedding plus prompts in the 1024-frame (points ``1 x N x 2`` (x, y),
  labels ``1 x N`` with 1 = foreground, 0 = background, boxes ``1 x 4``) -> low-resolution mask logits
  ``1 x K x 256 x 256`` and predicted IoUs ``1 x K`` (K = 3 with ``multimask``, else 1).

Behaviour of the released code that this file keeps (each shapes results or checkpoints):

* TinyViT reshapes its final tokens to a 64 x 64 grid, so the encoder only runs on 1024² inputs.
* The last patch merging keeps the resolution (stride 1) when its output width is 320, 448 or 576; the
  authors decide it by that width, so :func:`merge_stride` does too.
* Windowed attention adds a learned bias per head and relative offset. The gathered bias table is cached
  when the module enters eval mode; the authors' cache goes stale when weights are loaded after ``.eval()``.
  Here a load-state-dict hook (and a change of device or dtype) gathers it again.
* Windows are padded with zeros on the right and bottom (before the attention's LayerNorm).
* The prompt encoder adds 0.5 to every coordinate (pixel centres) and, when no box is given, appends one
  "not a point" token.
* ``head`` and ``norm_head`` (an ImageNet classifier) exist in the checkpoint and here, and are unused.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "TinyViTConfig",
    "DecoderConfig",
    "Config",
    "TinyViT",
    "PromptEncoder",
    "MaskDecoder",
    "MobileSAM",
    "merge_stride",
    "build",
    "config_from_fixture",
    "parity_forward",
    "remap_official_state_dict",
    "resized_size",
    "postprocess_masks",
    "IMAGE_SIZE",
]

IMAGE_SIZE = 1024  # the encoder's only input size (after resize and padding)
LOW_RES = 256  # side of the decoder's mask logits
_WIDE_MERGE_WIDTHS = (320, 448, 576)


# ------------------------------------------------------------------------------------------------ configs
@dataclass(frozen=True)
class TinyViTConfig:
    """TinyViT image encoder; defaults are the released MobileSAM (TinyViT-5M) encoder.

    Args:
        embed_dims: widths of the four stages (stage 0 is convolutional).
        depths: blocks per stage.
        num_heads: attention heads of stages 1-3 (entry 0 is unused, kept to mirror the official lists).
        window_sizes: attention window sides of stages 1-3 (entry 0 unused).
        mlp_ratio: MLP hidden width over block width.
        mbconv_expand_ratio: inverted-bottleneck expansion of the stage-0 MBConv blocks.
        local_conv_size: depthwise conv between attention and MLP in each TinyViT block.
        num_classes: width of the unused classifier head (1000 in the release).
        neck_dim: output channels of the neck (the embedding width SAM's decoder reads).
    """

    embed_dims: tuple[int, int, int, int] = (64, 128, 160, 320)
    depths: tuple[int, int, int, int] = (2, 2, 6, 2)
    num_heads: tuple[int, int, int, int] = (2, 4, 5, 10)
    window_sizes: tuple[int, int, int, int] = (7, 7, 14, 7)
    mlp_ratio: float = 4.0
    mbconv_expand_ratio: float = 4.0
    local_conv_size: int = 3
    num_classes: int = 1000
    neck_dim: int = 256


@dataclass(frozen=True)
class DecoderConfig:
    """SAM's prompt encoder and mask decoder; defaults are the released ones.

    Args:
        embed_dim: token and image-embedding width.
        embedding_grid: side of the image embedding (64).
        mask_in_chans: hidden channels of the (unused here) mask-prompt downscaler.
        depth, mlp_dim, num_heads: the two-way transformer.
        num_multimask_outputs: masks of a multimask answer (3); one more token serves the single answer.
        iou_head_depth, iou_head_hidden_dim: the IoU prediction MLP.
    """

    embed_dim: int = 256
    embedding_grid: int = 64
    mask_in_chans: int = 16
    depth: int = 2
    mlp_dim: int = 2048
    num_heads: int = 8
    attention_downsample_rate: int = 2
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256


@dataclass(frozen=True)
class Config:
    encoder: TinyViTConfig = field(default_factory=TinyViTConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    pixel_mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    pixel_std: tuple[float, float, float] = (58.395, 57.12, 57.375)


# ------------------------------------------------------------------------------------------ shared pieces
class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of B x C x H x W (eps 1e-6, as in SAM)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class ConvBN(nn.Sequential):
    """Bias-free conv followed by BatchNorm (keys ``c.*``, ``bn.*``).

    In eval mode the BatchNorm is folded into the conv's weight and bias (computed once, in the input's
    memory layout, and again after a load, a mode change or a move): one conv instead of conv + normalisation.
    """

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, pad: int = 0, groups: int = 1) -> None:
        super().__init__()
        self.add_module("c", nn.Conv2d(cin, cout, kernel, stride, pad, groups=groups, bias=False))
        self.add_module("bn", nn.BatchNorm2d(cout))
        self._folded: tuple[Tensor, Tensor] | None = None
        self.register_load_state_dict_post_hook(lambda module, _keys: setattr(module, "_folded", None))

    def train(self, mode: bool = True) -> "ConvBN":
        self._folded = None
        return super().train(mode)

    def _fold(self, layout: torch.memory_format) -> tuple[Tensor, Tensor]:
        bn = self.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        weight = (self.c.weight * scale[:, None, None, None]).contiguous(memory_format=layout)
        return weight.detach(), (bn.bias - bn.running_mean * scale).detach()

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            return self.bn(self.c(x))
        # the weight takes the input's layout: a mixed pair makes the CPU convolution reorder on every call
        layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        folded = self._folded  # read once: another thread's Selector may refresh it meanwhile
        if folded is None or folded[0].device != x.device or folded[0].dtype != x.dtype \
                or not folded[0].is_contiguous(memory_format=layout):
            folded = self._folded = self._fold(layout)
        conv = self.c
        return F.conv2d(x, folded[0], folded[1], conv.stride, conv.padding, conv.dilation, conv.groups)


# --------------------------------------------------------------------------------------- TinyViT encoder
class PatchEmbed(nn.Module):
    """Two stride-2 3x3 convs: 1024² -> 256² tokens."""

    def __init__(self, in_chans: int, dim: int) -> None:
        super().__init__()
        self.seq = nn.Sequential(ConvBN(in_chans, dim // 2, 3, 2, 1), nn.GELU(), ConvBN(dim // 2, dim, 3, 2, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.seq(x)


class MBConv(nn.Module):
    """Inverted bottleneck (1x1 expand, 3x3 depthwise, 1x1 project), residual, GELU after the sum."""

    def __init__(self, dim: int, expand_ratio: float) -> None:
        super().__init__()
        hidden = int(dim * expand_ratio)
        self.conv1 = ConvBN(dim, hidden)
        self.act1 = nn.GELU()
        self.conv2 = ConvBN(hidden, hidden, 3, 1, 1, groups=hidden)
        self.act2 = nn.GELU()
        self.conv3 = ConvBN(hidden, dim)
        self.act3 = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv3(self.act2(self.conv2(self.act1(self.conv1(x)))))
        return self.act3(x + y)


def merge_stride(out_dim: int) -> int:
    """The authors' rule: a merge into 320, 448 or 576 channels keeps the resolution (see module doc)."""
    return 1 if out_dim in _WIDE_MERGE_WIDTHS else 2


class PatchMerging(nn.Module):
    """1x1 conv, depthwise 3x3 (stride :func:`merge_stride`), 1x1 conv; tokens out (B x L x C)."""

    def __init__(self, resolution: int, dim: int, out_dim: int) -> None:
        super().__init__()
        self.resolution = resolution
        self.act = nn.GELU()
        self.conv1 = ConvBN(dim, out_dim)
        self.conv2 = ConvBN(out_dim, out_dim, 3, merge_stride(out_dim), 1, groups=out_dim)
        self.conv3 = ConvBN(out_dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim == 3:  # tokens from an attention stage
            x = x.transpose(1, 2).reshape(x.shape[0], -1, self.resolution, self.resolution)
        x = self.conv3(self.act(self.conv2(self.act(self.conv1(x)))))
        return x.flatten(2).transpose(1, 2)


class ConvStage(nn.Module):
    """Stage 0: MBConv blocks, then a merge."""

    def __init__(self, dim: int, out_dim: int, resolution: int, depth: int, expand_ratio: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(MBConv(dim, expand_ratio) for _ in range(depth))
        self.downsample = PatchMerging(resolution, dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        return self.downsample(x)


def _relative_offset_index(window: int) -> tuple[int, Tensor]:
    """(number of distinct |dy|,|dx| offsets, N x N index of each pair's offset) for a window of side ``window``,
    numbered in the order the pairs are first met (the checkpoint's bias columns follow that order)."""
    points = list(itertools.product(range(window), range(window)))
    offsets: dict[tuple[int, int], int] = {}
    index = []
    for p in points:
        for q in points:
            offset = (abs(p[0] - q[0]), abs(p[1] - q[1]))
            index.append(offsets.setdefault(offset, len(offsets)))
    return len(offsets), torch.tensor(index, dtype=torch.long).view(len(points), len(points))


class TinyViTAttention(nn.Module):
    """Multi-head self-attention in one window, with a learned bias per head and relative offset."""

    # PyTorch's fused attention matches the fixture as well, but measured no faster on windows of 49 and 196 tokens
    # (benchmarks/selection.py), so the product is spelled out unless this is switched on
    use_sdpa = False

    def __init__(self, dim: int, num_heads: int, window: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        count, index = _relative_offset_index(window)
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, count))
        self.register_buffer("attention_bias_idxs", index, persistent=False)
        self._bias_cache: Tensor | None = None
        # a table gathered before new weights arrived would be stale: refresh it after every load
        self.register_load_state_dict_post_hook(lambda module, _keys: module.refresh_bias_cache())

    def refresh_bias_cache(self) -> None:
        """Gather the bias table again (after new weights, or a move to another device or dtype)."""
        self._bias_cache = None if self.training else self.attention_biases[:, self.attention_bias_idxs].detach()

    def train(self, mode: bool = True) -> "TinyViTAttention":
        super().train(mode)
        self.refresh_bias_cache()
        return self

    def _bias(self, like: Tensor) -> Tensor:
        cache = self._bias_cache  # read once: another thread may refresh it meanwhile
        if self.training or cache is None:
            return self.attention_biases[:, self.attention_bias_idxs]
        if cache.device != like.device or cache.dtype != like.dtype:  # after .to(): gather from the moved values
            cache = self._bias_cache = self.attention_biases[:, self.attention_bias_idxs].detach()
        return cache

    def forward(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        qkv = self.qkv(self.norm(x)).view(b, n, self.num_heads, 3 * self.head_dim)
        q, k, v = qkv.permute(0, 2, 1, 3).split(self.head_dim, dim=-1)
        if self.use_sdpa:  # the same softmax(q k^T / sqrt(d) + bias) v, fused
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=self._bias(x))
        else:
            out = ((q @ k.transpose(-2, -1)) * self.scale + self._bias(x)).softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, -1))


class TinyViTMlp(nn.Module):
    """Pre-normalised two-layer MLP (keys ``norm``, ``fc1``, ``fc2``)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


class TinyViTBlock(nn.Module):
    """Windowed attention (residual), a depthwise conv on the token grid, an MLP (residual)."""

    def __init__(self, dim: int, resolution: int, num_heads: int, window: int, mlp_ratio: float,
                 local_conv_size: int) -> None:
        super().__init__()
        self.resolution = resolution
        self.window = window
        self.attn = TinyViTAttention(dim, num_heads, window)
        self.mlp = TinyViTMlp(dim, int(dim * mlp_ratio))
        self.local_conv = ConvBN(dim, dim, local_conv_size, 1, local_conv_size // 2, groups=dim)

    def _windowed_attention(self, x: Tensor) -> Tensor:
        b, _, c = x.shape
        h = w = self.resolution
        s = self.window
        if h == s and w == s:
            return self.attn(x)
        pad_b, pad_r = (s - h % s) % s, (s - w % s) % s
        grid = F.pad(x.view(b, h, w, c), (0, 0, 0, pad_r, 0, pad_b))
        nh, nw = (h + pad_b) // s, (w + pad_r) // s
        windows = grid.view(b, nh, s, nw, s, c).transpose(2, 3).reshape(b * nh * nw, s * s, c)
        out = self.attn(windows).view(b, nh, nw, s, s, c).transpose(2, 3).reshape(b, nh * s, nw * s, c)
        return out[:, :h, :w].reshape(b, h * w, c)

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        x = x + self._windowed_attention(x)
        grid = x.transpose(1, 2).reshape(b, c, self.resolution, self.resolution)
        x = self.local_conv(grid).view(b, c, n).transpose(1, 2)
        return x + self.mlp(x)


class AttentionStage(nn.Module):
    """Stages 1-3: TinyViT blocks, then a merge (none after the last stage)."""

    def __init__(self, dim: int, out_dim: int | None, resolution: int, depth: int, num_heads: int, window: int,
                 cfg: TinyViTConfig) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            TinyViTBlock(dim, resolution, num_heads, window, cfg.mlp_ratio, cfg.local_conv_size) for _ in range(depth)
        )
        self.downsample = PatchMerging(resolution, dim, out_dim) if out_dim is not None else None

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        return self.downsample(x) if self.downsample is not None else x


class TinyViT(nn.Module):
    """TinyViT with SAM's neck: 1 x 3 x 1024 x 1024 normalised RGB -> 1 x 256 x 64 x 64."""

    def __init__(self, cfg: TinyViTConfig) -> None:
        super().__init__()
        dims = cfg.embed_dims
        self.grid = IMAGE_SIZE // 16
        self.patch_embed = PatchEmbed(3, dims[0])
        resolution = IMAGE_SIZE // 4
        self.layers = nn.ModuleList([ConvStage(dims[0], dims[1], resolution, cfg.depths[0], cfg.mbconv_expand_ratio)])
        for i in range(1, len(dims)):
            resolution //= merge_stride(dims[i])
            out_dim = dims[i + 1] if i + 1 < len(dims) else None
            self.layers.append(AttentionStage(dims[i], out_dim, resolution, cfg.depths[i], cfg.num_heads[i],
                                              cfg.window_sizes[i], cfg))
        if resolution != self.grid:
            raise ValueError(f"TinyViT widths {dims} end at a {resolution}² grid; SAM's decoder needs {self.grid}²")
        self.norm_head = nn.LayerNorm(dims[-1])  # unused classifier, present in the checkpoint
        self.head = nn.Linear(dims[-1], cfg.num_classes)
        self.neck = nn.Sequential(
            nn.Conv2d(dims[-1], cfg.neck_dim, kernel_size=1, bias=False),
            LayerNorm2d(cfg.neck_dim),
            nn.Conv2d(cfg.neck_dim, cfg.neck_dim, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(cfg.neck_dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        if tuple(x.shape[-2:]) != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"TinyViT runs on {IMAGE_SIZE}² inputs, got {tuple(x.shape[-2:])}")
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        b, _, c = x.shape
        return self.neck(x.view(b, self.grid, self.grid, c).permute(0, 3, 1, 2))


# ------------------------------------------------------------------------------------------ prompt encoder
class RandomFourierPositions(nn.Module):
    """Positional encoding by a fixed random Gaussian projection of coordinates in [0, 1]."""

    def __init__(self, num_feats: int) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn(2, num_feats))

    def encode(self, coords: Tensor) -> Tensor:
        """``... x 2`` coordinates in [0, 1] -> ``... x 2F`` (sin, cos)."""
        projected = 2 * math.pi * ((2 * coords - 1) @ self.positional_encoding_gaussian_matrix)
        return torch.cat([projected.sin(), projected.cos()], dim=-1)

    def grid(self, side: int) -> Tensor:
        """The dense encoding of a side x side grid of cell centres: ``2F x side x side``."""
        matrix = self.positional_encoding_gaussian_matrix
        centres = (torch.arange(side, device=matrix.device, dtype=matrix.dtype) + 0.5) / side
        ys, xs = torch.meshgrid(centres, centres, indexing="ij")
        return self.encode(torch.stack([xs, ys], dim=-1)).permute(2, 0, 1)

    def points(self, coords: Tensor, image_size: int) -> Tensor:
        """Pixel coordinates (x, y) in an image_size² frame -> ``B x N x 2F``."""
        return self.encode((coords / image_size).to(torch.float32))


class PromptEncoder(nn.Module):
    """Sparse prompt tokens from points and boxes; the dense "no mask" embedding."""

    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        dim = cfg.embed_dim
        self.grid_side = cfg.embedding_grid
        self.pe_layer = RandomFourierPositions(dim // 2)
        # 0 background point, 1 foreground point, 2 box top-left, 3 box bottom-right
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, dim)
        chans = cfg.mask_in_chans
        # mask prompts are not offered by the studio; the layers are kept so the checkpoint loads strictly
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, chans // 4, kernel_size=2, stride=2), LayerNorm2d(chans // 4), nn.GELU(),
            nn.Conv2d(chans // 4, chans, kernel_size=2, stride=2), LayerNorm2d(chans), nn.GELU(),
            nn.Conv2d(chans, dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, dim)

    def dense_positions(self) -> Tensor:
        return self.pe_layer.grid(self.grid_side).unsqueeze(0)

    def _embed_points(self, coords: Tensor, labels: Tensor, pad: bool) -> Tensor:
        coords = coords + 0.5
        if pad:
            coords = torch.cat([coords, coords.new_zeros(coords.shape[0], 1, 2)], dim=1)
            labels = torch.cat([labels, -labels.new_ones(labels.shape[0], 1)], dim=1)
        tokens = self.pe_layer.points(coords, IMAGE_SIZE)
        labels = labels[..., None]
        tokens = torch.where(labels == -1, self.not_a_point_embed.weight, tokens)
        tokens = tokens + (labels == 0) * self.point_embeddings[0].weight
        return tokens + (labels == 1) * self.point_embeddings[1].weight

    def _embed_boxes(self, boxes: Tensor) -> Tensor:
        corners = self.pe_layer.points((boxes + 0.5).reshape(-1, 2, 2), IMAGE_SIZE)
        return torch.cat([corners[:, :1] + self.point_embeddings[2].weight,
                          corners[:, 1:] + self.point_embeddings[3].weight], dim=1)

    def forward(self, points: tuple[Tensor, Tensor] | None, boxes: Tensor | None) -> tuple[Tensor, Tensor]:
        """(sparse ``B x T x C``, dense ``B x C x 64 x 64``) for the given prompts (B = 1 in the studio)."""
        weight = self.no_mask_embed.weight
        parts = []
        if points is not None:
            parts.append(self._embed_points(points[0], points[1], pad=boxes is None))
        if boxes is not None:
            parts.append(self._embed_boxes(boxes))
        batch = parts[0].shape[0] if parts else 1
        sparse = torch.cat(parts, dim=1) if parts else weight.new_zeros(batch, 0, weight.shape[1])
        dense = weight.reshape(1, -1, 1, 1).expand(batch, -1, self.grid_side, self.grid_side)
        return sparse, dense


# -------------------------------------------------------------------------------------------- mask decoder
class TokenAttention(nn.Module):
    """Attention with q/k/v projections to ``dim / downsample_rate`` channels (SAM's decoder attention)."""

    def __init__(self, dim: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        inner = dim // downsample_rate
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, inner)
        self.k_proj = nn.Linear(dim, inner)
        self.v_proj = nn.Linear(dim, inner)
        self.out_proj = nn.Linear(inner, dim)

    def _heads(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        q, k, v = self._heads(self.q_proj(q)), self._heads(self.k_proj(k)), self._heads(self.v_proj(v))
        attn = torch.softmax((q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1]), dim=-1)
        out = (attn @ v).transpose(1, 2)
        return self.out_proj(out.reshape(out.shape[0], out.shape[1], -1))


class MLPBlock(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.lin1 = nn.Linear(dim, hidden)
        self.lin2 = nn.Linear(hidden, dim)
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.lin2(self.act(self.lin1(x)))


class TwoWayBlock(nn.Module):
    """Token self-attention, tokens -> image, MLP, image -> tokens; post-norm after each."""

    def __init__(self, cfg: DecoderConfig, skip_first_layer_pe: bool) -> None:
        super().__init__()
        dim, heads, rate = cfg.embed_dim, cfg.num_heads, cfg.attention_downsample_rate
        self.self_attn = TokenAttention(dim, heads)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn_token_to_image = TokenAttention(dim, heads, rate)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLPBlock(dim, cfg.mlp_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.norm4 = nn.LayerNorm(dim)
        self.cross_attn_image_to_token = TokenAttention(dim, heads, rate)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(self, queries: Tensor, keys: Tensor, query_pe: Tensor, key_pe: Tensor) -> tuple[Tensor, Tensor]:
        if self.skip_first_layer_pe:  # the first block replaces the tokens (no residual, no positions)
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norm1(queries)
        q, k = queries + query_pe, keys + key_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image(q, k, keys))
        queries = self.norm3(queries + self.mlp(queries))
        q, k = queries + query_pe, keys + key_pe
        keys = self.norm4(keys + self.cross_attn_image_to_token(k, q, queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(TwoWayBlock(cfg, skip_first_layer_pe=i == 0) for i in range(cfg.depth))
        self.final_attn_token_to_image = TokenAttention(cfg.embed_dim, cfg.num_heads, cfg.attention_downsample_rate)
        self.norm_final_attn = nn.LayerNorm(cfg.embed_dim)

    def forward(self, image: Tensor, image_pe: Tensor, tokens: Tensor) -> tuple[Tensor, Tensor]:
        keys = image.flatten(2).transpose(1, 2)
        key_pe = image_pe.flatten(2).transpose(1, 2)
        queries = tokens
        for layer in self.layers:
            queries, keys = layer(queries, keys, tokens, key_pe)
        queries = queries + self.final_attn_token_to_image(queries + tokens, keys + key_pe, keys)
        return self.norm_final_attn(queries), keys


class MLP(nn.Module):
    """Linear layers with ReLU between them (keys ``layers.<i>``)."""

    def __init__(self, cin: int, hidden: int, cout: int, depth: int) -> None:
        super().__init__()
        widths = [cin, *([hidden] * (depth - 1)), cout]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
        return x


class MaskDecoder(nn.Module):
    """Output tokens attend to the image; each mask token's MLP weighs the upscaled embedding into a mask."""

    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        dim = cfg.embed_dim
        self.num_mask_tokens = cfg.num_multimask_outputs + 1
        self.transformer = TwoWayTransformer(cfg)
        self.iou_token = nn.Embedding(1, dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(dim, dim // 4, kernel_size=2, stride=2), LayerNorm2d(dim // 4), nn.GELU(),
            nn.ConvTranspose2d(dim // 4, dim // 8, kernel_size=2, stride=2), nn.GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(MLP(dim, dim, dim // 8, 3) for _ in range(self.num_mask_tokens))
        self.iou_prediction_head = MLP(dim, cfg.iou_head_hidden_dim, self.num_mask_tokens, cfg.iou_head_depth)

    def forward(self, image: Tensor, image_pe: Tensor, sparse: Tensor, dense: Tensor,
                multimask: bool) -> tuple[Tensor, Tensor]:
        """Low-res logits ``B x K x 256 x 256`` and IoUs ``B x K``: K = 3 (tokens 1..3) or 1 (token 0)."""
        batch = sparse.shape[0]
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat([output_tokens.unsqueeze(0).expand(batch, -1, -1), sparse], dim=1)
        src = image.expand(batch, -1, -1, -1) + dense
        b, c, h, w = src.shape
        hs, keys = self.transformer(src, image_pe.expand(batch, -1, -1, -1), tokens)
        upscaled = self.output_upscaling(keys.transpose(1, 2).reshape(b, c, h, w))
        mask_tokens = hs[:, 1:1 + self.num_mask_tokens]
        hyper = torch.stack([mlp(mask_tokens[:, i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1)
        _, cu, hu, wu = upscaled.shape
        masks = (hyper @ upscaled.view(b, cu, hu * wu)).view(b, -1, hu, wu)
        iou = self.iou_prediction_head(hs[:, 0])
        keep = slice(1, None) if multimask else slice(0, 1)
        return masks[:, keep], iou[:, keep]


# ------------------------------------------------------------------------------------------------ the model
class MobileSAM(nn.Module):
    """Image encoder, prompt encoder and mask decoder under the official key prefixes."""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.image_encoder = TinyViT(cfg.encoder)
        self.prompt_encoder = PromptEncoder(cfg.decoder)
        self.mask_decoder = MaskDecoder(cfg.decoder)
        self.register_buffer("pixel_mean", torch.tensor(cfg.pixel_mean).view(-1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(cfg.pixel_std).view(-1, 1, 1), persistent=False)

    def preprocess(self, image: Tensor) -> Tensor:
        """Normalise 0..255 RGB and pad with zeros on the right and bottom to 1024²."""
        h, w = image.shape[-2:]
        if max(h, w) > IMAGE_SIZE:
            raise ValueError(f"resize the image so its longest side is {IMAGE_SIZE} first, got {h}x{w}")
        x = (image - self.pixel_mean) / self.pixel_std
        return F.pad(x, (0, IMAGE_SIZE - w, 0, IMAGE_SIZE - h))

    def embed(self, image: Tensor) -> Tensor:
        # channels-last runs TinyViT's convolutions faster on the CPU (benchmarks/selection.py); same values
        return self.image_encoder(self.preprocess(image).contiguous(memory_format=torch.channels_last))

    def decode(self, embedding: Tensor, points: tuple[Tensor, Tensor] | None = None, boxes: Tensor | None = None,
               multimask: bool = True) -> tuple[Tensor, Tensor]:
        sparse, dense = self.prompt_encoder(points, boxes)
        return self.mask_decoder(embedding, self.prompt_encoder.dense_positions(), sparse, dense, multimask)


def build(cfg: Config | None = None) -> MobileSAM:
    """MobileSAM in eval mode (works under ``with torch.device("meta"):``)."""
    return MobileSAM(cfg or Config()).eval()


# ---------------------------------------------------------------------------------------------- geometry
def resized_size(height: int, width: int, longest: int = IMAGE_SIZE) -> tuple[int, int]:
    """(h', w') with the longest side ``longest``, rounded as the authors' ``ResizeLongestSide``."""
    scale = longest / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def postprocess_masks(low_res: Tensor, resized: tuple[int, int], original: tuple[int, int]) -> Tensor:
    """Logits ``B x K x 256 x 256`` -> ``B x K x H x W`` of the raw photo (bilinear, crop the padding, bilinear)."""
    masks = F.interpolate(low_res, (IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)
    masks = masks[..., : resized[0], : resized[1]]
    return F.interpolate(masks, original, mode="bilinear", align_corners=False)


# ------------------------------------------------------------------------------------------- studio glue
def config_from_fixture(fixture_json: dict) -> Config:
    """Config from a parity fixture's ``config.json`` (the official constructor arguments)."""
    official = fixture_json["config"]
    enc, prompt, dec = official["image_encoder"], official["prompt_encoder"], official["mask_decoder"]
    if enc.get("img_size", IMAGE_SIZE) != IMAGE_SIZE or tuple(prompt["input_image_size"]) != (IMAGE_SIZE,) * 2:
        raise ValueError(f"MobileSAM runs at {IMAGE_SIZE}² only")
    if enc.get("drop_path_rate", 0.0) or enc.get("drop_rate", 0.0):
        raise ValueError("drop rates must be 0 for inference")
    side = prompt["image_embedding_size"]
    if side[0] != side[1]:
        raise ValueError(f"square image embedding expected, got {side}")
    transformer = dec["transformer"]
    if transformer["embedding_dim"] != dec["transformer_dim"] or prompt["embed_dim"] != dec["transformer_dim"]:
        raise ValueError("prompt encoder, transformer and decoder widths must agree")
    encoder = TinyViTConfig(
        embed_dims=tuple(enc["embed_dims"]), depths=tuple(enc["depths"]), num_heads=tuple(enc["num_heads"]),
        window_sizes=tuple(enc["window_sizes"]), mlp_ratio=float(enc["mlp_ratio"]),
        mbconv_expand_ratio=float(enc["mbconv_expand_ratio"]), local_conv_size=int(enc["local_conv_size"]),
        num_classes=int(enc["num_classes"]),
    )
    decoder = DecoderConfig(
        embed_dim=int(prompt["embed_dim"]), embedding_grid=int(side[0]), mask_in_chans=int(prompt["mask_in_chans"]),
        depth=int(transformer["depth"]), mlp_dim=int(transformer["mlp_dim"]), num_heads=int(transformer["num_heads"]),
        num_multimask_outputs=int(dec["num_multimask_outputs"]), iou_head_depth=int(dec["iou_head_depth"]),
        iou_head_hidden_dim=int(dec["iou_head_hidden_dim"]),
    )
    return Config(encoder=encoder, decoder=decoder, pixel_mean=tuple(official["pixel_mean"]),
                  pixel_std=tuple(official["pixel_std"]))


def parity_forward(net: nn.Module, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
    """Every fixture output from the fixture's resized image and resized-frame prompts."""
    image = inputs["resized_image"].permute(2, 0, 1)[None].float()
    embedding = net.embed(image)
    points = (inputs["point_coords_resized"][None].float(), inputs["point_labels"][None])
    box = inputs["box_resized"].float().reshape(1, 4)
    cases = {"points": (points, None), "box": (None, box), "points_box": (points, box)}
    out = {"image_embeddings": embedding}
    for case, (pts, bx) in cases.items():
        sparse, dense = net.prompt_encoder(pts, bx)
        out[f"{case}.sparse"] = sparse
        out["dense_no_mask"] = dense[..., :2, :2]
        for kind, multimask in (("multi", True), ("single", False)):
            logits, iou = net.decode(embedding, pts, bx, multimask=multimask)
            out[f"{case}.{kind}.low_res_logits"] = logits
            out[f"{case}.{kind}.iou_predictions"] = iou
    raw = inputs["raw_image"]
    original = (raw.shape[0], raw.shape[1])
    out["points_box.multi.masks_logits"] = postprocess_masks(
        out["points_box.multi.low_res_logits"], resized_size(*original), original)
    return out


def remap_official_state_dict(sd: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict]:
    """The released ``mobile_sam.pt`` -> ours: the names are the official ones; nothing is renamed or dropped.

    The non-persistent buffers (``pixel_mean``, ``pixel_std``, ``attention_bias_idxs``) are not in the file;
    a checkpoint saved with them would carry them, so they are dropped and named.
    """
    derived = ("pixel_mean", "pixel_std")
    dropped = [key for key in sd if key in derived or key.endswith(".attention_bias_idxs")]
    kept = {key: value for key, value in sd.items() if key not in dropped}
    return kept, {"dropped": dropped, "renamed": {}}
