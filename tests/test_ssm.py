"""Selective scan paths (reference, pure-PyTorch chunked, dispatch) and the mamba-ssm v1 ``Mamba`` layer."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from inpaintstudio.models.layers import ssm
from inpaintstudio.models.layers.ssm import Mamba, selective_scan

pytestmark = pytest.mark.usefixtures("single_thread")


def _inputs(batch: int, channels: int, n_state: int, length: int, seed: int = 0) -> dict[str, torch.Tensor]:
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


def _run(inputs: dict[str, torch.Tensor], **kwargs: object) -> torch.Tensor:
    return selective_scan(**inputs, delta_softplus=True, **kwargs)


@pytest.mark.parametrize(
    ("shape", "chunk", "group_elements"),
    [
        ((2, 5, 3, 37), 8, ssm.GROUP_ELEMENTS),  # L not a multiple of the chunk
        ((1, 7, 4, 131), 16, 7 * 4 * 16 * 2),  # several chunk groups (state carried between groups)
        ((2, 3, 16, 5), 64, ssm.GROUP_ELEMENTS),  # L shorter than one chunk
        ((1, 4, 16, 1000), 64, ssm.GROUP_ELEMENTS),
        ((2, 5, 3, 37), 1, 2 * 5 * 3 * 3),  # chunk of one step; 37 chunks in groups of 3 (last group: 1 chunk)
        ((3, 6, 4, 100), 7, 3 * 6 * 4 * 7 * 4),  # padded last chunk; 15 chunks in groups of 4 (last group: 3)
        ((1, 8, 16, 513), 32, 8 * 16 * 32 * 2),  # 17 chunks in groups of 2; 1-step last chunk
        ((2, 4, 8, 64), 2, 1),  # group budget below one chunk: one chunk per group
    ],
)
def test_chunked_matches_reference(shape, chunk, group_elements, monkeypatch) -> None:
    monkeypatch.setattr(ssm, "GROUP_ELEMENTS", group_elements)
    inputs = _inputs(*shape)
    reference = _run(inputs, path="reference")
    chunked = _run(inputs, path="chunked", chunk=chunk)
    assert reference.shape == (shape[0], shape[1], shape[3])
    assert (chunked - reference).abs().max().item() < 1e-4
    assert reference.abs().max().item() > 1.0  # the comparison is not between near-zero tensors


@pytest.mark.parametrize("length", [64, 61])  # a multiple of the chunk, and a padded last chunk
def test_chunked_reads_sequence_major_and_channel_major_inputs_alike(length) -> None:
    """Mamba passes B×L×X storage as B×X×L views; mamba-ssm's documented layout is contiguous B×X×L."""
    inputs = _inputs(2, 6, 4, length, seed=5)
    channel_major = _run(inputs, path="chunked", chunk=8)
    sequence_major = {k: v.transpose(1, 2).contiguous().transpose(1, 2) if v.dim() == 3 else v
                      for k, v in inputs.items()}
    assert sequence_major["u"].stride(1) == 1
    assert torch.equal(_run(sequence_major, path="chunked", chunk=8), channel_major)
    assert (channel_major - _run(inputs, path="reference")).abs().max().item() < 1e-4


def test_chunked_without_optional_terms_matches_reference() -> None:
    """No bias, no softplus, no D, no gate: the bare scan of Δ as given."""
    inputs = _inputs(1, 5, 3, 45, seed=6)
    bare = {k: inputs[k] for k in ("u", "A", "B", "C")} | {"delta": inputs["delta"].abs()}
    chunked = selective_scan(**bare, path="chunked", chunk=8)
    reference = selective_scan(**bare, path="reference")
    assert (chunked - reference).abs().max().item() < 1e-4
    assert reference.abs().max().item() > 0.5


def test_in_place_softplus_matches_torch_including_its_threshold() -> None:
    x = torch.cat([torch.linspace(-30, 30, 601), torch.tensor([19.99, 20.0, 20.01, 50.0, 100.0, -100.0])])
    got = ssm._softplus_(x.clone(), torch.empty_like(x))
    assert torch.allclose(got, F.softplus(x), rtol=1e-6, atol=1e-7)
    assert torch.equal(got[x > 20], x[x > 20])  # linear above the threshold, like torch (no overflow)


def test_inference_group_size_follows_cache_and_thread_count(monkeypatch) -> None:
    per_step = 96 * 16  # E·N of the SEM-Net level-1 scan, batch 1
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    one_thread = ssm._inference_group(16, 1, 96, 16)
    assert one_thread == ssm.INFERENCE_GROUP_ELEMENTS // (16 * per_step)  # two work tensors fit a core's L2
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    two_threads = ssm._inference_group(16, 1, 96, 16)
    assert two_threads * per_step >= 2 * ssm.PARALLEL_GRAIN  # every per-step kernel splits across both threads
    assert ssm._inference_group(16, 1, 4096, 64) == 1  # huge E·N: one chunk per group, bounded by GROUP_ELEMENTS
    assert ssm._inference_group(16, 1, 96, 16, "cuda") == ssm.GROUP_ELEMENTS // (16 * per_step)  # few launches


