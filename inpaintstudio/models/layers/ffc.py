"""Fast Fourier convolution blocks as LaMa builds them (shared by ``lama`` and ``tsgl_512``).

Papers: L. Chi, B. Jiang, Y. Mu, "Fast Fourier Convolution", NeurIPS 2020; R. Suvorov et al., "Resolution-robust
Large Mask Inpainting with Fourier Convolutions", WACV 2022 (arXiv 2109.07161). LaMa's ``ffc.py``
(github.com/advimman/lama, Apache-2.0) was the reference for structure and key names; no code is copied.

A feature is a pair ``(local, global)``. A branch that does not exist is ``None`` (LaMa uses the integer 0). The
four FFC paths are ``convl2l``, ``convl2g``, ``convg2l`` (3×3 or 7×7 convs, no bias) and ``convg2g`` (a
:class:`SpectralTransform`); a path whose input or output branch is empty has no module, so it has no keys, exactly as
LaMa's ``nn.Identity`` placeholders. Only what Big-LaMa and TSGL-LaMa use is implemented: no local Fourier unit
(``enable_lfu`` false), no gating, no spectral positional encoding, no squeeze-excitation, stride-1 spectral paths.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "FeaturePair",
    "FourierUnit",
    "SpectralTransform",
    "FFC",
    "FFCBNAct",
    "FFCResBlock",
    "ConcatPair",
    "PairSequential",
    "upsampling_layers",
    "GENERATOR_KEYS",
    "generator_options",
]

FeaturePair = tuple[Tensor, Tensor | None]


def _as_pair(x: FeaturePair | Tensor) -> FeaturePair:
    return x if isinstance(x, tuple) else (x, None)


class FourierUnit(nn.Module):
    """Real FFT over (H, W) with ``norm='ortho'``, real/imaginary parts interleaved per channel
    ``[c0.re, c0.im, c1.re, …]``, 1×1 conv + BatchNorm + ReLU in the frequency domain, inverse FFT to H×W.

    The FFTs run in float32 even under autocast (half-precision FFTs need power-of-two sizes)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_layer = nn.Conv2d(2 * channels, 2 * channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(2 * channels)

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        spec = torch.fft.rfftn(x.float(), dim=(-2, -1), norm="ortho")
        stacked = torch.stack((spec.real, spec.imag), dim=2).reshape(b, -1, h, w // 2 + 1).to(x.dtype)
        stacked = F.relu(self.bn(self.conv_layer(stacked)))
        stacked = stacked.view(b, -1, 2, h, w // 2 + 1).float()
        spec = torch.complex(stacked[:, :, 0], stacked[:, :, 1])
        return torch.fft.irfftn(spec, s=(h, w), dim=(-2, -1), norm="ortho").to(x.dtype)


class SpectralTransform(nn.Module):
    """Global path: ``y = ReLU(BN(conv1×1(x)))`` to half the output width, then ``conv1×1(y + FourierUnit(y))``."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.stride = stride
        self.conv1 = nn.Sequential(nn.Conv2d(cin, cout // 2, 1, bias=False), nn.BatchNorm2d(cout // 2), nn.ReLU())
        self.fu = FourierUnit(cout // 2)
        self.conv2 = nn.Conv2d(cout // 2, cout, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 2:
            x = F.avg_pool2d(x, 2, 2)
        x = self.conv1(x)
        return self.conv2(x + self.fu(x))


class FFC(nn.Module):
    """Local/global channel split: ``int(c·ratio)`` global channels, the rest local.

    local out = l2l(x_l) + g2l(x_g); global out = l2g(x_l) + g2g(x_g).
    """

    def __init__(self, cin: int, cout: int, kernel: int, ratio_in: float, ratio_out: float, stride: int = 1,
                 padding: int = 0, padding_mode: str = "reflect") -> None:
        super().__init__()
        in_g, out_g = int(cin * ratio_in), int(cout * ratio_out)
        in_l, out_l = cin - in_g, cout - out_g

        def conv(a: int, b: int) -> nn.Module | None:
            if a == 0 or b == 0:
                return None
            return nn.Conv2d(a, b, kernel, stride, padding, bias=False, padding_mode=padding_mode)

        self.convl2l = conv(in_l, out_l)
        self.convl2g = conv(in_l, out_g)
        self.convg2l = conv(in_g, out_l)
        self.convg2g = SpectralTransform(in_g, out_g, stride) if in_g and out_g else None
        self.out_l, self.out_g = out_l, out_g

    def forward(self, x: FeaturePair | Tensor) -> FeaturePair:
        x_l, x_g = _as_pair(x)
        out_l = out_g = None
        if self.out_l:
            out_l = self.convl2l(x_l) if self.convl2l is not None else 0
            if self.convg2l is not None and x_g is not None:
                out_l = out_l + self.convg2l(x_g)
        if self.out_g:
            out_g = self.convl2g(x_l) if self.convl2g is not None else 0
            if self.convg2g is not None and x_g is not None:
                out_g = out_g + self.convg2g(x_g)
        return out_l, out_g


class FFCBNAct(nn.Module):
    """LaMa ``FFC_BN_ACT``: an :class:`FFC`, then BatchNorm and ReLU on each branch that exists."""

    def __init__(self, cin: int, cout: int, kernel: int, ratio_in: float = 0.0, ratio_out: float = 0.0,
                 stride: int = 1, padding: int = 0, padding_mode: str = "reflect") -> None:
        super().__init__()
        self.ffc = FFC(cin, cout, kernel, ratio_in, ratio_out, stride, padding, padding_mode)
        out_g = int(cout * ratio_out)
        self.bn_l = nn.BatchNorm2d(cout - out_g) if cout - out_g else None
        self.bn_g = nn.BatchNorm2d(out_g) if out_g else None

    def forward(self, x: FeaturePair | Tensor) -> FeaturePair:
        x_l, x_g = self.ffc(x)
        x_l = F.relu(self.bn_l(x_l)) if self.bn_l is not None else x_l
        x_g = F.relu(self.bn_g(x_g)) if self.bn_g is not None else x_g
        return x_l, x_g


class FFCResBlock(nn.Module):
    """LaMa ``FFCResnetBlock``: two 3×3 :class:`FFCBNAct` (ReLU after both), input added per branch."""

    def __init__(self, dim: int, ratio: float, padding_mode: str = "reflect") -> None:
        super().__init__()
        self.conv1 = FFCBNAct(dim, dim, 3, ratio, ratio, padding=1, padding_mode=padding_mode)
        self.conv2 = FFCBNAct(dim, dim, 3, ratio, ratio, padding=1, padding_mode=padding_mode)

    def forward(self, x: FeaturePair | Tensor) -> FeaturePair:
        x_l, x_g = _as_pair(x)
        y_l, y_g = self.conv2(self.conv1((x_l, x_g)))
        return x_l + y_l, (x_g + y_g) if x_g is not None else y_g


class ConcatPair(nn.Module):
    """LaMa ``ConcatTupleLayer``: ``cat([local, global])`` along channels (local first)."""

    def forward(self, x: FeaturePair | Tensor) -> Tensor:
        x_l, x_g = _as_pair(x)
        return torch.cat([x_l, x_g], dim=1) if x_g is not None else x_l


class PairSequential(nn.Sequential):
    """A Sequential whose items may pass (local, global) pairs; a reflection pad met with a pair pads the local
    part (LaMa's pads only ever see a plain tensor or a local-only pair)."""

    def forward(self, x: FeaturePair | Tensor) -> FeaturePair | Tensor:  # type: ignore[override]
        for layer in self:
            if isinstance(layer, nn.ReflectionPad2d) and isinstance(x, tuple):
                x = (layer(x[0]), x[1])
            else:
                x = layer(x)
        return x


def upsampling_layers(widths: list[tuple[int, int]]) -> list[nn.Module]:
    """LaMa's decoder steps: per ``(cin, cout)`` a ConvTranspose2d (k3, s2, p1, output_padding 1, bias) that
    doubles H and W, BatchNorm2d and ReLU."""
    layers: list[nn.Module] = []
    for cin, cout in widths:
        layers += [nn.ConvTranspose2d(cin, cout, 3, 2, 1, output_padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
    return layers


# LaMa's FFCResNetGenerator arguments that this module builds in exactly one way.
_FIXED_GENERATOR_VALUES: dict[str, object] = {
    "norm_layer": "BatchNorm2d",
    "activation_layer": "ReLU",
    "up_norm_layer": "BatchNorm2d",
    "up_activation": "ReLU",
    "out_ffc": False,
    "out_ffc_kwargs": {},
    "spatial_transform_layers": None,
    "spatial_transform_kwargs": {},
}
GENERATOR_KEYS = frozenset(_FIXED_GENERATOR_VALUES) | {
    "padding_type", "init_conv_kwargs", "downsample_conv_kwargs", "resnet_conv_kwargs"}
_PADDINGS = {"reflect": "reflect", "zeros": "zeros", "zero": "zeros"}


def generator_options(values: dict, model: str) -> dict[str, object]:
    """Check the FFC arguments of a LaMa-style ``FFCResNetGenerator`` config (``GENERATOR_KEYS`` of ``values``)
    and return ``{"ratio_global": r, "padding_mode": m}`` for those present.

    Refused with a one-line message: another norm or activation layer, ``out_ffc``, spatial-transform wrappers,
    the local Fourier unit, a global branch in the init conv or the down-samplings, or different in/out ratios in
    the residual blocks (none of which LaMa's or TSGL's released configs use).
    """
    options: dict[str, object] = {}
    for key, fixed in _FIXED_GENERATOR_VALUES.items():
        if key in values and values[key] != fixed:
            raise ValueError(f"{model} config sets {key}={values[key]!r}; only {fixed!r} is implemented")
    if "padding_type" in values:
        if values["padding_type"] not in _PADDINGS:
            raise ValueError(f"{model} config: padding_type {values['padding_type']!r} is not implemented")
        options["padding_mode"] = _PADDINGS[values["padding_type"]]
    for group in ("init_conv_kwargs", "downsample_conv_kwargs", "resnet_conv_kwargs"):
        kwargs = dict(values.get(group, {}))
        extra = sorted(set(kwargs) - {"ratio_gin", "ratio_gout", "enable_lfu"})
        if extra:
            raise ValueError(f"{model} config: unknown keys in {group}: {extra}")
        if kwargs.get("enable_lfu", False):
            raise ValueError(f"{model} config: {group}.enable_lfu (local Fourier unit) is not implemented")
        r_in, r_out = float(kwargs.get("ratio_gin", 0.0)), float(kwargs.get("ratio_gout", 0.0))
        if group != "resnet_conv_kwargs":
            if r_in or r_out:
                raise ValueError(f"{model} config: {group} must be purely local (ratio_gin = ratio_gout = 0)")
        elif group in values:
            if r_in != r_out:
                raise ValueError(f"{model} config: resnet ratio_gin {r_in} != ratio_gout {r_out} is not implemented")
            options["ratio_global"] = r_in
    return options
