"""Fused selective-scan kernels: the C++ CPU kernel and, through Triton's interpreter, the Triton kernel, against
the sequential reference; the fallback when the CPU kernel cannot be built."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from inpaintstudio.models.layers import scan_cpu, ssm
from inpaintstudio.models.layers.ssm import Mamba, selective_scan
from tests.conftest import REPO

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module", autouse=True)
def kernel_built() -> None:
    assert scan_cpu.available(), f"the CPU scan kernel did not build: {scan_cpu.build_info()['error']}"


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


def _sequence_major(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Same values, stored B×L×X and passed as B×X×L views (as Mamba passes them)."""
    return {k: v.transpose(1, 2).contiguous().transpose(1, 2) if v.dim() == 3 else v for k, v in inputs.items()}


def _gradients(inputs: dict[str, torch.Tensor], path: str, **kwargs: object) -> dict[str, torch.Tensor]:
    leaves = {k: v.clone().requires_grad_() for k, v in inputs.items()}
    y = selective_scan(**leaves, path=path, **kwargs)
    weights = torch.linspace(-1, 1, y.shape[-1])
    (y * weights).sum().backward()
    return {k: v.grad for k, v in leaves.items()}


@pytest.mark.parametrize(
    "shape",
    [
        (2, 5, 3, 37),  # fewer channels than one vector: one partial block
        (1, 40, 16, 200),  # full and partial blocks, several 64-step chunks, L not a multiple of the chunk
        (3, 17, 4, 64),  # L exactly one chunk
        (1, 3, 1, 1),  # one step, one state
    ],
)
@pytest.mark.parametrize("layout", ["channel", "sequence"])
def test_cpu_kernel_forward_matches_reference(shape, layout) -> None:
    inputs = _inputs(*shape)
    if layout == "sequence":
        inputs = _sequence_major(inputs)
    reference = selective_scan(**inputs, delta_softplus=True, path="reference")
    kernel = selective_scan(**inputs, delta_softplus=True, path="cpu")
    assert kernel.shape == reference.shape
    assert (kernel - reference).abs().max().item() < 1e-4
    assert reference.abs().max().item() > 0.5


@pytest.mark.parametrize("threads", [1, 2])  # 2 threads, batch 1: two tasks share dB/dC through partial sums
def test_cpu_kernel_gradients_match_reference(threads) -> None:
    inputs = _inputs(1, 40, 5, 150, seed=1)
    reference = _gradients(inputs, "reference", delta_softplus=True)
    torch.set_num_threads(threads)
    try:
        kernel = _gradients(_sequence_major(inputs), "cpu", delta_softplus=True)
    finally:
        torch.set_num_threads(1)
    for name, ref in reference.items():
        scale = ref.abs().max().item()
        assert scale > 1e-3, name
        assert (kernel[name] - ref).abs().max().item() <= 1e-4 * scale, name


def test_cpu_kernel_without_optional_terms() -> None:
    """No bias, no softplus, no D, no gate: the bare scan of Δ as given; gradients of the five inputs."""
    inputs = _inputs(2, 6, 4, 90, seed=2)
    bare = {k: inputs[k] for k in ("u", "A", "B", "C")} | {"delta": inputs["delta"].abs()}
    reference = selective_scan(**bare, path="reference")
    assert (selective_scan(**bare, path="cpu") - reference).abs().max().item() < 1e-4
    want, got = _gradients(bare, "reference"), _gradients(bare, "cpu")
    assert set(got) == set(bare)
    for name, ref in want.items():
        assert (got[name] - ref).abs().max().item() <= 1e-4 * ref.abs().max().item(), name


def test_cpu_kernel_is_safe_with_large_and_tiny_steps() -> None:
    inputs = _inputs(1, 4, 16, 300, seed=3)
    inputs["delta"] = torch.cat([inputs["delta"][..., :150].abs() * 40 + 5, inputs["delta"][..., 150:] - 30], -1)
    reference = selective_scan(**inputs, delta_softplus=True, path="reference")
    kernel = selective_scan(**inputs, delta_softplus=True, path="cpu")
    assert torch.isfinite(kernel).all()
    assert (kernel - reference).abs().max().item() <= 1e-5 * reference.abs().max().item()  # values reach ~1e3


