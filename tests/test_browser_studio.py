"""A real browser (Debian Chromium, headless, through Playwright) drives the studio.

Load the page, upload a photo, paint a stroke on the canvas, run two models, see the slider and the
gallery, download the result PNG and the mask the server used, and check that the PNG equals
``pipeline.inpaint`` on that mask. On a 1366×768 screen the canvas takes at least 35 % of the screen and
Run is visible without scrolling; on 1920×1080 the canvas gets the extra width. Screenshots of every
tab (1366×768, and the Edit tab at 1920×1080) go to a temporary folder, or to ``docs/`` with
``make screenshots`` (which sets ``$INPAINTSTUDIO_SCREENSHOTS``).

Needs ``/usr/bin/chromium`` (``scripts/install_browser.sh``) and the ``playwright`` package; never
``playwright install``. Run with ``pytest -m browser``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, require_chromium, screenshot_dir

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
PHOTO = REPO / "examples" / "astronaut.png"


@pytest.fixture(scope="module")
def shots() -> Path:
    return screenshot_dir()


@pytest.fixture(scope="module")
def studio_url() -> Iterator[str]:
    from inpaintstudio.ui.studio import serve_in_background

    demo, url = serve_in_background()  # default config: the editor copy is at most 1280 px
    yield url
    demo.close()


@pytest.fixture(scope="module")
def page(studio_url: str) -> Iterator:
    require_chromium()
    import playwright.sync_api as playwright_api
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1500}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(studio_url)
        page.wait_for_selector("#editor")
        yield page
        context.close()
        browser.close()


def _paint_stroke(page, fractions: list[tuple[float, float]]) -> None:
    """Select the brush and drag through ``fractions`` (x, y of the canvas box)."""
    editor = page.locator("#editor")
    editor.get_by_role("button", name="Brush", exact=True).first.click()
    canvas = editor.locator("canvas").first
    box = canvas.bounding_box()
    assert box is not None
    points = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in fractions]
    page.mouse.move(*points[0])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(x, y, steps=12)
    page.mouse.up()


def _wait_until_drawn(page, editor_id: str, seconds: float = 60.0) -> None:
    """Until the editor's canvas shows a photo (an empty canvas is flat): strokes before that are lost."""
    import cv2

    for _ in range(int(seconds * 4)):
        shot = page.locator(f"#{editor_id} canvas").first.screenshot()
        if cv2.imdecode(np.frombuffer(shot, np.uint8), cv2.IMREAD_GRAYSCALE).std() > 20:
            return
        page.wait_for_timeout(250)
    raise AssertionError("the editor never drew the photo")


