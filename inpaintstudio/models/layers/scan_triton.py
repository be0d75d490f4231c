"""Selective scan for CUDA in Triton: forward and backward, with only torch and triton installed.

One program per (channel, batch element) walks the sequence in chunks of ``BLOCK_L`` steps. Inside a chunk the
N×BLOCK_L decays ``exp(Δ·A)`` and drives ``Δ·u·B`` are combined by ``tl.associative_scan`` (the linear recurrence
``h_t = a_t h_{t-1} + b_t`` is associative in the pairs (a, b)); the state entering the chunk is carried in
registers. Bias, softplus, the D skip and the SiLU(z) gate are applied in the same pass. With autograd the forward
also stores each chunk's entry state; the backward walks the chunks in reverse, recomputes the chunk's states from
it, and solves the adjoint recurrence ``dh_t = gy_t C_t + exp(Δ_{t+1} A) dh_{t+1}`` with a reverse associative scan.
dB and dC (sums over channels) are accumulated with atomic adds; dA, dD and the bias gradient per batch element,
summed afterwards.

Per-channel tensors are read channel-major (B×E×L, contiguous; sequence-major inputs are copied once), B and C with
any strides (contiguous copies under autograd, where dB and dC are written with their strides). With
``TRITON_INTERPRET=1`` set before triton is imported, the same kernels run on CPU tensors through Triton's
interpreter (used by the tests; slow).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor

try:
    import triton
    import triton.language as tl
except Exception:  # noqa: BLE001 - triton missing or broken means "unavailable"
    triton = None

LOG2E = 1.4426950408889634
BLOCK_L = 128  # steps per chunk on a GPU (tests pass a smaller one)
NUM_WARPS = 4


def available() -> bool:
    """True when triton imports."""
    return triton is not None


def interpreted() -> bool:
    """True when Triton runs kernels through its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "").lower() in ("1", "true", "on", "yes")


