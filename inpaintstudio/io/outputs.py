"""Where a command writes, checked before any work starts, so that no file is ever lost.

Every writing command (``inpaint``, ``compare``, ``eval --json/--csv/--save``, ``clinic``) plans its
destinations with one :class:`OutputPlan`:

* an input (photo, mask, a folder's sources) is never written over, whatever the spelling of the
  path: symlinks, ``./``, ``..``, hard links, letter case on a case-insensitive file system;
* an existing file is replaced only with ``--overwrite``;
* two results of one run never share a destination (``a.jpg`` and ``a.png`` both want ``a.png``);
* each destination folder is probed once: a file in the way, a missing permission, a read-only or
  pseudo file system (``/proc``) and a name longer than the file system allows are refused here,
  in one line, instead of after minutes of work;
* writes go through a temporary file and a rename (:func:`inpaintstudio.io.write_bytes_atomically`).

``-o`` spellings (:func:`output_target`): ``""`` is refused; ``DIR/`` (a trailing slash) or an
existing folder means a folder, created when missing; anything else is a file.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inpaintstudio import io

__all__ = [
    "OutputError",
    "OverwriteError",
    "OutputPlan",
    "OutputTarget",
    "output_target",
]

OutputError = io.OutputError
OverwriteError = io.OverwriteError


@dataclass(frozen=True)
class OutputTarget:
    """What ``-o`` names: a folder (results go inside, by input name) or one file."""

    path: Path
    is_folder: bool

    def file_for(self, stem: str, suffix: str = ".png") -> Path:
        """The destination of a result named after an input's stem."""
        return self.path / f"{stem}{suffix}" if self.is_folder else self.path


def output_target(raw: str | os.PathLike, *, folder_required: bool = False) -> OutputTarget:
    """Interpret an ``-o`` value. ``folder_required``: the command writes several files (a folder input).

    Raises:
        OutputError: an empty value, or a file where a folder is required.
    """
    text = os.fspath(raw)
    if not str(text).strip():
        raise OutputError("the output path is empty: name a file or a folder (a trailing / means a folder)")
    path = Path(text)
    spelled_as_folder = str(text).endswith((os.sep, "/")) or (os.altsep is not None and str(text).endswith(os.altsep))
    if os.path.isdir(path) or spelled_as_folder:
        return OutputTarget(path, True)
    if folder_required:
        if os.path.lexists(path):
            raise OutputError(
                f"{io.printable_path(path)} is a file, but a folder of inputs needs an output folder"
            )
        return OutputTarget(path, True)
    return OutputTarget(path, False)


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def _nearest_existing(folder: Path) -> Path:
    current = Path(os.path.abspath(folder))
    while not os.path.lexists(current) and current != current.parent:
        current = current.parent
    return current


def _probe_folder(destination: Path) -> None:
    """Refuse a destination whose folder cannot be created or written, by trying it (``os.access``
    says yes to root even on a read-only mount)."""
    existing = _nearest_existing(destination.parent)
    shown = io.printable_path(destination)
    if not os.path.isdir(existing):
        raise OutputError(f"cannot write {shown}: {io.printable_path(existing)} is a file, not a folder")
    probe = existing / f".inpaintstudio-probe-{uuid.uuid4().hex[:12]}"
    try:
        with open(probe, "xb"):
            pass
    except OSError as error:
        reason = io.describe_os_error(existing, error).split(": ", 1)[-1]
        raise OutputError(f"cannot write {shown}: no file can be created in {io.printable_path(existing)} "
                          f"({reason})") from None
    finally:
        try:
            probe.unlink(missing_ok=True)
        except OSError:
            pass


def _case_insensitive(folder: Path) -> bool:
    """Whether the file system under ``folder`` (or its nearest existing parent) ignores letter case."""
    existing = _nearest_existing(folder)
    probe = existing / f".inpaintstudio-case-{uuid.uuid4().hex[:8]}"
    try:
        with open(probe, "xb"):
            pass
        return os.path.exists(existing / probe.name.upper())
    except OSError:
        return False
    finally:
        try:
            probe.unlink(missing_ok=True)
        except OSError:
            pass


