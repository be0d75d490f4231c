"""Gated depth-wise FFN on the CPU: the fused op against the PyTorch chain, at the shapes the networks use.

The FFN shapes (variant, input width D, hidden width F, image side) are read off one 256×256 forward of the default
HINT, M×T and SEM-Net configurations (random weights), counting how often each occurs per forward. HINT's and M×T's
FFNs are the plain gated depth-wise FFN, SEM-Net's the spatial one (SEFN: the first half, concatenated with an
indicator map, through a 1×1 fusion conv and a second depth-wise 3×3 before the gate). Each shape is then timed,
batch 1, channels-last input, ``--threads`` intra-op threads (default 2), glibc keeping freed memory as the studio's
CPU engine sets it (``core.memory.retain_freed_memory``), as

- "pytorch": 1×1 conv D -> 2F, depth-wise 3×3, (spatial: concatenation, 1×1 fusion, depth-wise 3×3), ``gelu_mul``
  (one-pass ``GELU(a)·b``), 1×1 conv F -> D: the networks' code before the fused op;
- "fused": ``fused.gated_dconv_ffn`` / ``fused.spatial_gated_dconv_ffn`` (one row-streamed pass, the hidden tensors
  never written out in full), timed at every size; below ``fused.MIN_FUSED_PIXELS`` pixels the networks keep the
  chain ("wrapper" column: which one the networks use), and the per-forward totals count it so.

The two run alternately, ``--repeats`` times after a warm-up; the table gives the best wall time of each, the best
process CPU time (less moved by other load on a shared machine), the speed-up, the fused op's matmul GFLOP/s, the
max difference relative to the output's largest value, and per network the FFNs' share of one forward ("per
forward" = sum over shapes of count × time). Writes ``benchmarks/results/ffn_cpu.json``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from inpaintstudio.core import memory  # noqa: E402
from inpaintstudio.models.layers import fused, scan_cpu  # noqa: E402

MODELS = ("hint", "mxt", "sem_net")


def network_shapes(name: str) -> collections.Counter:
    """(variant, D, F, side) of every FFN call in one 256×256 forward of the model's default network, with counts."""
    from inpaintstudio import registry
    from inpaintstudio.core import loading

    torch.manual_seed(0)
    card = registry.get_card(name)
    module = loading.model_module(card)
    net = module.build(loading.card_config(card)).eval()
    shapes: collections.Counter = collections.Counter()
    for sub in net.modules():
        if hasattr(sub, "project_in") and hasattr(sub, "dwconv") and hasattr(sub, "project_out"):
            sub.register_forward_pre_hook(lambda m, args: shapes.update(
                [("spatial" if getattr(m, "spatial", False) else "plain", m.project_in.in_channels,
                  m.project_out.in_channels, args[0].shape[-1])]))
    image = torch.rand(1, 3, 256, 256)
    mask = torch.zeros(1, 1, 256, 256)
    mask[..., 64:128, 64:192] = 1
    if card.input.mask_hole_value == 0:
        mask = 1 - mask
    with torch.inference_mode():
        module.predict(net, image, mask)
    return shapes


def pytorch_chain(x: torch.Tensor, project_in: nn.Conv2d, dwconv: nn.Conv2d, project_out: nn.Conv2d,
                  spatial: tuple | None = None) -> torch.Tensor:
    a, b = dwconv(project_in(x)).chunk(2, dim=1)
    if spatial is not None:
        indicator, fusion, after = spatial
        a = after(fusion(torch.cat([a, indicator], dim=1)))
    return project_out(fused.gelu_mul(a, b))


