"""Fetch the authors' checkpoints: download, verify, convert strictly and record in a lock file.

One fetch of ``model:variant`` (see :mod:`inpaintstudio.weights.sources`):

1. If the converted file is already in the weights folder, it is checked against the lock file and
   nothing is downloaded. A file that fails the check is deleted and fetched again; a file the lock
   does not know is never replaced unless ``force``.
2. A complete download already in ``<weights>/downloads/<model>.<variant>/`` is used as it is (so a
   file downloaded by hand is converted too); otherwise it is downloaded: a Google Drive folder is
   listed (and the listing printed) and its generator picked by name; a plain URL is downloaded
   directly. Both resume an interrupted transfer (HTTP ``Range``) and time out with a clear message.
   Offline (``offline=True`` or ``$INPAINTSTUDIO_OFFLINE=1``) a fetch ends at once with one line naming
   what to download and where to put it.
3. The download is checked (MD5 when the publisher states one; sha256 against the lock when the
   variant was fetched before), converted with :func:`inpaintstudio.core.loading.import_checkpoint` (strict:
   every key and shape), and recorded in ``weights.lock.json`` next to the weights: source, variant,
   original file name, sha256 of the download and of the converted file. A download that fails any
   check is deleted.

Downloads go through ``gdown`` (Google Drive folders and files, and plain URLs).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from inpaintstudio import registry
from inpaintstudio.errors import CheckFailedError, WeightsUnavailableError
from inpaintstudio.weights import sources as weight_sources
from inpaintstudio.weights.sources import (
    LOCK_NAME,
    Location,
    Source,
    check_against_lock,
    lock_entry,
    read_lock,
    record_lock,
)

__all__ = [
    "FetchError",
    "NotFetchableError",
    "OfflineError",
    "VerificationError",
    "LockConflictError",
    "RemoteFile",
    "DriveBackend",
    "GdownDrive",
    "FetchResult",
    "LOCK_NAME",
    "OFFLINE_ENV",
    "downloads_dir",
    "read_lock",
    "lock_entry",
    "record_lock",
    "check_against_lock",
    "download_url",
    "fetch",
    "offline_requested",
]

OFFLINE_ENV = "INPAINTSTUDIO_OFFLINE"
DEFAULT_TIMEOUT = (15.0, 60.0)  # seconds: (connect, between bytes)
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".safetensors", ".tar", ".zip")

Progress = Callable[[int, "int | None"], None]
Log = Callable[[str], None]


class FetchError(CheckFailedError, RuntimeError):
    """A fetch that did not end with verified weights. The message is one line a user can act on."""


class NotFetchableError(WeightsUnavailableError, FetchError):
    """The authors' share cannot be fetched by a program, or there are no published weights."""


class OfflineError(WeightsUnavailableError, FetchError):
    """Offline, or the network could not be reached; the message says what to download and where."""


class VerificationError(FetchError):
    """A download or a converted file failed a check (MD5, lock, keys and shapes); it was deleted."""


class LockConflictError(FetchError):
    """Fetching would replace a file the lock does not vouch for."""


@dataclass(frozen=True)
class RemoteFile:
    """A file in a Drive folder: its id and its path inside the folder."""

    id: str
    path: str


class DriveBackend(Protocol):
    def list_folder(self, folder_id: str, timeout: Any) -> list[RemoteFile]: ...

    def download(self, file_id: str, destination: Path, progress: Progress | None, timeout: Any) -> None: ...


class GdownDrive:
    """Google Drive through ``gdown``: public folders (up to 50 files each) and files by id."""

    def list_folder(self, folder_id: str, timeout: Any) -> list[RemoteFile]:
        import gdown

        found = gdown.download_folder(id=folder_id, skip_download=True, quiet=True, timeout=timeout)
        return [RemoteFile(id=item.id, path=item.path) for item in found or []]

    def download(self, file_id: str, destination: Path, progress: Progress | None, timeout: Any) -> None:
        import gdown

        gdown.download(id=file_id, output=str(destination), quiet=True, resume=True, progress=progress,
                       timeout=timeout)


DRIVE: DriveBackend = GdownDrive()


