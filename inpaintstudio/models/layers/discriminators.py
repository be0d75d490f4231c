"""Discriminators used in training (none of them is part of a released inference checkpoint); each model's
``TRAINING`` spec names its own.

* :class:`PatchDiscriminator` — SEM-Net / M×T / HINT / INCLG: five spectral-normalised 4×4 convolutions without
  bias (64, 128, 256 stride 2; 512, 1 stride 1), LeakyReLU 0.2, sigmoid output (the released GAN type is LSGAN on
  sigmoid scores). 256² input → 1×30×30. INCLG adds a self-attention layer after conv2 (``attention=True``).
* :class:`TSGLDiscriminator` — TSGL: 5×5 convs (stride 2, 2, 2, 1, 1; pad 1), spectral norm and no bias on the
  first four, plain conv with bias last, no sigmoid (hinge loss). 256² input → 1×27×27.

See ``docs/models/<model>.md`` for each model's training recipe.

Inputs are RGB only (no mask) in the family's value range. Weights N(0, 0.02), biases 0.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils import spectral_norm

__all__ = ["SelfAttention", "PatchDiscriminator", "TSGLDiscriminator", "init_weights"]


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """EdgeConnect initialisation: conv/linear weights N(0, std), biases 0 (spectral-norm ``weight_orig`` too)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            weight = getattr(m, "weight_orig", m.weight)
            nn.init.normal_(weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class SelfAttention(nn.Module):
    """INCLG's discriminator attention: ``q = Conv1×1(C→C/4)(x)`` (bias, no SN),
    ``A = softmax(qᵀq)`` over keys, ``o = A·x`` (values = x), output ``gamma·o + x`` with ``gamma`` zero-init."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.query = nn.Conv2d(channels, channels // 4, kernel_size=1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        q = self.query(x).flatten(2)  # B×C/4×N
        attention = torch.softmax(torch.bmm(q.transpose(1, 2), q), dim=-1)  # B×N×N, rows sum to 1
        out = torch.bmm(x.flatten(2), attention.transpose(1, 2)).view(b, c, h, w)
        return self.gamma * out + x


class PatchDiscriminator(nn.Module):
    """5-layer spectral-norm PatchGAN with sigmoid scores (SEM-Net, M×T, HINT; INCLG with ``attention``)."""

    def __init__(self, in_channels: int = 3, width: int = 64, attention: bool = False, sigmoid: bool = True) -> None:
        super().__init__()
        act = nn.LeakyReLU(0.2, inplace=False)

        def sn(cin: int, cout: int, stride: int) -> nn.Module:
            return spectral_norm(nn.Conv2d(cin, cout, kernel_size=4, stride=stride, padding=1, bias=False))

        self.conv1 = nn.Sequential(sn(in_channels, width, 2), act)
        self.conv2 = nn.Sequential(sn(width, width * 2, 2), act)
        self.attn = SelfAttention(width * 2) if attention else nn.Identity()
        self.conv3 = nn.Sequential(sn(width * 2, width * 4, 2), act)
        self.conv4 = nn.Sequential(sn(width * 4, width * 8, 1), act)
        self.conv5 = sn(width * 8, 1, 1)
        self.sigmoid = sigmoid
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv5(self.conv4(self.conv3(self.attn(self.conv2(self.conv1(x))))))
        return torch.sigmoid(x) if self.sigmoid else x


class TSGLDiscriminator(nn.Module):
    """TSGL's 5×5 patch discriminator on [−1, 1] RGB; raw scores for the hinge loss."""

    def __init__(self, in_channels: int = 3, width: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for out, stride in ((width, 2), (width * 2, 2), (width * 4, 2), (width * 8, 1)):
            layers += [
                spectral_norm(nn.Conv2d(channels, out, kernel_size=5, stride=stride, padding=1, bias=False)),
                nn.LeakyReLU(0.2, inplace=False),
            ]
            channels = out
        layers.append(nn.Conv2d(channels, 1, kernel_size=5, stride=1, padding=1, bias=True))
        self.model = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)
