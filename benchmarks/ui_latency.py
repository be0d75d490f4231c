"""How long a studio user waits, measured in a real browser (Playwright + Debian Chromium, headless).

Steps (Edit tab), per photo size: upload → editable (the status names the photo and the editor canvas
shows it); on the first size also mask upload → shown, Grow / Shrink / Invert click → canvas changed,
click Run → result visible (gallery, slider and the status's "Total" line) next to the engines' own time,
"Use result as new base" and Undo click → canvas changed. Then ``--sessions N`` fresh browser sessions
each upload a photo and a mask; a session whose editor does not show both within 20 s counts as stalled.
Prints a table and writes JSON to ``benchmarks/results/ui_latency-<label>.json``.

    python benchmarks/ui_latency.py [--label after] [--sizes 2480x1654 5184x3456] [--sessions 25]

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
VIEWPORT = {"width": 1400, "height": 1000}
STALL_SECONDS = 20.0


def photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(30, 200, size=(height // 64 + 2, width // 64 + 2, 3)).astype(np.float32)
    rgb = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    rgb += rng.normal(0, 10, size=(height, width, 1)).astype(np.float32)
    return np.clip(rgb, 0, 200).astype(np.uint8)  # no pixel as red as the mask overlay


def _canvas(page) -> np.ndarray:
    shot = page.locator("#editor canvas").first.screenshot()
    return cv2.imdecode(np.frombuffer(shot, np.uint8), cv2.IMREAD_COLOR)


def _has_photo(page) -> bool:
    return float(cv2.cvtColor(_canvas(page), cv2.COLOR_BGR2GRAY).std()) > 20.0  # an empty canvas is flat


def _has_mask(page) -> bool:
    bgr = _canvas(page).astype(int)
    return int(((bgr[..., 2] > 215) & (bgr[..., 1] < 100) & (bgr[..., 0] > 20)).sum()) > 50


def _until(check, timeout: float = 300.0, poll: float = 0.02) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if check():
            return time.perf_counter() - start
        time.sleep(poll)
    raise TimeoutError("step did not finish")


# In the page: click the button, then read the editor's canvas back every animation frame until its pixels
# differ. A Playwright click and screenshots would add their own ~0.1-0.3 s each on this machine.
_CLICK_UNTIL_CHANGED = """async (selector) => {
  const canvas = document.querySelector('#editor canvas');
  const ctx = canvas.getContext('2d');
  const digest = () => {
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let hash = 0;
    for (let i = 0; i < data.length; i += 28) hash = (hash * 31 + data[i]) | 0;
    return hash;
  };
  const before = digest();
  const start = performance.now();
  document.querySelector(selector).click();
  while (performance.now() - start < 60000) {
    await new Promise((resolve) => requestAnimationFrame(resolve));
    if (digest() !== before) return (performance.now() - start) / 1000;
  }
  return null;
}"""


def _click_until_changed(page, selector: str) -> float | None:
    """Seconds from the click until the editor's canvas shows something else (None: it never did)."""
    seconds = page.evaluate(_CLICK_UNTIL_CHANGED, selector)
    page.wait_for_timeout(300)  # let the server's answer (use result / undo) land before the next step
    return None if seconds is None else round(seconds, 3)


def _full_opacity(page) -> None:
    page.locator("#editor input.ie-opacity").evaluate(
        "el => { el.value = '100'; el.dispatchEvent(new Event('input')); }")