@dataclass
class OutputPlan:
    """The destinations of one command run, checked together before the work (see the module docstring).

    Args:
        inputs: files that must never be written over (photos, masks, checkpoints...).
        overwrite: replace existing files (never an input).
    """

    inputs: list[Path] = field(default_factory=list)
    overwrite: bool = False
    destinations: list[Path] = field(default_factory=list)
    _keys: dict[str, Path] = field(default_factory=dict)
    _folders: dict[Path, bool] = field(default_factory=dict)  # folder -> ignores letter case
    _probed: set[Path] = field(default_factory=set)

    def protect(self, paths: Iterable[str | os.PathLike | None]) -> None:
        """Add input files that no destination may name."""
        self.inputs.extend(Path(p) for p in paths if p is not None)

    def _collision_key(self, path: Path) -> str:
        folder = Path(os.path.abspath(path.parent))
        try:
            folder = folder.resolve()
        except (OSError, RuntimeError):
            pass
        if folder not in self._folders:
            self._folders[folder] = _case_insensitive(folder)
        name = path.name.casefold() if self._folders[folder] else path.name
        return os.fspath(folder / name)

    def claim(self, destination: str | os.PathLike, *, source: str | os.PathLike | None = None) -> Path:
        """Check and record one destination; ``source`` names the input it comes from (for messages).

        Raises:
            OverwriteError: it names an input.
            OutputError: it exists (without ``overwrite``), is a folder, collides with another result
                of this run, its name is too long, or its folder cannot be written.
        """
        path = Path(destination)
        shown = io.printable_path(path)
        for protected in self.inputs:
            if io.same_file(path, protected):
                raise OverwriteError(f"refusing to write {shown} over the input {io.printable_path(protected)}: "
                                     "choose another output path")
        key = self._collision_key(path)
        if key in self._keys:
            earlier = self._keys[key]
            what = f" (from {io.printable_path(source)})" if source is not None else ""
            raise OutputError(f"two results would be written to {shown}{what}; the other one is "
                              f"{io.printable_path(earlier)}: rename one input or write them to separate folders")
        if os.path.isdir(path):
            raise OutputError(f"cannot write {shown}: it is a folder")
        if os.path.lexists(path) and not self.overwrite:
            raise OutputError(f"{shown} already exists: pass --overwrite to replace it, or choose another name")
        existing = _nearest_existing(path.parent)
        limit = _name_max(existing)
        for part in Path(os.path.abspath(path)).relative_to(existing).parts:  # the names still to create
            if len(os.fsencode(part)) > limit:
                raise OutputError(f"cannot write {shown}: the name {io.printable_path(part[:24] + '…')} is too long "
                                  f"({len(os.fsencode(part))} bytes, the file system allows {limit})")
        folder = Path(os.path.abspath(path.parent))
        if folder not in self._probed:
            _probe_folder(path)
            self._probed.add(folder)
        self._keys[key] = path
        self.destinations.append(path)
        return path

    # ------------------------------------------------------------------------------------- writes
    def _check_planned(self, path: Path) -> None:
        if path not in self.destinations:
            self.claim(path)
        for protected in self.inputs:  # checked again at write time: the disk may have changed
            if io.same_file(path, protected):
                raise OverwriteError(f"refusing to write {io.printable_path(path)} over the input "
                                     f"{io.printable_path(protected)}")

    def write_image(
        self,
        destination: str | os.PathLike,
        rgb: np.ndarray,
        *,
        like: io.LoadedImage | None = None,
        **options: object,
    ) -> io.SavedImage:
        """Write an image (``like``: put the original's alpha, EXIF and ICC back) to a claimed destination."""
        path = Path(destination)
        self._check_planned(path)
        if like is not None:
            return io.save_like(path, rgb, like, **options)  # type: ignore[arg-type]
        return io.save_image(path, rgb, **options)  # type: ignore[arg-type]

    def write_text(self, destination: str | os.PathLike, text: str) -> Path:
        """Write UTF-8 text atomically to a claimed destination."""
        path = Path(destination)
        self._check_planned(path)
        io.write_bytes_atomically(path, text.encode("utf-8"))
        return path