def download_url(url: str, destination: Path, progress: Progress | None = None, timeout: Any = DEFAULT_TIMEOUT) -> None:
    """Download ``url`` to ``destination``, resuming a partial file left by an earlier attempt."""
    import gdown

    destination.parent.mkdir(parents=True, exist_ok=True)
    gdown.download(url=url, output=str(destination), quiet=True, resume=True, use_cookies=False,
                   progress=progress, timeout=timeout)


@dataclass
class FetchResult:
    """What a fetch did: ``action`` is ``"fetched"``, ``"converted"`` (a file found in the downloads
    folder) or ``"verified"`` (already there and matching the lock)."""

    name: str
    path: Path
    sha256: str
    action: str
    entry: dict[str, Any] = field(default_factory=dict)
    listing: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.action == "verified":
            return f"{self.name}: {self.path.name} matches the lock (sha256 {self.sha256[:16]}…); nothing downloaded"
        origin = self.entry.get("original_file", "?")
        return (f"{self.name}: {origin} -> {self.path} (sha256 {self.sha256[:16]}…; download sha256 "
                f"{self.entry.get('download_sha256', '')[:16]}…), recorded in {LOCK_NAME}")


# ------------------------------------------------------------------------------------------- the lock
def _weights_dir() -> Path:
    from inpaintstudio.weights.store import weights_dir

    return weights_dir()


def downloads_dir(source: Source) -> Path:
    return _weights_dir() / "downloads" / f"{source.model}.{source.variant}"


def _sha256(path: Path) -> str:
    from inpaintstudio.weights.store import sha256_file

    return sha256_file(path)


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------- helpers
def offline_requested(offline: bool | None = None) -> bool:
    if offline is not None:
        return offline
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _matches(path: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(path.lower(), pattern.lower()) for pattern in patterns)


def _pick(files: list[RemoteFile], patterns: tuple[str, ...], wanted: str | None) -> RemoteFile | None:
    if wanted:
        exact = [f for f in files if f.path == wanted or Path(f.path).name == wanted]
        return exact[0] if len(exact) == 1 else None
    for pattern in patterns:
        hits = [f for f in files if _matches(f.path, (pattern,))]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            return None  # ambiguous: the caller lists the folder
    return None


def _what_to_download(source: Source) -> str:
    first = source.locations[0]
    name = Path(first.member).name if first.member else (first.pick[0] if first.pick else source.official_filename)
    if first.kind == "drive_folder":
        return f"the generator ({name.split('/')[-1].strip('*')}) from {first.describe()}"
    return f"{Path(urlparse(first.ref).path).name} from {first.ref}"


def _by_hand(source: Source) -> str:
    return (f"download {_what_to_download(source)} and put it in {downloads_dir(source)}, then run "
            f"`python -m inpaintstudio weights fetch {source.model} --variant {source.variant}` again")


def _partial_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.part")) if folder.is_dir() else 0


def _network_failure(error: BaseException, location: Location, source: Source, timeout: Any) -> FetchError:
    """One line for a failed transfer: what went wrong, and how to continue."""
    import requests

    host = urlparse(location.describe()).hostname or "the server"
    if _timed_out(error):
        seconds = timeout[-1] if isinstance(timeout, tuple) else timeout
        what = f"no answer from {host} for {seconds:g} s"
    elif isinstance(error, requests.exceptions.ConnectionError):
        what = f"cannot reach {host} (no network?)"
    else:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        what = first.split(" The received bytes are kept in")[0].rstrip(".")
        what = f"download from {host} failed: {what}"
    kept = _partial_bytes(downloads_dir(source))
    if kept:
        return FetchError(f"{source.name}: {what}; the {kept / 1e6:.1f} MB received are kept and the same "
                          f"command resumes the download")
    return OfflineError(f"{source.name}: {what}; {_by_hand(source)}")


def _timed_out(error: BaseException | None) -> bool:
    """A timeout anywhere in the chain (requests reports a stalled body as a ConnectionError)."""
    import requests

    while error is not None:
        if isinstance(error, (requests.exceptions.Timeout, TimeoutError)):
            return True
        error = error.__cause__ or error.__context__
    return False


