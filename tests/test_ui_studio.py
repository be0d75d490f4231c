"""The studio driven over HTTP with gradio_client: every endpoint, by its api_name.

One studio is launched on a free port on 127.0.0.1 for the module (display side 256 px so that the
full-resolution path is exercised with small images; a 2 MP pixel limit so that "huge" is cheap).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from inpaintstudio import io as image_io  # noqa: E402
from inpaintstudio import registry  # noqa: E402
from inpaintstudio.core import loading, pipeline
from inpaintstudio.core import maskops as mask_ops  # noqa: E402
from inpaintstudio.ui.session import StudioConfig, data_url, display_size, mask_to_display  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
DISPLAY = 256
MAX_PIXELS = 2_000_000


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def weights_folder(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("weights")
    old = os.environ.get("INPAINTSTUDIO_WEIGHTS")
    os.environ["INPAINTSTUDIO_WEIGHTS"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("INPAINTSTUDIO_WEIGHTS", None)
    else:
        os.environ["INPAINTSTUDIO_WEIGHTS"] = old


@pytest.fixture(scope="module")
def tiny_deep_card(weights_folder: Path):
    """A small CSFC registered under its own name and weight file, for the import and run tests."""
    from inpaintstudio.models.csfc import network as csfc

    base = registry.get_card("csfc")
    card = replace(
        base,
        name="csfc_tiny",
        title="CSFC (test size)",
        config=csfc.Config(bb_depths=(2,), head_inputs=1),
        weights=(replace(base.weights[0], filename="csfc_tiny.safetensors", sha256=None),),
    )
    registry.register(card)
    yield card
    registry.unregister(card.name)
    pipeline.forget_engines(card.name)


@pytest.fixture(scope="module")
def studio(weights_folder: Path, tiny_deep_card):
    from inpaintstudio.ui.studio import serve_in_background

    demo, url = serve_in_background(StudioConfig(display_side=DISPLAY, max_pixels=MAX_PIXELS))
    yield url
    demo.close()


@pytest.fixture(scope="module")
def _module_client(studio: str) -> Client:
    return Client(studio, verbose=False)


@pytest.fixture
def client(_module_client: Client) -> Client:
    """A fresh studio session for each test (its own photo, mask and results), on one client connection."""
    _module_client.reset_session()
    return _module_client


# ------------------------------------------------------------------------------------------- helpers
def _photo(width: int, height: int, seed: int) -> np.ndarray:
    """A smooth colourful test photo (gradients + a few discs), deterministic per seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([x / width * 255, y / height * 255, (x + y) / (width + height) * 255], -1)
    rgb += rng.uniform(-20, 20, size=3)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _write(path: Path, rgb: np.ndarray, alpha: np.ndarray | None = None) -> str:
    image_io.save_image(path, rgb, alpha=alpha)
    return str(path)