if triton is not None:

    @triton.jit
    def _combine(a1, b1, a2, b2):
        """(a1, b1) then (a2, b2) for h -> a·h + b."""
        return a1 * a2, b1 * a2 + b2

    @triton.jit
    def _softplus(x):
        # torch's threshold 20; max(x, 0) + log(1 + exp(-|x|)) never overflows.
        return tl.where(x > 20.0, x, tl.maximum(x, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(x))))

    @triton.jit
    def _sigmoid(x):
        return 1.0 / (1.0 + tl.exp(-x))

    @triton.jit
    def _step_sizes(delta_ptr, bias, t, mask, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr):
        raw = tl.load(delta_ptr + t, mask=mask, other=0.0)
        if HAS_BIAS:
            raw = raw + bias
        dt = raw
        if SOFTPLUS:
            dt = _softplus(raw)
        return raw, tl.where(mask, dt, 0.0)

    @triton.jit
    def _scan_fwd_kernel(
        u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, y_ptr, states_ptr,
        L, E, N, s_Bb, s_Bn, s_Bl, s_Cb, s_Cn, s_Cl,
        HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
        SAVE: tl.constexpr, N_PAD: tl.constexpr, BLOCK: tl.constexpr,
    ):
        e = tl.program_id(0)
        b = tl.program_id(1)
        n = tl.arange(0, N_PAD)
        n_ok = n < N
        steps = tl.arange(0, BLOCK)
        A2 = tl.load(A_ptr + e * N + n, mask=n_ok, other=0.0) * 1.4426950408889634
        D = tl.load(D_ptr + e) if HAS_D else 0.0
        bias = tl.load(bias_ptr + e) if HAS_BIAS else 0.0
        row = (b * E + e).to(tl.int64) * L
        n_chunks = tl.cdiv(L, BLOCK)
        h = tl.zeros([N_PAD], dtype=tl.float32)
        for c in range(0, n_chunks):
            t = c * BLOCK + steps
            t_ok = t < L
            if SAVE:
                tl.store(states_ptr + ((b * E + e).to(tl.int64) * n_chunks + c) * N + n, h, mask=n_ok)
            _, dt = _step_sizes(delta_ptr + row, bias, t, t_ok, HAS_BIAS, SOFTPLUS)
            u = tl.load(u_ptr + row + t, mask=t_ok, other=0.0)
            tile_ok = n_ok[:, None] & t_ok[None, :]
            Bt = tl.load(B_ptr + b * s_Bb + n[:, None] * s_Bn + t[None, :] * s_Bl, mask=tile_ok, other=0.0)
            Ct = tl.load(C_ptr + b * s_Cb + n[:, None] * s_Cn + t[None, :] * s_Cl, mask=tile_ok, other=0.0)
            decay = tl.exp2(A2[:, None] * dt[None, :])
            drive = Bt * (dt * u)[None, :]
            acc_a, acc_b = tl.associative_scan((decay, drive), axis=1, combine_fn=_combine)
            hs = acc_a * h[:, None] + acc_b
            y = tl.sum(hs * Ct, axis=0)
            if HAS_D:
                y = y + D * u
            if HAS_Z:
                z = tl.load(z_ptr + row + t, mask=t_ok, other=0.0)
                y = y * z * _sigmoid(z)
            tl.store(y_ptr + row + t, y, mask=t_ok)
            h = tl.sum(tl.where(steps[None, :] == BLOCK - 1, hs, 0.0), axis=1)

    @triton.jit
    def _scan_bwd_kernel(
        u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, states_ptr, dy_ptr,
        du_ptr, ddelta_ptr, dA_ptr, dB_ptr, dC_ptr, dD_ptr, dz_ptr, dbias_ptr,
        L, E, N, s_Bb, s_Bn, s_Bl, s_Cb, s_Cn, s_Cl,
        HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
        N_PAD: tl.constexpr, BLOCK: tl.constexpr,
    ):
        e = tl.program_id(0)
        b = tl.program_id(1)
        n = tl.arange(0, N_PAD)
        n_ok = n < N
        steps = tl.arange(0, BLOCK)
        A = tl.load(A_ptr + e * N + n, mask=n_ok, other=0.0)
        A2 = A * 1.4426950408889634
        D = tl.load(D_ptr + e) if HAS_D else 0.0
        bias = tl.load(bias_ptr + e) if HAS_BIAS else 0.0
        row = (b * E + e).to(tl.int64) * L
        n_chunks = tl.cdiv(L, BLOCK)
        dh_next = tl.zeros([N_PAD], dtype=tl.float32)  # dh at the first step of the chunk after this one
        dA_acc = tl.zeros([N_PAD], dtype=tl.float32)
        dD_acc = tl.zeros([BLOCK], dtype=tl.float32)
        dbias_acc = tl.zeros([BLOCK], dtype=tl.float32)
        for k in range(0, n_chunks):
            c = n_chunks - 1 - k
            t = c * BLOCK + steps
            t_ok = t < L
            tile_ok = n_ok[:, None] & t_ok[None, :]
            h0 = tl.load(states_ptr + ((b * E + e).to(tl.int64) * n_chunks + c) * N + n, mask=n_ok, other=0.0)
            raw, dt = _step_sizes(delta_ptr + row, bias, t, t_ok, HAS_BIAS, SOFTPLUS)
            _, dt_next = _step_sizes(delta_ptr + row, bias, t + 1, t + 1 < L, HAS_BIAS, SOFTPLUS)
            u = tl.load(u_ptr + row + t, mask=t_ok, other=0.0)
            g = tl.load(dy_ptr + row + t, mask=t_ok, other=0.0)
            Bt = tl.load(B_ptr + b * s_Bb + n[:, None] * s_Bn + t[None, :] * s_Bl, mask=tile_ok, other=0.0)
            Ct = tl.load(C_ptr + b * s_Cb + n[:, None] * s_Cn + t[None, :] * s_Cl, mask=tile_ok, other=0.0)
            # Recompute the chunk's states.
            decay = tl.exp2(A2[:, None] * dt[None, :])
            drive = Bt * (dt * u)[None, :]
            acc_a, acc_b = tl.associative_scan((decay, drive), axis=1, combine_fn=_combine)
            hs = acc_a * h0[:, None] + acc_b
            gy = g
            if HAS_Z:
                z = tl.load(z_ptr + row + t, mask=t_ok, other=0.0)
                y_pre = tl.sum(hs * Ct, axis=0) + D * u
                sig = _sigmoid(z)
                tl.store(dz_ptr + row + t, g * y_pre * sig * (1.0 + z * (1.0 - sig)), mask=t_ok)
                gy = g * z * sig
            du = gy * D
            if HAS_D:
                dD_acc += gy * u
            # Adjoint states: reverse scan of dh_t = gy_t C_t + exp(Δ_{t+1} A) dh_{t+1}, plus the later chunks' part.
            decay_next = tl.exp2(A2[:, None] * dt_next[None, :])
            acc_p, acc_q = tl.associative_scan((decay_next, Ct * gy[None, :]), axis=1, combine_fn=_combine,
                                               reverse=True)
            dh = acc_q + acc_p * dh_next[:, None]
            c_off = b * s_Cb + n[:, None] * s_Cn + t[None, :] * s_Cl
            b_off = b * s_Bb + n[:, None] * s_Bn + t[None, :] * s_Bl
            tl.atomic_add(dC_ptr + c_off, hs * gy[None, :], mask=tile_ok)
            tl.atomic_add(dB_ptr + b_off, dh * (dt * u)[None, :], mask=tile_ok)
            dh_B = tl.sum(dh * Bt, axis=0)
            decayed_prev = hs - drive  # exp(Δ_t A) h_{t-1}
            ddt = u * dh_B + tl.sum(dh * decayed_prev * A[:, None], axis=0)
            dA_acc += tl.sum(dh * decayed_prev * dt[None, :], axis=1)
            du = du + dt * dh_B
            if SOFTPLUS:
                ddt = ddt * tl.where(raw > 20.0, 1.0, _sigmoid(raw))
            ddt = tl.where(t_ok, ddt, 0.0)
            dbias_acc += ddt
            tl.store(du_ptr + row + t, du, mask=t_ok)
            tl.store(ddelta_ptr + row + t, ddt, mask=t_ok)
            dh_next = tl.sum(tl.where(steps[None, :] == 0, dh, 0.0), axis=1)
        tl.store(dA_ptr + (b * E + e) * N + n, dA_acc, mask=n_ok)
        if HAS_D:
            tl.store(dD_ptr + b * E + e, tl.sum(dD_acc, axis=0))
        if HAS_BIAS:
            tl.store(dbias_ptr + b * E + e, tl.sum(dbias_acc, axis=0))


