"""Image-quality metrics with the conventions of the thesis' released test code.

Every metric scores the *composite* ``Î_c = Î·M + I·(1−M)`` (see :func:`composite`) against the ground truth,
one image at a time; a bin's number is the arithmetic mean over its images (FID is set-level).

========  =====================================================================================================
metric    convention
========  =====================================================================================================
PSNR      both images clamped to [0, 1], ×255, **truncated** to uint8 (HWC RGB); scikit-image
          ``peak_signal_noise_ratio`` (data range 255) = 10·log10(255²/MSE) over all pixels and channels;
          capped at 100 dB.
SSIM      scikit-image ``structural_similarity`` on the same uint8 RGB arrays, ``channel_axis=-1`` (mean of the
          per-channel SSIM), ``data_range=255``, 7×7 uniform window, K1 = 0.01, K2 = 0.03, sample covariance.
L1 (%)    mean |Î_c − I| over all pixels and channels on the float [0, 1] images (no quantisation), ×100.
LPIPS     LPIPS v0.1 with the VGG-16 backbone and the learned linear heads, inputs mapped from [0, 1] to
          [−1, 1] by ``(x − 0.5)/0.5``, spatially averaged. Backbone ``vgg16-397923af.pth`` from a local folder
          (see :mod:`inpaintstudio.training.backbones`); heads from the file shipped in ``torchmetrics``.
FID       Fréchet distance between Gaussian fits of pytorch-fid Inception-V3 pool3 features (2048-d) of the
          composites and of the ground truths of a bin; images enter as the truncated uint8 arrays / 255.
========  =====================================================================================================

The arrays taken by :func:`psnr`, :func:`ssim` and :func:`l1_percent` are float H×W×3 RGB in [0, 1] (NumPy) or
3×H×W tensors; :func:`to_uint8` is the one quantisation step.

The thesis: S. Chen, PhD thesis, Durham University, 2025 (INCLG, HINT, M×T and SEM-Net are its chapters 3–5).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from inpaintstudio.training.backbones import (
    BackboneMissingError,
    FIDInceptionV3,
    VGGFeatures,
    inception_from_file,
    vgg_from_file,
)

__all__ = [
    "PSNR_CAP",
    "BackboneMissingError",
    "composite",
    "to_hwc",
    "to_uint8",
    "psnr",
    "ssim",
    "l1_percent",
    "LPIPS",
    "lpips_heads_file",
    "FIDFeatures",
    "frechet_distance",
]

PSNR_CAP = 100.0


def to_hwc(image: np.ndarray | Tensor) -> np.ndarray:
    """Float H×W×3 NumPy array from a 3×H×W / 1×3×H×W tensor or an H×W×3 array (values unchanged)."""
    if isinstance(image, Tensor):
        t = image.detach().float().cpu()
        if t.ndim == 4:
            if t.shape[0] != 1:
                raise ValueError(f"expected one image, got a batch of {t.shape[0]}")
            t = t[0]
        return t.permute(1, 2, 0).numpy()
    return np.asarray(image, dtype=np.float32)


def composite(output: np.ndarray | Tensor, image: np.ndarray | Tensor, hole: np.ndarray | Tensor):
    """``output·M + image·(1−M)`` with ``M`` = 1 in holes (broadcast over channels)."""
    return output * hole + image * (1 - hole)


def to_uint8(image: np.ndarray | Tensor) -> np.ndarray:
    """Clamp to [0, 1], ×255, cast to uint8 by truncation (not rounding); H×W×3."""
    return (np.clip(to_hwc(image), 0.0, 1.0) * 255.0).astype(np.uint8)


def psnr(pred: np.ndarray | Tensor, target: np.ndarray | Tensor) -> float:
    """PSNR in dB of two [0, 1] RGB images after :func:`to_uint8`; capped at :data:`PSNR_CAP`."""
    from skimage.metrics import peak_signal_noise_ratio

    a, b = to_uint8(pred), to_uint8(target)
    if np.array_equal(a, b):
        return PSNR_CAP
    return float(min(PSNR_CAP, peak_signal_noise_ratio(b, a, data_range=255)))


def ssim(pred: np.ndarray | Tensor, target: np.ndarray | Tensor) -> float:
    """Mean SSIM over the RGB channels of two [0, 1] images after :func:`to_uint8` (7×7 window, range 255)."""
    from skimage.metrics import structural_similarity

    a, b = to_uint8(pred), to_uint8(target)
    return float(structural_similarity(b, a, channel_axis=-1, data_range=255, win_size=7))


def l1_percent(pred: np.ndarray | Tensor, target: np.ndarray | Tensor) -> float:
    """Mean absolute difference of two float [0, 1] images over all pixels and channels, ×100."""
    return float(np.mean(np.abs(to_hwc(pred).astype(np.float64) - to_hwc(target).astype(np.float64))) * 100.0)


# ---------------------------------------------------------------------------------------------- LPIPS
def lpips_heads_file() -> Path:
    """The LPIPS v0.1 VGG linear heads (``lin{0..4}.model.1.weight``) shipped inside ``torchmetrics``."""
    spec = importlib.util.find_spec("torchmetrics")
    if spec is None or not spec.submodule_search_locations:
        raise BackboneMissingError(
            "LPIPS needs its linear heads (lpips v0.1 vgg.pth); they ship with torchmetrics: pip install torchmetrics"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "functional" / "image" / "lpips_models" / "vgg.pth"
    if not path.is_file():
        raise BackboneMissingError(f"LPIPS linear heads not found at {path}")
    return path


class LPIPS(nn.Module):
    """LPIPS v0.1, VGG-16 variant (Zhang et al. 2018), as ``lpips.LPIPS(net='vgg')`` computes it.

    ``forward(a, b)`` takes B×3×H×W images in **[−1, 1]** and returns B distances. Steps: the ScalingLayer
    ``(x − shift)/scale`` (shift −0.030/−0.088/−0.188, scale 0.458/0.448/0.450), VGG-16 relu1_2, relu2_2,
    relu3_3, relu4_3, relu5_3, unit-normalise each feature over channels (eps 1e-10), squared difference,
    1×1 linear head (no bias), spatial mean, sum over the five layers.
    """

    TAPS = (3, 8, 15, 22, 29)
    CHANNELS = (64, 128, 256, 512, 512)

    def __init__(self, vgg: VGGFeatures | None = None, heads: dict[str, Tensor] | None = None) -> None:
        super().__init__()
        self.net = vgg if vgg is not None else VGGFeatures(16)
        if self.net.depth != 16:
            raise ValueError("LPIPS-VGG uses VGG-16")
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in self.CHANNELS)
        if heads is not None:
            for i, lin in enumerate(self.lins):
                lin.weight.data.copy_(heads[f"lin{i}.model.1.weight"])
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_files(cls, vgg16_path: str | os.PathLike[str] | None = None) -> LPIPS:
        """VGG-16 from ``vgg16-397923af.pth`` (local only) and heads from torchmetrics' ``vgg.pth``."""
        vgg = vgg_from_file(16, vgg16_path)
        heads = torch.load(lpips_heads_file(), map_location="cpu", weights_only=True)
        return cls(vgg, heads)

    def train(self, mode: bool = True) -> LPIPS:
        return super().train(False)

    @staticmethod
    def _unit(x: Tensor) -> Tensor:
        return x / (torch.sqrt(torch.sum(x**2, dim=1, keepdim=True)) + 1e-10)

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        fa = self.net((a - self.shift) / self.scale, self.TAPS)
        fb = self.net((b - self.shift) / self.scale, self.TAPS)
        total = torch.zeros(a.shape[0], device=a.device)
        for lin, tap in zip(self.lins, self.TAPS):
            diff = (self._unit(fa[tap]) - self._unit(fb[tap])) ** 2
            total = total + lin(diff).mean(dim=(1, 2, 3))
        return total

    def score01(self, pred: Tensor, target: Tensor) -> Tensor:
        """LPIPS of [0, 1] images (mapped to [−1, 1] by ``(x − 0.5)/0.5`` first)."""
        return self((pred - 0.5) / 0.5, (target - 0.5) / 0.5)


