"""The editor's Select tool on the server: the handler's contract against a fake Selector (exact prompts and
masks), then the real weight-free selector end to end: photo-pixel prompts, one Selector per photo, the
mask back to the editor with the modifier's combine mode, and readable errors."""

from __future__ import annotations

import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from inpaintstudio import io as image_io
from inpaintstudio.ui import selecting
from inpaintstudio.ui.session import EditSession, StudioConfig


@dataclass(frozen=True)
class FakePrompt:
    box: tuple[int, int, int, int] | None = None
    points: tuple[tuple[int, int, bool], ...] = ()


@dataclass
class FakeSelection:
    mask: np.ndarray
    method: str
    note: str
    seconds: float


class FakeSelector:
    """Selects the box, or a 5 px square around each positive point; counts how often it is built."""

    built = 0

    def __init__(self, rgb: np.ndarray) -> None:
        FakeSelector.built += 1
        self.shape = rgb.shape[:2]
        self.prompts: list[FakePrompt] = []
        self.method = "grabcut"
        self.method_note = "GrabCut (MobileSAM weights missing: run `inpaintstudio weights fetch mobile_sam`)"

    def select(self, prompt: FakePrompt, grow_px: int = 0) -> FakeSelection:
        self.prompts.append(prompt)
        mask = np.zeros(self.shape, bool)
        if prompt.box is not None:
            x0, y0, x1, y1 = prompt.box
            mask[y0:y1 + 1, x0:x1 + 1] = True
        for x, y, positive in prompt.points:
            mask[max(0, y - 2):y + 3, max(0, x - 2):x + 3] = positive
        return FakeSelection(mask, "grabcut", "fake", 0.01)


@pytest.fixture
def fake_selection(monkeypatch: pytest.MonkeyPatch) -> type[FakeSelector]:
    module = types.ModuleType("inpaintstudio.selection")
    module.Prompt, module.Selection, module.Selector = FakePrompt, FakeSelection, FakeSelector  # type: ignore[attr-defined]
    monkeypatch.setattr(selecting, "_api", lambda: module)
    FakeSelector.built = 0
    return FakeSelector


@pytest.fixture
def session(tmp_path: Path) -> EditSession:
    session = EditSession(StudioConfig(display_side=100), tmp_path)
    rng = np.random.default_rng(0)
    session.open(rng.integers(0, 255, (150, 200, 3), dtype=np.uint8), name="photo")
    return session


def test_box_in_photo_pixels_becomes_the_held_mask_and_the_editor_combines_it(session, fake_selection) -> None:
    picked = selecting.select(session, {"kind": "box", "box": [150, 120, 20, 30], "mode": "add"})
    expected = np.zeros((150, 200), bool)
    expected[30:121, 20:151] = True
    assert session.selector.prompts == [FakePrompt(box=(20, 30, 150, 120))]  # corners sorted, photo pixels
    np.testing.assert_array_equal(session.mask_full, expected)
    assert picked.mode == "add" and picked.pixels == int(expected.sum())
    assert "with grabcut" in picked.status and "MobileSAM weights missing" in picked.status
    message = session.message(mask=True, combine=picked.mode)
    assert message["combine"] == "add"
    shown = image_io.load_mask(__import__("base64").b64decode(message["mask"].split(",", 1)[1]))
    assert shown.shape == (75, 100) and shown[40, 50] and not shown[5, 5]
    # the editor's mask equal to what was sent: the full-resolution selection is what runs
    np.testing.assert_array_equal(session.mask_from_painted(shown), expected)


def test_click_is_clamped_and_one_selector_serves_the_photo_until_the_base_changes(session, fake_selection) -> None:
    selecting.select(session, {"kind": "point", "point": [500, -4], "mode": "subtract"})
    first = session.selector
    assert first.prompts == [FakePrompt(points=((199, 0, True),))]
    selecting.select(session, {"kind": "point", "point": [10, 10]})
    assert session.selector is first and fake_selection.built == 1
    session.open(np.zeros((40, 60, 3), np.uint8), name="other")
    picked = selecting.select(session, {"kind": "point", "point": [10, 10], "mode": "bogus"})
    assert fake_selection.built == 2 and picked.mode == "replace"


def test_a_bad_event_is_readable(session, fake_selection) -> None:
    with pytest.raises(image_io.InputError, match="neither a click nor a box"):
        selecting.select(session, {"kind": "lasso"})


def test_the_real_selector_turns_a_box_into_the_object(tmp_path: Path) -> None:
    """No fake: GrabCut (no MobileSAM weights here) selects a bright disc on a textured background."""
    import cv2

    rng = np.random.default_rng(1)
    photo = rng.integers(40, 90, (240, 320, 3), dtype=np.uint8)
    cv2.circle(photo, (160, 120), 50, (230, 200, 40), -1)
    truth = np.zeros((240, 320), np.uint8)
    cv2.circle(truth, (160, 120), 50, 1, -1)
    session = EditSession(StudioConfig(display_side=160), tmp_path)
    session.open(photo, name="disc")
    picked = selecting.select(session, {"kind": "box", "box": [95, 55, 225, 185], "mode": "replace"})
    mask = session.mask_full
    iou = (mask & (truth > 0)).sum() / (mask | (truth > 0)).sum()
    assert iou > 0.9, iou
    assert "with grabcut" in picked.status and picked.pixels == int(mask.sum())
