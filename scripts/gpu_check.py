"""Every CUDA check in one run, for scripts/gpu_check.sh: writes ``gpu_check.md`` and ``gpu_check.json``.

Sections (each one's failure is recorded and the run goes on; a section that would start after ``--budget``
seconds is skipped and marked so):

1. ``pytest -m gpu`` (the CUDA-marked tests), with pass/fail counts.
2. The selective scan at L = 65 536, E = 96, N = 16: forward time and max difference to the sequential reference for
   the Triton kernel, mamba-ssm (when it imports) and the pure-PyTorch chunked scan; forward + backward time and
   gradient error at L = 4096.
3. Every deep model's default network (random weights: this measures cost, never touches a user's image) at 256²
   (tsgl_512 at 512²), float32 and bf16 autocast: seconds per forward and peak CUDA memory.
4. One training step at batch 8, 256², of SEM-Net, M×T and HINT (the trainer's full iteration; VGG terms on a
   randomly initialised VGG when its file is absent): seconds and peak CUDA memory.
5. The pipeline on a 12 MP photo with a 5 % hole: the default engine, and SEM-Net with random weights on CUDA.

Nothing is downloaded. Run through scripts/gpu_check.sh, which first checks that a GPU is present.

``--cpu-dry-run`` runs every section on the CPU at tiny sizes through the same code: the scan at L = 512, the
networks of the parity fixtures (``tests/fixtures/parity/<model>``; the default network at 64² for a model
without one) at their fixture size, training steps at batch 1 on 64², the pipeline on a 0.5 MP photo. It
writes the same report files, and a default test runs it, so that the script cannot rot where there is no
GPU. Its numbers say nothing about speed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

TRAIN_MODELS = ("sem_net", "mxt", "hint")
FIXTURES = REPO / "tests" / "fixtures" / "parity"


@dataclass(frozen=True)
class Plan:
    """Where the sections run and how large they are: a real GPU check, or the CPU dry run."""

    device: str = "cuda"
    scan_length: int = 65_536
    grad_length: int = 4096
    model_size: int = 256  # a model without a fixed input size
    train_size: int = 256
    photo: tuple[int, int] = (4240, 2832)
    fixture_networks: bool = False  # the parity fixtures' small networks instead of the default ones

    @property
    def dry(self) -> bool:
        return self.device == "cpu"


GPU = Plan()
CPU_DRY_RUN = Plan(device="cpu", scan_length=512, grad_length=64, model_size=64, train_size=64,
                   photo=(860, 574), fixture_networks=True)
PLAN = GPU
SCAN_CHANNELS = {"batch": 1, "E": 96, "N": 16}


def _sync() -> None:
    if PLAN.device == "cuda":
        torch.cuda.synchronize()


def _reset_peak() -> None:
    if PLAN.device == "cuda":
        torch.cuda.reset_peak_memory_stats()


def _peak_mib() -> float:
    """Peak CUDA memory since the last reset; the process's peak resident memory on the CPU."""
    if PLAN.device == "cuda":
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _empty_cache() -> None:
    if PLAN.device == "cuda":
        torch.cuda.empty_cache()


def _fixture(card: object) -> dict | None:
    """The parity fixture's config.json in the dry run (its small network and size), else ``None``."""
    path = FIXTURES / card.name / "config.json"
    return json.loads(path.read_text()) if PLAN.fixture_networks and path.is_file() else None


def network_config(card: object) -> object:
    """The config a section builds: the parity fixture's small network in the dry run, else the default."""
    from inpaintstudio.core import loading

    fixture = _fixture(card)
    if fixture is not None:
        return loading.model_module(card).config_from_fixture(fixture)
    return loading.card_config(card)


def input_side(card: object) -> int:
    if card.input.fixed_size:
        return int(card.input.fixed_size)
    fixture = _fixture(card)
    return int(fixture["input"]["H"]) if fixture is not None else PLAN.model_size


def _timed(fn: Callable[[], object], repeats: int = 3) -> float:
    fn()  # warm-up: compilation, allocator
    _sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync()
        best = min(best, time.perf_counter() - start)
    return best