def _drop_empty_partials(folder: Path) -> None:
    """Nothing to resume from a partial file with no bytes: remove it (and the folder when empty)."""
    if folder.is_dir():
        for partial in folder.glob("*.part"):
            if partial.stat().st_size == 0:
                partial.unlink()
    _remove_if_empty(folder)


def _is_transfer_error(error: BaseException) -> bool:
    import requests
    from gdown.exceptions import DownloadError

    return isinstance(error, (requests.exceptions.RequestException, DownloadError, OSError))


# ------------------------------------------------------------------------------------------ download
def _staged_file(folder: Path, source: Source) -> Path | None:
    """A complete download already in the variant's downloads folder (fetched earlier or put by hand)."""
    if not folder.is_dir():
        return None
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".part"))
    if len(files) <= 1:
        return files[0] if files else None
    patterns = tuple(p for loc in source.locations for p in loc.pick)
    for candidates in ([f for f in files if _matches(f.name, patterns)],
                       [f for f in files if f.suffix.lower() in CHECKPOINT_SUFFIXES]):
        if len(candidates) == 1:
            return candidates[0]
    names = ", ".join(f.name for f in files)
    raise FetchError(f"{source.name}: {folder} holds several files ({names}); leave only the generator checkpoint")


def _location_of(staged: Path, source: Source) -> Location:
    """The location a staged file came from: by the generator's name, or by the downloaded archive's name."""
    for location in source.locations:
        archive = Path(urlparse(location.ref).path).name if location.kind == "url" else ""
        if _matches(staged.name, location.pick) or staged.name == archive:
            return location
    return source.locations[0]


def _download_from(location: Location, source: Source, folder: Path, *, drive: DriveBackend, wanted_file: str | None,
                   progress: Progress | None, log: Log, timeout: Any) -> tuple[Path, list[str]]:
    """Download the checkpoint from one location into ``folder``; returns ``(file, folder listing)``."""
    folder.mkdir(parents=True, exist_ok=True)
    if location.kind == "drive_folder":
        files = drive.list_folder(location.ref, timeout)
        listing = [f.path for f in files]
        log(f"Google Drive folder {location.describe()} ({source.name}) holds {len(files)} file(s):")
        for path in listing:
            log(f"  {path}")
        chosen = _pick(files, location.pick, wanted_file)
        if chosen is None:
            wanted = wanted_file or " or ".join(location.pick)
            raise FetchError(
                f"{source.name}: no single file in the folder matches {wanted}; choose one of the files listed "
                f"above with --file"
            )
        log(f"taking {chosen.path}")
        target = folder / Path(chosen.path).name
        drive.download(chosen.id, target, progress, timeout)
        return target, listing
    name = Path(urlparse(location.ref).path).name or "download"
    target = folder / name
    log(f"downloading {location.ref}")
    download_url(location.ref, target, progress, timeout)
    return target, []


def _extract_member(archive: Path, member: str, source: Source) -> Path:
    try:
        with zipfile.ZipFile(archive) as bundle:
            names = bundle.namelist()
            if member not in names:
                raise VerificationError(f"{source.name}: {archive.name} has no {member} (it holds {len(names)} "
                                        f"entries, e.g. {', '.join(names[:5])}); it was deleted")
            target = archive.parent / Path(member).name
            with bundle.open(member) as inside, open(target, "wb") as out:
                while block := inside.read(1 << 20):
                    out.write(block)
    except zipfile.BadZipFile as error:
        raise VerificationError(
            f"{source.name}: {archive.name} is not a zip archive ({error}); it was deleted"
        ) from error
    finally:
        archive.unlink(missing_ok=True)
    return target


