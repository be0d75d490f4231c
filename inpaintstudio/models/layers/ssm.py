"""Selective state-space scan (Mamba "S6") and the mamba-ssm v1 ``Mamba`` layer.

Paper: A. Gu, T. Dao, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces", arXiv 2312.00752.
Official code: https://github.com/state-spaces/mamba (``mamba_ssm`` v1.1.3.post1, ``mamba_ssm/modules/mamba_simple.py``
and ``mamba_ssm/ops/selective_scan_interface.py``), Apache-2.0.

``selective_scan`` keeps mamba-ssm's ``selective_scan_fn`` argument layout (u, delta: B×E×L; A: E×N; B, C: B×N×L;
D: E; z: B×E×L; delta_bias: E) and offers these paths, which compute the same recurrence:

- ``"reference"``: the plain sequential loop over L (for tests; slow).
- ``"cpu"``: the fused C++ kernel of ``scan_cpu.py``/``scan_cpu.cpp`` (forward and backward, one pass per
  batch × channel block with the state in registers; compiled on first use and cached).
- ``"triton"``: the Triton kernel of ``scan_triton.py`` for CUDA tensors (forward and backward; needs only torch and
  triton).
- ``"cuda"``: mamba-ssm's fused ``selective_scan_fn`` (imported lazily; mamba-ssm is optional and never required).
- ``"chunked"``: pure PyTorch, the fallback when no kernel is available. The sequence is cut into chunks of
  ``chunk`` steps; chunk groups are processed one after the other (memory bounded by the group size), and inside a
  group all chunks advance together: (1) a local scan from a zero state gives each chunk's final local state, (2) a
  short sequential pass over the chunks propagates the true chunk-entry states with the chunk's total decay
  ``exp(sum(delta)·A)``, (3) a second local scan started from those states yields the exact states, contracted
  with C. Every exponent is ``delta·A <= 0`` (or a sum of such), so no exponential can overflow. Under autograd each
  group is recomputed in backward (``torch.utils.checkpoint``), so training memory is bounded by one group as well.
  Without autograd the work runs sequence-major (a group is then a contiguous slice of the B×L×X storage ``Mamba``
  produces; channel-major inputs are gathered by the first kernel reading them) in preallocated buffers sized for
  the L2 cache on one thread, or for splitting every kernel across the threads on several; bias/softplus of Δ, the
  D skip and the SiLU(z) gate are applied group by group, so the output is the only full-size allocation. That path
  costs about six passes over the L·E·N state values (Δ⊗A, exp, Δu⊗B, two scans, the C contraction as one batched
  (1×N)·(N×E) matmul).

``"auto"`` picks, for CPU tensors, ``"cpu"`` when the kernel builds (else ``"chunked"``, after one warning), and for
CUDA tensors ``"cuda"`` when mamba-ssm imports, else ``"triton"`` when triton imports, else ``"chunked"``.

The scan always runs in float32 (autocast is switched off inside) and returns the dtype of ``u``, like mamba-ssm.

Differences from mamba-ssm (all deliberate, none changes the math):

- Discretisation follows the kernel, not the paper: ``Ā = exp(Δ·A)``, ``B̄·x = Δ·B·x`` (paper: zero-order hold for B).
- Only real-valued A and time-varying B, C of shape B×N×L are supported (the only case ``Mamba`` v1 uses); mamba-ssm's
  grouped (B×G×N×L) and complex variants are not implemented.
- ``Mamba.forward`` always runs the "slow path" math (``mamba_inner_ref`` semantics: causal depthwise conv + SiLU,
  x_proj split into dt/B/C, dt_proj, softplus with the dt bias, scan with D skip and SiLU(z) gate, out_proj); only
  the scan itself is fused (not the whole block, which ``mamba_inner_fn`` would also fuse); without autograd on the
  CPU kernel's path, the causal convolution and its SiLU are one fused pass as well. With
  ``use_fast_path=False`` the scan is the pure-PyTorch chunked one. Incremental decoding (``inference_params``/
  ``step``) is not implemented.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from inpaintstudio.models.layers import scan_cpu

ScanPath = Literal["auto", "reference", "chunked", "cpu", "triton", "cuda"]
PATHS = ("auto", "reference", "chunked", "cpu", "triton", "cuda")

DEFAULT_CHUNK = 16
# Upper bound on the elements of one (chunk, chunks-in-group, batch, E, N) work tensor of the chunked path.
GROUP_ELEMENTS = 1 << 22
# Bound used without autograd on one thread: two such tensors (1 MiB each) stay in a core's L2 cache, and the
# per-step kernels are still large enough that launch overhead stays small (E·N = 1536, chunk 16: 10 chunks).
INFERENCE_GROUP_ELEMENTS = 1 << 18
# Elements per thread below which torch runs an elementwise kernel on one thread (at::internal::GRAIN_SIZE).
PARALLEL_GRAIN = 32768


def _fused_scan_fn() -> Callable[..., Tensor] | None:
    """mamba-ssm's fused CUDA ``selective_scan_fn`` when the package is importable, else None."""
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except Exception:  # noqa: BLE001 - any import failure (missing package, missing CUDA extension) means "absent"
        return None
    return selective_scan_fn


