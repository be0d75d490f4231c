"""Selective-scan benchmark: the fused CPU kernel against the pure-PyTorch chunked scan and the sequential reference.

All figures come from one run (each measurement in its own subprocess, ``--threads`` intra-op threads, default 2):

1. First-use compile of the C++ kernel, into a fresh temporary cache folder.
2. ``selective_scan`` at L = 65 536, E = 96, N = 16, batch 1 (SEM-Net's level-1 scan at 256×256), no gradients,
   with bias, softplus, D and gate, for two input layouts: "sequence" (u, Δ, B, C, z stored B×L×X and passed as
   B×X×L views, as ``Mamba`` passes them) and "channel" (contiguous B×E×L). Paths "cpu" (kernel) and "chunked":
   best of ``--repeats``; "reference": one run. Speed-up = reference time / path time; max |diff| against the
   reference output.
3. Gradients at L = ``--grad-length`` (default 4096; the reference's autograd over 65 536 steps is too slow and too
   large to be a useful yardstick), same E and N: forward + backward time of each path and, per input, the max
   gradient difference relative to the largest reference gradient.
4. The default SEM-Net and M×T (random weights) 1×3×256×256 forward with the kernel, with the chunked scan and with
   every scan replaced by a free stand-in ("none": the rest of the network, which bounds what any scan can give),
   after one warm-up call. ``--only-model`` runs this part alone.
5. With CUDA: the scan with the Triton kernel and, when it imports, mamba-ssm (``scripts/gpu_check.sh`` covers the
   rest of the GPU checks).

Prints a table with the targets and writes ``benchmarks/results/ssm_scan.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

LENGTH, CHANNELS, STATES = 65_536, 96, 16
LAYOUTS = ("sequence", "channel")
INPUT_NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _inputs(length: int, layout: str, device: str = "cpu") -> dict:
    import torch

    g = torch.Generator().manual_seed(0)
    u = torch.randn(1, CHANNELS, length, generator=g)
    delta = torch.randn(1, CHANNELS, length, generator=g) * 0.5 - 2.0
    a = -torch.arange(1.0, STATES + 1).repeat(CHANNELS, 1) * torch.exp(torch.randn(CHANNELS, STATES, generator=g) * 0.1)
    b = torch.randn(1, STATES, length, generator=g)
    c = torch.randn(1, STATES, length, generator=g)
    d = torch.ones(CHANNELS)
    z = torch.randn(1, CHANNELS, length, generator=g)
    bias = torch.randn(CHANNELS, generator=g) * 0.1
    if layout == "sequence":  # same values, stored B×L×X
        u, delta, b, c, z = (t.transpose(1, 2).contiguous().transpose(1, 2) for t in (u, delta, b, c, z))
    return {k: v.to(device) for k, v in zip(INPUT_NAMES, (u, delta, a, b, c, d, z, bias))}


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def scan_worker(path: str, layout: str, repeats: int, output: str, device: str = "cpu") -> dict:
    import torch

    from inpaintstudio.models.layers import scan_cpu
    from inpaintstudio.models.layers.ssm import selective_scan

    if path == "cpu":
        scan_cpu.load()  # a cached build; its first-use compile is measured separately
    inputs = _inputs(LENGTH, layout, device)
    times, cpu_times = [], []
    for _ in range(repeats):
        _sync(device)
        start, cpu_start = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            y = selective_scan(**inputs, delta_softplus=True, path=path)
        _sync(device)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    torch.save(y.cpu(), output)
    return {"path": path, "layout": layout, "device": device, "seconds": min(times), "cpu_seconds": min(cpu_times),
            "runs": len(times), "threads": torch.get_num_threads()}


def grad_worker(path: str, length: int, output: str, device: str = "cpu") -> dict:
    import torch

    from inpaintstudio.models.layers import scan_cpu
    from inpaintstudio.models.layers.ssm import selective_scan

    if path == "cpu":
        scan_cpu.load()
    inputs = _inputs(length, "sequence", device)
    weights = torch.linspace(-1, 1, length, device=device)
    times = []
    for _ in range(1 if path == "reference" else 2):  # kernels: the second run, after first-call allocations
        leaves = {k: v.clone().requires_grad_() for k, v in inputs.items()}
        _sync(device)
        start = time.perf_counter()
        y = selective_scan(**leaves, delta_softplus=True, path=path)
        (y * weights).sum().backward()
        _sync(device)
        times.append(time.perf_counter() - start)
    torch.save({k: v.grad.cpu() for k, v in leaves.items()}, output)
    return {"path": path, "device": device, "length": length, "seconds": min(times),
            "threads": torch.get_num_threads()}


def compile_worker() -> dict:
    from inpaintstudio.models.layers import scan_cpu

    start = time.perf_counter()
    ok = scan_cpu.available()
    return {"loaded": ok, "seconds": time.perf_counter() - start, "info": scan_cpu.build_info()}


def model_worker(model: str, device: str, scan_path: str, repeats: int) -> dict:
    import importlib

    import torch

    module = importlib.import_module(f"inpaintstudio.models.{model}.network")
    build_path = scan_path
    if scan_path == "none":  # the rest of the network: every scan replaced by a free stand-in (returns u)
        from inpaintstudio.models.layers import ssm

        ssm.selective_scan = lambda u, *args, **kwargs: u
        build_path = "chunked"
    torch.manual_seed(0)
    net = module.build(module.Config(scan_path=build_path)).eval().to(device)
    image = torch.rand(1, 3, 256, 256, device=device)
    mask = torch.zeros(1, 1, 256, 256, device=device)
    mask[..., 64:128, 64:192] = 1

    def forward() -> None:
        with torch.inference_mode():
            module.predict(net, image * (1 - mask) + mask, mask)
        _sync(device)

    times, cpu_times = [], []
    forward()  # warm-up: first-call allocations, cached position tables, CUDA context, kernel load
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        forward()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    row = {"model": model, "device": device, "scan_path": scan_path, "seconds": min(times),
           "cpu_seconds": min(cpu_times), "runs": len(times), "peak_rss_mib": _peak_rss_mib(),
           "threads": torch.get_num_threads()}
    if device == "cuda":
        row["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return row


def _spawn(args: list[str], threads: int | None, env: dict | None = None) -> dict:
    full_env = {**os.environ, **(env or {})}
    if threads:
        full_env["OMP_NUM_THREADS"] = str(threads)
    result = subprocess.run([sys.executable, __file__, "--worker", *args], capture_output=True, text=True,
                            env=full_env, check=False)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> None:  # noqa: C901 - a linear script
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="OMP threads of the workers")
    parser.add_argument("--grad-length", type=int, default=4096)
    parser.add_argument("--skip-model", action="store_true", help="only the scan comparisons")
    parser.add_argument("--only-model", action="store_true", help="only the SEM-Net and M×T forwards")
    parser.add_argument("--skip-compile", action="store_true", help="do not time a fresh build")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "ssm_scan.json")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        if kind == "scan":
            row = scan_worker(rest[0], rest[1], int(rest[2]), rest[3], rest[4])
        elif kind == "grad":
            row = grad_worker(rest[0], int(rest[1]), rest[2], rest[3])
        elif kind == "compile":
            row = compile_worker()
        else:
            row = model_worker(rest[0], rest[1], rest[2], int(rest[3]))
        print(json.dumps(row))
        return

    import torch

    results: dict = {"shape": {"batch": 1, "E": CHANNELS, "N": STATES, "L": LENGTH}, "torch": torch.__version__,
                     "cpu_count": os.cpu_count(), "threads": args.threads, "load_average_at_start": os.getloadavg()}
    print(f"load average at start {results['load_average_at_start'][0]:.1f} on {os.cpu_count()} CPUs; "
          f"{args.threads} threads per worker")
    targets = []

    if not args.skip_compile and not args.only_model:
        with tempfile.TemporaryDirectory() as cache:
            build = _spawn(["compile"], args.threads, {"INPAINTSTUDIO_CACHE": cache})
        results["first_use_compile"] = build
        print(f"\nfirst-use compile of the CPU kernel (fresh cache): {build['seconds']:.1f} s "
              f"({build['info']['capability']}; loaded: {build['loaded']})")
        targets.append(("first-use compile <= 60 s", f"{build['seconds']:.1f} s", build["seconds"] <= 60))
    _spawn(["compile"], args.threads)  # the user cache, so that the workers below load a built kernel

    if not args.only_model:
        print(f"\nselective_scan, batch 1, E={CHANNELS}, N={STATES}, L={LENGTH}, no grad "
              f"(kernels: best of {args.repeats})")
        print(f"{'layout':<9} {'path':<10} {'wall s':>8} {'CPU s':>8} {'x ref':>7} {'max |diff|':>10} {'load':>5}")
        results["scan_runs"] = []
        with tempfile.TemporaryDirectory() as tmp:
            for layout in LAYOUTS:
                reference = _spawn(["scan", "reference", layout, "1", f"{tmp}/reference.pt", "cpu"], args.threads)
                want = torch.load(f"{tmp}/reference.pt")
                rows = [reference]
                for path in ("cpu", "chunked"):
                    row = _spawn(["scan", path, layout, str(args.repeats), f"{tmp}/{path}.pt", "cpu"], args.threads)
                    row["speedup"] = reference["seconds"] / row["seconds"]
                    row["max_abs_difference"] = (torch.load(f"{tmp}/{path}.pt") - want).abs().max().item()
                    rows.append(row)
                for row in rows:
                    row["load_average"] = os.getloadavg()[0]
                    ratio = (f"{row['speedup']:>7.1f} {row['max_abs_difference']:>10.2e}" if "speedup" in row
                             else " " * 18)
                    print(f"{layout:<9} {row['path']:<10} {row['seconds']:>8.3f} {row['cpu_seconds']:>8.3f} {ratio} "
                          f"{row['load_average']:>5.1f}")
                results["scan_runs"].extend(rows)
                kernel = rows[1]
                targets.append((f"scan >= 50x reference ({layout} layout)", f"{kernel['speedup']:.0f}x",
                                kernel["speedup"] >= 50))
                targets.append((f"forward within 1e-4 ({layout} layout)", f"{kernel['max_abs_difference']:.1e}",
                                kernel["max_abs_difference"] <= 1e-4))

            print(f"\ngradients, L={args.grad_length} (forward + backward)")
            grads = {path: _spawn(["grad", path, str(args.grad_length), f"{tmp}/grad_{path}.pt", "cpu"], args.threads)
                     for path in ("reference", "cpu", "chunked")}
            want = torch.load(f"{tmp}/grad_reference.pt")
            for path, row in grads.items():
                got = torch.load(f"{tmp}/grad_{path}.pt")
                row["relative_error"] = {k: ((got[k] - w).abs().max() / w.abs().max()).item() for k, w in want.items()}
                worst = max(row["relative_error"].values())
                row["worst_relative_error"] = worst
                speedup = grads["reference"]["seconds"] / row["seconds"]
                print(f"{path:<10} {row['seconds']:>8.3f} s, x ref {speedup:>6.1f}, "
                      f"worst gradient error {worst:.1e} (relative to the largest reference gradient)")
            results["gradients"] = grads
            worst = grads["cpu"]["worst_relative_error"]
            targets.append(("gradients within 1e-4 relative", f"{worst:.1e}", worst <= 1e-4))

    if not args.skip_model:
        rows = []
        for model in ("sem_net", "mxt"):
            chunked = _spawn(["model", model, "cpu", "chunked", "1"], args.threads)
            kernel = _spawn(["model", model, "cpu", "cpu", "1"], args.threads)
            rest = _spawn(["model", model, "cpu", "none", "1"], args.threads)
            kernel["speedup_vs_chunked"] = chunked["seconds"] / kernel["seconds"]
            rest["speedup_vs_chunked"] = chunked["seconds"] / rest["seconds"]  # the most any scan could give
            rows += [chunked, kernel, rest]
            targets.append((f"{model} 256² forward >= 3x the chunked scan", f"{kernel['speedup_vs_chunked']:.1f}x "
                            f"({chunked['seconds']:.1f} -> {kernel['seconds']:.1f} s; a free scan: "
                            f"{rest['speedup_vs_chunked']:.1f}x)", kernel["speedup_vs_chunked"] >= 3))
        results["models_256"] = rows
        print("\nDefault configs, 1×3×256×256 forward, random weights (scan=none: every scan replaced by a free "
              "stand-in, i.e. the rest of the network)")
        for row in rows:
            print(f"{row['model']:<8} {row['device']:<5} scan={row['scan_path']:<8} {row['seconds']:8.2f} s wall, "
                  f"{row['cpu_seconds']:.2f} s CPU, {row['threads']} threads, peak RSS {row['peak_rss_mib']:.0f} MiB")

    if torch.cuda.is_available():
        from inpaintstudio.models.layers.ssm import fused_scan_available, triton_available

        cuda_paths = (["triton"] if triton_available() else []) + (["cuda"] if fused_scan_available() else [])
        cuda_rows = []
        with tempfile.TemporaryDirectory() as tmp:
            want = torch.load(_write_reference(tmp, args.threads))
            for path in cuda_paths:
                row = _spawn(["scan", path, "sequence", str(args.repeats), f"{tmp}/{path}.pt", "cuda"], None)
                row["max_abs_difference"] = (torch.load(f"{tmp}/{path}.pt") - want).abs().max().item()
                cuda_rows.append(row)
                print(f"cuda {path:<8} {row['seconds'] * 1e3:8.2f} ms, max |diff| {row['max_abs_difference']:.1e}")
        results["cuda_scan"] = cuda_rows

    results["targets"] = [{"target": t, "measured": m, "met": ok} for t, m, ok in targets]
    print("\nTargets (this run)")
    for target, measured, ok in targets:
        print(f"  {target:<50} {measured:<24} {_verdict(ok)}")
    results["load_average_at_end"] = os.getloadavg()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nwritten {args.output}")


def _write_reference(tmp: str, threads: int) -> str:
    """The CPU kernel's output (equal to the reference within 1e-4, measured above) as the CUDA yardstick."""
    _spawn(["scan", "cpu", "sequence", "1", f"{tmp}/cpu_reference.pt", "cpu"], threads)
    return f"{tmp}/cpu_reference.pt"


if __name__ == "__main__":
    main()
