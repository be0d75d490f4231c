"""How long a studio user waits, measured in a real browser (Playwright + Debian Chromium, headless).

Steps (Edit tab): upload → editable (the status names the photo and the editor canvas shows it),
click Run → result visible (gallery image and status), next to the engine's own time from the
status; Grow, Use result as new base and Undo → their status line. Prints a table and writes JSON
to ``benchmarks/results/ui_latency-<label>.json``.

    python benchmarks/ui_latency.py [--label after] [--sizes 1732x1155 5184x3456] [--model patchmatch]

Needs ``scripts/install_browser.sh``. Photos are synthetic but textured (smooth colour fields + grain).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(30, 220, size=(height // 64 + 2, width // 64 + 2, 3)).astype(np.float32)
    rgb = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    rgb += rng.normal(0, 10, size=(height, width, 1)).astype(np.float32)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _canvas_has_photo(page) -> bool:
    shot = page.locator("#editor canvas").first.screenshot()
    grey = cv2.imdecode(np.frombuffer(shot, np.uint8), cv2.IMREAD_GRAYSCALE)
    return float(grey.std()) > 20.0  # an empty canvas is flat


def _until(check, timeout: float = 300.0, poll: float = 0.05) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if check():
            return time.perf_counter() - start
        time.sleep(poll)
    raise TimeoutError("step did not finish")


def measure(url: str, size: tuple[int, int], model: str, folder: Path, run_steps: bool) -> dict:
    from playwright.sync_api import sync_playwright

    width, height = size
    path = folder / f"photo-{width}x{height}.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(photo(width, height), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    mask = np.zeros((height, width), np.uint8)
    mask[height // 3:height // 3 + height // 10, width // 3:width // 3 + width // 10] = 255
    mask_path = folder / f"mask-{width}x{height}.png"
    cv2.imwrite(str(mask_path), mask)
    row: dict = {"photo": f"{width}×{height}", "megapixels": round(width * height / 1e6, 1)}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1500})
        page.set_default_timeout(300_000)
        page.goto(url)
        page.wait_for_selector("#editor canvas")
        status = page.locator("#status")
        # upload → editable: the file is sent, then the server opens it and the editor draws its copy
        start = time.perf_counter()
        page.locator("#photo-upload input[type=file]").set_input_files(str(path))
        status.get_by_text(f"Photo: {width}×{height} px").wait_for()
        _until(lambda: _canvas_has_photo(page))
        row["upload_to_editable_s"] = round(time.perf_counter() - start, 2)
        if run_steps:
            page.locator("#mask-upload input[type=file]").set_input_files(str(mask_path))
            status.get_by_text("Mask loaded").wait_for()
            for label, _ in [(f"{model} (ready)", None)]:
                if model != "patchmatch":
                    page.locator("#models").get_by_text("patchmatch (ready)").click()
                    page.locator("#models").get_by_text(label).click()
            start = time.perf_counter()
            page.locator("#run").click()
            status.get_by_text(f"{model}").first.wait_for()
            page.locator("#gallery img").first.wait_for(state="visible")
            page.locator("#slider img").first.wait_for(state="visible")
            row["click_to_result_s"] = round(time.perf_counter() - start, 2)
            found = re.search(rf"{re.escape(model)}\**: ([0-9.]+) s", status.inner_text())
            row["engine_s"] = float(found.group(1)) if found else None
            for name, button, text in (("grow_s", "Grow", "Mask after grow"),
                                       ("use_as_base_s", "Use result as new base", "is the new base"),
                                       ("undo_s", "Undo", "Undone")):
                start = time.perf_counter()
                page.get_by_text(button, exact=True).first.click()  # the text button, not the editor's icon
                status.get_by_text(text).first.wait_for()
                row[name] = round(time.perf_counter() - start, 2)
        browser.close()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", default="current", help="name of this measurement (the JSON file's suffix)")
    parser.add_argument("--sizes", nargs="+", default=["1732x1155", "5184x3456"], help="WIDTHxHEIGHT photos")
    parser.add_argument("--model", default="patchmatch")
    args = parser.parse_args()
    from inpaintstudio.ui.studio import serve_in_background

    demo, url = serve_in_background()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, text in enumerate(args.sizes):
            width, height = (int(v) for v in text.lower().split("x"))
            rows.append(measure(url, (width, height), args.model, Path(tmp), run_steps=index == 0))
    demo.close()
    columns = ["photo", "megapixels", "upload_to_editable_s", "click_to_result_s", "engine_s", "grow_s",
               "use_as_base_s", "undo_s"]
    print(" | ".join(columns))
    for row in rows:
        print(" | ".join(str(row.get(c, "")) for c in columns))
    out = REPO / "benchmarks" / "results" / f"ui_latency-{args.label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"label": args.label, "model": args.model, "rows": rows}, indent=2))
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
