"""Forward cost of every deep model's default configuration.

For each registered deep card (or the ones named with ``--models``): build the default network
(random weights: this measures cost, not quality, and never touches a user's image), run one warm-up
and then timed forwards at 256×256 (512×512 for ``tsgl_512``, its fixed size) through the
model's own ``predict``, in a subprocess so the peak RSS is the model's own. On CUDA (when present)
it also times float32 and bf16 autocast.

Prints a table and writes ``benchmarks/results/models.json``.

``--floor`` instead compares each network's default forward (CPU, ``--threads`` threads, 2 by default) with its
compute floor: the GFLOP of its convolutions and matrix products (``torch.utils.flop_counter.FlopCounterMode`` over
one forward of the plain PyTorch network: autograd on, so every fused inference path falls back and a fused op
cannot hide a product from the count) divided by this machine's float32 matmul rate, measured in the same process
(best of a 4096² ``a @ b`` before every timed forward and after the last), so the ratio "× floor" is comparable across
runs even when absolute times are not; "× (CPU)" is the same ratio in process CPU time, which a shared machine's load
moves less. LaMa runs at 512² (its usual size), the others as above. Peak memory is the worker's peak RSS before the
count. Writes ``benchmarks/results/models_floor.json``; with ``--before CHECKOUT`` (another checkout of the project,
for example ``git worktree add /tmp/before <commit>``) every network runs on that checkout and then on this one,
back to back, and the rows go to ``models_floor_before_after.json``.

``--versus-default`` instead times LaMa on the CPU at full resolution (512² and 1024² by default, ``--sizes``)
against the studio's default engine in the same run, on the same photo and the same holes (an ellipse of about
5 % of the image and a thin stroke): LaMa through its engine on the whole image (the card runs it at full
resolution), the default engine through the pipeline as the studio calls it. Each case runs in its own
subprocess (peak RSS per case). Writes ``benchmarks/results/lama_vs_default.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The package measured: this checkout, or another one (``--floor --before``'s workers import the package from it).
sys.path.insert(0, os.environ.get("INPAINTSTUDIO_BENCH_ROOT", str(HERE.parent)))


def worker(name: str, device: str, dtype: str, repeats: int) -> dict:
    import torch

    from inpaintstudio import registry
    from inpaintstudio.core import loading

    torch.manual_seed(0)
    card = registry.get_card(name)
    module = loading.model_module(card)
    net = module.build(loading.card_config(card)).eval().to(device)
    size = card.input.fixed_size or 256  # the papers report 256×256 (tsgl_512: its fixed 512)
    image = torch.rand(1, 3, size, size, device=device)
    mask = torch.zeros(1, 1, size, size, device=device)
    mask[..., size // 4 : size // 2, size // 4 : 3 * size // 4] = 1
    low, high = card.input.value_range
    image = image * (high - low) + low
    if card.input.mask_hole_value == 0:
        mask = 1 - mask
    autocast = torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=dtype == "bf16")

    def forward() -> None:
        with torch.inference_mode(), autocast:
            module.predict(net, image, mask)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    forward()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        forward()
        times.append(time.perf_counter() - start)
    row = {
        "model": name,
        "device": device,
        "dtype": dtype,
        "size": size,
        "parameters": sum(p.numel() for p in net.parameters()),
        "seconds": round(min(times), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if device.startswith("cuda"):
        row["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return row


FLOOR_SIZES = {"lama": 512}
MATMUL_SIDE = 4096


def matmul_rates(repeats: int = 3) -> tuple[float, float]:
    """Best float32 rate of a MATMUL_SIDE² ``a @ b`` on the current threads: (GFLOP per second of wall time, GFLOP
    per second of process CPU time)."""
    import torch

    a, b = torch.rand(MATMUL_SIDE, MATMUL_SIDE), torch.rand(MATMUL_SIDE, MATMUL_SIDE)
    out = torch.empty(MATMUL_SIDE, MATMUL_SIDE)
    torch.mm(a, b, out=out)
    wall, cpu = _best(lambda: torch.mm(a, b, out=out), repeats)
    gflop = 2 * MATMUL_SIDE**3 / 1e9
    return gflop / wall, gflop / cpu


def _best(run: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Shortest wall time and shortest process CPU time of ``repeats`` calls."""
    wall, cpu = float("inf"), float("inf")
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        wall, cpu = min(wall, time.perf_counter() - start), min(cpu, time.process_time() - start_cpu)
    return wall, cpu


