"""CUDA checks of the selective scan and the Mamba models (``pytest -m gpu``; scripts/gpu_check.sh runs them)."""

from __future__ import annotations

import json

import pytest
import torch

from inpaintstudio import registry, weights
from inpaintstudio.models.layers import scan_triton, ssm
from inpaintstudio.models.layers.ssm import selective_scan
from tests.conftest import parity_dir

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.fixture(autouse=True)
def exact_float32():
    """No TF32 in convolutions and matmuls, so CUDA results compare with the CPU fixtures."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _inputs(batch: int, channels: int, n_state: int, length: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    values = {
        "u": torch.randn(batch, channels, length, generator=g),
        "delta": torch.randn(batch, channels, length, generator=g) * 0.7,
        "A": -(torch.rand(channels, n_state, generator=g) * 8 + 0.05),
        "B": torch.randn(batch, n_state, length, generator=g),
        "C": torch.randn(batch, n_state, length, generator=g),
        "D": torch.randn(channels, generator=g),
        "z": torch.randn(batch, channels, length, generator=g),
        "delta_bias": torch.randn(channels, generator=g) * 0.5,
    }
    return {k: v.cuda() for k, v in values.items()}


def _forward_and_gradients(inputs: dict[str, torch.Tensor], path: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    leaves = {k: v.clone().requires_grad_() for k, v in inputs.items()}
    y = selective_scan(**leaves, delta_softplus=True, path=path)
    (y * torch.linspace(-1, 1, y.shape[-1], device=y.device)).sum().backward()
    return y.detach(), {k: v.grad for k, v in leaves.items()}


@pytest.mark.skipif(not scan_triton.available(), reason="needs triton")
@pytest.mark.parametrize("layout", ["channel", "sequence"])
def test_triton_scan_matches_reference_on_cuda(layout) -> None:
    inputs = _inputs(2, 40, 16, 700)  # several 128-step chunks, the last one partial
    if layout == "sequence":
        inputs = {k: v.transpose(1, 2).contiguous().transpose(1, 2) if v.dim() == 3 else v for k, v in inputs.items()}
    want, want_grads = _forward_and_gradients(inputs, "reference")
    got, got_grads = _forward_and_gradients(inputs, "triton")
    assert (got - want).abs().max().item() < 1e-4
    with torch.no_grad():
        assert (selective_scan(**inputs, delta_softplus=True, path="triton") - want).abs().max().item() < 1e-4
    for name, ref in want_grads.items():
        assert (got_grads[name] - ref).abs().max().item() <= 1e-4 * ref.abs().max().item(), name


def test_auto_path_on_cuda_needs_no_compiled_package() -> None:
    u = torch.zeros(1, 2, 3, device="cuda")
    expected = "cuda" if ssm.fused_scan_available() else ("triton" if scan_triton.available() else "chunked")
    assert ssm.resolve_path(u) == expected


@pytest.mark.skipif(not (ssm.fused_scan_available() and scan_triton.available()), reason="needs mamba-ssm and triton")
def test_triton_scan_matches_mamba_ssm() -> None:
    inputs = _inputs(2, 32, 16, 1000, seed=1)
    want, want_grads = _forward_and_gradients(inputs, "cuda")
    got, got_grads = _forward_and_gradients(inputs, "triton")
    assert (got - want).abs().max().item() <= 1e-4 * want.abs().max().item()
    for name, ref in want_grads.items():
        assert (got_grads[name] - ref).abs().max().item() <= 1e-3 * ref.abs().max().item(), name


@pytest.mark.parametrize("model", ["sem_net", "mxt"])
def test_parity_fixture_on_cuda(model) -> None:
    """The authors' golden outputs, reproduced on the GPU through the default scan path."""
    from safetensors.torch import load_file

    folder = parity_dir(model)
    config = json.loads((folder / "config.json").read_text())
    module = registry.model_module(model)
    net = module.build(module.config_from_fixture(config))
    tensors, _ = weights.read_checkpoint(folder / "weights.safetensors")
    weights.load_strict(net, tensors, name=model)
    net = net.eval().cuda()
    inputs = {k: v.cuda() for k, v in load_file(str(folder / "inputs.safetensors")).items()}
    expected = load_file(str(folder / "outputs.safetensors"))
    with torch.no_grad():
        produced = module.parity_forward(net, inputs)
    for name, atol in config["tolerance"]["atol"].items():
        error = (produced[name].float().cpu() - expected[name].float()).abs().max().item()
        assert error <= 10 * float(atol), (name, error, atol)  # GPU reduction order: ten times the CPU tolerance


@pytest.mark.parametrize("model", ["sem_net", "mxt"])
def test_training_gradients_on_cuda_match_the_cpu(model) -> None:
    """One backward of the default network (random weights) on CUDA and on the CPU: same parameter gradients."""
    import copy

    torch.manual_seed(0)
    card = registry.get_card(model)
    module = registry.model_module(card)
    cpu_net = module.build(weights.card_config(card)).train()
    cuda_net = copy.deepcopy(cpu_net).cuda()
    image = torch.rand(1, 3, 64, 64)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 16:40, 20:44] = 1
    target = torch.rand(1, 3, 64, 64)
    for net, device in ((cpu_net, "cpu"), (cuda_net, "cuda")):
        x, m, y = (t.to(device) for t in (image * (1 - mask) + mask, mask, target))
        (module.predict(net, x, m)["image"].float() - y).abs().mean().backward()
    grads = {n: p.grad for n, p in cpu_net.named_parameters() if p.grad is not None}
    scale = max(g.abs().max().item() for g in grads.values())
    assert scale > 0
    worst = max((dict(cuda_net.named_parameters())[n].grad.cpu() - g).abs().max().item() for n, g in grads.items())
    assert worst <= 1e-3 * scale, (worst, scale)


@pytest.mark.parametrize("model", ["sem_net", "mxt"])
def test_bf16_autocast_forward_is_close_to_float32(model) -> None:
    torch.manual_seed(0)
    card = registry.get_card(model)
    module = registry.model_module(card)
    net = module.build(weights.card_config(card)).cuda().eval()
    image = torch.rand(1, 3, 64, 64, device="cuda")
    mask = torch.zeros(1, 1, 64, 64, device="cuda")
    mask[..., 16:40, 20:44] = 1
    with torch.inference_mode():
        full = module.predict(net, image * (1 - mask) + mask, mask)["image"].float()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            half = module.predict(net, image * (1 - mask) + mask, mask)["image"].float()
    assert torch.isfinite(half).all()
    assert (half - full).abs().mean().item() < 0.05
