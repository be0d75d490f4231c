"""``python -m inpaintstudio``: a thin command line over ``pipeline`` and ``registry``.

Exit codes (stable, for scripts):
    0 success; 1 a check failed (parity outside tolerance, a model that could not run);
    2 bad usage or bad input (unreadable image, mask of another size, unknown model);
    3 weights missing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_WEIGHTS_MISSING = 3

_COMMANDS: dict[str, Callable[[argparse._SubParsersAction], None]] = {}


def command(name: str) -> Callable[[Callable[[argparse._SubParsersAction], None]], Callable]:
    """Register a function that adds subcommand ``name`` to the parser."""

    def decorate(adder: Callable[[argparse._SubParsersAction], None]) -> Callable:
        _COMMANDS[name] = adder
        return adder

    return decorate


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


# --------------------------------------------------------------------------------------------- parity
@command("parity")
def _add_parity(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("parity", help="check a fixture folder against the authors' outputs")
    p.add_argument("folder", type=Path, help="folder with config.json, weights/inputs/outputs.safetensors")
    p.add_argument("--model", help="model name (default: config.json's 'model', else the folder name)")
    p.set_defaults(func=_run_parity)


def _run_parity(args: argparse.Namespace) -> int:
    from inpaintstudio.parity import run_parity

    if not (args.folder / "config.json").is_file():
        _error(f"{args.folder} has no config.json")
        return EXIT_BAD_INPUT
    report = run_parity(args.folder, model=args.model)
    print(report.table())
    return EXIT_OK if report.ok else EXIT_FAILED


# -------------------------------------------------------------------------------------------- weights
@command("weights")
def _add_weights(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="import or check model weights")
    wsub = p.add_subparsers(dest="weights_command", required=True)
    imp = wsub.add_parser("import", help="convert an official checkpoint to safetensors")
    imp.add_argument("--model", required=True, help="model name, e.g. sem_net")
    imp.add_argument("file", type=Path, help="official checkpoint (.pth) or .safetensors")
    imp.add_argument("-o", "--output", type=Path, help="destination (default: the weights folder)")
    imp.set_defaults(func=_run_weights_import)
    st = wsub.add_parser("status", help="weight status of every model")
    st.set_defaults(func=_run_models)


def _run_weights_import(args: argparse.Namespace) -> int:
    from inpaintstudio import registry
    from inpaintstudio.weights import WeightsError, import_checkpoint

    try:
        report = import_checkpoint(args.model, args.file, args.output)
    except registry.UnknownModelError as error:
        _error(str(error))
        return EXIT_BAD_INPUT
    except WeightsError as error:
        _error(str(error))
        return EXIT_FAILED
    print(report.summary())
    return EXIT_OK


# --------------------------------------------------------------------------------------------- models
@command("models")
def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list models and their weight status")
    p.set_defaults(func=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    from inpaintstudio import registry

    rows = []
    for card in registry.list_cards():
        state = registry.weight_status(card)
        where = state["path"] or "-"
        rows.append((card.name, card.kind, state["state"], card.licence or "-", where))
    widths = [max(len(str(row[i])) for row in rows + [("name", "kind", "weights", "licence", "file")]) for i in range(5)]
    header = ("name", "kind", "weights", "licence", "file")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m inpaintstudio", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for adder in _COMMANDS.values():
        adder(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
