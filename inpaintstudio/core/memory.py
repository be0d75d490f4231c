"""Keep freed memory in the process heap so that large tensors reuse pages instead of faulting fresh ones.

glibc serves every allocation above its mmap threshold (at most 32 MB) with a fresh ``mmap`` and returns it to the
system on free, so each new large tensor pays one page fault per 4 KiB page when first written. A deep network's
CPU forward allocates hundreds of such buffers (SEM-Net at 256²: 25-100 MB per Mamba or convolution output), and the
faults cost about a fifth of its time. With ``mmap`` off for the heap and a high trim threshold, freed blocks stay in
the heap and the next tensors reuse them. The cost: the resident size stays at its high-water mark until the process
ends (the memory is reused, not returned), which is what a process serving repeated inferences wants.

Applies to glibc only (a no-op elsewhere); ``INPAINTSTUDIO_RETAIN_MEMORY=off`` leaves the allocator alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
TRIM_THRESHOLD = 1 << 30  # free heap above this size at its top is still returned

_lock = threading.Lock()
_state = {"applied": None}


def retain_freed_memory() -> bool:
    """Switch glibc to keeping freed memory for reuse (once per process). True when it is in effect."""
    with _lock:
        if _state["applied"] is None:
            _state["applied"] = _apply()
        return bool(_state["applied"])


def _apply() -> bool:
    if os.environ.get("INPAINTSTUDIO_RETAIN_MEMORY", "").lower() in ("0", "off", "false", "no"):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