# --------------------------------------------------------------------------------------------- fetch
def fetch(
    name: str,
    variant: str | None = None,
    *,
    offline: bool | None = None,
    force: bool = False,
    file: str | None = None,
    progress: Progress | None = None,
    log: Log | None = None,
    drive: DriveBackend | None = None,
    timeout: Any = DEFAULT_TIMEOUT,
) -> FetchResult:
    """Fetch, verify, convert and lock one variant (``name`` is ``"sem_net"`` or ``"sem_net:places2"``).

    Args:
        offline: never touch the network (default: ``$INPAINTSTUDIO_OFFLINE``).
        force: accept a download that differs from the lock and replace a converted file the lock does
            not know.
        file: the path (or name) of the file to take from a Drive folder, when the default patterns
            do not find exactly one generator.
        progress: called with ``(bytes so far, total bytes or None)`` during a download.
        log: where progress lines go (default: stderr).
        drive: the Google Drive backend (default: gdown).

    Raises:
        weight_sources.UnknownVariantError: no such model or variant.
        NotFetchableError: weights that a program cannot fetch, or none published (the message says
            what to do instead).
        OfflineError: offline or no network; the message names the file to download and where to put it.
        VerificationError: the download or the converted file failed a check; it was deleted.
        LockConflictError: a converted file that the lock does not know is in the way.
        FetchError: any other failed transfer (the message says whether the next call resumes).
    """
    log = log or _stderr
    drive = drive or DRIVE
    base, _ = weight_sources.parse_name(name)
    if base in registry.unpublished_notes() and not registry.variants_of(base):
        raise NotFetchableError(registry.unpublished_notes()[base])
    source = registry.get_source(name, variant)
    folder = _weights_dir()
    destination = folder / source.filename
    entry = lock_entry(source.name, folder)

    if destination.is_file():
        state, message = check_against_lock(source.name, destination, folder)
        if state == "verified":
            assert entry is not None
            return FetchResult(source.name, destination, entry["sha256"], "verified", entry)
        if state == "mismatch":
            destination.unlink()
            log(f"{source.name}: {message}: the file failed verification and was deleted; fetching it again")
        elif not force:
            raise LockConflictError(
                f"{source.name}: {destination} exists but is not recorded in {LOCK_NAME}; nothing replaced "
                f"(remove it, or fetch with --force to replace it)"
            )

    staging = downloads_dir(source)
    staged = _staged_file(staging, source)
    listing: list[str] = []
    location = source.locations[0]
    action = "converted"
    if staged is not None:
        log(f"{source.name}: using {staged.name} found in {staging}")
        location = _location_of(staged, source)
    elif not source.fetchable:
        raise NotFetchableError(source.instructions)
    elif offline_requested(offline):
        raise OfflineError(f"{source.name}: offline; {_by_hand(source)}")
    else:
        staged, listing, location = _download(source, staging, drive=drive, wanted_file=file, progress=progress,
                                              log=log, timeout=timeout)
        action = "fetched"

    return _verify_convert_lock(source, staged, location, listing, entry, destination, action=action, force=force,
                                log=log)


def _download(source: Source, staging: Path, *, drive: DriveBackend, wanted_file: str | None,
              progress: Progress | None, log: Log, timeout: Any) -> tuple[Path, list[str], Location]:
    failure: FetchError | None = None
    for location in (loc for loc in source.locations if loc.kind in ("drive_folder", "url")):
        try:
            staged, listing = _download_from(location, source, staging, drive=drive, wanted_file=wanted_file,
                                             progress=progress, log=log, timeout=timeout)
        except FetchError:
            _drop_empty_partials(staging)
            raise
        except Exception as error:  # noqa: BLE001 - transfer errors come in many types; others re-raise
            _drop_empty_partials(staging)
            if not _is_transfer_error(error):
                raise
            failure = _network_failure(error, location, source, timeout)
            if _partial_bytes(staging):
                raise failure from error  # resume this location next time rather than switch mirrors
            log(str(failure))
            continue
        return staged, listing, location
    assert failure is not None
    raise failure


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
        folder.parent.rmdir()
    except OSError:
        pass


