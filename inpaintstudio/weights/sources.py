"""Where the authors publish each model's checkpoints, one entry per variant (pure data, no torch).

A *variant* is one set of weights of one network, named by the data it was trained on
(``sem_net:places2``, ``hint:dunhuang``). Its entry says what it is for, where the authors put it
and how a program can get it:

- ``drive_folder``: a public Google Drive folder; the generator is picked from it by name
  (``pick``, shell patterns matched against the path inside the folder, first pattern first);
- ``url``: a plain HTTPS download, with an optional MD5 the publisher states;
- ``manual``: a share that a program cannot fetch (Baidu Netdisk); the user downloads it by hand;

Each model's entries live in its card file (``models/<name>/card.py``: ``SOURCES``, and ``UNPUBLISHED``
when its authors published no weights); :mod:`inpaintstudio.registry` gathers them and answers the
look-ups (``variants_of``, ``find_variant``…). ``member`` names the file to take out of a downloaded zip
archive. A variant may list several ``locations``; they are tried in order (a mirror after the authors' own
place).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from inpaintstudio.errors import BadInputError

__all__ = [
    "Location",
    "Source",
    "FACES",
    "SCENES",
    "GENERATOR_PATTERNS",
    "UnknownVariantError",
    "parse_name",
    "drive_source",
    "drive_folder_url",
    "LOCK_NAME",
    "LockFileError",
    "read_lock",
    "lock_entry",
    "record_lock",
    "check_against_lock",
]

Kind = Literal["drive_folder", "url", "manual"]

GENERATOR_PATTERNS = ("InpaintingModel_gen.pth", "*/InpaintingModel_gen.pth", "*_gen.pth", "*gen*.pth")


class UnknownVariantError(BadInputError, KeyError):
    """A ``model:variant`` name that no source entry carries."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Location:
    """One place a variant's checkpoint can be had from."""

    kind: Kind
    ref: str = ""  # Drive folder id, or URL
    pick: tuple[str, ...] = GENERATOR_PATTERNS
    md5: str | None = None
    member: str | None = None
    note: str = ""
    sha256: str | None = None  # a digest the publisher (or a mirror) states for the download
    size: int | None = None  # the download's size in bytes, when published

    def describe(self) -> str:
        if self.kind == "drive_folder":
            return drive_folder_url(self.ref)
        return self.ref


@dataclass(frozen=True)
class Source:
    """One variant of one model: what it is for and where it comes from."""

    model: str
    variant: str
    dataset: str
    purpose: str
    locations: tuple[Location, ...]
    page: str = ""  # the authors' page that links the checkpoint
    official_filename: str = "InpaintingModel_gen.pth"
    instructions: str = ""  # for a manual source: how to get the file by hand

    @property
    def name(self) -> str:
        return f"{self.model}:{self.variant}"

    @property
    def filename(self) -> str:
        """The converted file's name in the weights folder."""
        return f"{self.model}.{self.variant}.safetensors"

    @property
    def fetchable(self) -> bool:
        return any(loc.kind in ("drive_folder", "url") for loc in self.locations)


def drive_folder_url(folder_id: str) -> str:
    return f"https://drive.google.com/drive/folders/{folder_id}"


def drive_source(model: str, variant: str, dataset: str, purpose: str, folder: str, page: str,
                 pick: tuple[str, ...] = GENERATOR_PATTERNS, note: str = "") -> Source:
    """A variant published in a public Google Drive folder (the generator picked by ``pick``)."""
    return Source(model, variant, dataset, purpose, (Location("drive_folder", folder, pick=pick, note=note),), page)


FACES = "faces (aligned portraits)"
SCENES = "scenes and object removal"


# ------------------------------------------------------------------------------------ the lock file
LOCK_NAME = "weights.lock.json"


def _weights_dir() -> Path:
    from inpaintstudio.weights.store import weights_dir

    return weights_dir()


class LockFileError(BadInputError, ValueError):
    """A lock file that cannot be read."""


def read_lock(folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """``{"model:variant": entry}`` from the lock file next to the weights (empty when there is none)."""
    path = (folder or _weights_dir()) / LOCK_NAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise LockFileError(f"{path} is not a readable lock file ({error}); fix or remove it") from error
    return dict(data.get("weights", {}))


def lock_entry(name: str, folder: Path | None = None) -> dict[str, Any] | None:
    return read_lock(folder).get(name)


def record_lock(name: str, entry: dict[str, Any], folder: Path | None = None) -> None:
    """Write (or replace) one entry of the lock file, atomically."""
    folder = folder or _weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    entries = read_lock(folder)
    entries[name] = entry
    path = folder / LOCK_NAME
    temporary = path.with_name(f".{LOCK_NAME}.tmp")
    temporary.write_text(json.dumps({"version": 1, "weights": dict(sorted(entries.items()))}, indent=1,
                                    ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def check_against_lock(name: str, path: Path, folder: Path | None = None) -> tuple[str, str]:
    """``("verified" | "mismatch" | "unlocked" | "missing", message)`` for the converted file of ``name``."""
    from inpaintstudio.weights.store import sha256_cached

    if not path.is_file():
        return "missing", f"{path.name} is not in {path.parent}"
    entry = lock_entry(name, folder)
    if entry is None:
        return "unlocked", f"{path.name} is not recorded in {LOCK_NAME}"
    digest = sha256_cached(path)
    if digest != entry.get("sha256"):
        recorded = str(entry.get("sha256"))[:16]
        return "mismatch", f"{path.name} has sha256 {digest[:16]}…, {LOCK_NAME} records {recorded}…"
    return "verified", f"sha256 matches {LOCK_NAME} ({digest[:12]}…)"


def parse_name(name: str) -> tuple[str, str | None]:
    """``"sem_net:places2"`` -> ``("sem_net", "places2")``; ``"sem_net"`` -> ``("sem_net", None)``."""
    model, _, variant = name.partition(":")
    return model, (variant or None)
