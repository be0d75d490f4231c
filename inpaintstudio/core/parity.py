"""Run a parity fixture folder: build from its config, load its weights strictly, compare outputs.

A folder holds ``config.json``, ``weights.safetensors``, ``inputs.safetensors`` and
``outputs.safetensors``; the model is named by ``config.json["model"]`` or else the folder name.
Every output listed in ``tolerance.atol`` must be produced and lie within its tolerance; outputs in
``optional_tolerance.atol`` are checked when the model produces them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from inpaintstudio.errors import BadInputError

__all__ = ["ParityInputError", "ParityRow", "ParityReport", "run_parity", "read_fixture_config"]

FIXTURE_FILES = ("weights.safetensors", "inputs.safetensors", "outputs.safetensors")


class ParityInputError(BadInputError, ValueError):
    """A fixture folder that cannot be run: missing files, a config.json that is not what it should be."""


@dataclass
class ParityRow:
    name: str
    max_abs_error: float | None
    atol: float
    required: bool

    @property
    def ok(self) -> bool:
        if self.max_abs_error is None:
            return not self.required
        return self.max_abs_error <= self.atol


@dataclass
class ParityReport:
    model: str
    folder: str
    rows: list[ParityRow] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(row.ok for row in self.rows)

    def table(self) -> str:
        lines = [f"parity: {self.model} ({self.folder})", f"{'output':<36} {'max abs err':>12} {'atol':>10}  result"]
        for row in self.rows:
            err = "not produced" if row.max_abs_error is None else f"{row.max_abs_error:.3e}"
            verdict = "ok" if row.ok else "FAIL"
            if row.max_abs_error is None and not row.required:
                verdict = "skipped (optional)"
            lines.append(f"{row.name:<36} {err:>12} {row.atol:>10.1e}  {verdict}")
        lines.append("PASS" if self.ok else "FAIL")
        return "\n".join(lines)


def run_parity(folder: str | Path, model: str | None = None) -> ParityReport:
    import torch
    from safetensors.torch import load_file

    from inpaintstudio import weights
    from inpaintstudio.core import loading

    folder = Path(folder)
    config = read_fixture_config(folder)
    name = model or config.get("model") or folder.name
    if not isinstance(name, str):
        raise ParityInputError(f"{folder / 'config.json'}: 'model' must be a model name, got {name!r}")
    module = loading.model_module(name)
    if not hasattr(module, "config_from_fixture"):
        raise ParityInputError(f"{name} has no network to check against a fixture")
    try:
        net_config = module.config_from_fixture(config)
    except (KeyError, TypeError, ValueError) as error:
        raise ParityInputError(f"{folder / 'config.json'} does not describe a {name} network: {error}") from None
    missing = [file for file in FIXTURE_FILES if not (folder / file).is_file()]
    if missing:
        raise ParityInputError(f"{folder} lacks {', '.join(missing)}")
    net = module.build(net_config)
    tensors, _ = weights.read_checkpoint(folder / "weights.safetensors")
    weights.load_strict(net, tensors, name=f"{name} ({folder})")
    net.eval()
    inputs = load_file(str(folder / "inputs.safetensors"))
    expected = load_file(str(folder / "outputs.safetensors"))
    with torch.no_grad():
        produced = module.parity_forward(net, inputs)
    report = ParityReport(model=name, folder=str(folder))
    required = config.get("tolerance", {}).get("atol", {})
    optional = config.get("optional_tolerance", {}).get("atol", {})
    for table, is_required in ((required, True), (optional, False)):
        for out_name, atol in table.items():
            if out_name not in produced or out_name not in expected:
                report.rows.append(ParityRow(out_name, None, float(atol), is_required))
                continue
            got = produced[out_name].detach().to(torch.float64).cpu()
            want = expected[out_name].to(torch.float64)
            if got.shape != want.shape:
                raise ValueError(f"{out_name}: produced shape {tuple(got.shape)}, fixture {tuple(want.shape)}")
            err = float((got - want).abs().max()) if got.numel() else 0.0
            report.rows.append(ParityRow(out_name, err, float(atol), is_required))
    return report


def read_fixture_config(folder: Path) -> dict:
    """``config.json`` of a fixture folder as a dict with a ``config`` object, or :class:`ParityInputError`."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise ParityInputError(f"{folder} has no config.json")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ParityInputError(f"{path} is not valid JSON: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ParityInputError(f"{path} cannot be read: {error}") from None
    if not isinstance(config, dict):
        raise ParityInputError(f"{path} must hold a JSON object, not {type(config).__name__}")
    if not isinstance(config.get("config"), dict):
        raise ParityInputError(f"{path} has no 'config' object (the network's constructor arguments)")
    return config
