"""The weight-free selector (GrabCut from a box and clicks), the magic wand, grow, errors and the select command."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from inpaintstudio.cli import main
from inpaintstudio.errors import EXIT_BAD_INPUT, EXIT_OK
from inpaintstudio.selection import Prompt, Selection, SelectionError, Selector, magic_wand
from inpaintstudio.selection.grabcut import box_for_points, grabcut_mask
from inpaintstudio.selection.types import describe

H, W = 360, 480
A_CENTRE, A_AXES = (150, 180), (70, 50)  # red ellipse (x, y), half-axes
B_BOX = (330, 120, 420, 240)  # blue rectangle x0, y0, x1, y1


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def scene(noise: float = 12.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A greenish noisy gradient with a red ellipse (A) and a blue rectangle (B); returns (rgb, A, B)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    background = np.stack([60 + 40 * xx / W, 130 + 40 * yy / H, 70 + 0 * xx], axis=-1)
    a = np.zeros((H, W), np.uint8)
    cv2.ellipse(a, A_CENTRE, A_AXES, 15, 0, 360, 1, thickness=-1)
    b = np.zeros((H, W), np.uint8)
    b[B_BOX[1]:B_BOX[3], B_BOX[0]:B_BOX[2]] = 1
    image = background.copy()
    image[a > 0] = (205, 60, 55)
    image[b > 0] = (50, 70, 200)
    image += rng.normal(0, noise, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), a > 0, b > 0


@pytest.fixture(scope="module")
def photo() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return scene()


def a_box() -> tuple[int, int, int, int]:
    (cx, cy), (ax, ay) = A_CENTRE, A_AXES
    return (cx - ax - 15, cy - ay - 25, cx + ax + 15, cy + ay + 25)


# ------------------------------------------------------------------------------------------------ GrabCut
def test_a_box_selects_the_object(photo) -> None:
    rgb, a, _ = photo
    result = Selector(rgb, method="grabcut").select(Prompt(box=a_box()))
    assert isinstance(result, Selection) and result.method == "grabcut"
    assert result.mask.dtype == bool and result.mask.shape == (H, W)
    assert iou(result.mask, a) > 0.9
    assert result.note.startswith("GrabCut: ") and "% of the photo selected" in result.note and result.seconds > 0


def test_working_size_with_edge_snapping_matches_full_resolution(photo) -> None:
    rgb, a, _ = photo
    small = grabcut_mask(rgb, Prompt(box=a_box()), work_pixels=20_000)  # well under the crop's size: snapped
    assert iou(small, a) > 0.9


def test_negative_click_removes_and_positive_click_adds(photo) -> None:
    rgb, a, b = photo
    both = (60, 90, 440, 270)
    selector = Selector(rgb, method="grabcut")
    whole = selector.select(Prompt(box=both)).mask
    assert (whole & b).sum() > 0.8 * b.sum() and (whole & a).sum() > 0.8 * a.sum()
    centre_b = ((B_BOX[0] + B_BOX[2]) // 2, (B_BOX[1] + B_BOX[3]) // 2)
    without_b = selector.select(Prompt(box=both, points=((*centre_b, False),))).mask
    assert (without_b & b).sum() < 0.05 * b.sum() and iou(without_b, a) > 0.85
    # B lies outside A's box: a positive click on it widens the box and takes it in
    with_b = selector.select(Prompt(box=a_box(), points=((*centre_b, True),))).mask
    assert (with_b & b).sum() > 0.6 * b.sum() and (with_b & a).sum() > 0.8 * a.sum()


def test_clicks_alone_get_a_box_around_the_positive_clicks(photo) -> None:
    rgb, a, _ = photo
    result = Selector(rgb, method="grabcut").select(Prompt(points=((A_CENTRE[0], A_CENTRE[1], True),)))
    assert iou(result.mask, a) > 0.8
    x0, y0, x1, y1 = box_for_points([(10, 10)], (H, W))
    assert (x0, y0) == (0, 0) and x1 == y1 == 10 + 90 + 1  # a quarter of the shorter side around the click
    with pytest.raises(SelectionError, match="GrabCut needs a box, or at least one positive click"):
        Selector(rgb, method="grabcut").select(Prompt(points=((20, 20, False),)))


def test_a_box_over_the_whole_photo_still_runs(photo) -> None:
    rgb, a, b = photo
    mask = Selector(rgb, method="grabcut").select(Prompt(box=(0, 0, W, H))).mask
    assert mask.shape == (H, W) and mask.any()
    tiny = np.random.default_rng(0).integers(0, 255, (2, 3, 3), dtype=np.uint8)  # nothing outside to learn from
    assert Selector(tiny, method="grabcut").select(Prompt(box=(0, 0, 3, 2))).mask.shape == (2, 3)
    assert Selector(tiny, method="grabcut").select(Prompt(points=((1, 1, True),))).mask.shape == (2, 3)


def test_grow_and_an_empty_result(photo) -> None:
    rgb, _, _ = photo
    selector = Selector(rgb, method="grabcut")
    plain = selector.select(Prompt(box=a_box())).mask
    grown = selector.select(Prompt(box=a_box()), grow_px=6)
    assert (grown.mask >= plain).all() and grown.mask.sum() > plain.sum() and "grown 6 px" in grown.note
    shrunk = selector.select(Prompt(box=a_box()), grow_px=-4).mask
    assert (shrunk <= plain).all() and shrunk.sum() < plain.sum()
    gone = selector.select(Prompt(box=a_box()), grow_px=-200)
    assert not gone.mask.any() and "nothing was selected" in gone.note
    assert "nothing was selected" in describe(np.zeros((4, 4), bool), "GrabCut")


# ------------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(("prompt", "message"), [
    (Prompt(), "the prompt is empty"),
    (Prompt(box=(50, 50, 50, 90)), "has no area"),
    (Prompt(box=(90, 50, 40, 80)), "has no area"),
    (Prompt(box=(600, 400, 700, 500)), "lies outside the 480x360 photo"),
    (Prompt(box=(10, 10, 50, 50), points=((480, 10, True),)), r"click \(480, 10\) is outside the 480x360 photo"),
])
def test_bad_prompts_are_refused_with_a_clear_message(photo, prompt, message) -> None:
    with pytest.raises(SelectionError, match=message):
        Selector(photo[0], method="grabcut").select(prompt)


def test_a_box_partly_outside_is_clipped(photo) -> None:
    rgb, a, _ = photo
    x0, y0, x1, y1 = a_box()
    mask = Selector(rgb, method="grabcut").select(Prompt(box=(x0 - 500, y0, x1, y1))).mask
    assert iou(mask, a) > 0.85


def test_bad_photo_method_and_grow(photo) -> None:
    with pytest.raises(SelectionError, match="H x W x 3 uint8 RGB photo"):
        Selector(np.zeros((10, 10), np.uint8))
    with pytest.raises(SelectionError, match="unknown selection method 'sam2'"):
        Selector(photo[0], method="sam2")  # type: ignore[arg-type]
    with pytest.raises(SelectionError, match="grow_px must be a whole number"):
        Selector(photo[0], method="grabcut").select(Prompt(box=a_box()), grow_px=1.5)  # type: ignore[arg-type]
    assert issubclass(SelectionError, ValueError)  # an InputError: exit code 2 on the command line


# ------------------------------------------------------------------------------------------------ magic wand
def test_magic_wand_floods_the_clicked_colour() -> None:
    rgb, a, b = scene(noise=5.0)
    result = magic_wand(rgb, *A_CENTRE, tolerance=40)
    assert result.method == "magic_wand" and iou(result.mask, a) > 0.95 and not (result.mask & b).any()
    tight = magic_wand(rgb, *A_CENTRE, tolerance=2).mask
    assert tight.sum() < 0.2 * a.sum()
    grown = magic_wand(rgb, *A_CENTRE, tolerance=40, grow_px=3)
    assert (grown.mask >= result.mask).all() and grown.mask.sum() > result.mask.sum()
    with pytest.raises(SelectionError, match="outside the 480x360 photo"):
        magic_wand(rgb, 480, 0)
    with pytest.raises(SelectionError, match="tolerance is a colour distance from 0 to 255"):
        magic_wand(rgb, 10, 10, tolerance=300)


# ------------------------------------------------------------------------------------------------ auto choice
def test_auto_without_weights_uses_grabcut_and_says_why(photo, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("INPAINTSTUDIO_WEIGHTS", str(tmp_path / "empty"))
    selector = Selector(photo[0])
    assert selector.method == "grabcut"
    assert selector.method_note == (
        "GrabCut (MobileSAM weights missing: run `inpaintstudio weights fetch mobile_sam`, or put mobile_sam.pt in "
        "weights/ and run `inpaintstudio weights import --model mobile_sam mobile_sam.pt`)"
    )
    assert selector.select(Prompt(box=a_box())).method == "grabcut"
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "weights.lock.json").write_text("{not json")
    (tmp_path / "empty" / "mobile_sam.sa1b.safetensors").write_bytes(b"x")  # a file the lock must vouch for
    broken = Selector(photo[0])
    assert broken.method == "grabcut" and "cannot be checked" in broken.method_note


# ------------------------------------------------------------------------------------------------ the command
def test_select_command_writes_a_lossless_mask(photo, tmp_path, capsys) -> None:
    rgb, a, b = photo
    source = tmp_path / "photo.png"
    Image.fromarray(rgb).save(source)
    out = tmp_path / "mask.png"
    box = ",".join(str(v) for v in (60, 90, 440, 270))
    centre_b = f"{(B_BOX[0] + B_BOX[2]) // 2},{(B_BOX[1] + B_BOX[3]) // 2},-"
    code = main(["select", str(source), "--box", box, "--point", centre_b, "--method", "grabcut", "--grow", "2",
                 "-o", str(out)])
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    assert "method: GrabCut" in captured.err and "GrabCut:" in captured.out
    written = np.asarray(Image.open(out).convert("L"))
    assert set(np.unique(written)) <= {0, 255}
    mask = written > 127
    assert iou(mask, a) > 0.8 and (mask & b).sum() < 0.05 * b.sum()


@pytest.mark.parametrize(("argv", "message"), [
    (["--point", "10,10,x"], "a click is x,y,+"),
    (["--box", "1,2,3"], "a box is x0,y0,x1,y1"),
    ([], "give a box"),
    (["--box", "1,2,30,40", "-o", "mask.jpg"], "a mask is written as PNG"),
])
def test_select_command_refuses_bad_arguments(photo, tmp_path, capsys, argv, message, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Image.fromarray(photo[0]).save(tmp_path / "photo.png")
    if "-o" not in argv:
        argv = [*argv, "-o", "mask.png"]
    assert main(["select", "photo.png", *argv]) == EXIT_BAD_INPUT
    assert message in capsys.readouterr().err


def test_the_selection_package_and_grabcut_import_no_torch() -> None:
    import subprocess
    import sys

    from tests.conftest import REPO

    code = ("import sys, numpy as np\nfrom inpaintstudio.selection import Prompt, Selector\n"
            "Selector(np.zeros((8, 8, 3), np.uint8), method='grabcut').select(Prompt(box=(1, 1, 6, 6)))\n"
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr


def test_grabcut_stops_starting_iterations_once_its_time_budget_is_spent(monkeypatch) -> None:
    """A min-cut's cost depends on the content; later iterations are skipped past the budget."""
    import time

    from inpaintstudio.selection import grabcut

    calls: list[int] = []
    real = grabcut.cv2.grabCut

    def slow(*args):
        calls.append(args[-1])
        time.sleep(0.1)
        return real(*args)

    monkeypatch.setattr(grabcut.cv2, "grabCut", slow)
    rgb = np.random.default_rng(0).integers(0, 80, (120, 160, 3), dtype=np.uint8)
    rgb[40:80, 50:110] = 220
    prompt = Prompt(box=(40, 30, 120, 90))
    full = grabcut.grabcut_mask(rgb, prompt, budget_seconds=1e9)
    assert len(calls) == grabcut.ITERATIONS and calls[0] == grabcut.cv2.GC_INIT_WITH_MASK
    calls.clear()
    cut = grabcut.grabcut_mask(rgb, prompt, budget_seconds=0.15)
    assert len(calls) == 1  # one iteration took 0.1 s: a second would end past 0.15 s
    assert (full & cut).sum() / (full | cut).sum() > 0.9  # the first iteration does most of the work