def _verify_convert_lock(source: Source, staged: Path, location: Location, listing: list[str],
                         entry: dict[str, Any] | None, destination: Path, *, action: str, force: bool,
                         log: Log) -> FetchResult:
    from inpaintstudio.core.loading import import_checkpoint
    from inpaintstudio.weights.store import WeightsError

    original_name = staged.name
    download_sha256 = _sha256(staged)
    if location.md5 and _matches(staged.name, location.pick):
        md5 = _md5(staged)
        if md5 != location.md5:
            _discard(staged)
            raise VerificationError(f"{source.name}: {staged.name} has MD5 {md5}, its publisher states {location.md5}; "
                                    f"the file was deleted")
    _check_published(source, staged, location, download_sha256)
    if entry is not None and not force and entry.get("original_file") == original_name \
            and entry.get("download_sha256") != download_sha256:
        _discard(staged)
        raise VerificationError(
            f"{source.name}: {original_name} has sha256 {download_sha256[:16]}…, but {LOCK_NAME} records "
            f"{str(entry.get('download_sha256'))[:16]}… from {entry.get('fetched_at', 'an earlier fetch')}; the file "
            f"was deleted and nothing replaced (fetch with --force to accept a changed upstream file)"
        )
    checkpoint = staged
    if location.member and staged.suffix.lower() == ".zip":
        checkpoint = _extract_member(staged, location.member, source)
    temporary = destination.with_name(f".{destination.name}.partial")
    try:
        report = import_checkpoint(source.model, checkpoint, temporary)
    except WeightsError as error:
        temporary.unlink(missing_ok=True)
        _discard(checkpoint)
        raise VerificationError(f"{source.name}: {error}; the download was deleted") from error
    os.replace(temporary, destination)
    digest = _sha256(destination)
    record = {
        "model": source.model,
        "variant": source.variant,
        "dataset": source.dataset,
        "file": destination.name,
        "sha256": digest,
        "source": location.describe(),
        "source_kind": location.kind,
        "original_file": original_name,
        "download_sha256": download_sha256,
        "download_bytes": checkpoint.stat().st_size if checkpoint.exists() else None,
        "tensors": report.tensors,
        "dropped_keys": report.dropped,
        "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if location.md5:
        record["md5"] = location.md5
    if location.sha256:
        record["published_sha256"] = location.sha256
    if listing:
        record["folder_listing"] = listing
    if location.member:
        record["member"] = location.member
    record_lock(source.name, record, destination.parent)
    _discard(checkpoint)
    log(f"{source.name}: converted {original_name} ({report.tensors} tensors"
        + (f", dropped {len(report.dropped)} unused keys" if report.dropped else "") + f") -> {destination}")
    return FetchResult(source.name, destination, digest, action, record, listing)


def _check_published(source: Source, staged: Path, location: Location, sha256: str) -> None:
    """The size and sha256 a publisher states, when it states them; a mismatch deletes the download."""
    if not _matches(staged.name, location.pick):
        return
    size = staged.stat().st_size
    problem = None
    if location.size is not None and size != location.size:
        problem = f"is {size} bytes, its publisher states {location.size}"
    elif location.sha256 and sha256 != location.sha256:
        problem = f"has sha256 {sha256}, the published one is {location.sha256}"
    if problem:
        _discard(staged)
        raise VerificationError(f"{source.name}: {staged.name} {problem}; the file was deleted")


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)
    _remove_if_empty(path.parent)