def _next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _flags(D: Tensor | None, z: Tensor | None, bias: Tensor | None, softplus: bool) -> dict[str, Any]:
    return {"HAS_D": D is not None, "HAS_Z": z is not None, "HAS_BIAS": bias is not None, "SOFTPLUS": softplus}


class _TritonScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None,
                z: Tensor | None, bias: Tensor | None, softplus: bool, block: int) -> Tensor:
        args = _prepare(u, delta, A, D, z, bias)
        B, C = B.contiguous(), C.contiguous()  # the gradients dB, dC are written with the same strides
        y, states = _forward(*args, B, C, softplus, block, save=True)
        ctx.save_for_backward(*(t if t is not None else torch.empty(0) for t in (*args, B, C)), states)
        ctx.present = (D is not None, z is not None, bias is not None)
        ctx.softplus, ctx.block = softplus, block
        return y

    @staticmethod
    def backward(ctx: Any, dy: Tensor) -> tuple[Tensor | None, ...]:
        u, delta, A, D, z, bias, B, C, states = ctx.saved_tensors
        has_D, has_z, has_bias = ctx.present
        D, z, bias = (t if present else None for t, present in zip((D, z, bias), ctx.present))
        batch, channels, length = u.shape
        n_state = A.shape[1]
        du, ddelta = torch.empty_like(u), torch.empty_like(u)
        dz = torch.empty_like(u) if has_z else None
        dA = u.new_empty(batch, channels, n_state)
        dB, dC = torch.zeros_like(B), torch.zeros_like(C)  # both contiguous, like B and C here
        dD = u.new_empty(batch, channels) if has_D else None
        dbias = u.new_empty(batch, channels) if has_bias else None
        dummy = u.new_empty(1)
        _scan_bwd_kernel[(channels, batch)](
            u, delta, A, B, C, _or(D, dummy), _or(z, dummy), _or(bias, dummy), states, dy.float().contiguous(),
            du, ddelta, dA, dB, dC, _or(dD, dummy), _or(dz, dummy), _or(dbias, dummy),
            length, channels, n_state, *B.stride(), *C.stride(),
            **_flags(D, z, bias, ctx.softplus), N_PAD=_next_pow2(n_state), BLOCK=ctx.block, num_warps=NUM_WARPS,
        )
        return (du, ddelta, dA.sum(0), dB, dC, dD.sum(0) if has_D else None, dz,
                dbias.sum(0) if has_bias else None, None, None)


