"""Run with TRITON_INTERPRET=1 (set before triton is imported): the Triton scan on CPU tensors against the
sequential reference, forward and gradients, on small shapes. Prints one JSON line (a list of cases)."""

from __future__ import annotations

import json

import torch

from inpaintstudio.models.layers import scan_triton
from inpaintstudio.models.layers.ssm import selective_scan

assert scan_triton.interpreted(), "set TRITON_INTERPRET=1 before running this check"


def _inputs(batch: int, channels: int, n_state: int, length: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "u": torch.randn(batch, channels, length, generator=g),
        "delta": torch.randn(batch, channels, length, generator=g) * 0.7,
        "A": -(torch.rand(channels, n_state, generator=g) * 8 + 0.05),
        "B": torch.randn(batch, n_state, length, generator=g),
        "C": torch.randn(batch, n_state, length, generator=g),
        "D": torch.randn(channels, generator=g),
        "z": torch.randn(batch, channels, length, generator=g),
        "delta_bias": torch.randn(channels, generator=g) * 0.5,
    }


def _case(name: str, inputs: dict[str, torch.Tensor], softplus: bool) -> dict:
    weights = torch.linspace(-1, 1, inputs["u"].shape[-1])
    outputs, grads = {}, {}
    for path in ("reference", "triton"):
        leaves = {k: v.clone().requires_grad_() for k, v in inputs.items()}
        if path == "triton":  # 16-step chunks: several chunks (and a partial one) on these short sequences
            y = scan_triton.triton_scan(leaves["u"], leaves["delta"], leaves["A"], leaves["B"], leaves["C"],
                                        leaves.get("D"), leaves.get("z"), leaves.get("delta_bias"), softplus, block=16)
        else:
            y = selective_scan(**leaves, delta_softplus=softplus, path="reference")
        (y * weights).sum().backward()
        outputs[path] = y.detach()
        grads[path] = {k: v.grad for k, v in leaves.items()}
    with torch.no_grad():  # the inference branch (no saved states)
        y_no_grad = scan_triton.triton_scan(inputs["u"], inputs["delta"], inputs["A"], inputs["B"], inputs["C"],
                                            inputs.get("D"), inputs.get("z"), inputs.get("delta_bias"), softplus,
                                            block=16)
    reference = outputs["reference"]
    return {
        "name": name,
        "forward_max_abs": max((outputs["triton"] - reference).abs().max().item(),
                               (y_no_grad - reference).abs().max().item()),
        "reference_scale": reference.abs().max().item(),
        "gradient_rel": {k: ((grads["triton"][k] - g).abs().max() / g.abs().max()).item()
                         for k, g in grads["reference"].items()},
    }


full = _inputs(2, 2, 4, 35, seed=0)  # batch 2, three 16-step chunks (the last partial)
sequence_major = {k: v.transpose(1, 2).contiguous().transpose(1, 2) if v.dim() == 3 else v
                  for k, v in _inputs(1, 2, 3, 20, seed=1).items()}  # N = 3 padded to 4; B, C strided views
bare = {k: v for k, v in _inputs(1, 1, 2, 24, seed=2).items() if k in ("u", "A", "B", "C")}
bare["delta"] = torch.rand(1, 1, 24, generator=torch.Generator().manual_seed(3))
print(json.dumps([_case("full", full, True), _case("sequence-major, N=3", sequence_major, True),
                  _case("bare", bare, False)]))
