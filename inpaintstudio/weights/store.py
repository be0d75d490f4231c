"""Find, verify, convert and load checkpoints.

Load path (timm / diffusers style): safetensors first, pickles only with ``weights_only=True``;
containers (``generator``, ``state_dict``, ``params``, ``model``) are unwrapped and ``module.`` /
``_orig_mod.`` prefixes stripped; the model's own ``remap_official_state_dict`` renames or drops what
the official format carries; loading is ``strict=True`` and a failure lists missing, unexpected and
mis-shaped keys.

Where weights live: ``$INPAINTSTUDIO_WEIGHTS`` when set, else the repository's ``weights/`` folder.

This module works on cards and tensors it is given; it never looks a model up. Finding a card's network
module and building it is :mod:`inpaintstudio.core.loading`'s job (``loading.import_checkpoint`` calls
:func:`import_checkpoint` here with the model's remapping and expected keys).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inpaintstudio.errors import BadInputError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from inpaintstudio.modelcard import ModelCard

__all__ = [
    "HF_REPO_ENV",
    "HF_REVISION_ENV",
    "config_from_metadata",
    "missing_message",
    "WeightsError",
    "ImportReport",
    "weights_dir",
    "expected_path",
    "status",
    "sha256_file",
    "read_checkpoint",
    "clean_state_dict",
    "key_mismatches",
    "load_strict",
    "import_checkpoint",
    "save_safetensors",
    "hub_download",
]

_CONTAINER_KEYS = ("generator", "state_dict", "params", "params_ema", "model", "netG", "gen")
_PREFIXES = ("module.", "_orig_mod.")


class WeightsError(BadInputError, RuntimeError):
    """A checkpoint that cannot be read or does not fit the network."""


@dataclass
class ImportReport:
    """What an import did: every dropped or missing key is named, nothing silently ignored."""

    model: str
    source: str
    destination: str = ""
    iteration: int | None = None
    dropped: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    tensors: int = 0
    parameters: int = 0
    sha256: str = ""

    def summary(self) -> str:
        lines = [
            f"model: {self.model}",
            f"source: {self.source}",
            f"tensors: {self.tensors} ({self.parameters:,} values)",
        ]
        if self.iteration is not None:
            lines.append(f"iteration: {self.iteration}")
        if self.renamed:
            lines.append(f"renamed: {len(self.renamed)} keys")
        lines.append(f"dropped: {len(self.dropped)} keys" + ("" if not self.dropped else ":"))
        lines.extend(f"  - {key}" for key in self.dropped)
        if self.missing:
            lines.append(f"missing (filled from nothing, import refused): {len(self.missing)}")
            lines.extend(f"  - {key}" for key in self.missing)
        if self.destination:
            lines.append(f"written: {self.destination}")
            lines.append(f"sha256: {self.sha256}")
        return "\n".join(lines)


def weights_dir() -> Path:
    env = os.environ.get("INPAINTSTUDIO_WEIGHTS")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2] / "weights"


def expected_path(card: "ModelCard") -> Path | None:
    """Where the card's (first) weight file is expected, or ``None`` for a weight-free engine."""
    if card.weights_path is not None:
        return Path(card.weights_path)
    if not card.weights:
        return None
    return weights_dir() / card.weights[0].filename


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def missing_message(card: "ModelCard", path: Path, hints: tuple[str, ...] = ()) -> str:
    """What is missing and where it goes; ``hints`` are lines on how to get it (the loading layer adds
    the variant's fetch command)."""
    wf = card.weights[0] if card.weights else None
    lines = [
        f"{card.title} ({card.name}) needs weights that are not on this machine.",
        f"Expected file: {path.name}",
        f"In folder:     {path.parent}",
        *hints,
    ]
    if ":" not in card.name and wf is not None and wf.official_filename:
        lines.append(
            f"Convert the authors' {wf.official_filename} with: "
            f"python -m inpaintstudio weights import --model {card.name} PATH/{wf.official_filename}"
        )
    if not hints and wf is not None and wf.source:
        lines.append(f"Published at: {wf.source}")
    lines.append("Meanwhile the classical engines (patchmatch, opencv_telea, opencv_ns) need no weights.")
    return "\n".join(lines)