def test_cpu_kernel_under_autocast_and_in_half_precision_inputs() -> None:
    inputs = _inputs(1, 8, 4, 40, seed=4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = selective_scan(**inputs, delta_softplus=True, path="cpu")
    assert y.dtype == torch.float32
    assert torch.equal(y, selective_scan(**inputs, delta_softplus=True, path="cpu"))
    half = {k: v.bfloat16() for k, v in inputs.items()}
    y16 = selective_scan(**half, delta_softplus=True, path="cpu")
    assert y16.dtype == torch.bfloat16
    reference = selective_scan(**{k: v.float() for k, v in half.items()}, delta_softplus=True, path="reference")
    assert (y16.float() - reference).abs().max().item() <= 0.01 * reference.abs().max().item()


def test_auto_picks_the_cpu_kernel() -> None:
    inputs = _inputs(1, 3, 4, 50)
    assert ssm.resolve_path(inputs["u"]) == "cpu"
    auto = selective_scan(**inputs, delta_softplus=True, path="auto")
    assert torch.equal(auto, selective_scan(**inputs, delta_softplus=True, path="cpu"))
    with pytest.raises(RuntimeError, match="CUDA"):
        selective_scan(**inputs, path="triton")


def test_mamba_uses_the_kernel_unless_the_fast_path_is_off(monkeypatch) -> None:
    torch.manual_seed(0)
    layer = Mamba(16, d_state=4)
    hidden = torch.randn(2, 33, 16)
    calls = []
    for name in ("fused_scan", "projected_scan"):
        original = getattr(scan_cpu, name)
        monkeypatch.setattr(scan_cpu, name, lambda *a, _f=original, _n=name: calls.append(_n) or _f(*a))
    with torch.no_grad():
        fused = layer(hidden)  # inference: Δ's projection inside the kernel
    assert calls == ["projected_scan"]
    trained = layer(hidden)  # with autograd: the kernel's autograd function, Δ projected by PyTorch
    assert calls == ["projected_scan", "fused_scan"]
    assert (trained.detach() - fused).abs().max().item() < 1e-5
    with torch.no_grad():
        layer.use_fast_path = False
        assert (layer(hidden) - fused).abs().max().item() < 1e-5
    assert calls == ["projected_scan", "fused_scan"]


@pytest.mark.parametrize(("channels", "length", "threads"), [(7, 33, 1), (48, 300, 2), (192, 64, 1)])
def test_fused_causal_conv_silu_matches_conv1d(channels, length, threads) -> None:
    torch.manual_seed(channels)
    conv = torch.nn.Conv1d(channels, channels, 4, groups=channels, padding=3)
    xz = torch.randn(2, length, 2 * channels)
    x = xz[..., :channels]  # a strided half of in_proj's output, as Mamba passes it
    expected = torch.nn.functional.silu(conv(x.transpose(1, 2))[..., :length]).transpose(1, 2)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        fused = scan_cpu.load().causal_conv_silu(x, conv.weight[:, 0, :].contiguous(), conv.bias)
    finally:
        torch.set_num_threads(previous)
    assert fused.is_contiguous() and fused.shape == x.shape
    assert (fused - expected).abs().max().item() < 1e-5


@pytest.mark.parametrize("width", [6, 21, 48, 96])
def test_fused_gather_layer_norm_matches_index_select_add_layer_norm(width) -> None:
    torch.manual_seed(width)
    pixels = torch.randn(2, 130, width) * 3 + 1
    order, table = torch.randperm(130), torch.randn(130, width)
    norm = torch.nn.LayerNorm(width)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    with torch.no_grad():
        expected = norm(pixels.index_select(1, order) + table)
        gathered = ssm.gather_layer_norm(pixels, order, table, norm)
        plain = ssm.gather_layer_norm(pixels, None, None, norm)
        assert (gathered - expected).abs().max().item() < 2e-5
        assert (plain - norm(pixels)).abs().max().item() < 2e-5
        # the chunked path (and autograd) run the PyTorch ops themselves
        assert torch.equal(ssm.gather_layer_norm(pixels, order, table, norm, path="chunked"), expected)
    with pytest.raises(RuntimeError, match="bad index"):
        scan_cpu.load().gather_layer_norm(pixels, torch.tensor([0, 130]), None, norm.weight, norm.bias, 1e-5)


def test_mamba_fused_conv_matches_the_pytorch_path() -> None:
    torch.manual_seed(1)
    layer = Mamba(24, d_state=8)
    hidden = torch.randn(1, 77, 24)
    with torch.no_grad():
        fused = layer(hidden)
        layer.scan_path = "chunked"
        assert (layer(hidden) - fused).abs().max().item() < 1e-5
    layer.scan_path = "auto"
    hidden.requires_grad_(True)
    layer(hidden).sum().backward()  # with autograd the conv runs through conv1d's weights (differentiable)
    assert layer.conv1d.weight.grad is not None and hidden.grad is not None


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1", **env})


FALLBACK_CHECK = """
    import json, warnings
    import torch
    from inpaintstudio.models.layers import scan_cpu, ssm
    g = torch.Generator().manual_seed(0)
    u, delta, z = (torch.randn(1, 6, 40, generator=g) for _ in range(3))
    A = -torch.rand(6, 4, generator=g) - 0.1
    B, C = torch.randn(1, 4, 40, generator=g), torch.randn(1, 4, 40, generator=g)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ys = [ssm.selective_scan(u, delta, A, B, C, None, z, None, True) for _ in range(3)]
    chunked = ssm.selective_scan(u, delta, A, B, C, None, z, None, True, path="chunked")
    print(json.dumps({"path": ssm.resolve_path(u), "notices": [str(w.message) for w in caught],
                      "equal_to_chunked": all(torch.equal(y, chunked) for y in ys), "info": scan_cpu.build_info()}))
"""


@pytest.mark.parametrize(
    ("compiler", "reason"), [("absent", "no C++ compiler"), ("broken", "Error building extension")]
)
def test_fallback_to_chunked_scan_with_one_notice(tmp_path, compiler, reason) -> None:
    if compiler == "absent":
        cxx = "/nonexistent/c++"
    else:  # answers --version like a compiler (torch asks), fails every compile
        script = tmp_path / "broken-c++"
        script.write_text('#!/bin/sh\ncase "$*" in *--version*) exec c++ --version;; esac\n'
                          'echo "broken-c++: cannot compile" >&2\nexit 1\n')
        script.chmod(0o755)
        cxx = str(script)
    done = _run_python(FALLBACK_CHECK, CXX=cxx, INPAINTSTUDIO_CACHE=str(tmp_path / "cache"))
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["path"] == "chunked"
    assert result["equal_to_chunked"]
    assert len(result["notices"]) == 1, result["notices"]
    assert "fused CPU selective scan could not be built" in result["notices"][0]
    assert reason in result["notices"][0]
    assert not result["info"]["loaded"] and reason in result["info"]["error"]


def test_kernel_is_cached_after_the_first_build() -> None:
    """A second process loads the built library from the cache instead of compiling it again."""
    code = """
        import json
        from inpaintstudio.models.layers import scan_cpu
        scan_cpu.load()
        print(json.dumps(scan_cpu.build_info()))
    """
    assert _run_python(code).returncode == 0  # builds if this environment's compile command differs
    library = scan_cpu.library_path()
    built_at = library.stat().st_mtime_ns
    done = _run_python("""
        import json
        from inpaintstudio.models.layers import scan_cpu
        scan_cpu.load()
        print(json.dumps(scan_cpu.build_info()))
    """)
    assert done.returncode == 0, done.stderr[-2000:]
    info = json.loads(done.stdout.strip().splitlines()[-1])
    assert info["loaded"]
    assert library.stat().st_mtime_ns == built_at  # not rebuilt


def test_triton_kernel_matches_reference_through_the_interpreter() -> None:
    pytest.importorskip("triton")
    done = _run_python(f"import runpy; runpy.run_path({str(REPO / 'tests' / 'triton_interpreter_check.py')!r})",
                       TRITON_INTERPRET="1")
    assert done.returncode == 0, done.stderr[-3000:]
    cases = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(cases) == 3
    for case in cases:
        assert case["forward_max_abs"] < 1e-4, case
        assert case["reference_scale"] > 0.5, case
        for name, error in case["gradient_rel"].items():
            assert error < 1e-4, (case["name"], name, error)


@pytest.mark.parametrize("shape", [(1, 40, 9, 7), (2, 33, 5, 6)])
def test_fused_gelu_mul_matches_gelu_times_value(shape) -> None:
    from inpaintstudio.models.layers import fused

    torch.manual_seed(0)
    both = torch.randn(shape[0], 2 * shape[1], *shape[2:]).contiguous(memory_format=torch.channels_last)
    gate, value = both.chunk(2, dim=1)  # channel slices of a channels-last tensor, as the FFNs split them
    assert fused.pixel_rows(gate) is not None
    with torch.no_grad():
        out = fused.gelu_mul(gate, value)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert (out - torch.nn.functional.gelu(gate) * value).abs().max().item() < 1e-6
    plain = torch.randn(shape)  # not channels-last: plain PyTorch
    assert fused.pixel_rows(plain) is None
    assert torch.equal(fused.gelu_mul(plain, plain), torch.nn.functional.gelu(plain) * plain)


@pytest.mark.parametrize("bias", [False, True])
def test_folded_projections_equal_the_fuse_of_the_projected_branches(bias) -> None:
    from inpaintstudio.models.layers import fused

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(20, 12, 1, bias=bias)
    projections = [torch.nn.Linear(5, 8, bias=bias), torch.nn.Conv2d(6, 12, 1, bias=bias)]
    cl = torch.channels_last
    x = torch.randn(2, 12, 7, 9).contiguous(memory_format=cl)
    rows = torch.randn(2 * 7 * 9, 5)  # one branch as pixel rows, the other as a channels-last feature map
    feature_map = torch.randn(2, 6, 7, 9).contiguous(memory_format=cl)
    before = x.clone()
    with torch.no_grad():
        projected = [projections[0](rows).view(2, 7, 9, 8).permute(0, 3, 1, 2), projections[1](feature_map)]
        expected = x + conv(torch.cat(projected, dim=1))
        branches = [(rows, p.weight, p.bias) for p in projections[:1]] + [
            (feature_map, projections[1].weight, projections[1].bias)]
        out = fused.add_folded_projections(x, branches, conv)
        with pytest.raises(ValueError, match="channels-last"):
            fused.add_folded_projections(x.contiguous(), branches, conv)
    assert out.is_contiguous(memory_format=cl)
    assert (out - expected).abs().max().item() < 1e-5
    assert torch.equal(x, before)  # the residual input is left as it was


@pytest.mark.parametrize(("channels", "length", "rank", "threads"), [(7, 33, 1, 1), (48, 300, 6, 2), (40, 129, 3, 1)])
def test_projected_scan_matches_the_scan_of_the_projected_delta(channels, length, rank, threads) -> None:
    torch.manual_seed(channels)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        states = 16
        u, z = torch.randn(2, length, channels), torch.randn(2, length, channels)
        x_dbl = torch.randn(2, length, rank + 2 * states)  # Δ's low-rank input, B and C: slices of one tensor
        low, B, C = torch.split(x_dbl, [rank, states, states], dim=-1)
        weight, bias = torch.randn(channels, rank) * 0.5, torch.randn(channels) * 0.3
        A, D = -torch.rand(channels, states) * 4 - 0.1, torch.randn(channels)
        delta = torch.nn.functional.linear(low, weight)
        expected = selective_scan(u.transpose(1, 2), delta.transpose(1, 2), A, B.transpose(1, 2), C.transpose(1, 2),
                                  D, z=z.transpose(1, 2), delta_bias=bias, delta_softplus=True, path="reference")
        out = scan_cpu.projected_scan(u, low, weight, A, B, C, D, z, bias, True)
    finally:
        torch.set_num_threads(previous)
    assert out.shape == (2, length, channels)
    assert (out - expected.transpose(1, 2)).abs().max().item() < 1e-4 * max(1.0, expected.abs().max().item())


@pytest.mark.parametrize(("rows", "columns", "threads"), [(1, 5, 1), (700, 33, 2), (4096, 96, 2)])
def test_column_norms_match_vector_norm(rows, columns, threads) -> None:
    from inpaintstudio.models.layers import fused

    torch.manual_seed(rows)
    pixels = torch.randn(rows, 3 * columns)  # a column slice of wider rows, as HINT's q and k are
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        norms = fused.column_norms(pixels[:, columns : 2 * columns])
    finally:
        torch.set_num_threads(previous)
    expected = torch.linalg.vector_norm(pixels[:, columns : 2 * columns].double(), dim=0).float()
    assert torch.allclose(norms, expected, rtol=1e-5, atol=0)


@pytest.fixture
def fuse_small_images(monkeypatch) -> None:
    """The fused FFN ops for every image size (by default small images keep the PyTorch chain)."""
    from inpaintstudio.models.layers import fused

    monkeypatch.setattr(fused, "MIN_FUSED_PIXELS", 1)


def _gdfn(dim: int, hidden: int, bias: bool, seed: int) -> tuple[torch.nn.Conv2d, torch.nn.Conv2d, torch.nn.Conv2d]:
    """The three convolutions of a gated depth-wise FFN (D -> 2F, depth-wise 3×3, F -> D), random weights."""
    torch.manual_seed(seed)
    return (torch.nn.Conv2d(dim, 2 * hidden, 1, bias=bias),
            torch.nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden, bias=bias),
            torch.nn.Conv2d(hidden, dim, 1, bias=bias))


