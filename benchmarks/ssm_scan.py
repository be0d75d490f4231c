"""Selective-scan benchmark: chunked pure-PyTorch scan vs the sequential reference, and SEM-Net forward cost.

1. ``selective_scan`` at L = 65 536, E = 96, N = 16, batch 1 (the SEM-Net level-1 scan at 256×256) without
   gradients: the "chunked" path vs the "reference" sequential loop over the full length, once with 1 intra-op
   thread and once with torch's default thread count (``--threads`` replaces both by one setting), and for two
   input layouts: "sequence" (u, Δ, B, C, z stored B×L×X and passed as B×X×L views, as ``Mamba`` passes them) and
   "channel" (contiguous B×E×L, the layout mamba-ssm documents). Each path runs in its own subprocess on identical
   seeded inputs; the table shows wall and CPU (process) time (chunked: best of ``--repeats``, reference: one run),
   their ratios, the peak-RSS increase of the call (``ru_maxrss`` after the call minus the RSS before it) and the
   max abs difference between the two outputs.
2. The full default SEM-Net and M×T (random weights) forward at 256×256 on CPU, after one warm-up call: seconds
   and peak RSS of the process.
3. When ``torch.cuda.is_available()``: the same forwards on CUDA with the fused mamba-ssm scan (if importable) and
   with the pure chunked scan.

Prints a table and writes ``benchmarks/results/ssm_scan.json``.
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


def _current_rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


LAYOUTS = ("sequence", "channel")


def scan_worker(path: str, layout: str, repeats: int, output: str) -> dict:
    import torch

    from inpaintstudio.models.layers.ssm import selective_scan

    g = torch.Generator().manual_seed(0)
    u = torch.randn(1, CHANNELS, LENGTH, generator=g)
    delta = torch.randn(1, CHANNELS, LENGTH, generator=g) * 0.5 - 2.0
    a = -torch.arange(1.0, STATES + 1).repeat(CHANNELS, 1) * torch.exp(torch.randn(CHANNELS, STATES, generator=g) * 0.1)
    b = torch.randn(1, STATES, LENGTH, generator=g)
    c = torch.randn(1, STATES, LENGTH, generator=g)
    d = torch.ones(CHANNELS)
    z = torch.randn(1, CHANNELS, LENGTH, generator=g)
    bias = torch.randn(CHANNELS, generator=g) * 0.1
    if layout == "sequence":  # same values, stored B×L×X
        u, delta, b, c, z = (t.transpose(1, 2).contiguous().transpose(1, 2) for t in (u, delta, b, c, z))
    base = _current_rss_mib()
    times, cpu_times = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            y = selective_scan(u, delta, a, b, c, d, z, bias, delta_softplus=True, path=path)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    torch.save(y, output)
    return {"path": path, "layout": layout, "seconds": min(times), "cpu_seconds": min(cpu_times), "runs": len(times),
            "peak_rss_increase_mib": _peak_rss_mib() - base, "threads": torch.get_num_threads()}


def model_worker(model: str, device: str, scan_path: str, repeats: int) -> dict:
    import importlib

    import torch

    module = importlib.import_module(f"inpaintstudio.models.{model}")
    torch.manual_seed(0)
    net = module.build(module.Config(scan_path=scan_path)).eval().to(device)
    image = torch.rand(1, 3, 256, 256, device=device)
    mask = torch.zeros(1, 1, 256, 256, device=device)
    mask[..., 64:128, 64:192] = 1

    def forward() -> None:
        with torch.inference_mode():
            module.predict(net, image * (1 - mask) + mask, mask)
        if device == "cuda":
            torch.cuda.synchronize()

    times, cpu_times = [], []
    forward()  # warm-up: first-call allocations, cached position tables, CUDA context
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        forward()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    row = {"model": model, "device": device, "scan_path": scan_path, "seconds": min(times),
           "cpu_seconds": min(cpu_times), "runs": len(times),
           "peak_rss_mib": _peak_rss_mib(), "threads": torch.get_num_threads()}
    if device == "cuda":
        row["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return row


def _spawn(args: list[str], threads: int | None) -> dict:
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    result = subprocess.run([sys.executable, __file__, "--worker", *args], capture_output=True, text=True, env=env,
                            check=False)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="OMP threads of the workers (default: torch's)")
    parser.add_argument("--skip-model", action="store_true", help="only the scan comparison")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "ssm_scan.json")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        row = scan_worker(rest[0], rest[1], int(rest[2]), rest[3]) if kind == "scan" else model_worker(
            rest[0], rest[1], rest[2], int(rest[3]))
        print(json.dumps(row))
        return

    import torch

    results: dict = {"shape": {"batch": 1, "E": CHANNELS, "N": STATES, "L": LENGTH}, "torch": torch.__version__,
                     "cpu_count": os.cpu_count(), "load_average_at_start": os.getloadavg()}
    default_threads = torch.get_num_threads()
    settings = [args.threads] if args.threads else sorted({1, default_threads})
    print(f"load average at start {results['load_average_at_start'][0]:.1f} on {os.cpu_count()} CPUs")
    print(f"selective_scan, batch 1, E={CHANNELS}, N={STATES}, L={LENGTH}, no grad (chunked: best of {args.repeats})")
    print(f"{'threads':>7} {'layout':<9} {'path':<10} {'wall s':>8} {'CPU s':>8} {'peak RSS +MiB':>14} {'x wall':>7} "
          f"{'x CPU':>7} {'max |diff|':>10} {'load':>5}")
    results["scan_runs"] = []
    for threads in settings:
        for layout in LAYOUTS:
            with tempfile.TemporaryDirectory() as tmp:
                chunked = _spawn(["scan", "chunked", layout, str(args.repeats), f"{tmp}/chunked.pt"], threads)
                reference = _spawn(["scan", "reference", layout, "1", f"{tmp}/reference.pt"], threads)
                diff = (torch.load(f"{tmp}/chunked.pt") - torch.load(f"{tmp}/reference.pt")).abs().max().item()
            run = {"threads": chunked["threads"], "layout": layout, "chunked": chunked, "reference": reference,
                   "speedup": reference["seconds"] / chunked["seconds"],
                   "cpu_time_ratio": reference["cpu_seconds"] / chunked["cpu_seconds"], "max_abs_difference": diff,
                   "load_average": os.getloadavg()[0]}
            results["scan_runs"].append(run)
            for row in (chunked, reference):
                ratios = (f"{run['speedup']:>7.1f} {run['cpu_time_ratio']:>7.1f} {diff:>10.2e}" if row is chunked
                          else f"{'':>7} {'':>7} {'':>10}")
                print(f"{row['threads']:>7} {layout:<9} {row['path']:<10} {row['seconds']:>8.3f} "
                      f"{row['cpu_seconds']:>8.3f} {row['peak_rss_increase_mib']:>14.1f} {ratios} "
                      f"{run['load_average']:>5.1f}")
    print("x wall / x CPU: reference time / chunked time (target: chunked >= 20x faster, max |diff| <= 1e-4)")

    if not args.skip_model:
        rows = []
        for model in ("sem_net", "mxt"):
            rows.append(_spawn(["model", model, "cpu", "chunked", "1"], args.threads))
            if torch.cuda.is_available():
                from inpaintstudio.models.layers.ssm import fused_scan_available

                if fused_scan_available():
                    rows.append(_spawn(["model", model, "cuda", "cuda", str(args.repeats)], None))
                rows.append(_spawn(["model", model, "cuda", "chunked", str(args.repeats)], None))
        results["models_256"] = rows
        print("\nDefault configs, 1×3×256×256 forward, random weights")
        for row in rows:
            extra = f", peak CUDA {row['peak_cuda_mib']:.0f} MiB" if "peak_cuda_mib" in row else ""
            print(f"{row['model']:<8} {row['device']:<5} scan={row['scan_path']:<8} {row['seconds']:8.2f} s wall, "
                  f"{row['cpu_seconds']:.2f} s CPU, {row['threads']} threads, peak RSS "
                  f"{row['peak_rss_mib']:.0f} MiB{extra}")
    results["load_average_at_end"] = os.getloadavg()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nwritten {args.output}")


if __name__ == "__main__":
    main()