def status(card: "ModelCard") -> dict[str, Any]:
    """``{"state": builtin|missing|present|verified|corrupt, "path": str|None, "message": str}``
    against the card's sha256 (``inpaintstudio.core.loading.weight_status`` also checks the lock file)."""
    if not card.needs_weights:
        return {"state": "builtin", "path": None, "message": "no weights needed"}
    path = expected_path(card)
    assert path is not None
    if not path.is_file():
        return {"state": "missing", "path": str(path), "message": missing_message(card, path)}
    known = card.weights[0].sha256 if card.weights else None
    if known:
        digest = sha256_cached(path)
        if digest != known:
            return {
                "state": "corrupt",
                "path": str(path),
                "message": f"{path} has sha256 {digest}, the card expects {known}",
            }
        return {"state": "verified", "path": str(path), "message": f"sha256 verified ({known[:12]}…)"}
    return {"state": "present", "path": str(path), "message": "found (no published sha256 to check)"}


_DIGESTS: dict[tuple[str, int, int], str] = {}


def sha256_cached(path: Path) -> str:
    """:func:`sha256_file`, remembered while the file's size and modification time stay the same."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256_file(path)
    return _DIGESTS[key]


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, "torch.Tensor"], dict[str, Any]]:
    """Read a ``.safetensors`` or ``.pth`` file: ``(tensors, non-tensor entries)``.

    Pickles are read with ``weights_only=True``; a file that is neither gives a clear error.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}
                meta = dict(handle.metadata() or {})
        except Exception as error:  # safetensors raises several types on bad headers
            raise WeightsError(f"{path.name} is not a readable safetensors file ({error})") from error
        return tensors, meta
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:
        raise WeightsError(_load_failure(path, error)) from error
    return _unwrap(obj, path)


def _load_failure(path: Path, error: Exception) -> str:
    """One line for a file ``torch.load(weights_only=True)`` refuses (never PyTorch's advice to disable it)."""
    text = str(error)
    if "TorchScript" in text:
        return f"{path.name} is a TorchScript archive, not a state dict checkpoint"
    unsafe = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if unsafe:
        return (f"{path.name} holds pickled Python objects ({unsafe.group(1)}) that are not loaded, for safety; "
                "expected a checkpoint of tensors (a state dict, or the authors' generator file)")
    return f"{path.name} is not a readable PyTorch checkpoint (nor a safetensors file)"


def _unwrap(obj: Any, path: Path) -> tuple[dict[str, "torch.Tensor"], dict[str, Any]]:
    import torch

    meta: dict[str, Any] = {}
    while isinstance(obj, Mapping) and not _looks_like_state_dict(obj):
        inner = next((key for key in _CONTAINER_KEYS if key in obj and isinstance(obj[key], Mapping)), None)
        if inner is None:
            break
        meta.update({k: v for k, v in obj.items() if k != inner and not isinstance(v, Mapping)})
        obj = obj[inner]
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{path.name}: expected a state dict of tensors, found {type(obj).__name__}")
    tensors = {key: value for key, value in obj.items() if isinstance(value, torch.Tensor)}
    meta.update({k: v for k, v in obj.items() if not isinstance(v, torch.Tensor) and not isinstance(v, Mapping)})
    if not tensors:
        raise WeightsError(f"{path.name}: expected a state dict of tensors, found none (keys: {sorted(obj)[:10]})")
    return tensors, meta


def _looks_like_state_dict(obj: Mapping[str, Any]) -> bool:
    import torch

    values = list(obj.values())
    return bool(values) and sum(isinstance(v, torch.Tensor) for v in values) >= max(1, len(values) // 2)


def clean_state_dict(state_dict: Mapping[str, "torch.Tensor"]) -> dict[str, "torch.Tensor"]:
    """Strip DDP ``module.`` and ``torch.compile`` ``_orig_mod.`` prefixes."""
    cleaned = {}
    for key, value in state_dict.items():
        for prefix in _PREFIXES:
            while key.startswith(prefix):
                key = key[len(prefix):]
        cleaned[key] = value
    return cleaned


def key_mismatches(
    state_dict: Mapping[str, "torch.Tensor"], expected: Mapping[str, tuple[int, ...]]
) -> tuple[list[str], list[str], list[str]]:
    """``(missing, unexpected, mis-shaped)`` keys of ``state_dict`` against ``expected`` key -> shape."""
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    misshaped = [
        f"{key}: checkpoint {tuple(state_dict[key].shape)} vs model {tuple(expected[key])}"
        for key in expected
        if key in state_dict and tuple(state_dict[key].shape) != tuple(expected[key])
    ]
    return missing, unexpected, misshaped


def _shapes(net: "torch.nn.Module") -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in net.state_dict().items()}


