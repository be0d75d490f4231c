"""Partial convolution with mask update (Liu et al., ECCV 2018), multi-channel mask form.

Paper: G. Liu, F. A. Reda, K. J. Shih, T.-C. Wang, A. Tao, B. Catanzaro, "Image Inpainting for Irregular
Holes Using Partial Convolutions", ECCV 2018 (arXiv:1804.07723). NVIDIA's reference code
(github.com/NVIDIA/partialconv, BSD-style NVIDIA licence) is not copied here; this is a re-implementation
of the formulas.

Rule (mask ``m`` has the same shape as the input ``x``, 1 = valid, 0 = hole; a B×1×H×W mask is read as
that single channel replicated over all input channels):

- ``count = conv2d(m, ones(cout, cin, k, k))`` (same stride, padding and dilation as the feature conv), i.e.
  the number of valid inputs in each window, summed over the input channels;
- ``ratio = (k·k·cin) / (count + 1e-8)`` (window size / number of valid inputs);
- ``m' = clamp(count, 0, 1)`` (1 where any input of the window is valid); ``ratio = ratio·m'``;
- ``y = conv2d(x, W)`` (``x·m`` instead of ``x`` when ``multiply_input``); if ``renormalize``:
  ``y = y·ratio`` (so windows with no valid input give 0); a bias, when present, is added after the
  scaling and the sum is multiplied by ``m'`` (Liu et al.'s Eq. 1);
- returns ``(y, m')`` with ``m'`` of shape B×cout×H'×W' (all channels equal; returned as a broadcast view).

Switches and where they come from:

- ``multiply_input=False`` is the PSR-Net / CSFC form (inputs are already zero in holes, so the network does
  not multiply them again); ``True`` is Liu et al.'s and TSGL's structure-branch form.
- ``renormalize=False`` is PSR-Net's ``mul=False`` (used for its deep, almost hole-free levels): the mask is
  still updated but the features are left unscaled.
- The count convolution uses the same dilation as the feature convolution, so ``count`` is the number of
  inputs the dilated kernel actually reads (the specs write the count without a dilation because every
  partial convolution they use has dilation 1).
- Padding is symmetric, ``dilation·(k−1)/2`` (odd kernels only). TensorFlow's ``'same'`` pads stride-2
  layers asymmetrically (one extra row/column at the bottom/right); the output size is identical, only the
  sampling grid is shifted by half an input pixel, which matters only for ported Keras weights.
- Masks need not be binary: ``count`` and ``m'`` follow the same formulas for soft masks (CSFC's output head
  feeds a sigmoid gate as a mask).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["PartialConv2d", "partial_conv_mask_update"]

_EPS = 1e-8


def partial_conv_mask_update(
    mask: Tensor, in_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1
) -> tuple[Tensor, Tensor]:
    """``(ratio, new_mask)`` of a partial convolution, each B×1×H'×W' (identical for every output channel).

    ``mask`` is B×cin×H×W or B×1×H×W (replicated). ``ratio`` already includes the factor ``new_mask``.
    """
    if mask.shape[1] not in (1, in_channels):
        raise ValueError(f"mask has {mask.shape[1]} channels; expected 1 or {in_channels} (the input's)")
    # Summing the mask over channels first and convolving with a 1-channel box gives the same count as
    # conv2d(mask, ones(cout, cin, k, k)) for every output channel, at 1/(cin·cout) of the cost.
    channel_sum = mask.sum(dim=1, keepdim=True) if mask.shape[1] > 1 else mask * in_channels
    box = torch.ones(1, 1, kernel_size, kernel_size, dtype=mask.dtype, device=mask.device)
    padding = dilation * (kernel_size - 1) // 2
    count = F.conv2d(channel_sum, box, stride=stride, padding=padding, dilation=dilation)
    new_mask = count.clamp(0.0, 1.0)
    ratio = (kernel_size * kernel_size * in_channels) / (count + _EPS) * new_mask
    return ratio, new_mask


class PartialConv2d(nn.Module):
    """Partial convolution ``(x, mask) -> (y, new_mask)``; see the module docstring for the exact rule.

    Args:
        in_channels: input channels ``cin`` (the mask has ``cin`` channels, or 1 meaning replicated).
        out_channels: output channels ``cout``.
        kernel_size: odd square kernel size ``k``.
        stride: convolution stride.
        dilation: convolution dilation (used by both the feature and the count convolution).
        bias: add a learnt bias after the renormalisation (Liu et al.); CSFC/PSR/TSGL use none.
        renormalize: scale by ``window / valid count`` and zero windows without valid input.
        multiply_input: convolve ``x·mask`` instead of ``x``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        bias: bool = False,
        renormalize: bool = True,
        multiply_input: bool = False,
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"partial convolution needs an odd kernel size, got {kernel_size}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.dilation = dilation
        self.renormalize = renormalize
        self.multiply_input = multiply_input
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)  # nn.Conv2d's default; networks re-initialise

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"dilation={self.dilation}, bias={self.bias is not None}, renormalize={self.renormalize}, "
            f"multiply_input={self.multiply_input}"
        )

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        if x.shape[1] != self.in_channels:
            raise ValueError(f"input has {x.shape[1]} channels; this layer expects {self.in_channels}")
        ratio, new_mask = partial_conv_mask_update(mask, self.in_channels, self.kernel_size, self.stride, self.dilation)
        source = x * mask if self.multiply_input else x
        padding = self.dilation * (self.kernel_size - 1) // 2
        y = F.conv2d(source, self.weight, None, self.stride, padding, self.dilation)
        if self.renormalize:
            y = y * ratio
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1, 1)
            if self.renormalize:
                y = y * new_mask
        out_mask = new_mask.expand(-1, self.out_channels, -1, -1)
        return y, out_mask