# ------------------------------------------------------------------------------------------------ FID
class FIDFeatures:
    """Collects pytorch-fid pool3 features of two image sets and returns their Fréchet distance."""

    def __init__(self, net: FIDInceptionV3 | None = None, device: str = "cpu") -> None:
        self.net = (net if net is not None else inception_from_file()).to(device)
        self.device = device
        self.real: list[np.ndarray] = []
        self.fake: list[np.ndarray] = []

    @torch.no_grad()
    def _features(self, images_uint8: list[np.ndarray]) -> np.ndarray:
        x = torch.from_numpy(np.stack(images_uint8)).permute(0, 3, 1, 2).float().div(255.0).to(self.device)
        return self.net(x).double().cpu().numpy()

    def add(self, real_uint8: np.ndarray, fake_uint8: np.ndarray) -> None:
        """Add one ground-truth and one composited image (H×W×3 uint8)."""
        self.real.append(self._features([real_uint8])[0])
        self.fake.append(self._features([fake_uint8])[0])

    def compute(self) -> float:
        return frechet_from_features(self.real, self.fake)


def frechet_from_features(real_features: list[np.ndarray], fake_features: list[np.ndarray]) -> float:
    """FID of two lists of pool3 feature vectors (one per image)."""
    if len(real_features) < 2:
        raise ValueError("FID needs at least two images per set")
    real, fake = np.stack(real_features), np.stack(fake_features)
    return frechet_distance(real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2·(Σ1Σ2)^½), pytorch-fid's ``calculate_frechet_distance``.

    As there, a singular product gets ``eps`` added to both diagonals, and the imaginary residue of
    ``sqrtm`` is dropped.
    """
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))