def _gdfn_reference(x: torch.Tensor, project_in, dwconv, project_out) -> torch.Tensor:
    a, b = dwconv(project_in(x)).chunk(2, dim=1)
    return project_out(torch.nn.functional.gelu(a) * b)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    ("batch", "dim", "hidden", "height", "width"),
    [
        (2, 8, 5, 7, 13),  # odd sizes, fewer channels than one vector
        (1, 4, 3, 1, 1),  # one pixel: every neighbour is padding
        (2, 16, 37, 33, 20),  # several row steps per band, a partial channel vector
        (1, 48, 127, 9, 40),  # HINT level 1's widths
        (2, 6, 20, 2, 1),  # one column
    ],
)
@pytest.mark.usefixtures("fuse_small_images")
def test_fused_gated_dconv_ffn_matches_the_convolutions(batch, dim, hidden, height, width, bias, threads) -> None:
    from inpaintstudio.models.layers import fused

    convs = _gdfn(dim, hidden, bias, seed=height * width + dim)
    x = torch.randn(batch, dim, height, width).contiguous(memory_format=torch.channels_last)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            out = fused.gated_dconv_ffn(x, *convs)
            expected = _gdfn_reference(x.contiguous(), *convs)
    finally:
        torch.set_num_threads(previous)
    assert out.shape == expected.shape and out.is_contiguous(memory_format=torch.channels_last)
    assert (out - expected).abs().max().item() <= 1e-5 * expected.abs().max().item()


