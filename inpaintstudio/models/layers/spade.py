"""SPADE de-normalisation and TSGL's reconstruction block (shared by ``tsgl`` and ``tsgl_512``).

SPADE: T. Park, M.-Y. Liu, T.-C. Wang, J.-Y. Zhu, "Semantic Image Synthesis with Spatially-Adaptive Normalization",
CVPR 2019. Reconstruction block: Liu et al., "Thinking inside the Convolution for Image Inpainting" (TSGL, arXiv
2602.03013): after a texture down-sampling, the texture is normalised globally (BatchNorm running statistics) and
de-normalised twice with the structure map, normalised per position and de-normalised with the local residual
structure, and the two paths are added. Re-implemented from the papers and the authors' code's structure; NVIDIA's
SPADE code (CC BY-NC-SA 4.0) is not copied.

Switches (defaults = the released TSGL code): ``scale`` ``one_plus_gamma`` (code, ``x̂·(1+γ)+β``) or ``gamma``
(paper, ``γ·x̂+β``); ``global_norm`` ``batch`` (running statistics) or ``instance`` (per-sample statistics);
``positional_var`` ``unbiased`` (code) or ``biased``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SPADE", "Reconstruction"]


class SPADE(nn.Module):
    """Parameter-free normalisation, then ``x̂·(1+γ)+β`` with γ, β from the (nearest-resized) condition map."""

    def __init__(self, norm: str, channels: int, cond_channels: int, hidden: int, global_norm: str = "batch",
                 scale: str = "one_plus_gamma", positional_var: str = "unbiased") -> None:
        super().__init__()
        self.norm = norm
        if norm == "batch":  # kept for "instance" too, so checkpoints load; forward then ignores the statistics
            self.param_free_norm = nn.BatchNorm2d(channels, affine=False)
        self.mlp_shared = nn.Sequential(nn.Conv2d(cond_channels, hidden, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.mlp_beta = nn.Conv2d(hidden, channels, 3, padding=1)
        self.global_norm, self.scale, self.positional_var = global_norm, scale, positional_var

    def normalise(self, x: Tensor) -> Tensor:
        if self.norm == "positional":
            # Where the channels are nearly equal, float32 rounding of the mean is divided by sqrt(1e-5) and its last
            # bits depend on how the reduction is vectorised (buffer alignment), so runs would differ by up to 5e-4;
            # float64 statistics make the result the same on every run and closer to exact arithmetic.
            wide = x.double()
            mean = wide.mean(dim=1, keepdim=True)
            var = wide.var(dim=1, keepdim=True, unbiased=self.positional_var == "unbiased")
            return ((wide - mean) / torch.sqrt(var + 1e-5)).to(x.dtype)
        if self.global_norm == "instance":
            return F.instance_norm(x, eps=1e-5)
        return self.param_free_norm(x)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        normalised = self.normalise(x)
        cond = F.interpolate(cond, size=x.shape[2:], mode="nearest")
        hidden = self.mlp_shared(cond)
        gamma, beta = self.mlp_gamma(hidden), self.mlp_beta(hidden)
        if self.scale == "one_plus_gamma":
            return normalised * (1 + gamma) + beta
        return normalised * gamma + beta


class Reconstruction(nn.Module):
    """TSGL reconstruction block: two global (BN) SPADE+conv steps on the structure map plus one positional step on the
    local residual; ``out = g + l`` (``+ x`` in the LaMa variant)."""

    def __init__(self, channels: int, structure_channels: int, residual_channels: int, hidden: int,
                 identity: bool = False, global_norm: str = "batch", scale: str = "one_plus_gamma",
                 positional_var: str = "unbiased") -> None:
        super().__init__()
        sn = nn.utils.spectral_norm
        self.conv_0 = sn(nn.Conv2d(channels, channels, 3, padding=1))
        self.conv_1 = sn(nn.Conv2d(channels, channels, 3, padding=1))
        self.conv_s = sn(nn.Conv2d(channels, channels, 3, padding=1))
        options = {"global_norm": global_norm, "scale": scale, "positional_var": positional_var}
        self.norm_0 = SPADE("batch", channels, structure_channels, hidden, **options)
        self.norm_1 = SPADE("batch", channels, structure_channels, hidden, **options)
        self.norm_s = SPADE("positional", channels, residual_channels, hidden, **options)
        self.identity = identity

    def forward(self, x: Tensor, residual: Tensor, structure: Tensor) -> Tensor:
        g = self.conv_0(F.leaky_relu(self.norm_0(x, structure), 0.2))
        g = self.conv_1(F.leaky_relu(self.norm_1(g, structure), 0.2))
        local = self.conv_s(F.leaky_relu(self.norm_s(x, residual), 0.2))
        return g + local + x if self.identity else g + local

