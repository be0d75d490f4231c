"""``train`` and ``eval`` subcommands, listed in ``cli.COMMANDS`` (:func:`add_train_command`,
:func:`add_eval_command`).

    python -m inpaintstudio train --model hint --config runs/hint.yaml [--resume CKPT] [--iterations N]
    python -m inpaintstudio eval --model hint --images DIR (--masks DIR | --mask-ratio 20-40) \\
        [--weights FILE] [--json FILE] [--csv FILE] [--save DIR] [--limit N]

Multi-process training: ``torchrun --nproc_per_node N -m inpaintstudio train …`` (gloo on CPU, NCCL on CUDA).
Exit codes are :mod:`inpaintstudio.errors`'s: 0 ok, 1 failed, 2 bad input, 3 weights missing.

The thesis: S. Chen, PhD thesis, Durham University, 2025 (INCLG, HINT, M×T and SEM-Net are its chapters 3–5).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from inpaintstudio.errors import EXIT_BAD_INPUT, EXIT_OK, EXIT_WEIGHTS_MISSING

__all__ = ["add_commands", "add_train_command", "add_eval_command", "run_train", "run_eval"]


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``train`` and ``eval`` to a subparsers object."""
    add_train_command(sub)
    add_eval_command(sub)


def add_train_command(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train", help="train a model from a YAML/JSON config")
    t.add_argument("--model", help="model name (overrides the config's 'model')")
    t.add_argument("--config", type=Path, required=True, help="YAML or JSON training config")
    t.add_argument("--resume", type=Path, help="checkpoint to resume from (default: OUTPUT/checkpoints/last.pt "
                                                "when it exists and --fresh is not given)")
    t.add_argument("--fresh", action="store_true", help="ignore an existing last.pt")
    t.add_argument("--iterations", type=int, help="override the config's iterations")
    t.add_argument("--output", type=Path, help="override the config's output_dir")
    t.add_argument("--device", help="auto, cpu, cuda …")
    t.set_defaults(func=run_train)


def add_eval_command(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("eval", help="score a model on images with the thesis protocol (per mask bin)")
    e.add_argument("--model", required=True, help="model name")
    e.add_argument("--images", type=Path, required=True, help="folder of test images (sorted) or a file list")
    source = e.add_mutually_exclusive_group(required=True)
    source.add_argument("--masks", type=Path, help="folder of mask files (white = hole), binned by hole ratio")
    source.add_argument("--mask-ratio", help="generated irregular masks of these bins: 0-20, 20-40, 40-60, all "
                                             "(comma-separated)")
    e.add_argument("--bins", default="0-20,20-40,40-60", help="bins scored with --masks (default all three)")
    e.add_argument("--weights", type=Path, help="generator weights (default: the registry's weights folder)")
    e.add_argument("--json", type=Path, help="write per-bin means as JSON")
    e.add_argument("--csv", type=Path, help="write per-image scores as CSV")
    e.add_argument("--save", type=Path, help="write the composites (and ground truths) as PNG at the side "
                   "they were scored at")
    e.add_argument("--limit", type=int, help="only the first N images")
    e.add_argument("--size", type=int, help="side the images are scored at (default: a model's fixed input size; "
                   "otherwise the images' own size when they all share one, else the papers' 256)")
    e.add_argument("--threshold", type=int, default=127, help="mask binarisation threshold (default 127)")
    e.add_argument("--no-lpips", action="store_true")
    e.add_argument("--no-fid", action="store_true")
    e.add_argument("--device", help="auto, cpu, cuda …")
    e.add_argument("--overwrite", action="store_true", help="replace existing --json/--csv/--save files")
    e.set_defaults(func=run_eval)


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def _init_distributed() -> bool:
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return True


def run_train(args: argparse.Namespace) -> int:
    import yaml

    from inpaintstudio.registry import UnknownModelError
    from inpaintstudio.training.backbones import BackboneMissingError
    from inpaintstudio.training.trainer import TrainConfig, Trainer, load_config_file

    try:
        data = load_config_file(args.config)
    except (OSError, ValueError, yaml.YAMLError) as error:
        reason = " ".join(str(error).split())  # YAML errors span several lines
        _error(f"cannot read the config {args.config}: {reason}")
        return EXIT_BAD_INPUT
    if args.model:
        data["model"] = args.model
    if args.iterations is not None:
        data["iterations"] = args.iterations
    if args.output is not None:
        data["output_dir"] = str(args.output)
    if args.device:
        data["device"] = args.device
    if isinstance(data.get("model"), str):
        from inpaintstudio import registry

        card = registry.get_card(data["model"])  # unknown: exit 2 through the boundary
        if not card.needs_weights:
            _error(f"{card.name} is a classical engine: it has no network to train")
            return EXIT_BAD_INPUT
    distributed = _init_distributed()
    try:
        cfg = TrainConfig.from_dict(data)
        trainer = Trainer(cfg)
    except (ValueError, TypeError, FileNotFoundError, UnknownModelError) as error:
        _error(str(error))
        return EXIT_WEIGHTS_MISSING if isinstance(error, BackboneMissingError) else EXIT_BAD_INPUT
    resume = args.resume
    last = Path(cfg.output_dir) / "checkpoints" / "last.pt"
    if resume is None and not args.fresh and last.is_file():
        resume = last
    if resume is not None:
        import pickle

        try:
            trainer.load_checkpoint(resume)
        except FileNotFoundError:
            _error(f"cannot resume: {resume} does not exist")
            return EXIT_BAD_INPUT
        except (pickle.UnpicklingError, EOFError, RuntimeError, KeyError, TypeError, ValueError) as error:
            reason = " ".join(str(error).split())[:300]
            _error(f"cannot resume from {resume}: not a training checkpoint of {cfg.model} ({reason})")
            return EXIT_BAD_INPUT
        if trainer.rank == 0:
            print(f"resumed from {resume} at iteration {trainer.iteration}")
    logs = trainer.train()
    trainer.save_checkpoint()
    path = trainer.export()
    if trainer.rank == 0:
        print(f"iteration {trainer.iteration}: " + ", ".join(f"{k} {v:.4g}" for k, v in logs.items()))
        print(f"generator written to {path}")
    if distributed:
        import torch.distributed as dist

        dist.destroy_process_group()
    return EXIT_OK


def _make_engine(args: argparse.Namespace) -> Any:
    from inpaintstudio import registry
    from inpaintstudio.core import loading

    if args.weights is None:
        resolved = loading.resolve_model(args.model)
        if resolved.note:
            print(f"note: {resolved.note}", file=sys.stderr)
        return loading.load(resolved.card, device=args.device)
    card = registry.get_card(args.model)
    if not args.weights.is_file():
        raise FileNotFoundError(f"weights file not found: {args.weights}")
    if not card.needs_weights:
        raise ValueError(f"{card.name} needs no weights: drop --weights")
    return loading.load(card.with_weights_path(args.weights), device=args.device)


def run_eval(args: argparse.Namespace) -> int:
    from inpaintstudio import registry
    from inpaintstudio.cli.processes import process_group
    from inpaintstudio.core.maskops import RATIO_BINS
    from inpaintstudio.training.backbones import inception_from_file
    from inpaintstudio.training.data import list_images, parse_bin
    from inpaintstudio.training.evaluate import evaluate_engine, format_table, merge_reports, scoring_side
    from inpaintstudio.training.metrics import LPIPS, BackboneMissingError

    group = process_group()
    args.device = group.device(args.device)
    try:
        images = list_images(args.images)
        if not images:
            raise FileNotFoundError(f"no images in {args.images}")
        if args.mask_ratio:
            bins = list(RATIO_BINS) if args.mask_ratio == "all" else [b.strip() for b in args.mask_ratio.split(",")]
        else:
            bins = [b.strip() for b in args.bins.split(",")]
            if not args.masks.exists():
                raise FileNotFoundError(f"mask folder not found: {args.masks}")
        for b in bins:
            if b not in RATIO_BINS:
                parse_bin(b)
                raise ValueError(f"mask ratio {b!r}: use one of {', '.join(RATIO_BINS)} or all")
        plan = _plan_eval_outputs(args, images, bins)
        engine = _make_engine(args)
        scoring_side(engine.card, args.size)  # refused before LPIPS/FID are loaded
    except registry.WeightsMissingError as error:
        _error(str(error))
        return EXIT_WEIGHTS_MISSING
    except (registry.UnknownModelError, ValueError, FileNotFoundError) as error:
        _error(str(error))
        return EXIT_BAD_INPUT
    device = getattr(engine, "device", "cpu") or "cpu"
    scored = images[: args.limit] if args.limit else images
    group.announce(len(group.indices(len(scored))), "images")
    skipped: dict[str, str] = {}
    lpips = fid_net = None
    if not args.no_lpips:
        try:
            lpips = LPIPS.from_files().to(device)
        except BackboneMissingError as error:
            skipped["LPIPS"] = " ".join(str(error).split())
            if group.leader:
                print(f"LPIPS skipped: {error}", file=sys.stderr)
    if not args.no_fid:
        try:
            fid_net = inception_from_file()
        except BackboneMissingError as error:
            skipped["FID"] = " ".join(str(error).split())
            if group.leader:
                print(f"FID skipped: {error}", file=sys.stderr)
    report = evaluate_engine(engine, images, masks=args.masks, ratio_bins=bins, mask_threshold=args.threshold,
                             lpips=lpips, fid_net=fid_net, save_dir=args.save, limit=args.limit,
                             model_name=engine.card.name if args.weights is None else args.model, device=device,
                             size=args.size, shard=(group.rank, group.world))
    shards = group.gather(report)
    group.close()
    if not group.leader:  # process 0 writes the one report
        return EXIT_OK
    report = merge_reports(shards) if group.distributed else report
    report.skipped = {**skipped, **report.skipped}
    print(format_table(report))
    if args.json:
        plan.write_text(args.json, report.json_text())
    if args.csv:
        plan.write_text(args.csv, report.csv_text())
    return EXIT_OK


def _plan_eval_outputs(args: argparse.Namespace, images: list[Path], bins: list[str]) -> Any:
    """Claim --json, --csv and every --save file before any work (inputs protected, no silent overwrite)."""
    from inpaintstudio.io.outputs import OutputPlan
    from inpaintstudio.training.data import list_images

    plan = OutputPlan(overwrite=args.overwrite)
    plan.protect(images)
    if args.masks is not None and args.masks.exists():
        plan.protect(list_images(args.masks))
    if args.weights is not None:
        plan.protect([args.weights])
    for path in (args.json, args.csv):
        if path is not None:
            plan.claim(path)
    if args.save is not None:
        scored = images[: args.limit] if args.limit else images
        for folder in [*bins, "gt"]:
            for image in scored:
                plan.claim(args.save / folder / f"{image.stem}.png", source=image)
    return plan