def test_fused_gated_dconv_ffn_falls_back_to_pytorch(monkeypatch) -> None:
    from inpaintstudio.models.layers import fused

    convs = _gdfn(8, 6, True, seed=1)
    x = torch.randn(2, 8, 5, 7).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert not fused._fusable_ffn(x, convs)  # below MIN_FUSED_PIXELS: the PyTorch chain
        assert fused._fusable_ffn(torch.randn(1, 8, 64, 64).contiguous(memory_format=torch.channels_last), convs)
    monkeypatch.setattr(fused, "MIN_FUSED_PIXELS", 1)
    calls = []
    ops = fused._library()  # loaded and its FLOP formulas registered before the spy counts look-ups

    class Spy:
        def __getattr__(self, name: str):
            if name == "gated_dconv_ffn":
                calls.append(1)
            return getattr(ops, name)

    monkeypatch.setattr(scan_cpu, "load", lambda: Spy())
    with torch.no_grad():
        expected = _gdfn_reference(x, *convs)
        fused.gated_dconv_ffn(x, *convs)
        assert calls == [1]
        # not channels-last, or double precision: the convolutions
        assert torch.allclose(fused.gated_dconv_ffn(x.contiguous(), *convs), expected, atol=1e-6)
        double = [torch.nn.Conv2d(c.in_channels, c.out_channels, c.kernel_size, padding=c.padding,
                                  groups=c.groups).double() for c in convs]
        fused.gated_dconv_ffn(x.double(), *double)
    assert calls == [1]
    # autograd: the convolutions, with gradients
    out = fused.gated_dconv_ffn(x, *convs)
    assert calls == [1] and out.requires_grad
    out.sum().backward()
    assert convs[0].weight.grad is not None
    # library not built: the convolutions
    monkeypatch.setattr(scan_cpu, "available", lambda: False)
    with torch.no_grad():
        assert torch.allclose(fused.gated_dconv_ffn(x, *convs), expected, atol=1e-6)
    assert calls == [1]


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    ("batch", "dim", "hidden", "height", "width"),
    [(2, 8, 5, 7, 13), (1, 4, 3, 1, 1), (2, 16, 37, 33, 20), (1, 48, 96, 12, 40), (2, 6, 20, 2, 1)],
)
@pytest.mark.usefixtures("fuse_small_images")
def test_fused_spatial_gated_dconv_ffn_matches_the_convolutions(batch, dim, hidden, height, width, bias,
                                                                threads) -> None:
    """SEM-Net's spatial FFN: the first half, concatenated with the indicator, through fusion and a second
    depth-wise conv before the gate."""
    from inpaintstudio.models.layers import fused

    project_in, dwconv, project_out = _gdfn(dim, hidden, bias, seed=height * width + dim)
    fusion = torch.nn.Conv2d(hidden + dim, hidden, 1, bias=bias)
    after = torch.nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=bias)
    x = torch.randn(batch, dim, height, width).contiguous(memory_format=torch.channels_last)
    indicator = torch.randn(batch, dim, height, width)  # not channels-last: the wrapper converts it
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            out = fused.spatial_gated_dconv_ffn(x, indicator, project_in, dwconv, fusion, after, project_out)
            a, b = dwconv(project_in(x.contiguous())).chunk(2, dim=1)
            a = after(fusion(torch.cat([a, indicator], dim=1)))
            expected = project_out(torch.nn.functional.gelu(a) * b)
    finally:
        torch.set_num_threads(previous)
    assert out.shape == expected.shape and out.is_contiguous(memory_format=torch.channels_last)
    assert (out - expected).abs().max().item() <= 1e-5 * expected.abs().max().item()


