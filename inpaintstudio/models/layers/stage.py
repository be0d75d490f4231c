"""A stage of identical blocks that can trade compute for training memory (activation checkpointing)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint


class Stage(nn.Sequential):
    """``nn.Sequential`` of blocks (same state_dict keys: ``<index>.<name>``).

    With ``checkpoint_blocks`` and autograd on, each block's activations are dropped after its forward and recomputed
    in backward (``torch.utils.checkpoint``, non-reentrant, RNG state preserved): training memory falls to about one
    block's activations per stage plus the block inputs, for roughly one extra forward of compute. Inference is
    unchanged.
    """

    def __init__(self, *blocks: nn.Module, checkpoint_blocks: bool = False) -> None:
        super().__init__(*blocks)
        self.checkpoint_blocks = checkpoint_blocks

    def forward(self, x: Tensor) -> Tensor:
        if not (self.checkpoint_blocks and torch.is_grad_enabled()):
            return super().forward(x)
        for block in self:
            x = checkpoint(block, x, use_reentrant=False)
        return x