def fused_scan_available() -> bool:
    """True when the fused CUDA scan of mamba-ssm can be imported."""
    return _fused_scan_fn() is not None


def triton_available() -> bool:
    """True when triton imports (the Triton scan then runs on CUDA tensors)."""
    from inpaintstudio.models.layers import scan_triton

    return scan_triton.available()


def resolve_path(u: Tensor, path: ScanPath = "auto") -> str:
    """The path ``selective_scan`` takes for input ``u`` (see the module docstring for "auto")."""
    if path not in PATHS:
        raise ValueError(f"unknown scan path {path!r}; expected one of {', '.join(map(repr, PATHS))}")
    if path != "auto":
        return path
    if u.is_cuda:
        if fused_scan_available():
            return "cuda"
        return "triton" if triton_available() else "chunked"
    if u.device.type == "cpu" and scan_cpu.available():
        return "cpu"
    return "chunked"


def selective_scan(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    path: ScanPath = "auto",
    chunk: int = DEFAULT_CHUNK,
) -> Tensor:
    """Selective scan ``y = SSM(A, Δ·B, C)(u) + D·u``, gated by ``SiLU(z)``; mamba-ssm ``selective_scan_fn`` layout.

    Args:
        u: input, B×E×L.
        delta: step sizes before bias/softplus, B×E×L.
        A: state matrix (diagonal per channel), E×N, normally negative.
        B: input projection per time step, B×N×L.
        C: output projection per time step, B×N×L.
        D: skip weight, E (optional).
        z: gate, B×E×L (optional); the output is multiplied by ``SiLU(z)``.
        delta_bias: added to ``delta`` before the softplus, E (optional).
        delta_softplus: apply softplus to ``delta + delta_bias``.
        path: "auto", "reference", "chunked", "cpu", "triton" or "cuda" (see the module docstring).
        chunk: chunk length of the chunked path.

    Returns:
        y, B×E×L, in the dtype of ``u`` (the kernels, and the chunked path without autograd, return a B×E×L view of
        B×L×E storage, the layout ``Mamba`` reads next).
    """
    path = resolve_path(u, path)
    if path == "cuda":
        fused = _fused_scan_fn()
        if fused is None or not u.is_cuda:
            raise RuntimeError("path='cuda' needs CUDA tensors and an importable mamba_ssm package")
        return fused(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    _check_shapes(u, delta, A, B, C)
    if path == "cpu" and (u.device.type != "cpu" or not scan_cpu.available()):
        raise RuntimeError(f"path='cpu' needs CPU tensors and the built kernel ({scan_cpu.build_info()['error']})")
    if path == "triton":
        from inpaintstudio.models.layers import scan_triton

        if not scan_triton.available() or not (u.is_cuda or scan_triton.interpreted()):
            raise RuntimeError("path='triton' needs CUDA tensors and an importable triton package")
    if path == "chunked" and chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    out_dtype = u.dtype
    with torch.autocast(device_type=u.device.type, enabled=False):
        u32, dt = u.float(), delta.float()
        A32, B32, C32 = A.float(), B.float(), C.float()
        D32, z32, bias32 = (t.float() if t is not None else None for t in (D, z, delta_bias))
        if path == "cpu":
            return scan_cpu.fused_scan(u32, dt, A32, B32, C32, D32, z32, bias32, delta_softplus).to(out_dtype)
        if path == "triton":
            from inpaintstudio.models.layers import scan_triton

            return scan_triton.triton_scan(u32, dt, A32, B32, C32, D32, z32, bias32, delta_softplus).to(out_dtype)
        tracked = (u, delta, A, B, C, D, z, delta_bias)
        if path == "chunked" and u.shape[-1] and not (
            torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tracked)
        ):
            # Inference: bias, softplus, D and the gate are applied group by group inside the scan (no B×E×L
            # temporaries besides the output).
            y = _scan_chunked_no_grad(u32, dt, A32, B32, C32, chunk, D32, z32, bias32, delta_softplus)
            return y.to(out_dtype)
        if bias32 is not None:
            dt = dt + bias32[:, None]
        if delta_softplus:
            dt = F.softplus(dt)
        if path == "reference":
            y = _scan_reference(u32, dt, A32, B32, C32)
        else:
            y = _scan_chunked(u32, dt, A32, B32, C32, chunk)
        if D32 is not None:
            y = y + u32 * D32[:, None]
        if z32 is not None:
            y = y * F.silu(z32)
    return y.to(out_dtype)


