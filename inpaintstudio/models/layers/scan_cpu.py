"""Fused CPU selective scan: a C++ extension built on first use, with forward and backward.

The same library holds the inference-only fused ops of the networks around the scan (each one pass over its data
instead of several PyTorch kernels with large temporaries): ``causal_conv_silu`` (Mamba's depthwise causal
convolution and SiLU), ``gather_layer_norm`` (scan-order gather, positional table, LayerNorm) and ``gelu_mul``
(the gated FFNs' ``GELU(a)·b``, used through ``layers/fused.py``), and, from ``ffn_cpu.cpp``, ``gated_dconv_ffn``
(the whole gated depth-wise FFN block in one pass over the image rows, also used through ``layers/fused.py``).

``scan_cpu.cpp`` (next to this file) is compiled with ``torch.utils.cpp_extension.load`` the first time the kernel
is needed and cached in ``$INPAINTSTUDIO_CACHE`` (default ``$XDG_CACHE_HOME/inpaintstudio``, else
``~/.cache/inpaintstudio``) under ``torch_extensions/``; later processes load the cached library in well under a
second. It is built for the vector width torch itself uses on this CPU (AVX-512, AVX2 or plain C++), and the build
folder is named after it and the torch version, so a cache shared by different machines or torch versions keeps one
build for each.

When there is no C++ compiler or ninja, or the build fails, ``load()`` returns None after one warning, and callers
use the pure-PyTorch chunked scan instead. ``INPAINTSTUDIO_SCAN_KERNEL=off`` skips the kernel without a build.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

SOURCE = Path(__file__).with_name("scan_cpu.cpp")
# Every source of the library: the scan and the other fused ops, and the fused gated FFN (ffn_cpu.cpp).
SOURCES = (SOURCE, Path(__file__).with_name("ffn_cpu.cpp"))
# Headers the sources include (part of the build's name, so that a change to one is a new build).
HEADERS = (Path(__file__).with_name("vec_exp2.h"),)
# Steps per chunk: the forward saves the state entering each chunk, the backward recomputes one chunk at a time
# (its states and decays, (chunk + 1)·N·W + chunk·N·W floats per task, stay in the L2 cache).
CHUNK = 64

# -m flags per capability, the ones ATen compiles its own kernels of that capability with.
_CAPABILITY_FLAGS = {
    "AVX512": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma"],
    "AVX2": ["-mavx2", "-mfma", "-mf16c"],
}

# A build lock older than this was left by a stopped build (a build takes well under a minute on an idle machine).
STALE_LOCK_SECONDS = 600

_lock = threading.Lock()
_state: dict[str, Any] = {"tried": False, "ops": None, "error": None, "seconds": None}


def cache_dir() -> Path:
    """Where the compiled extension is kept."""
    root = os.environ.get("INPAINTSTUDIO_CACHE")
    if root:
        return Path(root).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "inpaintstudio"


def _capability() -> str:
    capability = torch.backends.cpu.get_cpu_capability()
    return capability if capability in _CAPABILITY_FLAGS else "DEFAULT"


def build_name() -> str:
    """One build per instruction set, torch version (a library built against another torch must not be loaded) and
    source text (checkouts of different versions sharing one cache keep a build each instead of rebuilding in turn)."""
    version = re.sub(r"[^0-9a-zA-Z]+", "_", torch.__version__)
    source = hashlib.sha256(b"".join(path.read_bytes() for path in (*SOURCES, *HEADERS))).hexdigest()[:10]
    return f"inpaintstudio_scan_{_capability().lower()}_omp_torch{version}_{source}"


def library_path() -> Path:
    """Where the built library lies."""
    return cache_dir() / "torch_extensions" / build_name() / f"{build_name()}.so"


def _build() -> Any:
    import time

    from torch.utils import cpp_extension

    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        raise RuntimeError(f"no C++ compiler ({compiler!r} not found)")
    if not cpp_extension.is_ninja_available():
        raise RuntimeError("ninja is not installed (pip install ninja)")
    capability = _capability()
    name = build_name()
    build_dir = cache_dir() / "torch_extensions" / name
    build_dir.mkdir(parents=True, exist_ok=True)
    lock = build_dir / "lock"  # torch's build lock; a build stopped midway leaves it, and later loads would wait
    if lock.exists() and time.time() - lock.stat().st_mtime > STALE_LOCK_SECONDS:
        lock.unlink(missing_ok=True)
    # OpenMP: without it at::parallel_for in this library runs every task on one thread. The library links the
    # libgomp that torch has already loaded (same soname), so torch.set_num_threads applies to it too.
    flags = ["-O3", "-ffp-contract=fast", "-fopenmp"]
    if capability != "DEFAULT":
        flags += [f"-DCPU_CAPABILITY={capability}", f"-DCPU_CAPABILITY_{capability}", *_CAPABILITY_FLAGS[capability]]
    start = time.perf_counter()
    cpp_extension.load(name=name, sources=[str(path) for path in SOURCES], extra_cflags=flags,
                       extra_ldflags=["-fopenmp"], build_directory=str(build_dir), is_python_module=False,
                       verbose=False)
    _state["seconds"] = time.perf_counter() - start
    return torch.ops.inpaintstudio_scan


def _summary(exc: Exception) -> str:
    """First line of a build error, and its last informative line (the compiler's message)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    last = [line for line in lines[1:] if not line.startswith(("ninja: build stopped", "FAILED:", "[", "c++ "))]
    first = lines[0] if len(lines[0]) <= 200 else lines[0][:200] + "…"
    return f"{first}: {last[-1][:300]}" if last else first


def load() -> Any:
    """The kernel's op namespace (``forward``, ``backward``, ``causal_conv_silu``, ``gather_layer_norm``), building it
    on first use; None when unavailable."""
    if _state["tried"]:
        return _state["ops"]
    with _lock:
        if not _state["tried"]:
            if os.environ.get("INPAINTSTUDIO_SCAN_KERNEL", "").lower() in ("0", "off", "false", "no"):
                _state["error"] = "disabled by INPAINTSTUDIO_SCAN_KERNEL"
            else:
                try:
                    _state["ops"] = _build()
                except Exception as exc:  # noqa: BLE001 - any build failure means "use the pure-PyTorch scan"
                    _state["error"] = _summary(exc)
                    warnings.warn(
                        "inpaintstudio: the fused CPU selective scan could not be built, so SEM-Net and M×T use "
                        f"the slower pure-PyTorch scan ({_state['error']})", RuntimeWarning, stacklevel=3)
            _state["tried"] = True
    return _state["ops"]


def available() -> bool:
    """True when the kernel is built (or builds now)."""
    return load() is not None


def build_info() -> dict[str, Any]:
    """Whether the kernel loaded, why not, and how long the build (or the cached load) took."""
    return {"loaded": _state["ops"] is not None, "error": _state["error"], "seconds": _state["seconds"],
            "capability": _capability(), "cache": str(cache_dir() / "torch_extensions")}


def _rows(t: Tensor) -> Tensor:
    """B×E×L -> B×L×E view (the kernel reads any strides)."""
    return t.transpose(1, 2)


def _sequence_major(t: Tensor) -> Tensor:
    """B×N×L -> B×L×N view with unit last stride (a copy only when the storage is channel-major; B and C are small)."""
    t = t.transpose(1, 2)
    return t if t.stride(2) == 1 else t.contiguous()


def _optional(t: Tensor | None) -> Tensor | None:
    return t.contiguous() if t is not None else None


class _FusedScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None,
                z: Tensor | None, delta_bias: Tensor | None, softplus: bool) -> Tensor:
        ops = load()
        args = (_rows(u), _rows(delta), A.t().contiguous(), _sequence_major(B), _sequence_major(C), _optional(D),
                _rows(z) if z is not None else None, _optional(delta_bias))
        y, states = ops.forward(*args, softplus, True, CHUNK)
        ctx.save_for_backward(*(t if t is not None else torch.empty(0) for t in args), states)
        ctx.present = tuple(t is not None for t in args)
        ctx.softplus = softplus
        return y.transpose(1, 2)

    @staticmethod
    def backward(ctx: Any, dy: Tensor) -> tuple[Tensor | None, ...]:
        *saved, states = ctx.saved_tensors
        args = [t if present else None for t, present in zip(saved, ctx.present)]
        du, ddelta, dA_t, dB, dC, dD, dz, dbias = load().backward(
            *args, ctx.softplus, states, _rows(dy.float()), CHUNK)
        has_D, has_z, has_bias = ctx.present[5], ctx.present[6], ctx.present[7]
        return (du.transpose(1, 2), ddelta.transpose(1, 2), dA_t.t(), dB.transpose(1, 2), dC.transpose(1, 2),
                dD if has_D else None, dz.transpose(1, 2) if has_z else None, dbias if has_bias else None, None)