def test_reference_matches_closed_form() -> None:
    """One channel, one state, no softplus: y_t = sum_{s<=t} C_t exp(A sum_{s<r<=t} Δ_r) Δ_s B_s u_s + D u_t."""
    g = torch.Generator().manual_seed(3)
    length = 9
    u, delta, b, c = (torch.rand(1, 1, length, generator=g) + 0.1 for _ in range(4))
    a, d = torch.tensor([[-0.7]]), torch.tensor([0.3])
    y = selective_scan(u, delta, a, b, c, d, path="reference")[0, 0]
    for t in range(length):
        want = d[0] * u[0, 0, t]
        for s in range(t + 1):
            decay = math.exp(-0.7 * float(delta[0, 0, s + 1:t + 1].sum()))
            want = want + c[0, 0, t] * decay * delta[0, 0, s] * b[0, 0, s] * u[0, 0, s]
        assert abs(float(y[t]) - float(want)) < 1e-5


def test_chunked_inference_matches_autograd_path(monkeypatch) -> None:
    """The in-place no-grad path and the checkpointed autograd path of "chunked" give the same result."""
    monkeypatch.setattr(ssm, "GROUP_ELEMENTS", 2 * 5 * 3 * 8 * 3)
    inputs = _inputs(2, 5, 3, 203, seed=4)
    with torch.inference_mode():
        fast = _run(inputs, path="chunked", chunk=8)
    leaves = {k: v.clone().requires_grad_() for k, v in inputs.items()}
    tracked = _run(leaves, path="chunked", chunk=8)
    assert tracked.requires_grad
    assert (fast - tracked.detach()).abs().max().item() < 1e-5


def test_chunked_gradients_match_reference(monkeypatch) -> None:
    monkeypatch.setattr(ssm, "GROUP_ELEMENTS", 5 * 3 * 8 * 3)  # several groups: checkpoint + carried state
    inputs = _inputs(2, 5, 3, 77, seed=1)
    weights = torch.linspace(-1, 1, 77)
    grads = {}
    for path in ("reference", "chunked"):
        leaves = {k: v.clone().requires_grad_() for k, v in inputs.items()}
        (selective_scan(**leaves, delta_softplus=True, path=path, chunk=8) * weights).sum().backward()
        grads[path] = {k: v.grad for k, v in leaves.items()}
    for name in inputs:
        ref, got = grads["reference"][name], grads["chunked"][name]
        assert ref.abs().max() > 1e-3, name
        assert (ref - got).abs().max().item() < 1e-4, name


def test_chunked_is_safe_with_large_steps() -> None:
    """Very large Δ·|A| (total log-decay of a chunk far below -88) must not overflow or produce NaN."""
    inputs = _inputs(1, 4, 16, 300, seed=2)
    inputs["delta"] = inputs["delta"].abs() * 40 + 5
    chunked = _run(inputs, path="chunked", chunk=128)
    reference = _run(inputs, path="reference")
    assert torch.isfinite(chunked).all()
    assert (chunked - reference).abs().max().item() < 1e-4


def test_auto_path_on_cpu_is_the_kernel_or_chunked_and_cuda_path_needs_cuda(monkeypatch) -> None:
    inputs = _inputs(1, 3, 4, 50)
    monkeypatch.setattr(ssm.scan_cpu, "available", lambda: False)  # as when the kernel cannot be built
    assert ssm.resolve_path(inputs["u"]) == "chunked"
    assert torch.equal(_run(inputs, path="auto"), _run(inputs, path="chunked"))
    with pytest.raises(RuntimeError, match="built kernel"):
        _run(inputs, path="cpu")
    with pytest.raises(RuntimeError, match="CUDA"):
        _run(inputs, path="cuda")
    with pytest.raises(ValueError, match="unknown scan path"):
        _run(inputs, path="fast")
    with pytest.raises(ValueError, match="chunk must be >= 1"):
        _run(inputs, path="chunked", chunk=0)
    with pytest.raises(ValueError, match="B×N×L"):
        selective_scan(inputs["u"], inputs["delta"], inputs["A"], inputs["B"][..., :-1], inputs["C"])


def test_scan_runs_in_float32_under_autocast() -> None:
    inputs = _inputs(1, 4, 8, 40)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = _run(inputs, path="chunked")
    assert y.dtype == torch.float32
    assert (y - _run(inputs, path="chunked")).abs().max().item() == 0.0


MAMBA_V1_LAYOUT = [  # mamba-ssm v1 Mamba(d_model=12): d_inner 24, dt_rank ceil(12/16)=1, d_state 16, d_conv 4
    ("A_log", (24, 16)),
    ("D", (24,)),
    ("in_proj.weight", (48, 12)),
    ("conv1d.weight", (24, 1, 4)),
    ("conv1d.bias", (24,)),
    ("x_proj.weight", (33, 24)),
    ("dt_proj.weight", (24, 1)),
    ("dt_proj.bias", (24,)),
    ("out_proj.weight", (12, 24)),
]