def time_shape(variant: str, dim: int, hidden: int, side: int, repeats: int) -> dict:
    torch.manual_seed(dim + side)
    convs = (nn.Conv2d(dim, 2 * hidden, 1, bias=False),
             nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden, bias=False),
             nn.Conv2d(hidden, dim, 1, bias=False))
    x = torch.randn(1, dim, side, side).contiguous(memory_format=torch.channels_last)
    gflop = side * side * (2 * dim * 2 * hidden + 2 * hidden * dim) / 1e9
    if variant == "spatial":
        indicator = torch.randn(1, dim, side, side).contiguous(memory_format=torch.channels_last)
        fusion = nn.Conv2d(hidden + dim, hidden, 1, bias=False)
        after = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False)
        gflop += side * side * 2 * (hidden + dim) * hidden / 1e9
        paths = {"pytorch": lambda: pytorch_chain(x, *convs, spatial=(indicator, fusion, after)),
                 "fused": lambda: fused.spatial_gated_dconv_ffn(x, indicator, convs[0], convs[1], fusion, after,
                                                                convs[2])}
    else:
        paths = {"pytorch": lambda: pytorch_chain(x, *convs), "fused": lambda: fused.gated_dconv_ffn(x, *convs)}
    wall = dict.fromkeys(paths, float("inf"))
    cpu = dict.fromkeys(paths, float("inf"))
    with torch.inference_mode():
        outputs = {name: path() for name, path in paths.items()}  # warm-up
        for _ in range(repeats):
            for name, path in paths.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                path()
                wall[name] = min(wall[name], time.perf_counter() - start)
                cpu[name] = min(cpu[name], time.process_time() - start_cpu)
    scale = outputs["pytorch"].abs().max().item()
    return {"variant": variant, "D": dim, "F": hidden, "side": side, "gflop": round(gflop, 3),
            "pytorch_ms": round(wall["pytorch"] * 1e3, 2), "fused_ms": round(wall["fused"] * 1e3, 2),
            "pytorch_cpu_ms": round(cpu["pytorch"] * 1e3, 2), "fused_cpu_ms": round(cpu["fused"] * 1e3, 2),
            "speedup": round(wall["pytorch"] / wall["fused"], 2),
            "speedup_cpu": round(cpu["pytorch"] / cpu["fused"], 2),
            "fused_gflops": round(gflop / wall["fused"], 1),
            "max_rel_diff": (outputs["fused"] - outputs["pytorch"]).abs().max().item() / scale}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    memory.retain_freed_memory()  # as the studio's CPU engine does (the chain's large temporaries reuse freed pages)
    threshold = fused.MIN_FUSED_PIXELS
    if not scan_cpu.available():
        sys.exit(f"the fused CPU library did not build: {scan_cpu.build_info()['error']}")
    counts = {name: network_shapes(name) for name in args.models}
    shapes = sorted({shape for per_model in counts.values() for shape in per_model},
                    key=lambda s: (s[0], -s[3], s[1], s[2]))
    load = [round(v, 2) for v in os.getloadavg()]  # other load on the machine moves the wall times
    fused.MIN_FUSED_PIXELS = 1  # time the fused op at every size
    rows = [time_shape(*shape, args.repeats) for shape in shapes]
    fused.MIN_FUSED_PIXELS = threshold
    for row in rows:
        row["wrapper"] = "fused" if row["side"] ** 2 >= threshold else "pytorch"
    by_shape = {(row["variant"], row["D"], row["F"], row["side"]): row for row in rows}

    print(f"{args.threads} threads, best of {args.repeats}; ms = wall time, cpu = process CPU time; "
          f"load average before the timings {load}")
    print(f"{'variant':<9}{'D':>5}{'F':>6}{'side':>6}{'GFLOP':>7}{'pytorch ms':>12}{'fused ms':>10}{'speed-up':>10}"
          f"{'pytorch cpu':>13}{'fused cpu':>11}{'speed-up':>10}{'GFLOP/s':>9}{'max rel diff':>14}{'wrapper':>9}"
          "  used by")
    for row in rows:
        key = (row["variant"], row["D"], row["F"], row["side"])
        users = ", ".join(f"{name}×{counts[name][key]}" for name in args.models if counts[name][key])
        print(f"{row['variant']:<9}{row['D']:>5}{row['F']:>6}{row['side']:>6}{row['gflop']:>7.2f}{row['pytorch_ms']:>12.1f}"
              f"{row['fused_ms']:>10.1f}{row['speedup']:>10.2f}{row['pytorch_cpu_ms']:>13.1f}"
              f"{row['fused_cpu_ms']:>11.1f}{row['speedup_cpu']:>10.2f}{row['fused_gflops']:>9.0f}"
              f"{row['max_rel_diff']:>14.1e}{row['wrapper']:>9}  {users}")
    totals = {}
    for name in args.models:
        total = {path: sum(n * by_shape[key][f"{by_shape[key]['wrapper'] if path == 'fused' else path}_ms"]
                           for key, n in counts[name].items())
                 for path in ("pytorch", "fused")}
        totals[name] = {"pytorch_ms": round(total["pytorch"], 1), "fused_ms": round(total["fused"], 1),
                        "calls": sum(counts[name].values())}
        print(f"{name}: {totals[name]['calls']} FFN calls per 256×256 forward, {total['pytorch']:.0f} ms "
              f"(pytorch) -> {total['fused']:.0f} ms (fused)")
    out = HERE / "results" / "ffn_cpu.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"threads": args.threads, "repeats": args.repeats, "load_average": load, "rows": rows,
                               "per_forward": totals,
                               "counts": {name: [[*key, n] for key, n in counts[name].items()]
                                          for name in args.models}}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