def fused_scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None, z: Tensor | None,
               delta_bias: Tensor | None, delta_softplus: bool) -> Tensor:
    """The selective scan through the kernel (float32 CPU tensors in ``selective_scan``'s layout; the kernel must
    be loaded). Returns y, B×E×L, as a view of B×L×E storage."""
    tracked = (u, delta, A, B, C, D, z, delta_bias)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tracked):
        return _FusedScan.apply(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    ops = load()
    y, _ = ops.forward(_rows(u), _rows(delta), A.t().contiguous(), _sequence_major(B), _sequence_major(C),
                       _optional(D), _rows(z) if z is not None else None, _optional(delta_bias), delta_softplus,
                       False, CHUNK)
    return y.transpose(1, 2)


def projected_scan(u: Tensor, delta_low: Tensor, delta_weight: Tensor, A: Tensor, B: Tensor, C: Tensor,
                   D: Tensor | None, z: Tensor | None, delta_bias: Tensor | None, delta_softplus: bool) -> Tensor:
    """Inference-only scan with Δ's projection done inside the kernel (the kernel must be loaded; float32 CPU
    tensors, no autograd): Δ = ``delta_low @ delta_weight.T`` (+ bias) is formed step by step instead of as a B×L×E
    tensor. Sequence-major arguments: u, z: B×L×E views; delta_low: B×L×R, B, C: B×L×N (unit last stride); A: E×N;
    delta_weight: E×R. Returns y, B×L×E."""
    return load().forward_projected(u, delta_low, delta_weight.t().contiguous(), A.t().contiguous(), B, C,
                                    _optional(D), z, _optional(delta_bias), delta_softplus, CHUNK)
