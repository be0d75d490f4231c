"""The committed editor bundle (inpaintstudio/ui/editor/dist/) is built from the committed sources, and the
studio serves exactly that bundle: `make editor` after any change to src/."""

from __future__ import annotations

import json

from inpaintstudio.ui.editor import build


def test_bundle_matches_the_sources() -> None:
    manifest = json.loads((build.DIST / "build.json").read_text())
    assert manifest["sources"] == [*build.SOURCES, build.CSS]
    assert manifest["sha256"] == build.source_hash(), "src/ changed after the last build: run `make editor`"
    assert (build.DIST / "editor.js").read_text() == build.bundle_text(), "dist/editor.js was edited by hand"
    assert (build.DIST / "editor.css").read_text() == (build.HERE / build.CSS).read_text()


def test_the_hash_sees_a_changed_source(tmp_path, monkeypatch) -> None:
    for name in (*build.SOURCES, build.CSS):
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((build.HERE / name).read_bytes())
    monkeypatch.setattr(build, "HERE", tmp_path)
    before = build.source_hash()
    (tmp_path / build.SOURCES[1]).write_text((tmp_path / build.SOURCES[1]).read_text() + "\n// changed\n")
    assert build.source_hash() != before


def test_the_studio_serves_the_bundle() -> None:
    import gradio as gr

    from inpaintstudio.ui.editor import bundle, mask_editor

    with gr.Blocks():
        editor = mask_editor("editor", run_button="run", brush_size=24)
    assert editor.js_on_load == bundle()[0] and "class InpaintEditor" in editor.js_on_load
    assert editor.elem_id == "editor"


def test_browser_grow_and_shrink_match_the_server_masks_module(tmp_path) -> None:
    """The bundle's MaskOps (run by node) against inpaintstudio.core.maskops on the same mask: the Euclidean grow /
    shrink and the elliptical kernel may differ only on the outline (a few per cent of the pixels)."""
    import shutil
    import subprocess

    import cv2
    import numpy as np
    import pytest

    from inpaintstudio.core import maskops as masks

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (the browser tests run the same code in Chromium)")
    mask = np.zeros((90, 120), np.uint8)
    cv2.circle(mask, (40, 45), 20, 1, -1)
    mask[10:30, 70:110] = 1
    script = tmp_path / "ops.js"
    script.write_text((build.HERE / "src" / "maskops.js").read_text() + f"""
const w = 120, h = 90, mask = Uint8Array.from({mask.ravel().tolist()});
process.stdout.write(JSON.stringify({{grow: Array.from(MaskOps.grow(mask, w, h, 6)),
  shrink: Array.from(MaskOps.shrink(mask, w, h, 4)), invert: Array.from(MaskOps.invert(mask))}}));
""")
    out = json.loads(subprocess.run([node, str(script)], capture_output=True, text=True, check=True).stdout)
    ring = lambda m: (cv2.dilate(m.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0) & ~(  # noqa: E731
        cv2.erode(m.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    for name, expected in (("grow", masks.grow(mask > 0, 6)), ("shrink", masks.shrink(mask > 0, 4))):
        got = np.array(out[name], bool).reshape(mask.shape)
        differ = got != expected
        assert differ.sum() < 0.05 * expected.sum(), f"{name}: {int(differ.sum())} pixels differ"
        assert not (differ & ~ring(expected)).any(), f"{name}: pixels differ away from the outline"
    np.testing.assert_array_equal(np.array(out["invert"], bool).reshape(mask.shape), mask == 0)
