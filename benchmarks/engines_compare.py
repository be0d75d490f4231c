"""Compare the weight-free engine candidates on quality, speed and licence, and the default engine
before and after its multi-scale fill at full resolution.

Part 1, candidates: OpenCV Telea and Navier–Stokes, pypatchmatch (MIT), patchmatch-cython
(BSD-3-Clause), OpenCV-contrib xphoto shift-map and FSR_FAST (Apache-2.0). Holes are cut out of
real photos shipped by scikit-image / scikit-learn, so the true content is known.

Part 2, full resolution: the default engine through the pipeline, *before* (regions over 768 px
filled by pypatchmatch at 384 px and upscaled, as the studio did until the multi-scale fill) and
*after* (the current card: coarse fill refined level by level up to full resolution), in the same
run on the same cases: photos of at least 12 MP with one elliptical hole of 0.5, 2, 5 or 10 % of
the photo, and the same photos at 1 MP with a hole of 2, 5, 10 or 20 % (at 1 MP only regions over
768 px, the larger holes, take the multi-scale path; smaller ones are filled as before). The
photos come from Debian's ``mate-backgrounds`` (GPL-2+; ``apt-get install mate-backgrounds``):
its 17.9 MP abstract painting at its own size and nature
photos upscaled to at least 12 MP (Lanczos; their finest detail is therefore the upscale's).
Without that package the 12 MP cases are skipped and the 1 MP cases use scikit-image photos.

Quality figures (mean over photos and holes):
- PSNR inside the hole (higher is closer to the truth);
- texture ratio: the standard deviation of the Laplacian inside the filled hole over that of the
  true content (1.0 = as much detail as the photo; diffusion methods fall far below 1: blur).
Seconds are wall-clock engine time (``pipeline.inpaint``); CPU seconds are the process's CPU time,
less sensitive to other work on the machine.

Prints tables and writes ``benchmarks/results/engines_compare.json``. ``--crops PATH`` also writes
before/after crops of one 12 MP case.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

LICENCES = {
    "opencv_telea": "Apache-2.0",
    "opencv_ns": "Apache-2.0",
    "pypatchmatch": "MIT",
    "patchmatch_cython": "BSD-3-Clause",
    "xphoto_shiftmap": "Apache-2.0",
    "xphoto_fsr_fast": "Apache-2.0",
}


def photos() -> dict[str, np.ndarray]:
    from skimage import data

    out = {"astronaut": data.astronaut(), "coffee": data.coffee(), "chelsea": data.chelsea()}
    try:
        from sklearn.datasets import load_sample_images

        for name, img in zip(("china", "flower"), load_sample_images().images):
            out[name] = img
    except ImportError:
        pass
    return out


def holes(shape: tuple[int, int], count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    h, w = shape
    result = []
    for _ in range(count):
        mask = np.zeros((h, w), np.uint8)
        side = int(min(h, w) * rng.uniform(0.10, 0.18))
        y, x = int(rng.integers(side, h - 2 * side)), int(rng.integers(side, w - 2 * side))
        cv2.ellipse(mask, (x + side // 2, y + side // 2), (side // 2, side // 3), float(rng.uniform(0, 180)),
                    0, 360, 255, -1)
        result.append(mask > 0)
    return result


def run_engine(name: str, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m8 = mask.astype(np.uint8) * 255
    if name == "opencv_telea":
        return cv2.inpaint(image, m8, 5, cv2.INPAINT_TELEA)
    if name == "opencv_ns":
        return cv2.inpaint(image, m8, 5, cv2.INPAINT_NS)
    if name == "pypatchmatch":
        from patchmatch import patch_match

        patch_match.set_random_seed(0)
        return patch_match.inpaint(image, m8, patch_size=3)
    if name == "patchmatch_cython":
        from patchmatch_cython import inpaint_pyramid

        return inpaint_pyramid(image, mask, patch_size=5, seed=0)
    if name in ("xphoto_shiftmap", "xphoto_fsr_fast"):
        known = (~mask).astype(np.uint8)
        dst = np.zeros_like(image)
        algo = cv2.xphoto.INPAINT_SHIFTMAP if name == "xphoto_shiftmap" else cv2.xphoto.INPAINT_FSR_FAST
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        cv2.xphoto.inpaint(bgr, known, dst, algo)
        return cv2.cvtColor(dst, cv2.COLOR_BGR2RGB)
    raise KeyError(name)


def hole_psnr(truth: np.ndarray, filled: np.ndarray, mask: np.ndarray) -> float:
    diff = truth[mask].astype(np.float64) - filled[mask].astype(np.float64)
    mse = float(np.mean(diff**2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def texture_ratio(truth: np.ndarray, filled: np.ndarray, mask: np.ndarray) -> float:
    inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    lap_t = cv2.Laplacian(cv2.cvtColor(truth, cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F)
    lap_f = cv2.Laplacian(cv2.cvtColor(filled, cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F)
    return float(lap_f[inner].std() / max(lap_t[inner].std(), 1e-6))


def compare_candidates() -> list[dict]:
    engines = list(LICENCES)
    stats: dict[str, dict[str, list[float]]] = {e: {"psnr": [], "texture": [], "seconds": []} for e in engines}
    for pi, image in enumerate(photos().values()):
        for mask in holes(image.shape[:2], 2, seed=pi):
            for engine in engines:
                start = time.perf_counter()
                filled = run_engine(engine, image, mask)
                stats[engine]["seconds"].append(time.perf_counter() - start)
                stats[engine]["psnr"].append(hole_psnr(image, filled, mask))
                stats[engine]["texture"].append(texture_ratio(image, filled, mask))
    rows = []
    for engine in engines:
        s = stats[engine]
        rows.append({
            "engine": engine,
            "licence": LICENCES[engine],
            "hole_psnr_db": round(float(np.mean(s["psnr"])), 2),
            "texture_ratio": round(float(np.mean(s["texture"])), 3),
            "seconds_mean": round(float(np.mean(s["seconds"])), 3),
            "cases": len(s["psnr"]),
        })
    print(f"{'engine':<20}{'licence':<14}{'hole PSNR':>10}{'texture':>9}{'seconds':>9}")
    for r in rows:
        print(f"{r['engine']:<20}{r['licence']:<14}{r['hole_psnr_db']:>10.2f}{r['texture_ratio']:>9.3f}"
              f"{r['seconds_mean']:>9.3f}")
    return rows


# ------------------------------------------------------------------------------- full resolution
MATE = Path("/usr/share/backgrounds/mate")
# (file, scale to reach >= 12 MP); the painting is used at its own size
LARGE_SOURCES = (
    ("abstract/Elephants_5640x3172.jpg", 1.0),
    ("nature/Wood.jpg", 1.6),
    ("nature/Blinds.jpg", 2.3),
    ("nature/Dune.jpg", 2.75),
)
CROP_PHOTOS = ("Elephants", "Blinds", "Dune")
HOLE_FRACTIONS = {"12MP+": (0.005, 0.02, 0.05, 0.10), "1MP": (0.02, 0.05, 0.10, 0.20)}


def _read_rgb(path: Path) -> np.ndarray | None:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def large_photos() -> dict[str, np.ndarray]:
    """Photos of at least 12 MP, or nothing when mate-backgrounds is not installed."""
    out = {}
    for name, scale in LARGE_SOURCES:
        image = _read_rgb(MATE / name)
        if image is None:
            continue
        if scale != 1.0:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_LANCZOS4)
        out[Path(name).stem.split("_")[0]] = image
    return out


def megapixel_photos() -> dict[str, np.ndarray]:
    """The large photos (or scikit-image's when those are missing) resized to about 1 MP."""
    sources = {Path(n).stem.split("_")[0]: _read_rgb(MATE / n) for n, _ in LARGE_SOURCES}
    sources = {k: v for k, v in sources.items() if v is not None}
    if not sources:
        from skimage import data

        sources = {"astronaut": data.astronaut(), "coffee": data.coffee(), "chelsea": data.chelsea()}
    out = {}
    for name, image in sources.items():
        scale = np.sqrt(1_000_000 / (image.shape[0] * image.shape[1]))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LANCZOS4
        out[name] = cv2.resize(image, None, fx=scale, fy=scale, interpolation=interpolation)
    return out


def elliptical_hole(shape: tuple[int, int], fraction: float, seed: int) -> np.ndarray:
    """One filled ellipse (axes 3:2, random angle) covering ``fraction`` of the image."""
    rng = np.random.default_rng(seed)
    h, w = shape
    a = np.sqrt(fraction * h * w / np.pi * 1.5)
    b = fraction * h * w / np.pi / a
    cy = int(rng.uniform(a + 8, h - a - 8)) if h > 2 * a + 16 else h // 2
    cx = int(rng.uniform(a + 8, w - a - 8)) if w > 2 * a + 16 else w // 2
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (cx, cy), (round(a), round(b)), float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return mask > 0


def before_engine():
    """The default engine as it was: regions over 768 px filled by pypatchmatch at 384 px, upscaled.

    Run with the ``resize`` strategy, which for these cases (one hole larger than a 768 px tile can
    take) is what ``auto`` did then.
    """
    from inpaintstudio import registry
    from inpaintstudio.classical import engines as classical

    card = replace(registry.get_card("patchmatch"), working_size=384, tile_size=768)
    return classical.make_engine(card, multiscale=False)


def timed_fill(image: np.ndarray, mask: np.ndarray, engine=None) -> tuple[np.ndarray, float, float]:
    from inpaintstudio.core import pipeline

    options = {"strategy": "resize"} if engine is not None else None
    wall, cpu = time.perf_counter(), time.process_time()
    result = pipeline.inpaint(image, mask, "patchmatch", engine=engine, options=options)
    return result.image, time.perf_counter() - wall, time.process_time() - cpu


def compare_full_resolution(groups: dict[str, dict[str, np.ndarray]],
                            fractions: dict[str, tuple[float, ...]], repeats: int = 1) -> list[dict]:
    old = before_engine()
    cases = []
    for group, photos_of_group in groups.items():
        for pi, (name, image) in enumerate(photos_of_group.items()):
            for fraction in fractions[group]:
                mask = elliptical_hole(image.shape[:2], fraction, seed=pi * 100 + int(fraction * 1000))
                case = {"group": group, "photo": name, "megapixels": round(image.shape[0] * image.shape[1] / 1e6, 1),
                        "hole_percent": fraction * 100, "hole_pixels": int(mask.sum())}
                for label, engine in (("before", old), ("after", None)):
                    walls, cpus = [], []
                    for _ in range(repeats):
                        filled, wall, cpu = timed_fill(image, mask, engine)
                        walls.append(wall)
                        cpus.append(cpu)
                    assert np.array_equal(filled[~mask], image[~mask]), "pixels outside the hole changed"
                    case[label] = {"hole_psnr_db": round(hole_psnr(image, filled, mask), 2),
                                   "texture_ratio": round(texture_ratio(image, filled, mask), 3),
                                   "seconds": round(min(walls), 2), "cpu_seconds": round(min(cpus), 2)}
                print(f"{group:<6}{name:<11}{case['megapixels']:>5.1f} MP {case['hole_percent']:>4.1f} %  "
                      + "  ".join(f"{k}: {v['hole_psnr_db']:.2f} dB tex {v['texture_ratio']:.2f} "
                                  f"{v['seconds']:.2f} s (cpu {v['cpu_seconds']:.2f})"
                                  for k, v in case.items() if isinstance(v, dict)), flush=True)
                cases.append(case)
    return cases


def summarise(cases: list[dict]) -> list[dict]:
    rows = []
    for group in dict.fromkeys(c["group"] for c in cases):
        for percent in dict.fromkeys(c["hole_percent"] for c in cases):
            chosen = [c for c in cases if c["group"] == group and c["hole_percent"] == percent]
            if not chosen:
                continue
            row = {"group": group, "hole_percent": percent, "cases": len(chosen)}
            for label in ("before", "after"):
                for key in ("hole_psnr_db", "texture_ratio", "seconds", "cpu_seconds"):
                    row[f"{label}_{key}"] = round(float(np.mean([c[label][key] for c in chosen])), 3)
            rows.append(row)
    print(f"\n{'size':<6}{'hole':>6}{'n':>3} | {'PSNR before':>11}{'after':>7} | {'texture before':>14}{'after':>7} | "
          f"{'s before':>8}{'after':>7}{'ratio':>7} | {'cpu before':>10}{'after':>7}")
    for r in rows:
        print(f"{r['group']:<6}{r['hole_percent']:>5.1f}%{r['cases']:>3} | {r['before_hole_psnr_db']:>11.2f}"
              f"{r['after_hole_psnr_db']:>7.2f} | {r['before_texture_ratio']:>14.3f}{r['after_texture_ratio']:>7.3f} | "
              f"{r['before_seconds']:>8.2f}{r['after_seconds']:>7.2f}"
              f"{r['after_seconds'] / max(r['before_seconds'], 1e-9):>7.2f} | "
              f"{r['before_cpu_seconds']:>10.2f}{r['after_cpu_seconds']:>7.2f}")
    return rows


def write_crops(path: Path, image: np.ndarray, mask: np.ndarray, side: int = 512) -> None:
    """Truth | before | after: a 1:1 crop at the hole's centre (top) and the whole hole (bottom)."""
    before, _, _ = timed_fill(image, mask, before_engine())
    after, _, _ = timed_fill(image, mask)
    ys, xs = np.nonzero(mask)
    cy, cx = int(ys.mean()), int(xs.mean())
    y0 = int(np.clip(cy - side // 2, 0, image.shape[0] - side))
    x0 = int(np.clip(cx - side // 2, 0, image.shape[1] - side))
    by0, by1, bx0, bx1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    pad = (by1 - by0) // 8
    by0, by1 = max(0, by0 - pad), min(image.shape[0], by1 + pad)
    bx0, bx1 = max(0, bx0 - pad), min(image.shape[1], bx1 + pad)
    rows = []
    for crop in ((slice(y0, y0 + side), slice(x0, x0 + side)), (slice(by0, by1), slice(bx0, bx1))):
        tiles = []
        for picture in (image, before, after):
            tile = picture[crop]
            if tile.shape[:2] != (side, side):
                scale = side / max(tile.shape[:2])
                tile = cv2.resize(tile, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                tile = cv2.copyMakeBorder(tile, 0, side - tile.shape[0], 0, side - tile.shape[1],
                                          cv2.BORDER_CONSTANT, value=(255, 255, 255))
            tiles.append(tile)
        rows.append(np.concatenate(tiles, axis=1))
    sheet = np.concatenate(rows, axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"wrote {path} (columns: truth, before, after; top: 1:1 crop at the hole's centre, bottom: the hole)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-candidates", action="store_true", help="only the full-resolution comparison")
    parser.add_argument("--skip-full", action="store_true", help="only the candidate comparison")
    parser.add_argument("--photos", type=int, default=len(LARGE_SOURCES), help="photos per size (default: all)")
    parser.add_argument("--holes", type=float, nargs="+",
                        help="hole sizes in percent of the photo (default: 0.5 2 5 10 at 12 MP, 2 5 10 20 at 1 MP)")
    parser.add_argument("--repeats", type=int, default=1, help="time each fill this many times, keep the fastest")
    parser.add_argument("--crops", type=Path, metavar="DIR",
                        help="write DIR/fill-multiscale-<photo>.png: before/after crops of 12 MP photos, 5 %% hole")
    args = parser.parse_args(argv)
    report: dict = {"note": __doc__}
    if not args.skip_candidates:
        report["candidates"] = compare_candidates()
    if not args.skip_full:
        groups = {"12MP+": dict(list(large_photos().items())[: args.photos]),
                  "1MP": dict(list(megapixel_photos().items())[: args.photos])}
        if not groups["12MP+"]:
            print("mate-backgrounds is not installed: the 12 MP cases are skipped")
        groups = {k: v for k, v in groups.items() if v}
        fractions = {g: tuple(h / 100 for h in args.holes) if args.holes else HOLE_FRACTIONS[g] for g in groups}
        report["full_resolution_cases"] = compare_full_resolution(groups, fractions, args.repeats)
        report["full_resolution"] = summarise(report["full_resolution_cases"])
    if len(report) > 1:
        out = Path(__file__).resolve().parent / "results" / "engines_compare.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1))
        print(f"wrote {out}")
    if args.crops:
        for pi, (name, image) in enumerate(large_photos().items()):
            if name in CROP_PHOTOS:
                mask = elliptical_hole(image.shape[:2], 0.05, seed=pi * 100 + 50)  # the 5 % case above
                write_crops(args.crops / f"fill-multiscale-{name.lower()}.png", image, mask)


if __name__ == "__main__":
    main()