@pytest.mark.usefixtures("fuse_small_images")
def test_fused_ffn_ops_count_the_flops_of_the_convolutions_they_replace() -> None:
    from torch.utils.flop_counter import FlopCounterMode

    from inpaintstudio.models.layers import fused

    project_in, dwconv, project_out = _gdfn(8, 6, False, seed=2)
    fusion = torch.nn.Conv2d(6 + 8, 6, 1, bias=False)
    after = torch.nn.Conv2d(6, 6, 3, padding=1, groups=6, bias=False)
    x = torch.randn(2, 8, 5, 7).contiguous(memory_format=torch.channels_last)
    indicator = torch.randn(2, 8, 5, 7).contiguous(memory_format=torch.channels_last)
    fused._library()  # formulas registered before the counters copy the registry

    def flops(fn) -> int:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            fn()
        return counter.get_total_flops()

    plain = flops(lambda: fused.gated_dconv_ffn(x, project_in, dwconv, project_out))
    assert plain == flops(lambda: _gdfn_reference(x, project_in, dwconv, project_out)) > 0

    def spatial_reference() -> torch.Tensor:
        a, b = dwconv(project_in(x)).chunk(2, dim=1)
        return project_out(fused.gelu_mul(after(fusion(torch.cat([a, indicator], dim=1))), b))

    spatial = flops(lambda: fused.spatial_gated_dconv_ffn(x, indicator, project_in, dwconv, fusion, after,
                                                          project_out))
    assert spatial == flops(spatial_reference) > plain


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize(("batch", "dim", "channels", "height", "width", "threads"),
                         [(2, 8, 21, 7, 13, 2), (1, 4, 3, 1, 1, 1), (2, 16, 48, 33, 20, 2), (1, 6, 18, 2, 1, 1)])