def run_tests(timeout: int) -> dict:
    start = time.perf_counter()
    # on the CPU the GPU tests skip themselves: the dry run checks that they are collected and the counts read
    done = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-p", "no:cacheprovider",
                           "-p", "no:randomly", "-n", "0"],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr.strip()[-300:]
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|error|errors|deselected)", summary)}
    failures = [line for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    ok = done.returncode == 0 and sum(counts.values()) > 0
    return {"ok": ok, "summary": summary, "counts": counts, "failures": failures,
            "seconds": round(time.perf_counter() - start, 1)}


def _scan_inputs(length: int) -> dict:
    g = torch.Generator().manual_seed(0)
    e, n = SCAN_CHANNELS["E"], SCAN_CHANNELS["N"]
    values = {
        "u": torch.randn(1, e, length, generator=g),
        "delta": torch.randn(1, e, length, generator=g) * 0.5 - 2.0,
        "A": -torch.arange(1.0, n + 1).repeat(e, 1),
        "B": torch.randn(1, n, length, generator=g),
        "C": torch.randn(1, n, length, generator=g),
        "D": torch.ones(e),
        "z": torch.randn(1, e, length, generator=g),
        "delta_bias": torch.randn(e, generator=g) * 0.1,
    }
    return {k: v.to(PLAN.device) for k, v in values.items()}


def run_scan() -> dict:
    from inpaintstudio.models.layers import ssm

    if PLAN.dry:  # the CPU's own paths: the triton and mamba-ssm kernels need CUDA tensors
        paths = ["chunked", "auto"]
    else:
        paths = ["chunked"] + (["triton"] if ssm.triton_available() else []) + (
            ["cuda"] if ssm.fused_scan_available() else [])
    inputs = _scan_inputs(PLAN.scan_length)
    with torch.inference_mode():
        start = time.perf_counter()
        want = ssm.selective_scan(**inputs, delta_softplus=True, path="reference")
        _sync()
        reference_s = time.perf_counter() - start
    rows = [{"path": "reference", "forward_ms": round(reference_s * 1e3, 2)}]
    for path in paths:
        with torch.inference_mode():
            def forward(path: str = path) -> torch.Tensor:
                return ssm.selective_scan(**inputs, delta_softplus=True, path=path)

            seconds = _timed(forward)
            diff = (forward() - want).abs().max().item()
        rows.append({"path": path, "forward_ms": round(seconds * 1e3, 3),
                     "x_reference": round(reference_s / seconds, 1),
                     "max_abs_difference": diff})
    small = _scan_inputs(PLAN.grad_length)
    weights = torch.linspace(-1, 1, PLAN.grad_length, device=PLAN.device)

    def train(path: str) -> dict:
        leaves = {k: v.clone().requires_grad_() for k, v in small.items()}
        (ssm.selective_scan(**leaves, delta_softplus=True, path=path) * weights).sum().backward()
        return {k: v.grad for k, v in leaves.items()}

    want_grads = train("reference")
    for row in rows[1:]:
        got = train(row["path"])
        row[f"forward_backward_ms_at_{PLAN.grad_length}"] = round(_timed(lambda p=row["path"]: train(p)) * 1e3, 3)
        row["worst_gradient_error_relative"] = max(
            ((got[k] - w).abs().max() / w.abs().max()).item() for k, w in want_grads.items())
    return {"shape": {**SCAN_CHANNELS, "L": PLAN.scan_length}, "rows": rows,
            "ok": all(r.get("max_abs_difference", 0) <= 1e-4 and r.get("worst_gradient_error_relative", 0) <= 1e-4
                      for r in rows)}


def run_models() -> dict:
    from inpaintstudio import registry
    from inpaintstudio.core import loading

    rows = []
    # one row per network: a variant is the same network with other weights
    for card in [c for c in registry.list_cards() if c.kind == "deep" and ":" not in c.name]:
        for dtype in ("fp32", "bf16"):
            row = {"model": card.name, "dtype": dtype}
            try:
                torch.manual_seed(0)
                module = loading.model_module(card)
                net = module.build(network_config(card)).eval().to(PLAN.device)
                size = input_side(card)
                image = torch.rand(1, 3, size, size, device=PLAN.device)
                mask = torch.zeros(1, 1, size, size, device=PLAN.device)
                mask[..., size // 4: size // 2, size // 4: 3 * size // 4] = 1
                low, high = card.input.value_range
                image = image * (high - low) + low
                if card.input.mask_hole_value == 0:
                    mask = 1 - mask
                autocast = torch.autocast(PLAN.device, dtype=torch.bfloat16, enabled=dtype == "bf16")

                def forward(net: torch.nn.Module = net, image: torch.Tensor = image, mask: torch.Tensor = mask,
                            autocast: torch.autocast = autocast, module: object = module) -> None:
                    with torch.inference_mode(), autocast:
                        out = module.predict(net, image, mask)["image"]
                    if not torch.isfinite(out.float()).all():
                        raise FloatingPointError("non-finite output")

                _reset_peak()
                row.update(size=size, seconds=round(_timed(forward, 2), 4), peak_mib=_peak_mib(), ok=True)
                del net
            except Exception as exc:  # noqa: BLE001 - recorded in the report
                row.update(ok=False, error=f"{type(exc).__name__}: {exc}"[:300])
            _empty_cache()
            rows.append(row)
    return {"rows": rows, "ok": all(r["ok"] for r in rows)}


def _train_step_module():  # noqa: ANN202 - benchmarks/train_step.py, for its batch builder
    spec = importlib.util.spec_from_file_location("train_step", REPO / "benchmarks" / "train_step.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_training(batch_size: int) -> dict:
    import dataclasses
    import tempfile

    from PIL import Image
    from skimage import data

    from inpaintstudio import registry
    from inpaintstudio.training.backbones import VGGFeatures
    from inpaintstudio.training.losses import vgg_available
    from inpaintstudio.training.specs import loss_config_for, uses_landmarks
    from inpaintstudio.training.trainer import TrainConfig, Trainer

    bench = _train_step_module()
    rows = []
    size = PLAN.train_size
    for model in TRAIN_MODELS:
        row = {"model": model, "batch": batch_size, "size": size}
        try:
            card = registry.get_card(model)
            net_config = network_config(card)
            loss_cfg = loss_config_for(model)
            vgg = None
            if loss_cfg.needs_vgg and not vgg_available(loss_cfg):
                vgg = VGGFeatures(19 if loss_cfg.vgg == "vgg19_relu" else 16)
                row["vgg"] = "random-init (file absent)"
            with tempfile.TemporaryDirectory() as tmp:
                Image.fromarray(data.astronaut()).save(Path(tmp) / "a.png")
                cfg = TrainConfig.from_dict({
                    "model": model, "device": PLAN.device, "amp": False, "iterations": 3, "progress": False,
                    "log_every": 0, "sample_every": 0, "checkpoint_every": 0, "output_dir": tmp,
                    "model_config": dataclasses.asdict(net_config),
                    "data": {"images": tmp, "size": size, "batch_size": batch_size},
                })
                trainer = Trainer(cfg, vgg=vgg, dataset=bench._DummyDataset())
                one = bench._batch(uses_landmarks(card), bench._wants_texture(net_config), size)
                batch = {k: v.repeat(batch_size, *([1] * (v.dim() - 1))) for k, v in one.items()}
                _reset_peak()
                trainer.step(batch)  # warm-up
                _sync()
                start = time.perf_counter()
                logs = trainer.step(batch)
                _sync()
                row.update(seconds=round(time.perf_counter() - start, 3), peak_mib=_peak_mib(),
                           finite=all(torch.isfinite(torch.as_tensor(v)).all().item() for v in logs.values()
                                      if isinstance(v, (int, float, torch.Tensor))))
                row["ok"] = row["finite"]
                del trainer
        except Exception as exc:  # noqa: BLE001 - recorded in the report
            row.update(ok=False, error=f"{type(exc).__name__}: {exc}"[:300])
        _empty_cache()
        rows.append(row)
    return {"rows": rows, "ok": all(r["ok"] for r in rows)}


def run_pipeline() -> dict:
    import cv2
    import numpy as np
    from skimage import data

    from inpaintstudio import registry
    from inpaintstudio.core import loading, pipeline
    from inpaintstudio.core.engines import TorchEngine

    width, height = PLAN.photo
    image = cv2.resize(data.astronaut(), (width, height), interpolation=cv2.INTER_CUBIC)
    mask = np.zeros((height, width), np.uint8)
    area = 0.05 * width * height
    a = int(np.sqrt(area / np.pi * 1.3))
    cv2.ellipse(mask, (width // 2, height // 2), (a, int(area / np.pi / a)), 0, 0, 360, 1, -1)
    rows = []
    card = registry.get_card("sem_net")
    torch.manual_seed(0)
    net = loading.model_module(card).build(network_config(card))
    engines = {registry.DEFAULT_MODEL: None,
               f"sem_net (random weights, {PLAN.device})": TorchEngine(card, net, PLAN.device,
                                                                        loading.model_module(card).predict)}
    for name, engine in engines.items():
        row = {"engine": name, "megapixels": round(width * height / 1e6, 1), "hole": round(float(mask.mean()), 3)}
        try:
            _reset_peak()
            pipeline.inpaint(image, mask.astype(bool), registry.DEFAULT_MODEL, engine=engine)  # warm-up
            start = time.perf_counter()
            result = pipeline.inpaint(image, mask.astype(bool), registry.DEFAULT_MODEL, engine=engine)
            row.update(seconds=round(time.perf_counter() - start, 3), device=result.device, peak_mib=_peak_mib(),
                       unchanged_outside=bool((result.image[mask == 0] == image[mask == 0]).all()))
            row["ok"] = row["unchanged_outside"]
        except Exception as exc:  # noqa: BLE001 - recorded in the report
            row.update(ok=False, error=f"{type(exc).__name__}: {exc}"[:300])
        rows.append(row)
    return {"rows": rows, "ok": all(r["ok"] for r in rows)}


def _markdown(report: dict) -> str:
    env = report["environment"]
    title = "GPU check, CPU dry run" if env.get("dry_run") else "GPU check"
    lines = [f"# {title} ({env['gpu']}, torch {env['torch']}, CUDA {env['cuda']}, triton {env['triton']}, "
             f"mamba-ssm {env['mamba_ssm']})", "", f"Total {report['seconds']:.0f} s. " +
             ("All sections passed." if report["ok"] else "**Some sections failed** (see below)."), ""]
    for name, section in report["sections"].items():
        status = "skipped (time budget)" if section.get("skipped") else ("ok" if section.get("ok") else "FAILED")
        lines += [f"## {name}: {status}", ""]
        if "error" in section and "rows" not in section:
            lines += ["```", section["error"][-1500:], "```", ""]
        if name == "tests" and "summary" in section:
            lines += [f"`pytest -m gpu`: {section['summary']}", ""] + [f"- {f}" for f in section["failures"]] + [""]
        rows = section.get("rows") or []
        if rows:
            keys = list(dict.fromkeys(k for row in rows for k in row))
            lines += ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
            for row in rows:
                lines.append("| " + " | ".join(_cell(row.get(k, "")) for k in keys) + " |")
            lines.append("")
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-2 and value else f"{value:g}"
    return str(value).replace("|", "/")


def _write(report: dict, out: Path, start: float) -> None:
    report["seconds"] = time.perf_counter() - start
    report["ok"] = all(s.get("ok") for s in report["sections"].values())
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "gpu_check.md").write_text(_markdown(report) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "gpu_check")
    parser.add_argument("--budget", type=float, default=450, help="seconds after which sections are skipped")
    parser.add_argument("--batch", type=int, default=8, help="batch of the training steps")
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--cpu-dry-run", action="store_true",
                        help="every section on the CPU at tiny sizes (checks the script, measures nothing)")
    args = parser.parse_args()
    global PLAN
    PLAN = CPU_DRY_RUN if args.cpu_dry_run else GPU
    if args.cpu_dry_run:
        args.batch = 1
    elif not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA GPU is visible to torch; nothing to check")
    start = time.perf_counter()
    try:
        import triton
        triton_version = triton.__version__
    except Exception:  # noqa: BLE001
        triton_version = "absent"
    try:
        from importlib.metadata import version
        mamba_version = version("mamba-ssm")
    except Exception:  # noqa: BLE001
        mamba_version = "absent"
    gpu = "CPU (dry run)" if PLAN.dry else torch.cuda.get_device_name(0)
    report = {"environment": {"gpu": gpu, "torch": torch.__version__, "cuda": torch.version.cuda,
                              "triton": triton_version, "mamba_ssm": mamba_version,
                              "python": platform.python_version(), "dry_run": PLAN.dry,
                              "date": time.strftime("%Y-%m-%d")}, "sections": {}}
    sections: list[tuple[str, Callable[[], dict]]] = [
        ("scan", run_scan), ("models_256", run_models), ("training_step", lambda: run_training(args.batch)),
        ("pipeline_12mp", run_pipeline),
    ]
    if not args.skip_tests:
        sections.insert(0, ("tests", lambda: run_tests(timeout=int(args.budget * 0.4))))
    for name, fn in sections:
        elapsed = time.perf_counter() - start
        if elapsed > args.budget:
            report["sections"][name] = {"skipped": True, "ok": False, "after_s": round(elapsed)}
            continue
        section_start = time.perf_counter()
        try:
            report["sections"][name] = fn()
        except Exception:  # noqa: BLE001 - recorded in the report
            report["sections"][name] = {"ok": False, "error": traceback.format_exc()}
        report["sections"][name]["seconds"] = round(time.perf_counter() - section_start, 1)
        print(f"gpu_check: {name}: {'ok' if report['sections'][name].get('ok') else 'FAILED'} "
              f"({report['sections'][name]['seconds']} s)", flush=True)
        _write(report, args.out, start)  # after every section, so a stopped run still leaves a report
    _write(report, args.out, start)
    print(f"gpu_check: {'all passed' if report['ok'] else 'FAILURES'}; report in {args.out}/gpu_check.md and .json")
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
