"""Activation checkpointing of SEM-Net / M×T / HINT stages: same math, same keys, less saved for backward."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from inpaintstudio.models.hint import network as hint
from inpaintstudio.models.mxt import network as mxt
from inpaintstudio.models.sem_net import network as sem_net

pytestmark = pytest.mark.usefixtures("single_thread")

TINY = {
    "sem_net": sem_net.Config(dim=6, num_blocks=(1, 2, 1, 1), num_refinement_blocks=1),
    "mxt": mxt.Config(dim=8, num_blocks=(1, 2, 1, 1), num_refinement_blocks=1),
    "hint": hint.Config(dim=8, num_blocks=(1, 2, 1, 1)),
}
MODULES = {"sem_net": sem_net, "mxt": mxt, "hint": hint}


def _saved_bytes(net: torch.nn.Module, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, int]:
    saved = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        saved += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = net(image, mask)
    return out, saved


@pytest.mark.parametrize("name", ["sem_net", "mxt", "hint"])
def test_checkpointed_blocks_give_the_same_output_and_gradients(name) -> None:
    module, cfg = MODULES[name], TINY[name]
    torch.manual_seed(0)
    plain = module.build(cfg)
    lean = module.build(dataclasses.replace(cfg, checkpoint_blocks=True))
    assert list(lean.state_dict()) == list(plain.state_dict())  # official key names unchanged
    lean.load_state_dict(plain.state_dict())
    image, mask = torch.rand(1, 3, 32, 48), (torch.rand(1, 1, 32, 48) > 0.6).float()
    image = image * (1 - mask) + mask
    outputs, saved = {}, {}
    for label, net in (("plain", plain), ("lean", lean)):
        out, saved[label] = _saved_bytes(net, image, mask)
        (out * torch.linspace(0, 1, out.numel()).view_as(out)).sum().backward()
        outputs[label] = out.detach()
    assert torch.equal(outputs["plain"], outputs["lean"])
    for (key, p), q in zip(plain.named_parameters(), lean.parameters(), strict=True):
        assert (p.grad is None) == (q.grad is None), key
        if p.grad is not None:
            assert torch.allclose(p.grad, q.grad, rtol=1e-5, atol=1e-7), key
    assert saved["lean"] < saved["plain"] / 2  # only block inputs are kept for backward
    with torch.no_grad():  # inference is unaffected
        assert torch.equal(plain(image, mask), lean(image, mask))
