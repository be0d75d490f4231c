"""CPU speed levers of SEM-Net, M×T and HINT, each toggled off in one process against the current code.

For every lever of a network: the full default configuration (random weights: cost only) at 256², 2 threads, the
forward with the lever and without it (the lever's function or method swapped for the plain PyTorch computation it
replaces), best of ``--repeats`` interleaved runs, and the largest output difference between the two. Prints a table
and writes ``benchmarks/results/levers.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def _levers() -> dict[str, list[tuple[str, list[tuple[Any, str, Callable[..., Any]]]]]]:
    import torch

    from inpaintstudio.models.hint import network as hint
    from inpaintstudio.models.layers import fused, ssm
    from inpaintstudio.models.mxt import network as mxt
    from inpaintstudio.models.sem_net import network as sem

    def plain_ffn(x, project_in, dwconv, project_out):
        a, b = dwconv(project_in(x)).chunk(2, dim=1)
        return project_out(fused.gelu_mul(a, b))

    def plain_spatial_ffn(x, indicator, project_in, dwconv, fusion, after, project_out):
        a, b = dwconv(project_in(x)).chunk(2, dim=1)
        return project_out(fused.gelu_mul(after(fusion(torch.cat([a, indicator], dim=1))), b))

    def plain_pointwise_depthwise(x, pointwise, depthwise, parts=1):
        return depthwise(pointwise(x)).chunk(parts, dim=1)

    def plain_gather(x, order, add_to=None):
        gathered = x.index_select(1, order)
        return gathered if add_to is None else add_to + gathered

    no_projected_scan = (ssm.Mamba, "_projected_scan", lambda self, x, z: False)
    return {
        "sem_net": [
            ("Δ's projection inside the scan", [no_projected_scan]),
            ("fused SEFN", [(sem, "spatial_gated_dconv_ffn", plain_spatial_ffn)]),
            ("back to raster order and the sum in one gather", [(sem, "gather_rows", plain_gather)]),
        ],
        "mxt": [
            ("fuse folded into the mixers' projections", [(mxt.HybridModule, "_folded_fuse_applies",
                                                           lambda self, x: False)]),
            ("fused CBFN", [(mxt, "gated_dconv_ffn", plain_ffn)]),
            ("fused q, k, v projection", [(mxt, "pointwise_depthwise", plain_pointwise_depthwise)]),
            ("Δ's projection inside the scan", [no_projected_scan]),
        ],
        "hint": [
            ("fused FFNs", [(hint, "gated_dconv_ffn", plain_ffn)]),
            ("channels-last stage inputs", [(hint, "_channels_last", lambda x: x)]),
            ("q and k norms in one pass", [(hint, "column_norms", lambda x: torch.linalg.vector_norm(x, dim=0))]),
            ("fused q, k, v projection", [(hint, "pointwise_depthwise", plain_pointwise_depthwise)]),
        ],
    }


def measure(name: str, repeats: int, threads: int) -> list[dict]:
    import torch

    from inpaintstudio import registry
    from inpaintstudio.core import loading, memory

    memory.retain_freed_memory()  # as the studio's CPU engine does
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    card = registry.get_card(name)
    module = loading.model_module(card)
    net = module.build(loading.card_config(card)).eval()
    image = torch.rand(1, 3, 256, 256)
    mask = torch.zeros(1, 1, 256, 256)
    mask[..., 64:128, 64:192] = 1
    if card.input.mask_hole_value == 0:
        mask = 1 - mask

    def run() -> dict:
        with torch.inference_mode():
            return module.predict(net, image, mask)

    rows = []
    for label, patches in _levers()[name]:
        originals = [(owner, attr, getattr(owner, attr)) for owner, attr, _ in patches]

        def lever(on: bool, originals=originals, patches=patches) -> None:
            for (owner, attr, original), (_, _, plain) in zip(originals, patches):
                setattr(owner, attr, original if on else plain)

        outputs = {}
        for on in (True, False):
            lever(on)
            outputs[on] = run()
        diff = max((outputs[True][k] - outputs[False][k]).abs().max().item() for k in outputs[True])
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(repeats):
            for on in (False, True):
                lever(on)
                start = time.perf_counter()
                run()
                times[on].append(time.perf_counter() - start)
        lever(True)
        without, with_ = min(times[False]), min(times[True])
        rows.append({"model": name, "lever": label, "without_s": round(without, 3), "with_s": round(with_, 3),
                     "ratio": round(with_ / without, 3), "max_diff": diff})
        print(f"{name:<9}{label:<52}{without:>9.2f}{with_:>9.2f}{with_ / without:>8.3f}{diff:>11.1e}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["sem_net", "mxt", "hint"], choices=["sem_net", "mxt", "hint"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(f"{'model':<9}{'lever':<52}{'without':>9}{'with':>9}{'ratio':>8}{'max diff':>11}")
    rows = [row for name in args.models for row in measure(name, args.repeats, args.threads)]
    out = HERE / "results" / "levers.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
