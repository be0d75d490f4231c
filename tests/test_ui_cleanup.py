"""Nothing stays on disk: the studio's folder goes on SIGTERM / SIGINT, at the next start when the
process was killed, and the browser's uploads a few minutes after they arrive."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from inpaintstudio import io as image_io
from inpaintstudio.ui.cleanup import PREFIX, TempSpace, remove_stale

REPO = Path(__file__).resolve().parent.parent
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


def _images_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_folders_of_dead_processes_are_removed_at_start_and_live_ones_kept(tmp_path: Path) -> None:
    dead = tmp_path / f"{PREFIX}{_dead_pid()}-abc"
    (dead / "cache" / "session-1").mkdir(parents=True)
    (dead / "cache" / "session-1" / "photo.png").write_bytes(b"x")
    mine = tmp_path / f"{PREFIX}{os.getpid()}-def"
    mine.mkdir()
    other = tmp_path / "someone-else"
    other.mkdir()
    assert remove_stale(tmp_path) == [dead]
    assert not dead.exists() and mine.exists() and other.exists()


def test_uploads_are_swept_once_old_and_session_folders_stay_until_their_session_ends(tmp_path: Path) -> None:
    space = TempSpace(parent=tmp_path, transient_age=300, sweep_every=3600)
    try:
        upload = space.cache / "0123abcd" / "photo.png"
        upload.parent.mkdir()
        upload.write_bytes(b"x")
        fresh = space.cache / "4567cdef" / "layer.png"
        fresh.parent.mkdir()
        fresh.write_bytes(b"x")
        session = space.cache / "session-xyz" / "result.png"
        session.parent.mkdir()
        session.write_bytes(b"x")
        old = time.time() - 600
        os.utime(upload.parent, (old, old))
        os.utime(session.parent, (old, old))
        assert space.sweep() == 1
        assert not upload.exists() and fresh.exists() and session.exists()
    finally:
        space.remove()
    assert not space.root.exists()


def _wait_for_server(url: str, process: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else "the studio stopped"
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("the studio did not answer")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_upload_and_run_then_signal_leaves_no_image_in_the_temp_folders(tmp_path: Path, signum: int) -> None:
    from gradio_client import Client, handle_file

    from inpaintstudio.ui.session import data_url
    from inpaintstudio.ui.studio import free_port

    server_tmp = tmp_path / "server-tmp"
    server_tmp.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"}
    env.update(TMPDIR=str(server_tmp), PYTHONPATH=str(REPO), GRADIO_ANALYTICS_ENABLED="False")
    process = subprocess.Popen([sys.executable, str(REPO / "app.py"), "--port", str(port)], cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_for_server(url, process)
        client_files = tmp_path / "client"
        client = Client(url, verbose=False, download_files=str(client_files))
        photo = np.random.default_rng(0).integers(0, 255, size=(120, 160, 3), dtype=np.uint8)
        photo_path = tmp_path / "photo.png"
        image_io.save_image(photo_path, photo)
        client.predict(handle_file(str(photo_path)), api_name="/open_image")
        hole = np.zeros((120, 160), bool)
        hole[40:80, 50:100] = True
        client.predict(data_url(hole, "png"), ["opencv_telea"], [], "auto", None, None, 0, api_name="/run")
        client.predict(api_name="/result_file")  # the full-size PNG and the mask that ran
        assert len(_images_under(server_tmp)) >= 3, "the run left its files where this test looks"
        process.send_signal(signum)
        process.wait(timeout=60)
        # the open client connection is dropped (it used to hold the exit for 5 s) without a traceback
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    left = _images_under(server_tmp)
    assert left == [], f"{len(left)} image files left after {signal.Signals(signum).name}: {left[:3]}"
    assert not any(server_tmp.glob(f"{PREFIX}*")), "the studio's folder was not removed"
