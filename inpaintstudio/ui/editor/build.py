"""Build the editor bundle (``make editor``).

The bundle is the sources in order (plain browser JavaScript, no imports, no npm packages) with a header,
and ``dist/build.json`` records the sha256 of the sources it was built from; a default test checks that
the committed bundle matches the committed sources.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

__all__ = ["HERE", "SOURCES", "CSS", "DIST", "source_hash", "bundle_text", "build"]

HERE = Path(__file__).resolve().parent
SOURCES = ("src/maskops.js", "src/editor.js", "src/mount.js")
CSS = "src/editor.css"
DIST = HERE / "dist"


def source_hash() -> str:
    """sha256 over every source file's name and bytes, in build order."""
    digest = hashlib.sha256()
    for name in (*SOURCES, CSS):
        digest.update(name.encode() + b"\0" + (HERE / name).read_bytes() + b"\0")
    return digest.hexdigest()


def bundle_text() -> str:
    parts = [f"// InpaintStudio mask editor, built from {', '.join(SOURCES)} (make editor). Do not edit.\n"]
    for name in SOURCES:
        parts.append(f"\n// ---- {name}\n" + (HERE / name).read_text())
    return "".join(parts)


def build() -> Path:
    DIST.mkdir(exist_ok=True)
    (DIST / "editor.js").write_text(bundle_text())
    (DIST / "editor.css").write_text((HERE / CSS).read_text())
    manifest = {"sources": [*SOURCES, CSS], "sha256": source_hash()}
    (DIST / "build.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return DIST


if __name__ == "__main__":
    print(f"built {build()} ({source_hash()[:12]})")
