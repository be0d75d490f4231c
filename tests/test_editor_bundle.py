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