@pytest.mark.usefixtures("fuse_small_images")
def test_pointwise_depthwise_matches_the_two_convolutions(batch, dim, channels, height, width, threads, bias) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    from inpaintstudio.models.layers import fused

    torch.manual_seed(channels + height)
    pointwise = torch.nn.Conv2d(dim, channels, 1, bias=bias)
    depthwise = torch.nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=bias)
    x = torch.randn(batch, dim, height, width).contiguous(memory_format=torch.channels_last)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            (out,) = fused.pointwise_depthwise(x, pointwise, depthwise)
            q, k, v = fused.pointwise_depthwise(x, pointwise, depthwise, parts=3)
            expected = depthwise(pointwise(x.contiguous()))
            fused._library()
            counted = FlopCounterMode(display=False)
            with counted:
                fused.pointwise_depthwise(x, pointwise, depthwise)
            reference = FlopCounterMode(display=False)
            with reference:
                depthwise(pointwise(x.contiguous()))
    finally:
        torch.set_num_threads(previous)
    assert out.shape == expected.shape and out.is_contiguous(memory_format=torch.channels_last)
    assert (out - expected).abs().max().item() <= 1e-5 * expected.abs().max().item()
    assert counted.get_total_flops() == reference.get_total_flops() > 0
    for part, expected_part in zip((q, k, v), expected.chunk(3, dim=1)):  # each part its own channels-last tensor
        assert part.is_contiguous(memory_format=torch.channels_last)
        assert (part - expected_part).abs().max().item() <= 1e-5 * expected.abs().max().item()
    plain = torch.randn(2, dim, 5, 4)  # not channels-last: the two convolutions themselves
    with torch.no_grad():
        assert torch.equal(fused.pointwise_depthwise(plain, pointwise, depthwise)[0], depthwise(pointwise(plain)))


@pytest.mark.parametrize("accumulate", [False, True])
def test_gather_rows_matches_index_select(accumulate) -> None:
    from inpaintstudio.models.layers import fused

    torch.manual_seed(3)
    x = torch.randn(2, 300, 20)
    grid = torch.arange(300).view(15, 20)
    grid[1::2] = grid[1::2].flip(1)  # a snake order, as SEM-Net's row scan reads the pixels
    order = grid.flatten().contiguous()
    base = torch.randn(2, 300, 20)
    with torch.no_grad():
        out = fused.gather_rows(x, order, base.clone() if accumulate else None)
    expected = x.index_select(1, order) + (base if accumulate else 0)
    assert torch.equal(out, expected)
    with pytest.raises(RuntimeError, match="bad index"):
        scan_cpu.load().gather_rows(x, torch.tensor([0, 300]), None)