def _files(folder: Path, size: tuple[int, int]) -> tuple[Path, Path]:
    width, height = size
    path = folder / f"photo-{width}x{height}.jpg"
    if not path.exists():
        cv2.imwrite(str(path), cv2.cvtColor(photo(width, height), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
        mask = np.zeros((height, width), np.uint8)
        mask[height // 3:height // 3 + height // 10, width // 3:width // 3 + width // 10] = 255
        cv2.imwrite(str(folder / f"mask-{width}x{height}.png"), mask)
    return path, folder / f"mask-{width}x{height}.png"


def _open_page(browser, url: str):
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(300_000)
    page.goto(url)
    page.wait_for_selector("#editor canvas")
    _full_opacity(page)
    return context, page


def measure(browser, url: str, size: tuple[int, int], model: str, folder: Path, run_steps: bool) -> dict:
    width, height = size
    path, mask_path = _files(folder, size)
    row: dict = {"photo": f"{width}×{height}", "megapixels": round(width * height / 1e6, 1)}
    context, page = _open_page(browser, url)
    status = page.locator("#status")
    start = time.perf_counter()
    page.locator("#photo-upload input[type=file]").set_input_files(str(path))
    status.get_by_text(f"Photo: {width}×{height} px").wait_for()
    _until(lambda: _has_photo(page))
    row["upload_to_editable_s"] = round(time.perf_counter() - start, 2)
    page.locator("#mask-upload input[type=file]").set_input_files(str(mask_path))
    status.get_by_text("Mask loaded").wait_for()
    _until(lambda: _has_mask(page))
    if model != "patchmatch":
        page.locator("#models").get_by_text("patchmatch (ready)").click()
        page.locator("#models").get_by_text(f"{model} (ready)").click()
    start = time.perf_counter()
    page.locator("#run").click()
    status.get_by_text("Total").wait_for()
    page.locator("#gallery img").first.wait_for(state="visible")
    page.locator("#slider img").first.wait_for(state="visible")
    row["click_to_result_s"] = round(time.perf_counter() - start, 2)
    text = status.inner_text()
    found = re.search(rf"{re.escape(model)}\**: ([0-9.]+) s", text)
    row["engine_s"] = float(found.group(1)) if found else None
    row["result_minus_engine_s"] = round(row["click_to_result_s"] - (row["engine_s"] or 0), 2)
    _until(lambda: not page.locator("#result-download").is_disabled())  # the full-size PNG is written
    if run_steps:
        for name in ("grow", "shrink", "invert"):
            row[f"{name}_s"] = _click_until_changed(page, f"#{name}")
        row["use_as_base_s"] = _click_until_changed(page, "#use-result")
        row["undo_s"] = _click_until_changed(page, "#undo")
    context.close()
    return row


def stalls(browser, url: str, size: tuple[int, int], folder: Path, sessions: int) -> dict:
    """Fresh sessions with photo + mask upload; those whose editor did not show both in time."""
    path, mask_path = _files(folder, size)
    stalled, seconds = [], []
    for index in range(sessions):
        context, page = _open_page(browser, url)
        status = page.locator("#status")
        start = time.perf_counter()
        page.locator("#photo-upload input[type=file]").set_input_files(str(path))
        status.get_by_text(f"Photo: {size[0]}×{size[1]} px").wait_for()
        page.locator("#mask-upload input[type=file]").set_input_files(str(mask_path))
        status.get_by_text("Mask loaded").wait_for()
        try:
            _until(lambda shown=page: _has_photo(shown) and _has_mask(shown), timeout=STALL_SECONDS)
            seconds.append(time.perf_counter() - start)
        except TimeoutError:
            stalled.append(index)
        context.close()
    return {"sessions": sessions, "stalled": len(stalled), "stalled_sessions": stalled,
            "median_photo_and_mask_shown_s": round(float(np.median(seconds)), 2) if seconds else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", default="current", help="name of this measurement (the JSON file's suffix)")
    parser.add_argument("--sizes", nargs="+", default=["2480x1654", "5184x3456"], help="WIDTHxHEIGHT photos")
    parser.add_argument("--model", default="patchmatch")
    parser.add_argument("--sessions", type=int, default=25, help="fresh sessions for the stall count (0: none)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from inpaintstudio.ui.studio import serve_in_background

    demo, url = serve_in_background()
    rows, stall = [], None
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        sizes = [tuple(int(v) for v in text.lower().split("x")) for text in args.sizes]
        for index, size in enumerate(sizes):
            rows.append(measure(browser, url, size, args.model, Path(tmp), run_steps=index == 0))
        if args.sessions:
            stall = stalls(browser, url, sizes[0], Path(tmp), args.sessions)
        browser.close()
    demo.close()
    columns = ["photo", "megapixels", "upload_to_editable_s", "click_to_result_s", "engine_s", "result_minus_engine_s",
               "grow_s", "shrink_s", "invert_s", "use_as_base_s", "undo_s"]
    print(" | ".join(columns))
    for row in rows:
        print(" | ".join(str(row.get(c, "")) for c in columns))
    if stall:
        print(f"stalled sessions: {stall['stalled']} of {stall['sessions']} "
              f"(median photo + mask shown {stall['median_photo_and_mask_shown_s']} s)")
    out = REPO / "benchmarks" / "results" / f"ui_latency-{args.label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"label": args.label, "model": args.model, "rows": rows, "stalls": stall}, indent=2))
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