# ------------------------------------------------------------------------------------ import as variant
def import_variant(model: str, variant: str, checkpoint: str | os.PathLike[str], *, dataset: str = "",
                   purpose: str = "") -> tuple[Path, Any]:
    """Convert ``checkpoint`` (strictly) to ``model.variant.safetensors`` and record it in the lock file,
    so that ``model:variant`` is listed and runs like a fetched variant. Returns ``(path, ImportReport)``.

    An explicit import may replace an earlier file of the same variant; the lock then records the new one.
    """
    from inpaintstudio.core.loading import import_checkpoint

    if not variant or not variant.replace("_", "").replace("-", "").isalnum():
        raise FetchError(f"variant name {variant!r}: use letters, digits, '-' and '_' only")
    source_path = Path(checkpoint)
    folder = _weights_dir()
    destination = folder / f"{model}.{variant}.safetensors"
    temporary = destination.with_name(f".{destination.name}.partial")
    try:
        report = import_checkpoint(model, source_path, temporary)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, destination)
    report.destination = str(destination)
    published = registry.find_variant(model, variant)
    record = {
        "model": model,
        "variant": variant,
        "dataset": dataset or (published.dataset if published else ""),
        "purpose": purpose or (published.purpose if published else ""),
        "file": destination.name,
        "sha256": _sha256(destination),
        "source": "imported",
        "source_kind": "import",
        "original_file": source_path.name,
        "download_sha256": _sha256(source_path),
        "tensors": report.tensors,
        "dropped_keys": report.dropped,
        "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    record_lock(f"{model}:{variant}", record, folder)
    report.sha256 = record["sha256"]
    return destination, report


# ------------------------------------------------------------------------------- start-up (Spaces)
FETCH_ENV = "INPAINTSTUDIO_FETCH"


def progress_logger(name: str, log: Log, step: float = 0.1) -> Progress:
    """A progress callback that logs ``name: 40 % of 512.3 MB`` every ``step`` of the download."""
    state = {"next": step}

    def report(done: int, total: int | None) -> None:
        if not total:
            return
        if done >= total or done / total >= state["next"]:
            log(f"{name}: {100 * done / total:.0f} % of {total / 1e6:.1f} MB")
            state["next"] = (int(done / total / step) + 1) * step

    return report


def fetch_from_hub(source: Source, repo_id: str, revision: str, *, log: Log | None = None) -> FetchResult:
    """Fetch a variant's converted file (``model.variant.safetensors``) from a Hugging Face Hub repository
    at a pinned revision, then check it strictly and lock it like any other download."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError

    log = log or _stderr
    folder = _weights_dir()
    destination = folder / source.filename
    if destination.is_file() and check_against_lock(source.name, destination, folder)[0] == "verified":
        entry = lock_entry(source.name, folder) or {}
        return FetchResult(source.name, destination, entry.get("sha256", ""), "verified", entry)
    try:
        cached = Path(hf_hub_download(repo_id=repo_id, filename=source.filename, revision=revision))
    except (HfHubHTTPError, HFValidationError, LocalEntryNotFoundError, OSError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise FetchError(f"{source.name}: {source.filename} not fetched from {repo_id}@{revision}: {first}") from error
    staging = downloads_dir(source)
    staging.mkdir(parents=True, exist_ok=True)
    staged = staging / source.filename
    staged.write_bytes(cached.read_bytes())
    location = Location("url", f"https://huggingface.co/{repo_id}/blob/{revision}/{source.filename}",
                        pick=(source.filename,))
    return _verify_convert_lock(source, staged, location, [], lock_entry(source.name, folder), destination,
                                action="fetched", force=False, log=log)


def fetch_listed(spec: str | None = None, *, log: Log | None = None) -> list[str]:
    """Fetch every ``model:variant`` of ``spec`` (default ``$INPAINTSTUDIO_FETCH``; commas or spaces).

    From the Hub repository first when ``$INPAINTSTUDIO_HF_REPO`` and ``$INPAINTSTUDIO_HF_REVISION`` are
    set, else (or when the Hub does not have it) from the authors' location. Progress goes to ``log``.
    Never raises: returns one line per entry saying what happened.
    """
    from inpaintstudio.weights.store import HF_REPO_ENV, HF_REVISION_ENV

    log = log or _stderr
    spec = os.environ.get(FETCH_ENV, "") if spec is None else spec
    names = [name for name in spec.replace(",", " ").split() if name]
    repo, revision = os.environ.get(HF_REPO_ENV), os.environ.get(HF_REVISION_ENV)
    lines = []
    for name in names:
        try:
            source = registry.get_source(name)
            result = None
            if repo and revision:
                try:
                    result = fetch_from_hub(source, repo, revision, log=log)
                except FetchError as error:
                    log(f"{error}; trying the authors' location")
            if result is None:
                result = fetch(source.name, progress=progress_logger(source.name, log), log=log)
        except (FetchError, weight_sources.UnknownVariantError, weight_sources.LockFileError, OSError) as error:
            lines.append(f"{name}: not fetched: {error}")
        else:
            lines.append(result.summary())
        log(lines[-1])
    return lines
