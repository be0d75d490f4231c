"""Compare the weight-free engine candidates on quality, speed and licence.

Candidates: OpenCV Telea and Navier–Stokes, pypatchmatch (MIT), patchmatch-cython (BSD-3-Clause),
OpenCV-contrib xphoto shift-map and FSR_FAST (Apache-2.0). Holes are cut out of real photos shipped
by scikit-image / scikit-learn, so the true content is known.

Quality figures per engine (mean over photos and holes):
- PSNR inside the hole (higher is closer to the truth);
- texture ratio: the standard deviation of the Laplacian inside the filled hole over that of the
  true content (1.0 = as much detail as the photo; diffusion methods fall far below 1: blur).

Prints a table and writes ``benchmarks/results/engines_compare.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np

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


def main() -> None:
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
    out = Path(__file__).resolve().parent / "results" / "engines_compare.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "note": __doc__}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