def test_mamba_parameter_names_shapes_and_init() -> None:
    torch.manual_seed(0)
    layer = Mamba(12)
    assert [(k, tuple(v.shape)) for k, v in layer.state_dict().items()] == MAMBA_V1_LAYOUT
    assert torch.allclose(layer.A_log, torch.log(torch.arange(1.0, 17.0)).repeat(24, 1))
    assert torch.equal(layer.D, torch.ones(24))
    dt = F.softplus(layer.dt_proj.bias)
    assert dt.min() >= 1e-3 * (1 - 1e-4) and dt.max() <= 0.1 * (1 + 1e-4)
    assert layer.dt_proj.weight.abs().max() <= 1.0  # uniform in ±R^-1/2 with R = 1
    wide = Mamba(96, d_state=8, expand=3, bias=True)
    assert (wide.dt_rank, wide.d_inner) == (6, 288)
    assert tuple(wide.in_proj.bias.shape) == (576,) and tuple(wide.x_proj.weight.shape) == (6 + 16, 288)


def _mamba_slow_path(layer: Mamba, hidden: torch.Tensor) -> torch.Tensor:
    """mamba-ssm's ``mamba_inner_ref`` written out step by step."""
    length = hidden.shape[1]
    xz = hidden @ layer.in_proj.weight.t()
    x, z = xz[..., : layer.d_inner], xz[..., layer.d_inner:]
    x = F.conv1d(F.pad(x.transpose(1, 2), (layer.d_conv - 1, 0)), layer.conv1d.weight, layer.conv1d.bias,
                 groups=layer.d_inner)
    x = F.silu(x).transpose(1, 2)
    dbc = x @ layer.x_proj.weight.t()
    dt = F.softplus(dbc[..., : layer.dt_rank] @ layer.dt_proj.weight.t() + layer.dt_proj.bias)
    b = dbc[..., layer.dt_rank: layer.dt_rank + layer.d_state]
    c = dbc[..., layer.dt_rank + layer.d_state:]
    a = -torch.exp(layer.A_log)
    h = torch.zeros(hidden.shape[0], layer.d_inner, layer.d_state)
    ys = []
    for t in range(length):
        h = torch.exp(dt[:, t, :, None] * a) * h + (dt[:, t] * x[:, t])[..., None] * b[:, t, None, :]
        ys.append((h * c[:, t, None, :]).sum(-1) + layer.D * x[:, t])
    y = torch.stack(ys, dim=1) * F.silu(z)
    return y @ layer.out_proj.weight.t()


def test_mamba_forward_matches_slow_path_and_is_causal() -> None:
    torch.manual_seed(1)
    layer = Mamba(10, d_state=4)
    hidden = torch.randn(2, 23, 10)
    want = _mamba_slow_path(layer, hidden)
    for path in ("reference", "chunked", "cpu"):
        layer.scan_path = path
        got = layer(hidden)
        assert got.shape == (2, 23, 10)
        assert (got - want).abs().max().item() < 1e-5
        with torch.inference_mode():  # the chunked path's no-grad branch, fed sequence-major views
            assert (layer(hidden) - want).abs().max().item() < 1e-5
    changed = hidden.clone()
    changed[:, 15:] += 1.0
    out_a, out_b = layer(hidden), layer(changed)
    assert (out_a[:, :15] - out_b[:, :15]).abs().max().item() < 1e-6
    assert (out_a[:, 15:] - out_b[:, 15:]).abs().max().item() > 1e-3


def test_mamba_backward_reaches_every_parameter() -> None:
    torch.manual_seed(2)
    layer = Mamba(8, d_state=4, scan_chunk=4)
    layer(torch.randn(1, 19, 8)).square().mean().backward()
    for name, param in layer.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("bias", [True, False])
def test_causal_conv_equals_the_depthwise_conv1d_it_replaces(bias: bool) -> None:
    torch.manual_seed(3)
    mamba = Mamba(8, d_state=4, d_conv=4, expand=2, conv_bias=bias)
    x = torch.randn(2, 37, mamba.d_inner, requires_grad=True)  # B×L×E, sequence-major
    ours = mamba._causal_conv(x)
    conv = mamba.conv1d(x.transpose(1, 2))[..., : x.shape[1]].transpose(1, 2)  # the module's own convolution
    torch.testing.assert_close(ours, conv, atol=1e-6, rtol=1e-6)
    grad = torch.randn_like(ours)
    ours_grads = torch.autograd.grad(ours, [x, mamba.conv1d.weight], grad)
    conv_grads = torch.autograd.grad(conv, [x, mamba.conv1d.weight], grad)
    for got, want in zip(ours_grads, conv_grads):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    changed_future = x.detach().clone()
    changed_future[:, 20:] += 1.0
    torch.testing.assert_close(mamba._causal_conv(changed_future)[:, :20], ours[:, :20].detach(), atol=1e-6, rtol=0)