def _check_shapes(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor) -> None:
    if u.dim() != 3 or delta.shape != u.shape:
        raise ValueError(f"u and delta must both be B×E×L, got {tuple(u.shape)} and {tuple(delta.shape)}")
    batch, channels, length = u.shape
    if A.dim() != 2 or A.shape[0] != channels:
        raise ValueError(f"A must be E×N with E={channels}, got {tuple(A.shape)}")
    expected = (batch, A.shape[1], length)
    if tuple(B.shape) != expected or tuple(C.shape) != expected:
        raise ValueError(f"B and C must be B×N×L = {expected}, got {tuple(B.shape)} and {tuple(C.shape)}")


def _scan_reference(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor) -> Tensor:
    """Sequential recurrence ``h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t u_t``, ``y_t = C_t·h_t`` (float32 in and out)."""
    batch, channels, length = u.shape
    state = u.new_zeros(batch, channels, A.shape[1])
    outputs = []
    for t in range(length):
        dt = delta[:, :, t, None]
        state = torch.exp(dt * A) * state + (dt * u[:, :, t, None]) * B[:, None, :, t]
        outputs.append(torch.einsum("ben,bn->be", state, C[:, :, t]))
    return torch.stack(outputs, dim=-1) if outputs else u.new_zeros(u.shape)


