"""``inpaintstudio`` (or ``python -m inpaintstudio``): a thin command line over the pipeline and registry.

Every command is listed once, in :data:`COMMANDS` at the end of this file; commands that live beside
what they drive (``clinic`` in :mod:`inpaintstudio.face.clinic`, ``train``/``eval`` in
:mod:`inpaintstudio.cli.train_eval`) are named there by module and function. Every command returns
the exit codes of :mod:`inpaintstudio.errors` (stable, for scripts):
    0 success; 1 a check failed (parity outside tolerance, files of a batch that failed);
    2 bad usage or bad input (unreadable image, mask of another size, unknown model, refused output);
    3 weights missing.
:func:`main` runs each command inside :mod:`inpaintstudio.cli.boundary`: an expected failure is one line on
stderr and its code, ``--debug`` adds the traceback. Writing commands plan their outputs with
:mod:`inpaintstudio.io.outputs` before any work.

Listing models and reporting argument errors import no torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from inpaintstudio.core.engines import Engine
    from inpaintstudio.core.loading import ResolvedModel
    from inpaintstudio.io.outputs import OutputPlan

from inpaintstudio.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, EXIT_WEIGHTS_MISSING

__all__ = ["COMMANDS", "EXIT_OK", "EXIT_FAILED", "EXIT_BAD_INPUT", "EXIT_WEIGHTS_MISSING", "build_parser", "main"]

Adder = Callable[[argparse._SubParsersAction], None]


# --------------------------------------------------------------------------------------------- parity
def _add_parity(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("parity", help="check fixture folders against the authors' outputs")
    p.add_argument("folders", nargs="+", type=Path, metavar="folder",
                   help="folder(s) with config.json, weights/inputs/outputs.safetensors")
    p.add_argument("--model", help="model name (default: config.json's 'model', else the folder name)")
    p.set_defaults(func=_run_parity)


def _run_parity(args: argparse.Namespace) -> int:
    from inpaintstudio.core.parity import ParityInputError, run_parity

    if args.model and len(args.folders) > 1:
        raise ParityInputError("--model names the model of one folder; give one folder with it")
    failed = []
    for index, folder in enumerate(args.folders):
        report = run_parity(folder, model=args.model)  # unreadable fixtures: ParityInputError, exit 2
        print(("\n" if index else "") + report.table(), flush=True)
        if not report.ok:
            failed.append(report.model)
    if len(args.folders) > 1:
        print(f"\n{len(args.folders) - len(failed)} of {len(args.folders)} fixtures pass"
              + (f"; failing: {', '.join(failed)}" if failed else ""))
    return EXIT_FAILED if failed else EXIT_OK


# -------------------------------------------------------------------------------------------- weights
def _add_weights(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="import or check model weights")
    wsub = p.add_subparsers(dest="weights_command", required=True)
    fetch = wsub.add_parser("fetch", help="download the authors' checkpoint of a model variant, convert and verify it")
    fetch.add_argument("model", help="model or model:variant, e.g. sem_net or sem_net:places2")
    fetch.add_argument("--variant", help="which checkpoint (default: the model's first); see `models`")
    fetch.add_argument("--offline", action="store_true",
                       help="never touch the network: convert a file already in the downloads folder, or say what "
                            "to download and where to put it")
    fetch.add_argument("--force", action="store_true",
                       help="accept a download that differs from the lock file, and replace a file it does not know")
    fetch.add_argument("--file", help="the file to take from a Google Drive folder (its path as listed)")
    fetch.set_defaults(func=_run_weights_fetch)
    imp = wsub.add_parser("import", help="convert an official checkpoint to safetensors")
    imp.add_argument("--model", required=True, help="model name, e.g. sem_net")
    imp.add_argument("--variant", help="register the checkpoint as MODEL:VARIANT (recorded in weights.lock.json)")
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
    from inpaintstudio.weights import sources as weight_sources

    def variant_fields(name: str) -> dict:
        model, variant = weight_sources.parse_name(name)
        source = registry.find_variant(model, variant) if variant else None
        if source is None:
            return {}
        return {"variant": variant, "dataset": source.dataset, "for": source.purpose,
                "fetch": f"python -m inpaintstudio weights fetch {model} --variant {variant}"
                if source.fetchable else source.instructions}

    manifest = [
        {
            "model": card.name,
            **variant_fields(card.name),
            "file": wf.filename,
            "sha256": wf.sha256,
            "official_filename": wf.official_filename,
            "source": wf.source,
            "hub_repo": wf.hub_repo,
            "licence": card.licence,
            "cpu_seconds": card.cpu_seconds,
        }
        for card in registry.list_cards(task=None)
        for wf in card.weights
        if ":" in card.name or not registry.variants_of(card.name)  # a published model: its variants
    ]
    print(json.dumps(manifest, indent=1, ensure_ascii=False))
    return EXIT_OK


def _run_weights_fetch(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from inpaintstudio.weights import fetch

    bar: dict[str, tqdm] = {}

    def progress(done: int, total: int | None) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, unit="B", unit_scale=True, file=sys.stderr, leave=False)
        bar["bar"].update(done - bar["bar"].n)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:  # a failed fetch: one line and its exit code (see boundary.py)
        result = fetch.fetch(args.model, args.variant, offline=args.offline or None, force=args.force,
                             file=args.file, progress=progress, log=log)
    finally:
        if "bar" in bar:
            bar["bar"].close()
    print(result.summary())
    return EXIT_OK


def _run_weights_import(args: argparse.Namespace) -> int:
    from inpaintstudio.core.loading import import_checkpoint
    from inpaintstudio.io.outputs import OutputPlan

    if args.variant:
        from inpaintstudio import registry
        from inpaintstudio.weights import fetch

        registry.get_card(args.model)  # unknown model: exit 2
        destination, report = fetch.import_variant(args.model, args.variant, args.file)
        print(report.summary())
        print(f"registered as {args.model}:{args.variant} (sha256 recorded in {fetch.LOCK_NAME})")
        return EXIT_OK
    if args.output is not None:  # re-importing over an earlier import is normal; over the source is not
        plan = OutputPlan(overwrite=True)
        plan.protect([args.file])
        plan.claim(args.output, source=args.file)
    # unknown model, unreadable or unfitting checkpoint, unwritable destination: exit 2 (see boundary.py)
    report = import_checkpoint(args.model, args.file, args.output)
    print(report.summary())
    return EXIT_OK


# --------------------------------------------------------------------------------------------- models
def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list models and their weight status")
    p.set_defaults(func=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    from inpaintstudio import registry
    from inpaintstudio.core import loading

    rows = []
    for card in [*registry.list_cards(), *registry.list_cards(task="select")]:  # selection models last
        base, variant = card.name.partition(":")[0], card.name.partition(":")[2]
        if variant:  # beneath its model, indented
            state = loading.weight_status(card)
            rows.append((f"  :{variant}", "", state["state"], "", state["path"] or "-"))
            continue
        resolved = loading.resolve_model(base)
        state = resolved.status["state"]
        if resolved.card.name != card.name:
            state = f"{state} (runs {resolved.card.name})"
        licence = card.licence if len(card.licence) <= 40 else card.licence[:39] + "…"
        kind = card.kind if card.task == "inpaint" else card.task
        rows.append((card.name, kind, state, licence or "-", resolved.status["path"] or "-"))
    header = ("name", "kind", "weights", "licence", "file")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    return EXIT_OK


# -------------------------------------------------------------------------------------------- inpaint
def _add_strategy_options(p: argparse.ArgumentParser) -> None:
    from inpaintstudio.core.pipeline import STRATEGIES

    p.add_argument("--strategy", default="auto", choices=STRATEGIES, help="how to cover large images (default auto)")
    p.add_argument("--margin", type=int, help="context margin around each hole, pixels (0 or more)")
    p.add_argument("--tile-size", type=int, help="tile side for --strategy tile (at least the model's minimum)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16"),
                   help="fp32 (default) or bf16 autocast of the deep networks (for CUDA; output within about 2e-2 "
                        "of fp32)")
    p.add_argument("--resize-mask", action="store_true", help="rescale a mask of another size (nearest)")
    p.add_argument("--max-pixels", type=int, help="refuse images larger than this many pixels (default 60 MP)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files (never an input)")
    p.add_argument("--weights", type=Path,
                   help="checkpoint for the deep model named with -m (e.g. one from `train`), instead of the "
                        "weights folder's")


def _options(args: argparse.Namespace) -> dict:
    return {"strategy": args.strategy, "margin": args.margin, "tile_size": args.tile_size, "device": args.device,
            "precision": args.precision}


def _resolve(names: Sequence[str]) -> list[ResolvedModel]:
    """Each model name resolved once (a bare name runs its installed variant); unknown names: exit 2."""
    from inpaintstudio.core import loading

    return [loading.resolve_model(name) for name in dict.fromkeys(names)]


def _check_request(args: argparse.Namespace, models: Sequence[ResolvedModel]) -> None:
    """Everything about the request that can be refused before any image is read or any model runs."""
    from inpaintstudio import io
    from inpaintstudio.core import pipeline
    from inpaintstudio.core.engines import select_device

    io.max_pixels_limit(args.max_pixels)
    if args.device not in (None, "", "auto"):  # "auto" always works; naming a device needs torch to check it
        select_device(args.device)
    for model in models:
        pipeline.check_options(_options(args), model.card)


def _engines(args: argparse.Namespace, models: Sequence[ResolvedModel]) -> dict[str, Engine]:
    """``{requested name: ready engine}``, every engine loaded before any work, so that a missing checkpoint stops
    the run before it starts. ``--weights FILE`` builds the one deep model named from that file."""
    from inpaintstudio import io, registry
    from inpaintstudio.core import loading, pipeline

    engines: dict[str, Engine] = {}
    if getattr(args, "weights", None) is not None:
        deep = [model for model in models if model.card.needs_weights]
        if len(deep) != 1:
            raise io.InputError(f"--weights needs exactly one deep model among the models named; got {len(deep)}")
        if not args.weights.is_file():
            raise FileNotFoundError(f"weights file not found: {io.printable_path(args.weights)}")
        card = registry.get_card(deep[0].requested).with_weights_path(args.weights)
        engines[deep[0].requested] = loading.make_engine(card, device=args.device, precision=args.precision)
    missing: list[registry.WeightsMissingError] = []
    for model in models:
        if model.requested in engines:
            continue
        try:
            engines[model.requested] = pipeline.get_engine(model.card, args.device, args.precision)
        except registry.WeightsMissingError as error:
            missing.append(error)
        else:
            if model.note:
                _warn([model.note], prefix="note")
    if len(missing) == 1:
        raise missing[0]
    if missing:
        names = ", ".join(error.card.name for error in missing)
        raise registry.WeightsMissingError(
            f"{names} need weights that are not on this machine:\n\n" + "\n\n".join(str(e) for e in missing),
            card=missing[0].card, expected=missing[0].expected,
        )
    return engines


def _add_inpaint(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inpaint", help="fill the masked part of an image (or a folder of images)")
    p.add_argument("image", type=Path, help="image file, or a folder of images")
    p.add_argument("mask", type=Path, help="mask file (white or opaque = hole), or a folder matched by file stem")
    p.add_argument("-m", "--model", default=None, help="model name (default: patchmatch); see `models`")
    p.add_argument("-o", "--output", required=True,
                   help="output file (PNG unless the suffix asks for JPEG/WebP) or folder (a trailing / or an "
                        "existing folder; created when missing)")
    _add_strategy_options(p)
    p.set_defaults(func=_run_inpaint)


def _images_in(folder: Path) -> list[Path]:
    from inpaintstudio import io

    return sorted(p for p in folder.iterdir() if p.suffix.lower() in io.IMAGE_SUFFIXES and not p.is_dir())


def _mask_for(image: Path, mask: Path) -> Path | None:
    from inpaintstudio import io

    if not mask.is_dir():
        return mask
    candidates = sorted(m for m in mask.iterdir() if m.stem == image.stem and m.suffix.lower() in io.IMAGE_SUFFIXES)
    return candidates[0] if candidates else None


def _plan_pairs(args: argparse.Namespace, plan: OutputPlan) -> list[tuple[Path, Path | None, Path]]:
    """(image, mask or None when the mask folder has none, output) triples, every output claimed."""
    from inpaintstudio import io
    from inpaintstudio.io.outputs import output_target

    image, mask = args.image, args.mask
    if not image.is_dir():
        target = output_target(args.output)
        out = target.file_for(image.stem)
        plan.protect([image, mask])
        io.write_format(out)
        plan.claim(out, source=image)
        return [(image, mask, out)]
    target = output_target(args.output, folder_required=True)
    images = _images_in(image)
    if not images:
        raise io.InputError(f"no images ({', '.join(io.IMAGE_SUFFIXES)}) in folder {io.printable_path(image)}")
    masks = _images_in(mask) if mask.is_dir() else [mask]
    plan.protect([*images, *masks])
    triples = []
    for path in images:
        out = target.file_for(path.stem)
        plan.claim(out, source=path)
        triples.append((path, _mask_for(path, mask), out))
    return triples


def _load_pair(image_path: Path, mask_path: Path, args: argparse.Namespace, *, batch: bool):
    """The image, its hole mask and warnings; a swapped pair is refused in a batch, flagged otherwise."""
    from inpaintstudio import io

    loaded = io.load_image(image_path, max_pixels=args.max_pixels)
    mask_image = io.load_image(mask_path, max_pixels=args.max_pixels)
    warnings = []
    if io.looks_like_mask(loaded.rgb) and io.looks_like_photo(mask_image.rgb):
        message = (f"the image {io.printable_path(image_path)} looks like a mask and the mask "
                   f"{io.printable_path(mask_path)} like a photo: were they swapped? (the image comes first)")
        if batch:
            raise io.InputError(message + "; skipped")
        warnings.append(message)
    mask = io.mask_from_loaded(mask_image, size=loaded.size, resize=args.resize_mask)
    warnings.extend(f"mask: {note}" for note in mask_image.notes)
    return loaded, mask, warnings


def _warn(lines: Sequence[str], prefix: str = "warning") -> None:
    for line in lines:
        print(f"{prefix}: {line}", file=sys.stderr)


def _run_inpaint(args: argparse.Namespace) -> int:
    from inpaintstudio import io, registry
    from inpaintstudio.cli import boundary
    from inpaintstudio.cli.processes import process_group
    from inpaintstudio.core import pipeline
    from inpaintstudio.io.outputs import OutputPlan

    model = args.model if args.model is not None else registry.DEFAULT_MODEL
    group = process_group()  # one process, or one of torchrun's: each takes every n-th pair
    args.device = group.device(args.device)
    resolved = _resolve([model])
    _check_request(args, resolved)
    plan = OutputPlan(overwrite=args.overwrite)
    triples = _plan_pairs(args, plan)
    engine = _engines(args, resolved)[model]
    batch = args.image.is_dir()
    failures: list[tuple[Path, str]] = []
    mine = group.share(triples)
    group.announce(len(mine), "images")
    for image_path, mask_path, out_path in mine:
        try:
            if mask_path is None:
                raise io.ImageReadError(f"no mask named {image_path.stem}.* in {io.printable_path(args.mask)}")
            loaded, mask, warnings = _load_pair(image_path, mask_path, args, batch=batch)
            _warn(warnings)
            result = pipeline.inpaint(loaded.rgb, mask, engine.card, _options(args), engine=engine)
            saved = plan.write_image(out_path, result.image, like=loaded, metadata=_provenance(result, image_path))
        except Exception as error:  # noqa: BLE001 - a batch goes on past a bad file; bugs still propagate
            if not batch or boundary.exit_code_of(error) != EXIT_BAD_INPUT:
                raise
            failures.append((image_path, boundary.message_of(error)))
            boundary.report_failure(error, prefix=f"skipped {io.printable_path(image_path.name)}")
            continue
        _warn([*result.notices, *loaded.notes], prefix="note")
        _warn(saved.notes)
        print(f"{io.printable_path(image_path)[1:-1]} -> {io.printable_path(saved.path)[1:-1]}  ({result.model}, "
              f"{len(result.regions)} region(s), {result.timings.get('total', 0.0):.2f} s, {result.device})")
    failures = [failure for found in group.share_all(failures) for failure in found]
    group.close()
    if failures:
        if group.leader:
            print(f"error: {len(failures)} of {len(triples)} images failed:", file=sys.stderr)
            for path, message in failures:
                print(f"  {io.printable_path(path.name)[1:-1]}: {message}", file=sys.stderr)
        return EXIT_FAILED
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
def _add_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="run several models on one mask and write a side-by-side grid")
    p.add_argument("image", type=Path)
    p.add_argument("mask", type=Path)
    p.add_argument("-m", "--model", action="append", required=True, help="model name; repeat for each model")
    p.add_argument("-o", "--output", required=True, help="grid image (PNG unless the suffix asks for JPEG/WebP)")
    _add_strategy_options(p)
    p.set_defaults(func=_run_compare)


def _run_compare(args: argparse.Namespace) -> int:
    from inpaintstudio import io
    from inpaintstudio.core import pipeline
    from inpaintstudio.core.grid import labelled_grid, mask_preview
    from inpaintstudio.io.outputs import OutputPlan, output_target

    resolved = _resolve(args.model)
    _check_request(args, resolved)
    plan = OutputPlan(overwrite=args.overwrite)
    plan.protect([args.image, args.mask])
    out = output_target(args.output).file_for(f"{args.image.stem}_compare")
    io.write_format(out)
    plan.claim(out, source=args.image)
    engines = _engines(args, resolved)
    loaded, mask, warnings = _load_pair(args.image, args.mask, args, batch=False)
    _warn(warnings)
    panels = [("input", loaded.rgb), ("mask", mask_preview(loaded.rgb, mask))]
    for name, engine in engines.items():
        result = pipeline.inpaint(loaded.rgb, mask, engine.card, _options(args), engine=engine)
        panels.append((f"{name} {result.timings.get('total', 0.0):.2f}s", result.image))
        print(f"{name}: {result.timings.get('total', 0.0):.2f} s")
    saved = plan.write_image(out, labelled_grid(panels))
    _warn(saved.notes)
    print(f"wrote {io.printable_path(saved.path)[1:-1]}")
    return EXIT_OK


# ------------------------------------------------------------------------------------- command table
def _elsewhere(module: str, function: str) -> Adder:
    """The adder ``function`` of ``module``, imported when the parser is built."""

    def add(sub: argparse._SubParsersAction) -> None:
        getattr(importlib.import_module(module), function)(sub)

    return add


#: Every command, in the order ``--help`` lists them: name -> the function that adds its parser.
COMMANDS: dict[str, Adder] = {
    "parity": _add_parity,
    "weights": _add_weights,
    "models": _add_models,
    "inpaint": _add_inpaint,
    "compare": _add_compare,
    "clinic": _elsewhere("inpaintstudio.face.clinic", "add_clinic_command"),
    "train": _elsewhere("inpaintstudio.cli.train_eval", "add_train_command"),
    "eval": _elsewhere("inpaintstudio.cli.train_eval", "add_eval_command"),
    "select": _elsewhere("inpaintstudio.selection.command", "add_select_command"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inpaintstudio", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for adder in COMMANDS.values():
        adder(sub)
    return parser


def _add_debug_flag(parser: argparse.ArgumentParser, top: bool) -> None:
    parser.add_argument("--debug", action="store_true", default=False if top else argparse.SUPPRESS,
                        help="show the Python traceback of a failure")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_debug_flag(child, top=False)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code (usage errors: 2, after argparse's message)."""
    from inpaintstudio.cli import boundary

    parser = build_parser()
    _add_debug_flag(parser, top=True)
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # argparse has printed the usage and the problem
        return stop.code if isinstance(stop.code, int) else EXIT_BAD_INPUT
    return boundary.run_command(args.func, args, debug=boundary.debug_requested(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
