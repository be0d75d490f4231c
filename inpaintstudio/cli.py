"""``python -m inpaintstudio``: a thin command line over ``pipeline`` and ``registry``.

Exit codes (stable, for scripts):
    0 success; 1 a check failed (parity outside tolerance, a model that could not run);
    2 bad usage or bad input (unreadable image, mask of another size, unknown model);
    3 weights missing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

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
    man = wsub.add_parser("manifest", help="print the manifest of known checkpoints (JSON)")
    man.set_defaults(func=_run_weights_manifest)


def _run_weights_manifest(args: argparse.Namespace) -> int:
    import json

    from inpaintstudio import registry

    manifest = [
        {
            "model": card.name,
            "file": wf.filename,
            "sha256": wf.sha256,
            "official_filename": wf.official_filename,
            "source": wf.source,
            "hub_repo": wf.hub_repo,
            "licence": card.licence,
        }
        for card in registry.list_cards()
        for wf in card.weights
    ]
    print(json.dumps(manifest, indent=1, ensure_ascii=False))
    return EXIT_OK


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
        return EXIT_BAD_INPUT
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
        licence = card.licence if len(card.licence) <= 40 else card.licence[:39] + "…"
        rows.append((card.name, card.kind, state["state"], licence or "-", where))
    header = ("name", "kind", "weights", "licence", "file")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    return EXIT_OK


# -------------------------------------------------------------------------------------------- inpaint
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def _add_strategy_options(p: argparse.ArgumentParser) -> None:
    from inpaintstudio.pipeline import STRATEGIES

    p.add_argument("--strategy", default="auto", choices=STRATEGIES, help="how to cover large images (default auto)")
    p.add_argument("--margin", type=int, help="context margin around each hole, pixels")
    p.add_argument("--tile-size", type=int, help="tile side for --strategy tile")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--resize-mask", action="store_true", help="rescale a mask of another size (nearest)")
    p.add_argument("--max-pixels", type=int, help="refuse images larger than this many pixels (default 60 MP)")


def _options(args: argparse.Namespace) -> dict:
    return {"strategy": args.strategy, "margin": args.margin, "tile_size": args.tile_size, "device": args.device}


@command("inpaint")
def _add_inpaint(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inpaint", help="fill the masked part of an image (or a folder of images)")
    p.add_argument("image", type=Path, help="image file, or a folder of images")
    p.add_argument("mask", type=Path, help="mask file (white or opaque = hole), or a folder matched by file stem")
    p.add_argument("-m", "--model", default=None, help="model name (default: patchmatch); see `models`")
    p.add_argument("-o", "--output", type=Path, required=True, help="output file (PNG by default) or folder")
    _add_strategy_options(p)
    p.set_defaults(func=_run_inpaint)


def _pairs(image: Path, mask: Path, output: Path) -> list[tuple[Path, Path, Path]]:
    """(image, mask, output) triples; masks matched by stem when ``mask`` is a folder."""
    if not image.is_dir():
        target = output / f"{image.stem}.png" if output.is_dir() else output
        return [(image, mask, target)]
    images = sorted(p for p in image.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {image}")
    pairs = []
    for path in images:
        if mask.is_dir():
            candidates = [m for m in mask.iterdir() if m.stem == path.stem and m.suffix.lower() in IMAGE_SUFFIXES]
            if not candidates:
                raise FileNotFoundError(f"no mask named {path.stem}.* in {mask} for image {path.name}")
            mask_path = candidates[0]
        else:
            mask_path = mask
        pairs.append((path, mask_path, output / f"{path.stem}.png"))
    return pairs


def _run_inpaint(args: argparse.Namespace) -> int:
    from inpaintstudio import io, pipeline, registry

    model = args.model or registry.DEFAULT_MODEL
    try:
        registry.get_card(model)
        if args.image.is_dir():
            args.output.mkdir(parents=True, exist_ok=True)
        pairs = _pairs(args.image, args.mask, args.output)
    except (registry.UnknownModelError, FileNotFoundError) as error:
        _error(str(error))
        return EXIT_BAD_INPUT
    for image_path, mask_path, out_path in pairs:
        try:
            loaded = io.load_image(image_path, max_pixels=args.max_pixels)
            mask = io.load_mask(mask_path, size=loaded.size, resize=args.resize_mask, max_pixels=args.max_pixels)
            result = pipeline.inpaint(loaded.rgb, mask, model, _options(args))
            saved = io.save_like(out_path, result.image, loaded, metadata=_provenance(result, image_path))
        except io.InputError as error:
            _error(str(error))
            return EXIT_BAD_INPUT
        except registry.WeightsMissingError as error:
            _error(str(error))
            return EXIT_WEIGHTS_MISSING
        except ValueError as error:
            _error(str(error))
            return EXIT_BAD_INPUT
        for notice in [*result.notices, *loaded.notes, *saved.notes]:
            print(f"note: {notice}", file=sys.stderr)
        print(f"{image_path} -> {saved.path}  ({model}, {len(result.regions)} region(s), "
              f"{result.timings.get('total', 0.0):.2f} s, {result.device})")
    return EXIT_OK


def _provenance(result, source: Path) -> dict[str, str]:
    from inpaintstudio import __version__

    return {
        "Software": f"InpaintStudio {__version__}",
        "inpaintstudio:model": result.model,
        "inpaintstudio:strategy": result.strategy,
        "inpaintstudio:source": source.name,
    }


# -------------------------------------------------------------------------------------------- compare
@command("compare")
def _add_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="run several models on one mask and write a side-by-side grid")
    p.add_argument("image", type=Path)
    p.add_argument("mask", type=Path)
    p.add_argument("-m", "--model", action="append", required=True, help="model name; repeat for each model")
    p.add_argument("-o", "--output", type=Path, required=True, help="grid PNG")
    _add_strategy_options(p)
    p.set_defaults(func=_run_compare)


def _run_compare(args: argparse.Namespace) -> int:
    from inpaintstudio import io, pipeline, registry
    from inpaintstudio.grid import labelled_grid, mask_preview

    try:
        for name in args.model:
            registry.get_card(name)
        loaded = io.load_image(args.image, max_pixels=args.max_pixels)
        mask = io.load_mask(args.mask, size=loaded.size, resize=args.resize_mask, max_pixels=args.max_pixels)
    except (registry.UnknownModelError, io.InputError) as error:
        _error(str(error))
        return EXIT_BAD_INPUT
    panels = [("input", loaded.rgb), ("mask", mask_preview(loaded.rgb, mask))]
    status = EXIT_OK
    for name in args.model:
        try:
            result = pipeline.inpaint(loaded.rgb, mask, name, _options(args))
        except registry.WeightsMissingError as error:
            _error(str(error))
            status = EXIT_WEIGHTS_MISSING
            continue
        panels.append((f"{name} {result.timings.get('total', 0.0):.2f}s", result.image))
        print(f"{name}: {result.timings.get('total', 0.0):.2f} s")
    saved = io.save_image(args.output, labelled_grid(panels), source_path=args.image)
    print(f"wrote {saved.path}")
    return status


# Commands that live beside the engine they drive: the clinic workflow, training and evaluation.
_COMMAND_MODULES = ("inpaintstudio.clinic", "inpaintstudio.training.commands")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="python -m inpaintstudio", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for adder in _COMMANDS.values():
        adder(sub)
    for module_name in _COMMAND_MODULES:
        importlib.import_module(module_name).add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