def load_strict(net: "torch.nn.Module", state_dict: Mapping[str, "torch.Tensor"], name: str = "model") -> None:
    """``load_state_dict(strict=True)`` with a readable list of missing / unexpected / mis-shaped keys."""
    missing, unexpected, misshaped = key_mismatches(state_dict, _shapes(net))
    if missing or unexpected or misshaped:
        parts = [f"weights do not fit {name}:"]
        for title, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)):
            if items:
                shown = "\n    ".join(items[:20]) + (f"\n    … and {len(items) - 20} more" if len(items) > 20 else "")
                parts.append(f"  {title} ({len(items)}):\n    {shown}")
        raise WeightsError("\n".join(parts))
    net.load_state_dict(dict(state_dict), strict=True)


def save_safetensors(
    tensors: Mapping[str, "torch.Tensor"], path: str | os.PathLike[str], metadata: Mapping[str, Any] | None = None
) -> str:
    """Write contiguous CPU tensors to ``path`` with string metadata; returns the file's sha256."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {key: value if isinstance(value, str) else json.dumps(value) for key, value in (metadata or {}).items()}
    # clone: safetensors refuses tensors that share storage (INCLG registers aliased keys)
    owned = {key: value.detach().cpu().clone().contiguous() for key, value in tensors.items()}
    save_file(owned, str(path), metadata=meta)
    _sort_header(path)
    return sha256_file(path)


def _sort_header(path: Path) -> None:
    """Rewrite a safetensors header with sorted keys, so that one conversion always gives the same bytes
    (the writer orders the metadata as a hash map does: differently on every run)."""
    with open(path, "r+b") as handle:
        size = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(size))
        ordered = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        if len(ordered) <= size:
            handle.seek(8)
            handle.write(ordered.ljust(size, b" "))


def import_checkpoint(
    card: "ModelCard",
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str] | None = None,
    *,
    remap: Callable[[dict[str, "torch.Tensor"]], tuple[dict[str, "torch.Tensor"], dict[str, Any]]],
    expected: Callable[[Mapping[str, Any]], tuple[Mapping[str, tuple[int, ...]], Any]],
    read: Callable[[str | os.PathLike[str]], tuple[dict[str, "torch.Tensor"], dict[str, Any]]] | None = None,
) -> ImportReport:
    """Convert an official checkpoint of ``card``'s model to safetensors in the weights folder.

    ``read`` is the model's own reader when its official files need more than :func:`read_checkpoint`
    (e.g. TorchScript); ``remap`` is the model's ``remap_official_state_dict`` (it names what it drops);
    ``expected(metadata)`` gives every key of the network the file stands for with its shape, and that
    network's config (from the file's metadata when it carries one). The result must hold every expected
    key with the right shape, else nothing is written. ``inpaintstudio.core.loading.import_checkpoint``
    supplies all three.
    """
    name = Path(source).name
    tensors, meta = (read or read_checkpoint)(source)
    tensors = clean_state_dict(tensors)
    report = ImportReport(model=card.name, source=name)
    iteration = meta.get("iteration")
    report.iteration = int(iteration) if isinstance(iteration, (int, float)) else None
    try:
        remapped, remap_info = remap(tensors)
    except (KeyError, ValueError, IndexError) as error:
        message = error.args[0] if error.args else type(error).__name__
        raise WeightsError(f"{name} is not a {card.title} generator checkpoint ({message})") from error
    report.dropped = sorted(remap_info.get("dropped", []))
    report.renamed = dict(remap_info.get("renamed", {}))

    shapes, network_config = expected(meta)
    missing, unexpected, misshaped = key_mismatches(remapped, shapes)
    report.missing = sorted(missing)
    unexpected = sorted(unexpected)
    if report.missing or unexpected or misshaped:
        problems = [
            f"{len(items)} {title} ({_first(items)})"
            for title, items in (("missing", report.missing), ("unexpected", unexpected), ("mis-shaped", misshaped))
            if items
        ]
        official = card.weights[0].official_filename if card.weights else None
        raise WeightsError(
            f"{name} does not fit {card.name}: " + "; ".join(problems) + f". Expected the {card.title} generator"
            + (f" as the authors publish it ({official})" if official else "") + f": {len(shapes)} tensors"
        )
    report.tensors = len(remapped)
    report.parameters = sum(int(t.numel()) for t in remapped.values())
    dest = Path(destination) if destination else weights_dir() / card.weights[0].filename
    report.sha256 = save_safetensors(
        remapped,
        dest,
        metadata={
            "model": card.name,
            "source": name,
            "iteration": "" if report.iteration is None else str(report.iteration),
            "dropped": report.dropped,
            "config": _config_json(network_config),
        },
    )
    report.destination = str(dest)
    return report


def _config_json(config: Any) -> str:
    import dataclasses

    if config is None or not dataclasses.is_dataclass(config):
        return ""
    return json.dumps(dataclasses.asdict(config), sort_keys=True, default=str)


def config_from_metadata(default: Any, metadata: Mapping[str, Any]) -> Any:
    """The network config a checkpoint was saved with (``Trainer.export`` writes it as JSON under
    ``"config"``), on top of ``default`` (the card's config); ``default`` itself when there is none.

    Lists become tuples where the default holds a tuple, and nested dataclasses are rebuilt. A field
    this version of the network does not know is refused (the weights would not fit anyway).
    """
    import dataclasses

    raw = metadata.get("config")
    if not raw or default is None or not dataclasses.is_dataclass(default):
        return default
    try:
        values = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except json.JSONDecodeError as error:
        raise WeightsError(f"the checkpoint's config metadata is not JSON ({error})") from error
    return _rebuild(default, values)


def _rebuild(default: Any, values: Mapping[str, Any]) -> Any:
    import dataclasses

    known = {f.name for f in dataclasses.fields(default)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise WeightsError(
            f"the checkpoint was saved with config fields this {type(default).__name__} does not have: {unknown}"
        )
    changes = {}
    for key, value in values.items():
        current = getattr(default, key)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            value = _rebuild(current, value)
        elif isinstance(current, tuple) and isinstance(value, list):
            value = _tuple(value)
        changes[key] = value
    try:
        return dataclasses.replace(default, **changes)
    except (TypeError, ValueError) as error:
        raise WeightsError(f"the checkpoint's config metadata does not make a network: {error}") from error


def _tuple(value: list[Any]) -> tuple[Any, ...]:
    return tuple(_tuple(item) if isinstance(item, list) else item for item in value)


def _first(items: list[str], count: int = 5) -> str:
    return ", ".join(items[:count]) + (f", … {len(items) - count} more" if len(items) > count else "")


# ------------------------------------------------------------------------------- Hugging Face Hub
HF_REPO_ENV = "INPAINTSTUDIO_HF_REPO"
HF_REVISION_ENV = "INPAINTSTUDIO_HF_REVISION"


def hub_download(card: "ModelCard", repo_id: str | None = None, revision: str | None = None) -> Path:
    """Fetch a card's weight file from a Hugging Face Hub repository at a pinned revision (for a Space).

    The repository is ``repo_id``, else ``$INPAINTSTUDIO_HF_REPO``, else the card's ``hub_repo``; the
    revision is ``revision``, else ``$INPAINTSTUDIO_HF_REVISION``, and must be given (a commit hash pins
    the exact file). ``huggingface_hub.hf_hub_download`` keeps its own cache (``HF_HOME``, offline with
    ``HF_HUB_OFFLINE=1``); the file is checked against the card's sha256 when it has one and copied to
    :func:`expected_path`, so :func:`status` and the loaders find it like an imported checkpoint.

    Raises:
        WeightsError: no repository or revision named, the download failed, or the digest differs.
    """
    if not card.weights:
        raise WeightsError(f"{card.name} needs no weights")
    wanted = card.weights[0]
    repo_id = repo_id or os.environ.get(HF_REPO_ENV) or wanted.hub_repo
    revision = revision or os.environ.get(HF_REVISION_ENV)
    if not repo_id:
        raise WeightsError(f"no Hugging Face repository named for {card.name}: set {HF_REPO_ENV}")
    if not revision:
        raise WeightsError(f"pin the revision of {repo_id}: set {HF_REVISION_ENV} to a commit hash")
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError

    try:
        cached = Path(hf_hub_download(repo_id=repo_id, filename=wanted.filename, revision=revision))
    except (HfHubHTTPError, HFValidationError, LocalEntryNotFoundError, OSError, ValueError) as error:
        raise WeightsError(f"could not fetch {wanted.filename} from {repo_id}@{revision}: {error}") from error
    digest = sha256_file(cached)
    if wanted.sha256 and digest != wanted.sha256:
        raise WeightsError(
            f"{repo_id}@{revision}/{wanted.filename} has sha256 {digest}, the card expects {wanted.sha256}"
        )
    destination = expected_path(card)
    assert destination is not None
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(f".{destination.name}.download")
    shutil.copyfile(cached, temporary)
    os.replace(temporary, destination)
    return destination
