"""Forward cost of every deep model's default configuration.

For each registered deep card (or the ones named with ``--models``): build the default network
(random weights: this measures cost, not quality, and never touches a user's image), run one warm-up
and then timed forwards at 256×256 (512×512 for ``tsgl_512``, its fixed size) through the
model's own ``predict``, in a subprocess so the peak RSS is the model's own. On CUDA (when present)
it also times float32 and bf16 autocast.

Prints a table and writes ``benchmarks/results/models.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def worker(name: str, device: str, dtype: str, repeats: int) -> dict:
    import torch

    from inpaintstudio import loading, registry

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", help="model names (default: every deep model)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--worker", nargs=4, metavar=("MODEL", "DEVICE", "DTYPE", "REPEATS"))
    args = parser.parse_args()
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
