"""inpaintstudio.io.outputs: destinations checked before any work, so that no file is ever lost."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpaintstudio import io as sio
from inpaintstudio.io.outputs import OutputError, OutputPlan, OverwriteError, output_target


def _photo(path: Path) -> Path:
    Image.fromarray(np.full((6, 6, 3), 90, np.uint8)).save(path)
    return path


def test_output_spellings(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="empty"):
        output_target("")
    with pytest.raises(OutputError, match="empty"):
        output_target("  ")
    folder = output_target(f"{tmp_path}/new/")
    assert folder.is_folder and folder.file_for("cat") == tmp_path / "new" / "cat.png"
    assert output_target(tmp_path).is_folder  # an existing folder
    single = output_target(tmp_path / "out.png")
    assert not single.is_folder and single.file_for("cat") == tmp_path / "out.png"
    assert output_target(tmp_path / "results", folder_required=True).is_folder
    _photo(tmp_path / "taken.png")
    with pytest.raises(OutputError, match="needs an output folder"):
        output_target(tmp_path / "taken.png", folder_required=True)


def test_inputs_are_protected_whatever_the_spelling(tmp_path: Path) -> None:
    photo = _photo(tmp_path / "photo.png")
    (tmp_path / "link.png").symlink_to(photo)
    plan = OutputPlan(overwrite=True)  # even --overwrite never writes over an input
    plan.protect([photo, None])
    (tmp_path / "x").mkdir()
    for spelling in (photo, tmp_path / "link.png", Path(f"{tmp_path}/./photo.png"), tmp_path / "x/../photo.png"):
        with pytest.raises(OverwriteError, match="over the input"):
            plan.claim(spelling)
    assert plan.claim(tmp_path / "other.png") == tmp_path / "other.png"


def test_existing_outputs_need_overwrite(tmp_path: Path) -> None:
    existing = _photo(tmp_path / "out.png")
    before = existing.read_bytes()
    with pytest.raises(OutputError, match="already exists: pass --overwrite"):
        OutputPlan().claim(existing)
    assert existing.read_bytes() == before
    plan = OutputPlan(overwrite=True)
    plan.write_image(existing, np.zeros((2, 2, 3), np.uint8))
    assert Image.open(existing).size == (2, 2)


def test_collisions_are_refused_before_writing(tmp_path: Path) -> None:
    plan = OutputPlan()
    plan.claim(tmp_path / "out" / "a.png", source=tmp_path / "a.jpg")
    with pytest.raises(OutputError, match="two results would be written to .*a.png.*a.png"):
        plan.claim(tmp_path / "out" / "a.png", source=tmp_path / "a.png")
    assert not (tmp_path / "out").exists()  # planning creates nothing


def test_unwritable_destinations_are_refused_in_one_line(tmp_path: Path) -> None:
    a_file = _photo(tmp_path / "file.png")
    cases = {
        a_file / "out.png": "is a file, not a folder",
        Path("/proc/x.png"): "cannot write '/proc/x.png'",
        tmp_path / ("n" * 300 + ".png"): "too long",
        tmp_path: "it is a folder",
    }
    for destination, reason in cases.items():
        with pytest.raises(OutputError, match=reason) as info:
            OutputPlan().claim(destination)
        assert "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.png"]  # the probes leave nothing behind


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="permission denied"):
            OutputPlan().claim(locked / "out.png")
    finally:
        locked.chmod(0o755)


def test_writes_are_atomic_and_checked_again(tmp_path: Path) -> None:
    plan = OutputPlan()
    text = plan.write_text(tmp_path / "sub" / "report.json", '{"ok": true}\n')
    assert text.read_text() == '{"ok": true}\n'
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["report.json"]
    photo = _photo(tmp_path / "photo.png")
    plan.protect([photo])
    with pytest.raises(OverwriteError):
        plan.write_image(photo, np.zeros((2, 2, 3), np.uint8))
    loaded = sio.load_image(photo)
    saved = plan.write_image(tmp_path / "copy.png", loaded.rgb, like=loaded)
    np.testing.assert_array_equal(sio.load_image(saved.path).rgb, loaded.rgb)
