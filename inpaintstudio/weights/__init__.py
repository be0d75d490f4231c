"""Weights: checkpoint files and tensors (``store``: the weights folder, safetensors, strict loading, imports),
where the authors publish them and the lock file (``sources``), and one fetch path for Drive, plain URLs and
the Hub (``fetch``). The store's names are importable from here."""

from inpaintstudio.weights.store import (
    HF_REPO_ENV,
    HF_REVISION_ENV,
    ImportReport,
    WeightsError,
    clean_state_dict,
    config_from_metadata,
    expected_path,
    hub_download,
    import_checkpoint,
    key_mismatches,
    load_strict,
    missing_message,
    read_checkpoint,
    save_safetensors,
    sha256_file,
    status,
    weights_dir,
)

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