def _or(t: Tensor | None, dummy: Tensor) -> Tensor:
    return t if t is not None else dummy


def _prepare(u: Tensor, delta: Tensor, A: Tensor, D: Tensor | None, z: Tensor | None,
             bias: Tensor | None) -> tuple[Tensor, ...]:
    def contiguous(t: Tensor | None) -> Tensor | None:
        return t.contiguous() if t is not None else None

    return (u.contiguous(), delta.contiguous(), A.contiguous(), contiguous(D), contiguous(z), contiguous(bias))


def _forward(u: Tensor, delta: Tensor, A: Tensor, D: Tensor | None, z: Tensor | None, bias: Tensor | None,
             B: Tensor, C: Tensor, softplus: bool, block: int, save: bool) -> tuple[Tensor, Tensor]:
    batch, channels, length = u.shape
    n_state = A.shape[1]
    y = torch.empty_like(u)
    n_chunks = -(-length // block)
    states = u.new_empty(batch, channels, n_chunks, n_state) if save else u.new_empty(1)
    dummy = u.new_empty(1)
    _scan_fwd_kernel[(channels, batch)](
        u, delta, A, B, C, _or(D, dummy), _or(z, dummy), _or(bias, dummy), y, states,
        length, channels, n_state, *B.stride(), *C.stride(),
        **_flags(D, z, bias, softplus), SAVE=save, N_PAD=_next_pow2(n_state), BLOCK=block, num_warps=NUM_WARPS,
    )
    return y, states


def triton_scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None, z: Tensor | None,
                delta_bias: Tensor | None, delta_softplus: bool, block: int = BLOCK_L) -> Tensor:
    """The selective scan through the Triton kernels (float32 tensors in ``selective_scan``'s layout, on CUDA or,
    under ``TRITON_INTERPRET=1``, on the CPU). ``block``: steps per chunk, a power of two. Returns y, B×E×L."""
    if triton is None:
        raise RuntimeError("the Triton scan needs the triton package")
    if block < 1 or block & (block - 1):
        raise ValueError(f"block must be a power of two, got {block}")
    if u.shape[-1] == 0:
        return u.new_zeros(u.shape)
    tracked = (u, delta, A, B, C, D, z, delta_bias)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tracked):
        return _TritonScan.apply(u, delta, A, B, C, D, z, delta_bias, delta_softplus, block)
    y, _ = _forward(*_prepare(u, delta, A, D, z, delta_bias), B, C, delta_softplus, block, save=False)
    return y