def _scan_chunked(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, chunk: int) -> Tensor:
    """Two-level chunked scan with autograd (see the module docstring); inputs float32, B×E×L / E×N / B×N×L."""
    batch, channels, length = u.shape
    n_state = A.shape[1]
    if length == 0:
        return u.new_zeros(u.shape)
    chunk = min(chunk, length)
    n_chunks = -(-length // chunk)
    pad = n_chunks * chunk - length
    # Padded steps have Δ = 0 and u = 0: identity steps, their outputs are dropped.
    if pad:
        u, delta, B, C = (F.pad(t, (0, pad)) for t in (u, delta, B, C))

    def to_chunks(t: Tensor) -> Tensor:  # B×X×L -> chunk×n_chunks×B×X (a strided view, no copy)
        return t.reshape(t.shape[0], t.shape[1], n_chunks, chunk).permute(3, 2, 0, 1)

    u_c, delta_c, B_c, C_c = (to_chunks(t) for t in (u, delta, B, C))
    group = max(1, GROUP_ELEMENTS // (chunk * batch * channels * n_state))
    state = u.new_zeros(batch, channels, n_state)
    outputs = []
    for start in range(0, n_chunks, group):
        part = slice(start, min(start + group, n_chunks))
        y, state = checkpoint(_scan_group, u_c[:, part], delta_c[:, part], A, B_c[:, part], C_c[:, part], state,
                              use_reentrant=False)
        outputs.append(y)
    y = torch.cat(outputs, dim=1)  # chunk×n_chunks×B×E
    return y.permute(2, 3, 1, 0).reshape(batch, channels, n_chunks * chunk)[..., :length]


def _scan_group(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
    """Scan G chunks at once (autograd path). u, delta: T×G×B×E; B, C: T×G×B×N; state: B×E×N entering the group.

    Returns (y: T×G×B×E, state after the last chunk: B×E×N).
    """
    # unbind() (one backward node for all slices) rather than indexing: each indexed slice would allocate a
    # full-size zero gradient in backward, making the backward quadratic in the chunk length.
    decay = torch.exp(delta[..., None] * A).unbind(0)  # T × (G×B×E×N), every entry in (0, 1]
    drive = ((delta * u)[..., None] * B[..., None, :]).unbind(0)  # Δ·u·B
    # (1) local scan from a zero state: each chunk's own contribution to its final state.
    local = drive[0]
    for k in range(1, len(drive)):
        local = torch.addcmul(drive[k], decay[k], local)
    # (2) chunk-entry states; the total decay of a chunk is exp(sum(Δ)·A) <= 1.
    chunk_decay = torch.exp(delta.sum(dim=0)[..., None] * A).unbind(0)  # G × (B×E×N)
    entry = []
    for local_final, total_decay in zip(local.unbind(0), chunk_decay):
        entry.append(state)
        state = torch.addcmul(local_final, total_decay, state)
    # (3) exact states inside each chunk, contracted with C.
    h = torch.stack(entry, dim=0)
    states = []
    for decay_k, drive_k in zip(decay, drive):
        h = torch.addcmul(drive_k, decay_k, h)
        states.append(h)
    y = torch.einsum("tgben,tgbn->tgbe", torch.stack(states, dim=0), C)
    return y, state


class _Workspace:
    """Preallocated work tensors of the no-grad chunked scan for groups of up to ``group`` chunks, with every
    per-step/per-chunk view created once (indexing a tensor costs about as much Python time as a small kernel).

    Layout G×B×T×N×E: a group's chunks outermost (a shorter last group is a contiguous prefix), E innermost so the
    broadcasts Δ⊗A and (Δu)⊗B have long inner rows and y_t = C_t·h_t is one batched (1×N)·(N×E) product. A step k of
    every chunk is the strided view ``[:, :, k]`` of N×E blocks.
    """

    def __init__(self, steps: int, group: int, batch: int, channels: int, n_state: int, like: Tensor) -> None:
        self.steps = steps
        self.decay = like.new_empty(group, batch, steps, n_state, channels)
        self.drive = like.new_empty(group, batch, steps, n_state, channels)
        self.local = like.new_empty(2, group, batch, n_state, channels)
        self.total = like.new_empty(group, batch, n_state, channels)
        self.entry = like.new_zeros(group + 1, batch, n_state, channels)
        self.entry_chunks = self.entry.unbind(0)
        self.delta_sum = like.new_empty(group, batch, 1, channels)
        self.delta = like.new_empty(group, batch, steps, 1, channels)
        self.scratch = like.new_empty(group, batch, steps, 1, channels)
        self.C = like.new_empty(group, batch, steps, 1, n_state)
        self.y = like.new_empty(group, batch, steps, 1, channels)
        self._views: dict[int, _GroupViews] = {}

    def views(self, n: int) -> _GroupViews:
        if n not in self._views:
            self._views[n] = _GroupViews(self, n)
        return self._views[n]


class _GroupViews:
    """Views of a ``_Workspace`` for a group of ``n`` chunks."""

    def __init__(self, work: _Workspace, n: int) -> None:
        steps = work.steps
        self.decay, self.drive = work.decay[:n], work.drive[:n]
        self.decay_steps, self.drive_steps = self.decay.unbind(2), self.drive.unbind(2)
        self.local = [buffer[:n] for buffer in work.local.unbind(0)]
        # Where the zero-start local scan leaves each chunk's final state (it ping-pongs between the two buffers).
        final = self.drive_steps[0] if steps == 1 else self.local[(steps - 1) % 2]
        self.final_chunks = final.unbind(0)
        self.total = work.total[:n]
        self.total_chunks = self.total.unbind(0)
        self.entry = work.entry[:n]
        self.delta_sum = work.delta_sum[:n]
        self.delta, self.scratch = work.delta[:n], work.scratch[:n]
        self.C, self.y = work.C[:n], work.y[:n]
        rows = self.decay.shape[0] * self.decay.shape[1] * steps
        self.states_mat = self.drive.view(rows, *self.drive.shape[-2:])
        self.C_mat = self.C.view(rows, 1, self.C.shape[-1])
        self.y_mat = self.y.view(rows, 1, self.y.shape[-1])


def _inference_group(chunk: int, batch: int, channels: int, n_state: int, device_type: str = "cpu") -> int:
    """Chunks per group of the no-grad path.

    CPU, one thread: the group's two big work tensors stay in the per-core L2 cache (2 × 1 MiB). CPU, several
    threads: each per-step kernel must be large enough for torch to split it across the threads (it does not below
    32768 elements per thread), which pays more than cache residency. Other devices (CUDA without mamba-ssm): the
    largest groups, since there every kernel launch is expensive.
    """
    per_chunk = chunk * batch * channels * n_state
    largest = max(1, GROUP_ELEMENTS // per_chunk)
    if device_type != "cpu":
        return largest
    cached = INFERENCE_GROUP_ELEMENTS // per_chunk
    threads = torch.get_num_threads()
    if threads > 1:
        cached = max(cached, -(-threads * PARALLEL_GRAIN // (batch * channels * n_state)))
    return max(1, min(cached, largest))


def _softplus_(x: Tensor, scratch: Tensor) -> Tensor:
    """In-place softplus with torch's threshold (x for x > 20, else log1p(exp(x))); ``scratch`` has x's shape.

    max(log1p(exp(min(x, 20))), x) is that function: softplus(x) > x everywhere, and softplus(20) < x above 20.
    """
    torch.clamp(x, max=20.0, out=scratch).exp_().log1p_()
    return torch.maximum(scratch, x, out=x)


def _scan_chunked_no_grad(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    chunk: int,
    D: Tensor | None,
    z: Tensor | None,
    delta_bias: Tensor | None,
    delta_softplus: bool,
) -> Tensor:
    """Inference version of the chunked scan, including bias/softplus of Δ, the D skip and the SiLU(z) gate
    (``selective_scan`` arguments, float32, any strides, L > 0). Returns y, B×E×L, as a view of a sequence-major
    (B×L×E) buffer.

    Works on sequence-major data (a group of chunks is then a contiguous slice, no gather), group by group in
    preallocated cache-sized buffers, in place, with about 2·chunk + group + 20 kernel launches per group. The only
    B×E×L allocation is the output (a fresh large buffer costs page faults on every call).
    """
    batch, channels, length = u.shape
    n_state = A.shape[1]
    # B×L×X views. Inputs stored sequence-major (as Mamba passes them) are read contiguously; channel-major ones are
    # gathered by the first kernel that reads each group (no transposed copy of the whole tensor).
    u_s, delta_s, B_s, C_s = (t.transpose(1, 2) for t in (u, delta, B, C))
    z_s = z.transpose(1, 2) if z is not None else None
    chunk = min(chunk, length)
    n_chunks = -(-length // chunk)
    pad = n_chunks * chunk - length
    if pad:  # padded steps have Δ = 0 and u = 0: identity steps (Δ is zeroed again after bias/softplus below)
        u_s, delta_s, B_s, C_s = (F.pad(t, (0, 0, 0, pad)) for t in (u_s, delta_s, B_s, C_s))
        z_s = F.pad(z_s, (0, 0, 0, pad)) if z_s is not None else None
    group = min(n_chunks, _inference_group(chunk, batch, channels, n_state, u.device.type))
    work = _Workspace(chunk, group, batch, channels, n_state, u)
    y_s = u.new_empty(batch, n_chunks * chunk, channels)
    a_t = A.t().contiguous()  # N×E
    entry = work.entry_chunks  # entry[j]: state entering chunk j of the current group; entry[0] carries over

    def groups(t: Tensor | None) -> list[Tensor | None]:  # B×L×X -> per group: n×B×T×1×X views, made in one call
        if t is None:
            return [None] * -(-n_chunks // group)
        return list(t.unflatten(1, (n_chunks, chunk)).transpose(0, 1).unsqueeze(-2).split(group))

    per_group = zip(*(groups(t) for t in (u_s, delta_s, B_s, C_s, z_s, y_s)))
    for start, (u_g, delta_g, B_g, C_g, z_g, y_g) in zip(range(0, n_chunks, group), per_group):
        n = u_g.shape[0]
        v = work.views(n)
        dt = v.delta
        if delta_bias is not None:
            torch.add(delta_g, delta_bias, out=dt)
        else:
            dt.copy_(delta_g)
        if delta_softplus:
            _softplus_(dt, v.scratch)
        if pad and start + n == n_chunks:
            dt[-1, :, chunk - pad:].zero_()
        torch.mul(dt, a_t, out=v.decay).exp_()  # exp(Δ·A) in (0, 1]
        torch.mul(dt, u_g, out=v.y)  # Δ·u, staged in the y buffer
        torch.mul(v.y, B_g.transpose(-1, -2), out=v.drive)  # Δ·u·B
        decay, drive = v.decay_steps, v.drive_steps
        # (1) local scan from a zero state, keeping only the current step (ping-pong between two buffers).
        local = drive[0]
        for k in range(1, chunk):
            local = torch.addcmul(drive[k], decay[k], local, out=v.local[k % 2])
        # (2) chunk-entry states. Chunk decay exp(sum(Δ)·A) with the exponent clamped at -80: below that it would
        # be subnormal (slow on x86) and it is < 2e-35 anyway, far below float32 resolution of any state.
        torch.sum(dt, dim=2, out=v.delta_sum)
        torch.mul(v.delta_sum, a_t, out=v.total).clamp_(min=-80.0).exp_()
        for j in range(n):
            torch.addcmul(v.final_chunks[j], v.total_chunks[j], entry[j], out=entry[j + 1])
        # (3) exact states, in place in the drive buffer, then y_t = C_t·h_t as one batched (1×N)·(N×E) product.
        drive[0].addcmul_(decay[0], v.entry)
        for k in range(1, chunk):
            drive[k].addcmul_(decay[k], drive[k - 1])
        entry[0].copy_(entry[n])
        v.C.copy_(C_g)
        torch.bmm(v.C_mat, v.states_mat, out=v.y_mat)
        if D is not None:
            v.y.addcmul_(u_g, D)
        if z_g is not None:
            F.silu(v.scratch.copy_(z_g), inplace=True)
            v.y.mul_(v.scratch)
        y_g.copy_(v.y)
    return y_s[:, :length].transpose(1, 2)


def gather_layer_norm(x: Tensor, order: Tensor | None, pe: Tensor | None, norm: nn.LayerNorm,
                      path: ScanPath = "auto") -> Tensor:
    """``norm(x.index_select(1, order) + pe)`` for B×P×D ``x`` (``order`` None: all rows; ``pe`` None: nothing
    added), as one pass of the fused CPU kernel when the scan ``path`` resolves to it and no autograd is needed."""
    tracked = x.requires_grad or norm.weight.requires_grad
    fused = (x.dtype == torch.float32 and x.stride(-1) == 1 and norm.weight is not None and norm.bias is not None
             and not (torch.is_grad_enabled() and tracked) and resolve_path(x, path) == "cpu")
    if fused:
        return scan_cpu.load().gather_layer_norm(x, order, pe, norm.weight, norm.bias, norm.eps)
    seq = x.index_select(1, order) if order is not None else x
    return norm(seq + pe if pe is not None else seq)


class Mamba(nn.Module):
    """mamba-ssm v1 ``Mamba`` block (``mamba_simple.py``): same constructor, parameter names, shapes and init.

    Args:
        d_model: model width D (input/output channels).
        d_state: SSM state size N.
        d_conv: causal depthwise convolution width K.
        expand: inner width E = expand·D.
        dt_rank: rank R of the Δ projection; "auto" = ceil(D / 16).
        dt_min, dt_max: range of the initial step sizes (log-uniform).
        dt_init: "random" (uniform dt_proj weight in ±R^-1/2·dt_scale) or "constant".
        dt_scale: scale of the dt_proj weight init.
        dt_init_floor: lower clamp of the initial step sizes.
        conv_bias: bias of the depthwise convolution.
        bias: bias of in_proj and out_proj.
        use_fast_path: let "auto" use a fused scan kernel (the block math stays the slow path's); False: the
            pure-PyTorch chunked scan.
        layer_idx: kept for signature compatibility (used by mamba-ssm only for incremental decoding).
        device, dtype: factory arguments for the parameters.
        scan_path: which ``selective_scan`` path to use ("auto" by default).
        scan_chunk: chunk length of the chunked path.

    Shape: forward(hidden_states B×L×D) -> B×L×D.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | str = "auto",
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_init: str = "random",
        dt_scale: float = 1.0,
        dt_init_floor: float = 1e-4,
        conv_bias: bool = True,
        bias: bool = False,
        use_fast_path: bool = True,
        layer_idx: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        scan_path: ScanPath = "auto",
        scan_chunk: int = DEFAULT_CHUNK,
    ) -> None:
        factory = {"device": device, "dtype": dtype}
        super().__init__()
        self.d_model = d_model
        self.d_state = d_state
        self.d_conv = d_conv
        self.expand = expand
        self.d_inner = int(expand * d_model)
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)
        self.use_fast_path = use_fast_path
        self.layer_idx = layer_idx
        self.scan_path: ScanPath = scan_path
        self.scan_chunk = scan_chunk

        self.in_proj = nn.Linear(d_model, self.d_inner * 2, bias=bias, **factory)
        self.conv1d = nn.Conv1d(
            self.d_inner, self.d_inner, kernel_size=d_conv, groups=self.d_inner, padding=d_conv - 1,
            bias=conv_bias, **factory,
        )
        self.activation = "silu"
        self.act = nn.SiLU()
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + d_state * 2, bias=False, **factory)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True, **factory)
        self._init_dt_proj(dt_init, dt_scale, dt_min, dt_max, dt_init_floor)
        # S4D real initialisation: A = -[1, 2, ..., N] in every row.
        a_init = torch.arange(1, d_state + 1, dtype=torch.float32, device=device).repeat(self.d_inner, 1)
        self.A_log = nn.Parameter(torch.log(a_init))
        self.A_log._no_weight_decay = True
        self.D = nn.Parameter(torch.ones(self.d_inner, device=device))
        self.D._no_weight_decay = True
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias, **factory)

    def _init_dt_proj(self, dt_init: str, dt_scale: float, dt_min: float, dt_max: float, floor: float) -> None:
        std = self.dt_rank**-0.5 * dt_scale
        if dt_init == "constant":
            nn.init.constant_(self.dt_proj.weight, std)
        elif dt_init == "random":
            nn.init.uniform_(self.dt_proj.weight, -std, std)
        else:
            raise NotImplementedError(f"dt_init must be 'random' or 'constant', got {dt_init!r}")
        device = self.dt_proj.bias.device
        log_span = math.log(dt_max) - math.log(dt_min)
        dt = torch.exp(torch.rand(self.d_inner, device=device) * log_span + math.log(dt_min)).clamp(min=floor)
        inverse_softplus = dt + torch.log(-torch.expm1(-dt))
        with torch.no_grad():
            self.dt_proj.bias.copy_(inverse_softplus)
        self.dt_proj.bias._no_reinit = True

    def _causal_conv(self, x: Tensor) -> Tensor:
        """``conv1d`` (depthwise, causal: the first L outputs) on sequence-major B×L×E input, as K shifted
        multiply-adds into one output buffer. The same sums as the convolution, without transposing the input to
        B×E×L and back, and without padded copies (at 256² every temporary is 50 MB of fresh pages)."""
        kernel, length = self.d_conv, x.shape[1]
        weight = self.conv1d.weight[:, 0, :]  # E×K; tap K-1 multiplies the current step
        bias = self.conv1d.bias
        if bias is None:
            out = x * weight[:, kernel - 1]
        else:
            out = torch.addcmul(bias, x, weight[:, kernel - 1])
        for k in range(kernel - 1):
            shift = kernel - 1 - k  # tap k reads the step ``shift`` places back (zeros before the start)
            if shift < length:
                out[:, shift:].addcmul_(x[:, : length - shift], weight[:, k])  # out is fresh: safe for autograd
        return out

    def _activate(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return self.act(x)
        return F.silu(x, inplace=True)  # inference: no second 50 MB buffer

    def _kernel_inference(self, tensors: list[Tensor]) -> bool:
        """Whether the fused CPU kernel computes on these tensors: all float32, none tracked by autograd, and the
        scan path (the chunked one when the fast path is off) resolving to the kernel for the first."""
        path: ScanPath = self.scan_path if self.use_fast_path else "chunked"
        if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
            return False
        return all(t.dtype == torch.float32 for t in tensors) and resolve_path(tensors[0], path) == "cpu"

    def _conv_activate(self, x: Tensor) -> Tensor:
        """SiLU(causal conv(x)), B×L×E; in one pass of the fused kernel when the scan runs on it, without autograd."""
        conv = [t for t in (self.conv1d.weight, self.conv1d.bias) if t is not None]
        if self._kernel_inference([x, *conv]):
            weight = self.conv1d.weight[:, 0, :].contiguous()
            return scan_cpu.load().causal_conv_silu(x, weight, self.conv1d.bias)
        return self._activate(self._causal_conv(x))

    def _projected_scan(self, x: Tensor, z: Tensor) -> bool:
        """Whether the scan runs through the kernel with Δ's projection folded in: float32 CPU inference."""
        return self._kernel_inference([x, z, self.dt_proj.weight, self.dt_proj.bias, self.A_log, self.D])

    def forward(self, hidden_states: Tensor) -> Tensor:
        """hidden_states B×L×D -> B×L×D."""
        return self.out_proj(self.inner(hidden_states))

    def inner(self, hidden_states: Tensor) -> Tensor:
        """The block without its output projection: hidden_states B×L×D -> the gated scan output y, B×L×E
        (``forward`` is ``out_proj(inner(...))``; a caller may fold ``out_proj`` into a projection of its own)."""
        xz = self.in_proj(hidden_states)  # B×L×2E
        x, z = xz.chunk(2, dim=-1)
        z = z.transpose(1, 2)  # B×E×L view
        x = self._conv_activate(x)  # B×L×E, sequence-major as x_proj and the scan read it
        x_dbl = self.x_proj(x)  # B×L×(R+2N)
        dt, B, C = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        if self._projected_scan(x, z):  # Δ's projection inside the kernel: no B×L×E Δ tensor
            A = -torch.exp(self.A_log)
            return scan_cpu.projected_scan(x, dt, self.dt_proj.weight, A, B, C, self.D, z.transpose(1, 2),
                                           self.dt_proj.bias, True)
        x = x.transpose(1, 2)
        dt = F.linear(dt, self.dt_proj.weight).transpose(1, 2)  # bias is added inside the scan (delta_bias)
        path: ScanPath = self.scan_path
        if path == "auto" and not self.use_fast_path:
            path = "chunked"
        y = selective_scan(
            x, dt, -torch.exp(self.A_log.float()), B.transpose(1, 2), C.transpose(1, 2), self.D.float(),
            z=z, delta_bias=self.dt_proj.bias.float(), delta_softplus=True, path=path, chunk=self.scan_chunk,
        )
        return y.transpose(1, 2)