def _box_mask(shape: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    """A bool mask (H×W) with the rectangle ``box`` = (x0, y0, x1, y1) set."""
    mask = np.zeros(shape, bool)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = True
    return mask


def _open(client: Client, tmp: Path, photo: np.ndarray, name: str = "photo.png") -> dict:
    """Open ``photo`` in a fresh session; the editor message the browser would get."""
    return client.predict(handle_file(_write(tmp / name, photo)), api_name="/open_image")[0]


def _editor_mask(message: dict, box: tuple[int, int, int, int] | None) -> str:
    """What the browser's editor sends when a run starts: one PNG at the editor copy's size."""
    photo = message["photo"]
    return data_url(_box_mask((photo["height"], photo["width"]), box or (0, 0, 0, 0)), "png")


def _data(url: str) -> bytes:
    """The bytes of a data URL from an editor message."""
    import base64

    return base64.b64decode(url.split(",", 1)[1])


def _data_mask(url: str) -> np.ndarray:
    return image_io.load_mask(_data(url))


def _shrunk(photo: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(photo, size, interpolation=cv2.INTER_AREA).astype(int)


def _load(path: str) -> np.ndarray:
    return image_io.load_image(path).rgb


def _mask(path: str) -> np.ndarray:
    return image_io.load_mask(path)


def _run(client: Client, mask: str, models: list[str], strategy: str = "auto", margin=None, tile=None,
         feather: float = 0, variants: list[str] | None = None) -> tuple:
    """(gallery, slider, download, mask used, left, right, status, editor message) of one run."""
    editor, gallery, slider, left, right, status = client.predict(mask, models, variants or [], strategy, margin,
                                                                   tile, feather, api_name="/run")
    download, mask_used = client.predict(api_name="/result_file")
    return gallery, slider, download, mask_used, left, right, status, editor


def _open_and_run(client: Client, tmp: Path, photo: np.ndarray, box, models: list[str], **options) -> tuple:
    message = _open(client, tmp, photo)
    return _run(client, _editor_mask(message, box), models, **options)


# ------------------------------------------------------------------------------------------ issue 2
def test_first_studio_image_and_brushed_mask_give_same_size_png_with_outside_untouched(client, tmp_path):
    photo = image_io.load_image(EXAMPLES / "china.png").rgb[:160, :200].copy()  # within the display size
    gallery, slider, download, mask_path, _, right, status, editor = _open_and_run(
        client, tmp_path, photo, (60, 50, 110, 90), ["patchmatch"])
    result = _load(download)
    assert download.endswith(".png")
    assert result.shape == photo.shape
    hole = _box_mask(photo.shape[:2], (60, 50, 110, 90))
    np.testing.assert_array_equal(_mask(mask_path), hole)
    np.testing.assert_array_equal(result[~hole], photo[~hole])
    assert np.abs(result[hole].astype(int) - photo[hole]).mean() > 1  # the hole was filled with something else
    expected = pipeline.inpaint(photo, hole, "patchmatch").image
    np.testing.assert_array_equal(result, expected)
    assert len(gallery) == 1 and gallery[0]["caption"].startswith("patchmatch · ")
    assert all(str(p).endswith(".png") for p in slider)
    assert right["value"] == "patchmatch"
    assert "patchmatch" in status and status.splitlines()[-1].startswith("Total ")
    # the editor gets the result's display copy for its compare view, and the photo is not sent again
    assert [r["model"] for r in editor["results"]] == ["patchmatch"] and editor["photo"]["src"] is None


# ----------------------------------------------------------------------------- full resolution, masks
def test_open_image_sends_display_copy_once_and_runs_at_full_resolution(client, tmp_path):
    photo = _photo(1000, 600, seed=1)
    path = _write(tmp_path / "big.png", photo)
    message, gallery, _, left, _, status, _ = client.predict(handle_file(path), api_name="/open_image")
    shown = display_size((1000, 600), DISPLAY)
    entry = message["photo"]
    assert (entry["width"], entry["height"]) == shown == (256, 154) and entry["full"] == [1000, 600]
    copy = image_io.load_image(_data(entry["src"])).rgb
    assert copy.shape == (154, 256, 3) and np.abs(copy.astype(int) - _shrunk(photo, shown)).mean() < 3
    assert "1000×600" in status and gallery == [] and left["value"] == "before"
    # paint on the display copy: the server scales the editor's mask up (nearest) to 1000×600
    painted = _box_mask((154, 256), (100, 40, 140, 80))
    _, _, download, mask_path, _, _, _, _ = _run(client, data_url(painted, "png"), ["opencv_telea"])
    result, mask = _load(download), _mask(mask_path)
    assert result.shape == photo.shape and mask.shape == (600, 1000)
    np.testing.assert_array_equal(mask, image_io.mask_from_array(painted, (1000, 600), resize=True))
    np.testing.assert_array_equal(result[~mask], photo[~mask])
    np.testing.assert_array_equal(result, pipeline.inpaint(photo, mask, "opencv_telea").image)
    # a mask of the wrong size from the editor is refused, readably
    with pytest.raises(AppError, match=r"the mask from the editor is 20×10 pixels but the editor shows 256×154"):
        _run(client, data_url(np.ones((10, 20), bool), "png"), ["opencv_telea"])


def test_uploaded_full_resolution_mask_runs_unchanged_and_wrong_size_is_refused(client, tmp_path):
    photo = _photo(900, 500, seed=2)
    _open(client, tmp_path, photo)
    thin = np.zeros((500, 900), np.uint8)
    thin[200:203, 100:700] = 255  # 3 px: thinner than one display pixel (900 / 256 ≈ 3.5)
    message, status = client.predict(handle_file(_write(tmp_path / "m.png", np.dstack([thin] * 3))),
                                     api_name="/upload_mask")
    assert "1,800 px" in status
    assert message["combine"] == "replace" and _data_mask(message["mask"]).any(), "the mask goes to the editor"
    # the browser sends the mask back unchanged: the full-resolution mask is what runs
    _, _, download, mask_path, _, _, _, _ = _run(client, message["mask"], ["opencv_telea"])
    np.testing.assert_array_equal(_mask(mask_path), thin > 0)
    np.testing.assert_array_equal(_load(download)[thin == 0], photo[thin == 0])
    # an API caller sends no mask at all: the uploaded one runs
    _, _, _, mask_path, _, _, _, _ = _run(client, "", ["opencv_telea"])
    np.testing.assert_array_equal(_mask(mask_path), thin > 0)
    # a mask of another size (neither the photo's nor the editor's) is refused with a readable message
    with pytest.raises(AppError, match=r"is 300×200 pixels but the image is 900×500"):
        client.predict(handle_file(_write(tmp_path / "bad.png", np.zeros((200, 300, 3), np.uint8))),
                       api_name="/upload_mask")


def test_api_mask_operations_grow_shrink_invert_clear_and_export(client, tmp_path):
    photo = _photo(200, 120, seed=3)
    _open(client, tmp_path, photo)
    hole = _box_mask((120, 200), (50, 40, 90, 80))
    client.predict(handle_file(_write(tmp_path / "m.png", np.dstack([np.where(hole, 255, 0).astype(np.uint8)] * 3))),
                   api_name="/upload_mask")
    message, status = client.predict(5, api_name="/grow_mask")
    grown = mask_ops.grow(hole, 5)
    assert f"{int(grown.sum()):,} px" in status
    np.testing.assert_array_equal(_data_mask(message["mask"]), grown)
    np.testing.assert_array_equal(_mask(client.predict("", api_name="/export_mask")), grown)
    client.predict(3, api_name="/shrink_mask")
    shrunk = mask_ops.shrink(grown, 3)
    np.testing.assert_array_equal(_mask(client.predict("", api_name="/export_mask")), shrunk)
    client.predict(1, api_name="/invert_mask")
    np.testing.assert_array_equal(_mask(client.predict("", api_name="/export_mask")), ~shrunk)
    message, status = client.predict(1, api_name="/clear_mask")
    assert not _data_mask(message["mask"]).any() and "0 px" in status
    # what the browser exports is what is downloaded
    np.testing.assert_array_equal(_mask(client.predict(data_url(hole, "png"), api_name="/export_mask")), hole)


def test_feather_blends_inside_the_hole_only(client, tmp_path):
    photo = _photo(160, 120, seed=4)
    message = _open(client, tmp_path, photo)
    hole = _box_mask((120, 160), (40, 30, 120, 90))
    sharp = _load(_run(client, _editor_mask(message, (40, 30, 120, 90)), ["opencv_telea"])[2])
    soft = _load(_run(client, _editor_mask(message, (40, 30, 120, 90)), ["opencv_telea"], feather=12)[2])
    np.testing.assert_array_equal(soft[~hole], photo[~hole])
    edge = hole & ~mask_ops.shrink(hole, 6)
    assert np.abs(soft[edge].astype(int) - sharp[edge]).sum() > 0
    core = mask_ops.shrink(hole, 13)
    np.testing.assert_array_equal(soft[core], sharp[core])


# --------------------------------------------------------------------------------- several models
def test_several_models_one_click_unavailable_one_skipped_with_reason(client, tmp_path):
    photo = _photo(180, 120, seed=5)
    gallery, slider, download, _, left, right, status, _ = _open_and_run(
        client, tmp_path, photo, (70, 40, 110, 80), ["opencv_telea", "opencv_ns"], variants=["mxt"])
    assert [item["caption"].split(" · ")[0] for item in gallery] == ["opencv_telea", "opencv_ns"]
    assert all(item["caption"].endswith(" s · cpu") for item in gallery)
    assert "mxt was not run: weights missing" in status
    assert [c[0] for c in right["choices"]] == ["before", "opencv_telea", "opencv_ns"]
    # compare any two: the slider shows them, the download follows the right-hand side
    pair, download_ns = client.predict("opencv_telea", "opencv_ns", api_name="/compare")
    hole = _box_mask((120, 180), (70, 40, 110, 80))
    np.testing.assert_array_equal(_load(pair[0]), pipeline.inpaint(photo, hole, "opencv_telea").image)
    np.testing.assert_array_equal(_load(pair[1]), pipeline.inpaint(photo, hole, "opencv_ns").image)
    np.testing.assert_array_equal(_load(download_ns), _load(pair[1]))
    before, _ = client.predict("before", "opencv_ns", api_name="/compare")
    np.testing.assert_array_equal(_load(before[0]), photo)


def test_only_unavailable_models_is_an_error_and_no_run_happens(client, tmp_path, monkeypatch):
    calls: list[str] = []
    real_inpaint = pipeline.inpaint

    def counting_inpaint(image, mask, model, *args, **kwargs):
        calls.append(getattr(model, "name", model))
        return real_inpaint(image, mask, model, *args, **kwargs)

    monkeypatch.setattr(pipeline, "inpaint", counting_inpaint)
    mask = _editor_mask(_open(client, tmp_path, _photo(64, 64, seed=6)), (10, 10, 30, 30))
    with pytest.raises(AppError, match=r"none of the chosen models can run here: mxt was not run: weights missing"):
        _run(client, mask, [], variants=["mxt"])
    assert calls == []
    _run(client, mask, ["opencv_telea"])  # the spy sees a run that does happen
    assert calls == ["opencv_telea"]


def test_strategy_controls_reach_the_pipeline(client, tmp_path):
    photo = _photo(400, 200, seed=7)
    mask = _editor_mask(_open(client, tmp_path, photo[:, :256]), (20, 20, 240, 180))  # larger than a tile
    *_, status, _ = _run(client, mask, ["opencv_telea"], strategy="tile", margin=8, tile=96)
    assert "(tile, " in status and "tile(s)" in status
    with pytest.raises(AppError):  # not one of the offered strategies
        _run(client, mask, ["opencv_telea"], strategy="tiles")


def test_empty_mask_and_no_photo_give_readable_errors(client, tmp_path):
    with pytest.raises(AppError, match="open a photo first"):
        client.predict("", ["opencv_telea"], [], "auto", None, None, 0, api_name="/run")
    mask = _write(tmp_path / "mask-first.png", np.full((64, 64, 3), 255, np.uint8))
    with pytest.raises(AppError, match="open a photo first"):  # a mask file before any photo
        client.predict(handle_file(mask), api_name="/upload_mask")
    message = _open(client, tmp_path, _photo(64, 64, seed=8))
    with pytest.raises(AppError, match="the mask is empty"):
        _run(client, _editor_mask(message, None), ["opencv_telea"])
    with pytest.raises(AppError, match="not a PNG data URL"):
        _run(client, "a mask", ["opencv_telea"])


def test_use_result_as_new_base_then_undo(client, tmp_path):
    photo = _photo(120, 100, seed=9)
    opened = _open(client, tmp_path, photo)
    first_run = _run(client, _editor_mask(opened, (30, 30, 70, 70)), ["opencv_telea"])
    first, result_key = _load(first_run[2]), first_run[-1]["results"][0]["key"]
    message, gallery, pair, _, _, status, _ = client.predict("opencv_telea", api_name="/use_result")
    # the new base is the result the editor already holds: its key, no pixels sent again
    assert message["photo"]["key"] == result_key and message["photo"]["src"] is None and message["base"] == "push"
    np.testing.assert_array_equal(_load(pair[0]), first)
    assert gallery == [] and "new base" in status and "Undo steps: 1" in status
    hole2 = _box_mask((100, 120), (80, 10, 110, 40))
    second = _load(_run(client, data_url(hole2, "png"), ["opencv_telea"])[2])
    np.testing.assert_array_equal(second[~hole2], first[~hole2])  # edits pile up on the new base
    message, _, pair, *_ = client.predict(api_name="/undo")
    assert message["photo"]["key"] == opened["photo"]["key"] and message["base"] == "pop"
    np.testing.assert_array_equal(_load(pair[0]), photo)
    with pytest.raises(AppError, match="nothing to undo"):
        client.predict(api_name="/undo")


# -------------------------------------------------------------------------------------- bad uploads
def test_corrupt_file_shows_readable_error(client, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nthis is not really a png")
    with pytest.raises(AppError, match="broken.png"):
        client.predict(handle_file(str(bad)), api_name="/open_image")


def test_huge_image_is_refused_before_decoding(client, tmp_path, monkeypatch):
    from inpaintstudio.io import read as image_read

    decoded: list[tuple[int, int]] = []
    real_decode = image_read._decode

    def counting_decode(image, label):
        decoded.append(image.size)
        return real_decode(image, label)

    monkeypatch.setattr(image_read, "_decode", counting_decode)
    huge = np.zeros((1500, 1500, 3), np.uint8)  # 2.25 MP > the studio's 2 MP limit
    with pytest.raises(AppError, match=r"MP"):
        client.predict(handle_file(_write(tmp_path / "huge.png", huge)), api_name="/open_image")
    assert decoded == []
    client.predict(handle_file(_write(tmp_path / "small.png", huge[:100, :120])), api_name="/open_image")
    assert decoded == [(120, 100)]  # the spy sees a decode that does happen


def test_exif_orientation_applied_once(client, tmp_path):
    from PIL import Image

    photo = _photo(120, 80, seed=10)
    image = Image.fromarray(photo)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    path = tmp_path / "phone.jpg"
    image.save(path, quality=95, exif=exif.tobytes())
    message, *_, status, _ = client.predict(handle_file(str(path)), api_name="/open_image")
    assert image_io.load_image(_data(message["photo"]["src"])).rgb.shape[:2] == (120, 80)  # upright: taller
    assert "EXIF orientation 6 applied once" in status


# -------------------------------------------------------------------------------------- concurrency
def test_eight_clients_at_once_get_their_own_results(studio, tmp_path):
    jobs = []
    for index in range(8):
        photo = _photo(96 + 8 * index, 80, seed=100 + index)
        box = (10 + 4 * index, 10 + 3 * index, 40 + 4 * index, 40 + 3 * index)
        folder = tmp_path / str(index)
        folder.mkdir()
        jobs.append((photo, box, folder))
    results: dict[int, np.ndarray | BaseException] = {}

    def work(index: int) -> None:
        photo, box, folder = jobs[index]
        try:
            run = _open_and_run(Client(studio, verbose=False), folder, photo, box, ["opencv_telea"])
            results[index] = _load(run[2])
        except BaseException as error:  # noqa: BLE001 - reported below
            results[index] = error

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for index, (photo, box, _) in enumerate(jobs):
        result = results[index]
        assert not isinstance(result, BaseException), result
        hole = np.zeros(photo.shape[:2], bool)
        hole[box[1]:box[3], box[0]:box[2]] = True
        np.testing.assert_array_equal(result, pipeline.inpaint(photo, hole, "opencv_telea").image)


# --------------------------------------------------------------------------------------- models tab
def test_models_table_lists_paper_licence_and_weight_status(client):
    table = client.predict(api_name="/models_table")
    for card in registry.list_cards():
        assert f"`{card.name}`" in table
    assert "built in (no weights needed)" in table
    assert "`mxt`: missing (`mxt.safetensors`)" in table  # one row per model, a line per variant
    assert "[Barnes et al." in table and "MIT" in table


def test_import_checkpoint_by_upload_makes_the_model_runnable(client, tmp_path, tiny_deep_card, weights_folder):
    import torch


    with pytest.raises(AppError, match="not a readable PyTorch checkpoint"):
        junk = tmp_path / "junk.pth"
        junk.write_bytes(b"not a checkpoint")
        client.predict("csfc_tiny", handle_file(str(junk)), api_name="/import_weights")
    net = loading.model_module(tiny_deep_card).build(loading.card_config(tiny_deep_card))
    source = tmp_path / "InpaintingModel_gen.pth"
    torch.save({"generator": net.state_dict(), "iteration": 7}, source)
    report, table, choices, _ = client.predict("csfc_tiny", handle_file(str(source)), api_name="/import_weights")
    assert "iteration: 7" in report and "csfc_tiny.safetensors" in report
    assert (weights_folder / "csfc_tiny.safetensors").is_file()
    assert "imported (no published sha256 to verify)" in table
    labels = dict((value, label) for label, value in choices["choices"])
    assert labels["csfc_tiny"] == "csfc_tiny (weights imported)"
    # and it now runs from the Edit tab (a deep model on CPU, with its card's geometry)
    photo = _photo(128, 128, seed=11)
    gallery, *_ = _open_and_run(client, tmp_path, photo, (40, 40, 80, 80), ["csfc_tiny"])
    assert gallery[0]["caption"].startswith("csfc_tiny · ")


def test_refresh_models_lists_one_row_per_runnable_model(client):
    update, variants = client.predict(["opencv_ns"], api_name="/refresh_models")
    labels = {value: label for label, value in update["choices"]}
    assert labels["patchmatch"] == "patchmatch (ready)"
    assert "mxt" not in labels and not [name for name in labels if ":" in name]  # no weights: under More models
    assert update["value"] == ["opencv_ns"] and variants["choices"] == []


def test_hub_download_endpoint_exists_only_when_configured(client, monkeypatch):
    monkeypatch.delenv("INPAINTSTUDIO_HF_REPO", raising=False)
    with pytest.raises(ValueError, match="hub_download"):
        client.predict("mxt", api_name="/hub_download")


# ------------------------------------------------------------------------------------------- clinic
def test_clinic_proposes_editable_mask_runs_models_and_exports_side_by_side(client):
    from inpaintstudio.face import clinic, landmarks

    photo_path = EXAMPLES / "astronaut.png"
    photo = _load(str(photo_path))
    message, status = client.predict(handle_file(str(photo_path)), "both", api_name="/clinic_open")
    assert status.startswith("Face found (dlib landmarks, 68 points). Proposed both mask:")
    face = landmarks.detect_landmarks(photo)
    both = landmarks.lip_nose_mask(face, photo.shape, side="both")
    assert f"{int(both.sum()):,} px" in status
    scale = DISPLAY / photo.shape[1]  # the 384 px photo is shown as a 256 px copy
    np.testing.assert_array_equal(_data_mask(message["mask"]), mask_to_display(both, (DISPLAY, DISPLAY)))
    # the 68 points come along as the editor's overlay, in the editor copy's pixels
    np.testing.assert_allclose(np.array(message["landmarks"]), face.points * scale, atol=0.01)
    message, status = client.predict("left", api_name="/clinic_side")
    left = landmarks.lip_nose_mask(face, photo.shape, side="left")
    assert f"Proposed left mask: {int(left.sum()):,} px." == status

    editor, pair, export, gallery, shown, status = client.predict(
        message["mask"], ["opencv_telea", "opencv_ns"], False, False, api_name="/clinic_run"
    )  # two fast engines: the test repeats the first run by hand (PatchMatch took 5 s a run here)
    assert [item["caption"].split(" · ")[0] for item in gallery] == ["opencv_telea", "opencv_ns"]
    assert shown["value"] == "opencv_telea" and [r["model"] for r in editor["results"]] == ["opencv_telea", "opencv_ns"]
    assert status.splitlines()[-1].startswith("Total ")
    expected = clinic.run_clinic(photo, "opencv_telea", mask=left, face=face)
    np.testing.assert_array_equal(_load(pair[0]), photo)
    np.testing.assert_array_equal(_load(pair[1]), expected.after)
    np.testing.assert_array_equal(_load(pair[1])[~left], photo[~left])
    np.testing.assert_array_equal(_load(export), expected.side_by_side)
    # overlay toggles: detected landmarks on the before image, in the clinic's colour
    pair, _ = client.predict("opencv_ns", True, True, api_name="/clinic_view")
    np.testing.assert_array_equal(_load(pair[0]), landmarks.draw_landmarks(photo, face.points, clinic.DETECTED_COLOUR))
    # the export carries the overlays that are switched on: here the detected points on the before half
    pair, export = client.predict("opencv_ns", True, False, api_name="/clinic_view")
    side_by_side = _load(export)
    np.testing.assert_array_equal(side_by_side[:, : photo.shape[1]],
                                  landmarks.draw_landmarks(photo, face.points, clinic.DETECTED_COLOUR))
    np.testing.assert_array_equal(side_by_side[:, -photo.shape[1]:], _load(pair[1]))


def test_clinic_photo_without_face_gives_readable_error(client):
    with pytest.raises(AppError, match="no face found"):
        client.predict(handle_file(str(EXAMPLES / "flower.png")), "both", api_name="/clinic_open")


def test_download_button_offline_says_what_to_download_and_where(client, monkeypatch):
    monkeypatch.setenv("INPAINTSTUDIO_OFFLINE", "1")
    with pytest.raises(AppError, match=r"inclg:celeba: offline; download the generator .* from "
                                       r"https://drive.google.com/drive/folders/1H9FZ-jJUkYBDcNASX8kBnmipgGgv_y7t "
                                       r"and put it in .*downloads/inclg.celeba"):
        client.predict(api_name="/fetch_inclg_celeba")


def test_short_run_is_not_held_up_by_a_long_one(studio, tmp_path):
    """Two runs go at once: a short run started during a long one takes its own time plus a little."""
    long_client = Client(studio, verbose=False)
    long_photo = _photo(900, 900, seed=11)
    long_client.predict(handle_file(_write(tmp_path / "long.png", long_photo)), api_name="/open_image")
    hole = np.zeros((900, 900), np.uint8)
    hole[100:800, 100:800] = 255  # 60 % of the photo: patchmatch takes a while
    long_client.predict(handle_file(_write(tmp_path / "hole.png", np.dstack([hole] * 3))), api_name="/upload_mask")
    short_client = Client(studio, verbose=False)
    short_mask = _editor_mask(_open(short_client, tmp_path, _photo(200, 150, seed=12)), (60, 50, 110, 90))

    def timed(client: Client, mask: str, models: list[str]) -> float:
        start = time.perf_counter()
        _run(client, mask, models)
        return time.perf_counter() - start

    alone = timed(short_client, short_mask, ["opencv_telea"])
    finished: dict[str, float] = {}
    long_run = threading.Thread(target=lambda: finished.setdefault("long", timed(long_client, "", ["patchmatch"])))
    long_run.start()
    time.sleep(1.0)
    during = timed(short_client, short_mask, ["opencv_telea"])
    still_running = long_run.is_alive()
    long_run.join(timeout=600)
    assert "long" in finished, "the long run failed"
    assert still_running, f"the long run ({finished['long']:.1f} s) ended before the short one: no overlap"
    assert during < 2 * alone + 5.0, f"short run took {during:.1f} s during a long run, {alone:.1f} s alone"


# --------------------------------------------------------------------------------------- README script
def test_readme_script_opens_uploads_runs_and_fetches_the_result(studio, tmp_path, capsys):
    """The gradio_client script in README.md ("Scripting the studio"), run as printed against this studio."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### Scripting the studio"):]
    script = section[section.index("```python") + len("```python"):section.index("```", section.index("```python") + 9)]
    photo = _photo(300, 200, seed=21)
    hole = _box_mask((200, 300), (100, 60, 160, 120))
    _write(tmp_path / "photo.jpg", photo)
    _write(tmp_path / "mask.png", np.dstack([np.where(hole, 255, 0).astype(np.uint8)] * 3))
    script = script.replace("http://127.0.0.1:7860/", studio).replace('"photo.jpg"', repr(str(tmp_path / "photo.jpg")))
    script = script.replace('"mask.png"', repr(str(tmp_path / "mask.png")))
    namespace: dict = {}
    exec(compile(script, "README.md", "exec"), namespace)  # noqa: S102 - the README's own example
    assert capsys.readouterr().out.splitlines()[-1].startswith("Total ")  # after "Loaded as API: ..."
    result = _load(namespace["result_png"])
    assert result.shape == (200, 300, 3) and np.any(result[hole] != _load(str(tmp_path / "photo.jpg"))[hole])
    np.testing.assert_array_equal(_mask(namespace["mask_used_png"]), hole)


def test_mobile_sam_has_a_download_button_that_says_where_offline(client, monkeypatch):
    """The Select tool's MobileSAM weights are fetched from the Models tab like any model's."""
    monkeypatch.setenv("INPAINTSTUDIO_OFFLINE", "1")
    with pytest.raises(AppError, match=r"mobile_sam:sa1b: offline; .*github.com/ChaoningZhang/MobileSAM"):
        client.predict(api_name="/fetch_mobile_sam_sa1b")