def floor_worker(name: str, repeats: int, threads: int) -> dict:
    """Time, GFLOP, compute floor and peak RSS of one network's default CPU forward (see the module docstring)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from inpaintstudio import registry
    from inpaintstudio.core import loading

    try:  # as the studio's CPU engine does (absent before the memory module existed: a "before" run)
        from inpaintstudio.core import memory

        memory.retain_freed_memory()
    except ImportError:
        pass
    torch.set_num_threads(threads)
    torch.manual_seed(0)  # random weights: this measures cost only
    card = registry.get_card(name)
    module = loading.model_module(card)
    net = module.build(loading.card_config(card)).eval()
    size = card.input.fixed_size or FLOOR_SIZES.get(name, 256)
    image = torch.rand(1, 3, size, size)
    mask = torch.zeros(1, 1, size, size)
    mask[..., size // 4 : size // 2, size // 4 : 3 * size // 4] = 1
    low, high = card.input.value_range
    image = image * (high - low) + low
    if card.input.mask_hole_value == 0:
        mask = 1 - mask

    def forward() -> None:
        with torch.inference_mode():
            module.predict(net, image, mask)

    forward()  # warm-up: kernel builds, caches, first-touch of the weights
    # Interleaved: a matmul rate before every forward, the best of each kept (a shared machine's load varies).
    rates, times = [], []
    for _ in range(repeats):
        rates.append(matmul_rates())
        times.append(_best(forward, 1))
    rates.append(matmul_rates())
    rate, rate_cpu = max(r[0] for r in rates), max(r[1] for r in rates)
    seconds, cpu_seconds = min(t[0] for t in times), min(t[1] for t in times)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the count's autograd forward
    # The work is counted on the plain PyTorch network (autograd on: every fused inference path falls back), so
    # the floor stays that of the network itself when a fused op hides a product from the counter.
    counter = FlopCounterMode(display=False)
    with counter, torch.enable_grad():
        module.predict(net, image, mask)
    gflop = counter.get_total_flops() / 1e9
    floor = gflop / rate
    return {
        "model": name,
        "size": size,
        "threads": threads,
        "seconds": round(seconds, 3),
        "gflop": round(gflop, 1),
        "matmul_gflops": round(rate, 1),
        "floor_seconds": round(floor, 3),
        "ratio": round(seconds / floor, 2),
        # the same ratio in CPU time (forward CPU-seconds over the matmul's CPU-seconds for its GFLOP): waiting
        # for a core that another process holds counts in neither, so it moves less with the machine's load
        "cpu_ratio": round(cpu_seconds / (gflop / rate_cpu), 2),
        "peak_rss_mb": round(peak_mb, 1),
    }


def _floor_row(name: str, repeats: int, threads: int, root: str | None = None) -> dict | str:
    """One network's ``--floor-worker`` row (a subprocess), run on this checkout or on the one at ``root``; the error's
    last line when it fails."""
    env = dict(os.environ, INPAINTSTUDIO_BENCH_ROOT=root) if root else None
    cmd = [sys.executable, __file__, "--floor-worker", name, str(repeats), str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=root or None)
    if proc.returncode != 0:
        return (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def floor_table(names: list[str], repeats: int, threads: int, before: str | None = None) -> None:
    """The floor table; with ``before`` (another checkout), each network's worker runs on it first, then on this one,
    back to back, and the rows are written to ``models_floor_before_after.json``."""
    rows = []
    print(f"{'model':<12}{'code':<8}{'size':>6}{'seconds':>9}{'GFLOP':>8}{'GFLOP/s':>9}{'floor s':>9}{'x floor':>9}"
          f"{'x (CPU)':>9}{'peak RSS MB':>13}")
    trees = [("before", before), ("after", None)] if before else [("", None)]
    for name in names:
        for label, root in trees:
            row = _floor_row(name, repeats, threads, root)
            if isinstance(row, str):
                print(f"{name:<12}{label:<8} failed: {row}")
                continue
            row["code"] = label or "this"
            rows.append(row)
            print(f"{name:<12}{label:<8}{row['size']:>6}{row['seconds']:>9.2f}{row['gflop']:>8.0f}"
                  f"{row['matmul_gflops']:>9.0f}{row['floor_seconds']:>9.2f}{row['ratio']:>9.2f}{row['cpu_ratio']:>9.2f}"
                  f"{row['peak_rss_mb']:>13.0f}", flush=True)
    out = HERE / "results" / ("models_floor_before_after.json" if before else "models_floor.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows}, indent=1))
    print(f"wrote {out}")


def _photo_and_holes(size: int):
    """A real photo (scikit-image's ``chelsea``) resized to size×size and a boolean hole mask: an ellipse of about
    5 % of the image plus a 6-pixel diagonal stroke."""
    import cv2
    import numpy as np
    from skimage import data

    photo = cv2.resize(data.chelsea(), (size, size), interpolation=cv2.INTER_AREA)
    mask = np.zeros((size, size), np.uint8)
    cv2.ellipse(mask, (size // 2, size // 2), (size // 7, size // 9), 30, 0, 360, 1, -1)
    cv2.line(mask, (size // 10, size // 8), (size // 3, size // 2), 1, max(2, size // 85))
    return photo, mask.astype(bool)


def versus_worker(name: str, size: int, repeats: int, threads: int) -> dict:
    """Seconds (best of ``repeats`` after a warm-up) for one engine on the photo and holes of ``size``;
    ``threads`` > 0 sets torch's and OpenCV's thread count."""
    import cv2
    import numpy as np
    import torch

    from inpaintstudio import registry
    from inpaintstudio.core import engines, loading, pipeline

    if threads > 0:
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
    photo, mask = _photo_and_holes(size)
    card = registry.get_card(name)
    if card.kind == "deep":
        torch.manual_seed(0)  # random weights: this measures cost only and never reaches a user's image
        module = loading.model_module(card)
        engine = engines.TorchEngine(card, module.build(loading.card_config(card)), "cpu", module.predict)
        image = photo.astype(np.float32) / 255

        def fill() -> None:
            engine.run(image, mask)
    else:
        def fill() -> None:
            pipeline.inpaint(photo, mask, name)

    fill()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fill()
        times.append(time.perf_counter() - start)
    return {
        "model": name,
        "size": size,
        "hole_fraction": round(float(mask.mean()), 4),
        "seconds": round(min(times), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "threads": torch.get_num_threads(),
    }


def versus_default(sizes: list[int], repeats: int, threads: int) -> None:
    from inpaintstudio import registry

    names = ["lama", registry.DEFAULT_MODEL]
    rows = []
    print(f"{'size':>6}{'hole %':>8}  {'engine':<12}{'seconds':>9}{'peak RSS MB':>13}{'threads':>9}")
    for size in sizes:
        for name in names:
            cmd = [sys.executable, __file__, "--versus-worker", name, str(size), str(repeats), str(threads)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{size:>6}{'':>8}  {name:<12} failed: {proc.stderr.strip().splitlines()[-1]}")
                continue
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{size:>6}{100 * row['hole_fraction']:>8.1f}  {name:<12}{row['seconds']:>9.3f}"
                  f"{row['peak_rss_mb']:>13.1f}{row['threads']:>9}")
        pair = [r for r in rows if r["size"] == size]
        if len(pair) == 2:
            print(f"{'':>16}lama / {names[1]}: {pair[0]['seconds'] / pair[1]['seconds']:.1f}x")
    out = HERE / "results" / "lama_vs_default.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows}, indent=1))
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", help="model names (default: every deep model)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--worker", nargs=4, metavar=("MODEL", "DEVICE", "DTYPE", "REPEATS"))
    parser.add_argument("--versus-default", action="store_true",
                        help="LaMa at full resolution against the default engine on the same holes (CPU)")
    parser.add_argument("--sizes", nargs="*", type=int, default=[512, 1024], help="sides for --versus-default")
    parser.add_argument("--threads", type=int, default=0,
                        help="intra-op threads (--versus-default: 0 = default; --floor: 0 = 2)")
    parser.add_argument("--floor", action="store_true",
                        help="CPU forward time against the compute floor (GFLOP / matmul rate), with peak memory")
    parser.add_argument("--before", metavar="CHECKOUT",
                        help="--floor: also time each network on another checkout of the project (e.g. a git "
                             "worktree of an older commit), back to back with this one")
    parser.add_argument("--floor-worker", nargs=3, metavar=("MODEL", "REPEATS", "THREADS"))
    parser.add_argument("--versus-worker", nargs=4, metavar=("MODEL", "SIZE", "REPEATS", "THREADS"))
    args = parser.parse_args()
    if args.versus_worker:
        name, size, repeats, threads = args.versus_worker
        print(json.dumps(versus_worker(name, int(size), int(repeats), int(threads))))
        return
    if args.floor_worker:
        name, repeats, threads = args.floor_worker
        print(json.dumps(floor_worker(name, int(repeats), int(threads))))
        return
    if args.floor:
        from inpaintstudio import registry

        names = args.models or [c.name for c in registry.list_cards() if c.kind == "deep" and ":" not in c.name]
        floor_table(names, args.repeats, args.threads or 2, args.before)
        return
    if args.versus_default:
        versus_default(args.sizes, args.repeats, args.threads)
        return
    if args.worker:
        name, device, dtype, repeats = args.worker
        print(json.dumps(worker(name, device, dtype, int(repeats))))
        return

    import torch

    from inpaintstudio import registry

    names = args.models or [c.name for c in registry.list_cards() if c.kind == "deep"]
    setups = [("cpu", "fp32")]
    if torch.cuda.is_available():
        setups += [("cuda", "fp32"), ("cuda", "bf16")]
    rows = []
    print(f"{'model':<12}{'device':<7}{'dtype':<6}{'size':>6}{'params':>14}{'seconds':>9}{'peak RSS MB':>13}")
    for name in names:
        for device, dtype in setups:
            cmd = [sys.executable, __file__, "--worker", name, device, dtype, str(args.repeats)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{name:<12}{device:<7}{dtype:<6} failed: {proc.stderr.strip().splitlines()[-1]}")
                continue
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{name:<12}{device:<7}{dtype:<6}{row['size']:>6}{row['parameters']:>14,}{row['seconds']:>9.3f}"
                  f"{row['peak_rss_mb']:>13.1f}")
    out = HERE / "results" / "models.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
