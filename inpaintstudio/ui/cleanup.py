"""Nothing stays: one temporary folder per studio process, removed on exit, SIGTERM and SIGINT.

``<tmp>/inpaintstudio-<pid>-<random>/`` holds Gradio's file cache (``$GRADIO_TEMP_DIR`` points at it,
so uploads and everything Gradio serves land there) and, inside the cache, one ``session-*`` folder
per browser session with that session's display copies and downloads. A session's folder is deleted
when its tab closes; anything else in the cache (the browser's uploads, consumed by the request that
carries them) is deleted once it is :attr:`TempSpace.transient_age` seconds old. At start, folders
left by a process that no longer runs are deleted. No Gradio here.
"""

from __future__ import annotations

import atexit
import ctypes
import gc
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = ["TempSpace", "remove_stale", "release_memory", "install_signal_handlers", "PREFIX"]

PREFIX = "inpaintstudio-"
_NAME = re.compile(rf"^{re.escape(PREFIX)}(\d+)-")
_SPACES: list[TempSpace] = []
_LOCK = threading.Lock()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(parent: Path | None = None) -> list[Path]:
    """Delete the studio folders under ``parent`` (default: the temp dir) whose process has ended."""
    parent = Path(parent or tempfile.gettempdir())
    removed = []
    for folder in parent.glob(f"{PREFIX}*"):
        match = _NAME.match(folder.name)
        if match and folder.is_dir() and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the system (glibc), so the server shrinks."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


class TempSpace:
    """The studio's folder: ``root``, Gradio's ``cache`` inside it, session folders inside the cache."""

    def __init__(self, parent: Path | None = None, transient_age: float = 300.0, sweep_every: float = 60.0) -> None:
        remove_stale(parent)
        self.root = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=parent))
        self.cache = self.root / "cache"
        self.cache.mkdir()
        self.transient_age = transient_age
        self._stop = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep_loop, args=(sweep_every,), daemon=True,
                                         name="inpaintstudio-sweeper")
        self._sweeper.start()
        with _LOCK:
            _SPACES.append(self)
        atexit.register(self.remove)

    def use_for_gradio(self) -> None:
        """Point Gradio's cache here (read when Blocks, components and the server are created)."""
        os.environ["GRADIO_TEMP_DIR"] = str(self.cache)

    def sweep(self, now: float | None = None) -> int:
        """Delete cache entries (not session folders) older than ``transient_age``; how many went."""
        now = time.time() if now is None else now
        count = 0
        for entry in list(self.cache.iterdir()) if self.cache.is_dir() else []:
            if entry.name.startswith("session-"):
                continue
            try:
                if now - entry.stat().st_mtime < self.transient_age:
                    continue
            except FileNotFoundError:
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            count += 1
        return count

    def _sweep_loop(self, every: float) -> None:
        while not self._stop.wait(every):
            self.sweep()

    def remove(self) -> None:
        """Delete the whole folder (idempotent)."""
        self._stop.set()
        shutil.rmtree(self.root, ignore_errors=True)
        with _LOCK:
            if self in _SPACES:
                _SPACES.remove(self)


def _remove_all() -> None:
    with _LOCK:
        spaces = list(_SPACES)
    for space in spaces:
        space.remove()


def install_signal_handlers(before_stop: Callable[[], None] | None = None) -> bool:
    """On SIGTERM and SIGINT, delete every studio folder, call ``before_stop``, then stop as Ctrl-C would. Main
    thread only."""
    if threading.current_thread() is not threading.main_thread():
        return False

    def handler(signum: int, frame: FrameType | None) -> Any:
        _remove_all()
        if before_stop is not None:
            before_stop()
        raise KeyboardInterrupt  # Gradio's blocking launch closes the server on it; atexit runs after

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)
    return True
