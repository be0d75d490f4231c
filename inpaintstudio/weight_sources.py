"""Where the authors publish each model's checkpoints, one entry per variant (pure data, no torch).

A *variant* is one set of weights of one network, named by the data it was trained on
(``sem_net:places2``, ``hint:dunhuang``). Its entry says what it is for, where the authors put it
and how a program can get it:

- ``drive_folder``: a public Google Drive folder; the generator is picked from it by name
  (``pick``, shell patterns matched against the path inside the folder, first pattern first);
- ``url``: a plain HTTPS download, with an optional MD5 the publisher states;
- ``manual``: a share that a program cannot fetch (Baidu Netdisk); the user downloads it by hand;

Models whose authors published no weights are in :data:`UNPUBLISHED` with what to do instead.
``member`` names the file to take out of a downloaded zip archive. A variant may list several
``locations``; they are tried in order (a mirror after the authors' own place).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "Location",
    "Source",
    "SOURCES",
    "UNPUBLISHED",
    "UnknownVariantError",
    "parse_name",
    "variants_of",
    "get_source",
    "default_variant",
    "drive_folder_url",
    "register_source",
    "unregister_source",
    "LOCK_NAME",
    "read_lock",
    "lock_entry",
    "record_lock",
    "check_against_lock",
    "imported_variants",
    "all_variants",
    "find_variant",
    "variant_card",
    "missing_hints",
]

Kind = Literal["drive_folder", "url", "manual"]

GENERATOR_PATTERNS = ("InpaintingModel_gen.pth", "*/InpaintingModel_gen.pth", "*_gen.pth", "*gen*.pth")


class UnknownVariantError(KeyError):
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


def _drive(model: str, variant: str, dataset: str, purpose: str, folder: str, page: str,
           pick: tuple[str, ...] = GENERATOR_PATTERNS, note: str = "") -> Source:
    return Source(model, variant, dataset, purpose, (Location("drive_folder", folder, pick=pick, note=note),), page)


FACES = "faces (aligned portraits)"
SCENES = "scenes and object removal"
_SEM_NET = "https://github.com/ChrisChen1023/SEM-Net"
_MXT = "https://github.com/ChrisChen1023/MxT"
_HINT = "https://github.com/ChrisChen1023/HINT"
_INCLG = "https://github.com/ChrisChen1023/INCLG"
_TSGL = "https://github.com/htyjers/ConvInpaint-TSGL"
_TSGL_SHARE = "https://pan.baidu.com/s/1Qm1AGFHcWuE09NvusZfonA?pwd=feqj"
_MXT_FOLDER = "1s_EqqBkJRy9VE_1OUD9rLhqua2LwtBXQ"
_MXT_NOTE = ("the authors' README links one folder without naming its datasets; the generator is picked by a "
             "dataset name in its path")


def _tsgl(model: str, variant: str, dataset: str, purpose: str, folder: str) -> Source:
    return Source(
        model, variant, dataset, purpose,
        (Location("manual", _TSGL_SHARE, note="Baidu Netdisk, extraction code feqj"),),
        page=_TSGL, official_filename="G_<n>.pth",
        instructions=(
            f"TSGL's weights are on Baidu Netdisk, which a program cannot download from: open {_TSGL_SHARE} "
            f"(extraction code feqj), take the generator G_<n>.pth from the {folder} folder, then run "
            f"`python -m inpaintstudio weights import --model {model} --variant {variant} PATH/G_<n>.pth`"
        ),
    )


SOURCES: tuple[Source, ...] = (
    _drive("sem_net", "places2", "Places2", SCENES, "1sgJRu-Vf6u6taZY-RpY8cFXRAH09i4fu", _SEM_NET),
    _drive("sem_net", "celebahq", "CelebA-HQ", FACES, "1L-Tt3mTgbJ_8Ki8jQIZE6xmddhHNl3YN", _SEM_NET),
    _drive("mxt", "places2", "Places2", SCENES, _MXT_FOLDER, _MXT,
           pick=("*places*InpaintingModel_gen.pth", "*places*gen*.pth"), note=_MXT_NOTE),
    _drive("mxt", "celebahq", "CelebA-HQ", FACES, _MXT_FOLDER, _MXT,
           pick=("*celeba*InpaintingModel_gen.pth", "*celeba*gen*.pth"), note=_MXT_NOTE),
    _drive("hint", "places2", "Places2", SCENES, "1mzHkz8sjA7uxgG1nTLiPZQKl1zITiTgV", _HINT),
    _drive("hint", "celebahq", "CelebA-HQ", FACES, "1DPmw5LSVxmRXoiLzPrIePXJHla0ek6E9", _HINT),
    _drive("hint", "celeba", "CelebA", "faces (CelebA)", "1oWuRmL3ye-ucHkUfbSqh_2NkzlYbKC29", _HINT),
    _drive("hint", "dunhuang", "Dunhuang", "murals (Dunhuang cave paintings)", "14bRa6_12MZf1Qsu3Jv6CJEFwWO0WX5qF",
           _HINT),
    _drive("inclg", "celeba", "CelebA", "faces, with 68 predicted landmarks", "1H9FZ-jJUkYBDcNASX8kBnmipgGgv_y7t",
           _INCLG),
    _tsgl("tsgl", "places2", "Places2", SCENES, "Places2"),
    _tsgl("tsgl", "celeba", "CelebA", FACES, "CelebA"),
    _tsgl("tsgl", "psv", "Paris StreetView", "street façades", "PSV"),
    _tsgl("tsgl_512", "places2", "Places365-Standard", SCENES + " at 512×512", "Places2 (TSGL-LaMa, 512)"),
    Source(
        "lama", "places2", "Places-Challenge", SCENES + "; large masks",
        (
            Location("url", "https://github.com/Sanster/models/releases/download/add_big_lama/big-lama.pt",
                     pick=("big-lama.pt",), md5="e3aa4aaa15225a33ec84f9f4bc47e500",
                     note="TorchScript export of Big-LaMa published by IOPaint"),
            Location("url", "https://huggingface.co/smartywu/big-lama/resolve/main/big-lama.zip",
                     pick=("best.ckpt",), member="big-lama/models/best.ckpt",
                     note="the authors' Lightning checkpoint, linked from the LaMa README"),
        ),
        page="https://github.com/advimman/lama", official_filename="big-lama.pt",
    ),
    Source(
        "mobile_sam", "sa1b", "SA-1B (1 %, distilled from SAM ViT-H)", "selecting objects with a box or clicks",
        (Location("url", "https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/mobile_sam.pt",
                  pick=("mobile_sam.pt",), md5="f3c0d8cda613564d499310dab6c812cd",
                  sha256="6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f", size=40_728_226,
                  note="the authors' release; sha256 as on the Hugging Face mirror, MD5 as IOPaint states it"),),
        page="https://github.com/ChaoningZhang/MobileSAM", official_filename="mobile_sam.pt",
    ),
)

# Models whose authors published no weights: how to get some instead.
UNPUBLISHED: dict[str, str] = {
    "csfc": (
        "CSFC's authors published no code or weights: train it with the paper's recipe, `python -m inpaintstudio "
        "train --model csfc --config configs/train/csfc.yaml` (edit its data paths); the trainer writes "
        "OUTPUT/csfc.safetensors, which `python -m inpaintstudio weights import --model csfc --variant NAME FILE` "
        "registers as csfc:NAME"
    ),
}

_extra: dict[str, Source] = {}


def _all() -> list[Source]:
    return [*SOURCES, *_extra.values()]


def register_source(source: Source) -> Source:
    """Add a source at run time (tests add fixture-sized models this way)."""
    _extra[source.name] = source
    return source


def unregister_source(name: str) -> None:
    _extra.pop(name, None)


def parse_name(name: str) -> tuple[str, str | None]:
    """``"sem_net:places2"`` -> ``("sem_net", "places2")``; ``"sem_net"`` -> ``("sem_net", None)``."""
    model, _, variant = name.partition(":")
    return model, (variant or None)


def variants_of(model: str) -> list[Source]:
    """Every variant of ``model`` in table order (the first is the default)."""
    return [source for source in _all() if source.model == model]


def default_variant(model: str) -> Source | None:
    found = variants_of(model)
    return found[0] if found else None


def get_source(model: str, variant: str | None = None) -> Source:
    """The entry of ``model`` (``"sem_net"`` or ``"sem_net:places2"``) and ``variant`` (default: the first)."""
    base, named = parse_name(model)
    variant = variant or named
    found = variants_of(base)
    if not found and base in UNPUBLISHED:
        raise UnknownVariantError(UNPUBLISHED[base])
    if not found:
        known = ", ".join(sorted({source.model for source in _all()}))
        raise UnknownVariantError(f"no published weights are known for {base!r}; models with sources: {known}")
    if variant is None:
        return found[0]
    for source in found:
        if source.variant == variant:
            return source
    names = ", ".join(source.variant for source in found)
    raise UnknownVariantError(f"{base} has no variant {variant!r}; its variants: {names}")


# ------------------------------------------------------------------------------------ the lock file
LOCK_NAME = "weights.lock.json"


def _weights_dir() -> Path:
    from inpaintstudio.weights import weights_dir

    return weights_dir()


class LockFileError(ValueError):
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
    from inpaintstudio.weights import sha256_cached

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


# ------------------------------------------------------------------------------ imported variants
def imported_variants(model: str) -> list[Source]:
    """Variants of ``model`` that a user imported (``weights import --variant NAME``), from the lock file."""
    try:
        entries = read_lock()
    except LockFileError:
        return []
    published = {source.variant for source in variants_of(model)}
    found = []
    for entry in entries.values():
        if entry.get("model") != model or entry.get("variant") in published or not entry.get("variant"):
            continue
        found.append(Source(
            model, entry["variant"], entry.get("dataset") or "your own data",
            entry.get("purpose") or f"your checkpoint {entry.get('original_file', '')}".strip(), (),
            official_filename=entry.get("original_file", ""),
            instructions=(f"{model}:{entry['variant']} was imported from {entry.get('original_file', 'a file')}; "
                          f"import it again with `python -m inpaintstudio weights import --model {model} "
                          f"--variant {entry['variant']} FILE`"),
        ))
    return found


def all_variants(model: str) -> list[Source]:
    """Published variants in table order, then imported ones."""
    return [*variants_of(model), *imported_variants(model)]


def find_variant(model: str, variant: str) -> Source | None:
    return next((source for source in all_variants(model) if source.variant == variant), None)


def variant_card(base: Any, source: Source) -> Any:
    """The card of one variant: the base model's card with the variant's name, file and purpose."""
    from dataclasses import replace

    if source.locations:
        where = " or ".join(location.describe() for location in source.locations if location.ref)
        published = f"{where} (fetch with: python -m inpaintstudio weights fetch {source.model} " \
                    f"--variant {source.variant})" if source.fetchable else where
    else:
        published = "imported by you"
    weight = base.weights[0] if base.weights else None
    weights = (replace(weight, filename=source.filename, sha256=None, source=published,
                       official_filename=source.official_filename or weight.official_filename),) if weight else ()
    return replace(
        base, name=source.name, title=f"{base.title} · {source.dataset}", weights=weights, weights_path=None,
        notes=f"{source.dataset} weights, for {source.purpose}. {base.notes}".strip(),
    )


def missing_hints(name: str) -> tuple[str, ...]:
    """How to get the weights of ``name`` (a model or ``model:variant``): the fetch command, the by-hand
    instructions, or the training recipe."""
    base, variant = parse_name(name)
    if variant is not None:
        source = find_variant(base, variant)
        if source is None:
            return ()
        if source.fetchable:
            return (f"Fetch them ({source.dataset}, for {source.purpose}) with: "
                    f"python -m inpaintstudio weights fetch {base} --variant {variant}",)
        return (source.instructions,)
    published = variants_of(base)
    if published:
        names = ", ".join(source.name for source in published)
        return (f"Published variants: {names}; fetch one with: python -m inpaintstudio weights fetch {base} "
                f"--variant {published[0].variant}, then use {published[0].name}",)
    if base in UNPUBLISHED:
        return (UNPUBLISHED[base],)
    return ()