def _close_toasts(page) -> None:
    """Dismiss error toasts so that the screenshots show the studio (the error was checked already)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.locator(".toast-close").first.click(timeout=5_000)
    except PlaywrightTimeout:
        pass


def _download(page, selector: str, target: Path) -> Path:
    with page.expect_download() as info:
        page.locator(selector).click()
    info.value.save_as(target)
    return target


def test_browser_upload_paint_run_two_models_download(page, shots: Path, tmp_path: Path) -> None:
    import cv2

    from inpaintstudio import io as image_io
    from inpaintstudio.core import pipeline

    # a bad upload first: the error is shown, readable, in the page
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    page.locator("#photo-upload input[type=file]").set_input_files(str(broken))
    page.get_by_text("'broken.png' is not an image InpaintStudio can read").first.wait_for()
    page.locator("#photo-upload").get_by_role("button", name="Clear").first.click()
    _close_toasts(page)
    # a photo larger than the editor's display size: the editor gets a 1280 px copy, runs use 1600 px
    photo = cv2.resize(image_io.load_image(PHOTO).rgb, (1600, 1600), interpolation=cv2.INTER_CUBIC)
    photo_path = tmp_path / "astronaut-1600.png"
    image_io.save_image(photo_path, photo)
    page.locator("#photo-upload input[type=file]").set_input_files(str(photo_path))
    page.locator("#status").get_by_text("Photo: 1600×1600 px (editor copy 1280×1280").wait_for()
    _wait_until_drawn(page, "editor")
    _paint_stroke(page, [(0.30, 0.30), (0.45, 0.35), (0.55, 0.45)])
    page.locator("#models").get_by_text("opencv_telea (ready)").click()
    assert page.locator("#result-download").is_disabled()  # nothing to download before a run
    page.locator("#run").click()
    gallery_images = page.locator("#gallery img")
    gallery_images.nth(1).wait_for()
    assert gallery_images.count() == 2
    page.locator("#slider img").first.wait_for()
    status = page.locator("#status").inner_text()
    assert "patchmatch" in status and "opencv_telea" in status

    for _ in range(600):  # the full-size PNG is written after the result is shown
        if not page.locator("#result-download").is_disabled():
            break
        page.wait_for_timeout(100)
    result_path = _download(page, "#result-download", tmp_path / "result.png")
    mask_path = _download(page, "#mask-download", tmp_path / "mask.png")
    result = image_io.load_image(result_path).rgb
    mask = image_io.load_mask(mask_path)
    assert result.shape == photo.shape
    assert 200 < mask.sum() < 0.2 * mask.size, "the stroke reached the server as a mask"
    ys, xs = np.nonzero(mask)
    assert 0.2 * 1600 < xs.mean() < 0.6 * 1600 and 0.2 * 1600 < ys.mean() < 0.55 * 1600
    np.testing.assert_array_equal(result[~mask], photo[~mask])
    np.testing.assert_array_equal(result, pipeline.inpaint(photo, mask, "patchmatch").image)

    page.mouse.move(0, 0)
    # a laptop screen: the photo gets the room and Run needs no scrolling; a large screen widens the canvas
    widths = {}
    for (width, height), name in (((1366, 768), "studio-edit.png"), ((1920, 1080), "studio-edit-1920.png")):
        page.set_viewport_size({"width": width, "height": height})
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(500)
        canvas = page.locator("#editor canvas").first.bounding_box()
        run = page.locator("#run").bounding_box()
        assert canvas is not None and run is not None
        share = canvas["width"] * canvas["height"] / (width * height)
        assert share >= 0.35, f"the canvas takes {share:.0%} of a {width}×{height} screen"
        assert run["y"] + run["height"] <= height, f"Run is at y={run['y']:.0f} on a {width}×{height} screen"
        widths[width] = canvas["width"]
        page.screenshot(path=str(shots / name))
    assert widths[1920] > widths[1366] + 300
    page.set_viewport_size({"width": 1366, "height": 768})


def test_browser_models_and_clinic_tab_screenshots(page, shots: Path) -> None:
    page.set_viewport_size({"width": 1366, "height": 768})
    page.get_by_role("tab", name="Models").click()
    page.locator("#model-table").get_by_text("built in (no weights needed)").first.wait_for()
    page.screenshot(path=str(shots / "studio-models.png"), full_page=True)
    clinic = page.get_by_role("tab", name="Clinic")
    if clinic.count() == 0:
        pytest.skip("the Clinic tab is not built (inpaintstudio.face.clinic missing)")
    clinic.click()
    page.locator("#clinic-notice").get_by_text("processing is local").wait_for()
    page.locator("#clinic-photo input[type=file]").set_input_files(str(PHOTO))
    page.locator("#clinic-status").get_by_text("Face found").wait_for()
    page.locator("#clinic-run").click()
    page.locator("#clinic-gallery img").first.wait_for()
    page.locator("#clinic-slider img").first.wait_for()
    assert "patchmatch" in page.locator("#clinic-status").inner_text()
    page.locator("#clinic-editor-landmarks").get_by_role("checkbox").check()  # the 68 points over the photo
    page.mouse.move(0, 0)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shots / "studio-clinic.png"))
