"""Training-step benchmark: iterations/s and peak memory of each model's default config, batch 1, 256×256
(a fixed-size model at its own size). The models are every registered deep card (each module's ``TRAINING`` spec).

Each model runs in its own subprocess (so peak RSS is its own): one warm-up step, then ``--steps`` timed steps of the
full training iteration (generator forward through ``predict``, discriminator step, generator objective with the
model's released loss weights, both optimiser steps). The image is scikit-image's astronaut with a generated
20–40 % irregular mask; INCLG gets a fixed landmark set, TSGL a bilateral-filtered texture image (the RTV smoothing
is an offline step). When the VGG file is not on the machine the VGG terms run on a randomly initialised VGG of the
same shape (same cost; the table says so). CPU: ``torch.set_num_threads(--threads)``. With CUDA: the same in
float32 and under AMP (float16 autocast + GradScaler), peak = ``torch.cuda.max_memory_allocated``.

Prints a table and writes ``benchmarks/results/train_step.json``.

    python benchmarks/train_step.py [--models hint,mxt] [--steps 2] [--threads 2] [--timeout 1800] \
        [--max-gib 10] [--append] [--checkpoint-blocks] [--scan-path chunked] [--size 128]

``--scan-path`` sets the selective-scan path of SEM-Net and M×T ("auto": the fused kernel; "chunked": the
pure-PyTorch scan), so both can be timed in one run.

A worker stopped by ``--max-gib`` or ``--timeout`` leaves an ``error`` row instead of numbers.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from inpaintstudio import registry  # noqa: E402 - after the sys.path line above

MODELS = tuple(card.name for card in registry.builtin_cards() if card.kind == "deep" and card.task == "inpaint")


def _wants_texture(config: object) -> bool:
    """Models whose config carries RTV settings read a texture image in training (TSGL at 256)."""
    return hasattr(config, "rtv_lambda")


def _batch(landmarks: bool, texture: bool, size: int):  # noqa: ANN202 - dict of tensors
    import cv2
    import numpy as np
    import torch
    from skimage import data

    from inpaintstudio.training.data import generate_mask

    rgb = cv2.resize(data.astronaut(), (size, size), interpolation=cv2.INTER_AREA)
    batch = {
        "image": torch.from_numpy(rgb.astype(np.float32) / 255).permute(2, 0, 1)[None],
        "hole": torch.from_numpy(generate_mask(size, "20-40", 0))[None, None],
    }
    if landmarks:
        batch["landmarks"] = torch.from_numpy(np.random.default_rng(0).uniform(60, 200, (1, 68, 2)).astype(np.float32))
    if texture:
        smooth = cv2.bilateralFilter(rgb, 9, 60, 9)
        batch["texture"] = torch.from_numpy(smooth.astype(np.float32) / 255).permute(2, 0, 1)[None]
    return batch


def worker(model: str, device: str, amp: bool, steps: int, threads: int, size: int, checkpoint_blocks: bool,
           scan_path: str) -> dict:
    import dataclasses

    import torch
    from PIL import Image
    from skimage import data

    from inpaintstudio.core import loading
    from inpaintstudio.training.backbones import VGGFeatures
    from inpaintstudio.training.losses import vgg_available
    from inpaintstudio.training.specs import loss_config_for, uses_landmarks
    from inpaintstudio.training.trainer import TrainConfig, Trainer

    torch.set_num_threads(threads)
    card = registry.get_card(model)
    size = card.input.fixed_size or size
    net_config = loading.card_config(card)
    model_fields = {f.name for f in dataclasses.fields(net_config)}
    checkpoint_blocks = checkpoint_blocks and "checkpoint_blocks" in model_fields
    model_config: dict = {"checkpoint_blocks": True} if checkpoint_blocks else {}
    scan_path = scan_path if "scan_path" in model_fields else "none"
    if scan_path != "none":
        model_config["scan_path"] = scan_path
    loss_cfg = loss_config_for(model)
    vgg_note = "none"
    vgg = None
    if loss_cfg.needs_vgg:
        if vgg_available(loss_cfg):
            vgg_note = "pretrained"
        else:
            vgg = VGGFeatures(19 if loss_cfg.vgg == "vgg19_relu" else 16)
            vgg_note = "random-init (file absent; same cost)"
    with tempfile.TemporaryDirectory() as tmp:
        Image.fromarray(data.astronaut()).save(Path(tmp) / "a.png")
        cfg = TrainConfig.from_dict({
            "model": model, "device": device, "amp": amp, "iterations": steps + 1, "progress": False,
            "log_every": 0, "sample_every": 0, "checkpoint_every": 0, "output_dir": tmp,
            "model_config": model_config,
            "data": {"images": tmp, "size": size, "batch_size": 1,
                     **({"landmarks": tmp} if uses_landmarks(card) else {})},
        })
        trainer = Trainer(cfg, vgg=vgg, dataset=_DummyDataset())
        batch = _batch(uses_landmarks(card), _wants_texture(net_config), size)
        params = sum(p.numel() for p in trainer.generator.parameters())
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        trainer.step(batch)
        warmup = time.perf_counter() - start
        times = []
        for _ in range(steps):
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            logs = trainer.step(batch)
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {
        "model": model, "device": device, "amp": amp, "batch": 1, "size": size, "threads": threads,
        "checkpoint_blocks": checkpoint_blocks, "scan_path": scan_path,
        "generator_params_m": round(params / 1e6, 2), "warmup_s": round(warmup, 2),
        "step_s": round(min(times), 3), "it_per_s": round(1 / min(times), 4), "peak_mib": round(peak, 1),
        "peak_kind": "cuda max_memory_allocated" if device == "cuda" else "process peak RSS",
        "vgg": vgg_note, "losses": sorted(k for k in logs if k not in ("lr", "hole_l1")),
    }


class _DummyDataset:
    """The trainer's loader is not used here (steps get a fixed batch)."""

    def __len__(self) -> int:
        return 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per model and device")
    parser.add_argument("--worker", nargs=3, metavar=("MODEL", "DEVICE", "AMP"), help=argparse.SUPPRESS)
    parser.add_argument("--max-gib", type=float, help="address-space limit per worker (protects a shared machine)")
    parser.add_argument("--append", action="store_true", help="merge the rows into an existing output file")
    parser.add_argument("--checkpoint-blocks", action="store_true",
                        help="recompute block activations in backward (models whose Config has checkpoint_blocks)")
    parser.add_argument("--scan-path", default="auto", help="selective-scan path of SEM-Net and M×T")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "train_step.json")
    args = parser.parse_args()
    if args.worker:
        if args.max_gib:
            limit = int(args.max_gib * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        model, device, amp = args.worker
        print(json.dumps(worker(model, device, amp == "1", args.steps, args.threads, args.size,
                                args.checkpoint_blocks, args.scan_path)))
        return

    import torch

    runs = [("cpu", "0")]
    if torch.cuda.is_available():
        runs += [("cuda", "0"), ("cuda", "1")]
    rows = []
    for model in args.models.split(","):
        for device, amp in runs:
            cmd = [sys.executable, __file__, "--worker", model, device, amp, "--steps", str(args.steps),
                   "--threads", str(args.threads), "--size", str(args.size)]
            if args.max_gib:
                cmd += ["--max-gib", str(args.max_gib)]
            if args.checkpoint_blocks:
                cmd.append("--checkpoint-blocks")
            cmd += ["--scan-path", args.scan_path]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
                if done.returncode != 0:
                    error = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"
                    if args.max_gib and "allocate" in error:
                        error = f"over the --max-gib {args.max_gib} limit: {error}"
                    rows.append({"model": model, "device": device, "amp": amp == "1", "error": error,
                                 "checkpoint_blocks": args.checkpoint_blocks, "scan_path": args.scan_path})
                else:
                    rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            except subprocess.TimeoutExpired:
                rows.append({"model": model, "device": device, "amp": amp == "1",
                             "error": f"timed out after {args.timeout} s", "checkpoint_blocks": args.checkpoint_blocks,
                             "scan_path": args.scan_path})
            print(_row(rows[-1]), flush=True)
    if args.append and args.output.is_file():
        def key(r: dict) -> tuple:
            return r["model"], r["device"], r["amp"], r.get("checkpoint_blocks", False), r.get("scan_path", "auto")

        fresh = {key(r) for r in rows}
        old = json.loads(args.output.read_text()).get("rows", [])
        rows = [r for r in old if key(r) not in fresh] + rows
        order = {m: i for i, m in enumerate(MODELS)}
        rows.sort(key=lambda r: (order.get(r["model"], 99), r["device"], r["amp"]))
    result = {
        "benchmark": "train_step",
        "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version(),
                    "torch": torch.__version__,
                    "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "steps_timed": args.steps,
        "rows": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {args.output}")


def _row(row: dict) -> str:
    head = f"{row['model']:<8} {row['device']:<5} amp={'on ' if row.get('amp') else 'off'}"
    if row.get("checkpoint_blocks"):
        head += " ckpt"
    if row.get("scan_path") not in (None, "none", "auto"):
        head += f" scan={row['scan_path']}"
    if "error" in row:
        return f"{head}  ERROR {row['error']}"
    return (f"{head}  {row['generator_params_m']:>7.2f} M  {row['step_s']:>8.3f} s/it  {row['it_per_s']:>7.3f} it/s  "
            f"peak {row['peak_mib']:>8.1f} MiB  (warm-up {row['warmup_s']} s; VGG {row['vgg']})")


if __name__ == "__main__":
    main()
