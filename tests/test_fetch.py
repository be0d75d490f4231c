"""Fetching the authors' checkpoints, without the network.

A fake Google Drive (folder listings in memory) and plain URLs are served by an HTTP server on
127.0.0.1 with ``Range`` support; the files are synthetic checkpoints in the authors' formats, built from
the fixture-sized networks: ``InpaintingModel_gen.pth`` (``{'iteration', 'generator'}``) and TSGL's
``module.``-prefixed ``G_<n>.pth``. Every download goes through the real gdown transfer code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from inpaintstudio import registry
from inpaintstudio.core import pipeline
from inpaintstudio.models.sem_net import network as sem_net
from inpaintstudio.models.tsgl import network as tsgl
from inpaintstudio.weights import fetch
from inpaintstudio.weights import sources as weight_sources
from inpaintstudio.weights.sources import Location, Source
from tests.conftest import parity_dir

SEM = "test_fetch_sem_net"
TSGL = "test_fetch_tsgl"


# ----------------------------------------------------------------------------------------- the server
class Server:
    """Files by URL path; ``cut`` paths send only their first bytes once, ``stall`` paths hang."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}
        self.stall: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                path = self.path.split("?")[0]
                byte_range = self.headers.get("Range")
                server.requests.append((path, byte_range))
                body = server.files.get(path)
                if body is None:
                    self.send_error(404)
                    return
                start = int(re.match(r"bytes=(\d+)-", byte_range).group(1)) if byte_range else 0
                self.send_response(206 if byte_range else 200)
                if byte_range:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if path in server.stall:
                    self.wfile.write(body[start:start + 1000])
                    self.wfile.flush()
                    time.sleep(3)
                    return
                if path in server.cut:
                    self.wfile.write(body[start:server.cut.pop(path)])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class FakeDrive:
    """Google Drive folders in memory; file downloads are served by :class:`Server` through gdown."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.folders: dict[str, list[fetch.RemoteFile]] = {}
        self.listed: list[str] = []

    def add(self, folder_id: str, files: dict[str, bytes]) -> None:
        self.folders[folder_id] = []
        for index, (path, body) in enumerate(files.items()):
            file_id = f"{folder_id}-file{index}"
            self.server.files[f"/{file_id}"] = body
            self.folders[folder_id].append(fetch.RemoteFile(id=file_id, path=path))

    def list_folder(self, folder_id: str, timeout: object) -> list[fetch.RemoteFile]:
        self.listed.append(folder_id)
        return list(self.folders[folder_id])

    def download(self, file_id: str, destination: Path, progress, timeout: object) -> None:
        fetch.download_url(f"{self.server.url}/{file_id}", destination, progress, timeout)


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.close()


@pytest.fixture
def drive(server: Server, monkeypatch: pytest.MonkeyPatch) -> FakeDrive:
    fake = FakeDrive(server)
    monkeypatch.setattr(fetch, "DRIVE", fake)
    return fake


@pytest.fixture
def weights_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "weights"
    monkeypatch.setenv("INPAINTSTUDIO_WEIGHTS", str(folder))
    monkeypatch.delenv(fetch.OFFLINE_ENV, raising=False)
    return folder


# ---------------------------------------------------------------------------- fixture-sized test models
@pytest.fixture(scope="module")
def sem_fixture() -> dict[str, torch.Tensor]:
    return load_file(str(parity_dir("sem_net") / "weights.safetensors"))


@pytest.fixture(scope="module", autouse=True)
def test_models(single_thread) -> Iterator[None]:
    sem_config = sem_net.config_from_fixture(json.loads((parity_dir("sem_net") / "config.json").read_text()))
    tsgl_config = tsgl.config_from_fixture(json.loads((parity_dir("tsgl") / "config.json").read_text()))
    registry.register(dataclasses.replace(registry.get_card("sem_net"), name=SEM, config=sem_config))
    registry.register(dataclasses.replace(registry.get_card("tsgl"), name=TSGL, config=tsgl_config))
    yield
    registry.unregister(SEM)
    registry.unregister(TSGL)


def official_generator(tensors: dict[str, torch.Tensor], iteration: int = 123) -> bytes:
    """The authors' ``InpaintingModel_gen.pth``: ``{'iteration', 'generator'}``, DataParallel keys."""
    buffer = io.BytesIO()
    torch.save({"iteration": iteration, "generator": {f"module.{k}": v for k, v in tensors.items()}}, buffer)
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(autouse=True)
def clean_sources() -> Iterator[None]:
    yield
    for name in registry.registered_sources():
        registry.unregister_source(name)


def drive_source(variant: str = "places2", folder: str = "FOLDER_SEM", **location: object) -> Source:
    return registry.register_source(
        Source(SEM, variant, "Places2", "scenes and object removal", (Location("drive_folder", folder, **location),))
    )


def url_source(url: str, variant: str = "places2", **location: object) -> Source:
    return registry.register_source(
        Source(SEM, variant, "Places2", "scenes", (Location("url", url, **location),), official_filename="big-lama.pt")
    )


def quiet(lines: list[str]):
    return lines.append


# ----------------------------------------------------------------------------------------------- tests
def test_drive_folder_fetch_convert_verify_lock_then_run(server, drive, weights_folder, sem_fixture) -> None:
    generator = official_generator(sem_fixture)
    drive.add("FOLDER_SEM", {"InpaintingModel_gen.pth": generator, "InpaintingModel_dis.pth": b"D" * 100,
                             "config.yml": b"MODEL: 1\n"})
    source = drive_source()
    lines: list[str] = []
    seen: list[tuple[int, int | None]] = []
    result = fetch.fetch(source.name, log=quiet(lines), progress=lambda done, total: seen.append((done, total)))

    assert result.action == "fetched" and result.path == weights_folder / f"{SEM}.places2.safetensors"
    # the folder's contents are printed on first use, and only the generator is downloaded
    assert lines[:4] == [
        f"Google Drive folder https://drive.google.com/drive/folders/FOLDER_SEM ({SEM}:places2) holds 3 file(s):",
        "  InpaintingModel_gen.pth", "  InpaintingModel_dis.pth", "  config.yml",
    ]
    assert [path for path, _ in server.requests] == ["/FOLDER_SEM-file0"]
    assert seen[-1] == (len(generator), len(generator))
    # converted strictly: exactly the network's tensors, values untouched
    converted = load_file(str(result.path))
    assert converted.keys() == sem_fixture.keys() and len(converted) == 554
    assert all(torch.equal(converted[k], sem_fixture[k]) for k in converted)
    # the lock records source, variant, original name and both digests
    lock = json.loads((weights_folder / fetch.LOCK_NAME).read_text())["weights"][f"{SEM}:places2"]
    assert lock["source"] == "https://drive.google.com/drive/folders/FOLDER_SEM"
    assert lock["variant"] == "places2" and lock["original_file"] == "InpaintingModel_gen.pth"
    assert lock["download_sha256"] == sha256(generator)
    assert lock["sha256"] == sha256(result.path.read_bytes()) == result.sha256
    assert lock["folder_listing"] == ["InpaintingModel_gen.pth", "InpaintingModel_dis.pth", "config.yml"]
    assert not (weights_folder / "downloads").exists()  # the download is gone once converted
    assert fetch.check_against_lock(source.name, result.path)[0] == "verified"

    # a later fetch is verified against the lock: no listing, no download
    again = fetch.fetch(source.name, log=quiet(lines))
    assert again.action == "verified" and drive.listed == ["FOLDER_SEM"] and len(server.requests) == 1

    # the converted weights run through the pipeline
    card = dataclasses.replace(registry.get_card(SEM), name=f"{SEM}_run", weights_path=result.path,
                               working_size=32, tile_size=32, tile_overlap=8, context_margin=8)
    registry.register(card)
    try:
        image = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
        hole = np.zeros((48, 64), bool)
        hole[16:32, 20:44] = True
        out = pipeline.inpaint(image, hole, card.name)
    finally:
        registry.unregister(card.name)
        pipeline.forget_engines(card.name)
    assert np.array_equal(out.image[~hole], image[~hole])
    assert (out.image[hole] != image[hole]).any()


def test_interrupted_download_resumes(server, weights_folder, sem_fixture) -> None:
    generator = official_generator(sem_fixture)
    server.files["/big-lama.pt"] = generator
    server.cut["/big-lama.pt"] = 600_000
    source = url_source(f"{server.url}/big-lama.pt", pick=("big-lama.pt",))
    with pytest.raises(fetch.FetchError) as info:
        fetch.fetch(source.name, log=quiet([]))
    message = str(info.value)
    assert "MB received are kept and the same command resumes" in message and "\n" not in message
    assert ".part" not in message and "/tmp" not in message
    assert not (weights_folder / f"{SEM}.places2.safetensors").exists()

    result = fetch.fetch(source.name, log=quiet([]))
    assert result.entry["download_sha256"] == sha256(generator)
    ranges = [byte_range for path, byte_range in server.requests if byte_range]
    assert ranges and int(ranges[-1].split("=")[1].rstrip("-")) > 0  # the second transfer asked for the rest only
    assert not (weights_folder / "downloads").exists()


def test_corrupted_download_fails_verification_and_is_deleted(server, weights_folder, sem_fixture) -> None:
    generator = official_generator(sem_fixture)
    server.files["/gen.pth"] = generator[: len(generator) // 2]  # truncated: not a readable checkpoint
    source = url_source(f"{server.url}/gen.pth", pick=("gen.pth",))
    with pytest.raises(fetch.VerificationError, match=r"gen\.pth is not a readable PyTorch checkpoint.*was deleted"):
        fetch.fetch(source.name, log=quiet([]))
    assert not (weights_folder / "downloads").exists()
    assert not list(weights_folder.glob("*.safetensors")) and not list(weights_folder.glob(".*partial"))
    assert fetch.read_lock(weights_folder) == {}

    # a checkpoint of another network: keys named, nothing written
    other = dict(sem_fixture)
    other.pop("latent.0.attn.mamba2.D")
    server.files["/gen.pth"] = official_generator(other)
    with pytest.raises(fetch.VerificationError, match=r"1 missing \(latent\.0\.attn\.mamba2\.D\)"):
        fetch.fetch(source.name, log=quiet([]))
    assert not (weights_folder / "downloads").exists() and fetch.read_lock(weights_folder) == {}


def test_md5_stated_by_the_publisher_is_checked(server, weights_folder, sem_fixture) -> None:
    generator = official_generator(sem_fixture)
    server.files["/big-lama.pt"] = generator
    source = url_source(f"{server.url}/big-lama.pt", pick=("big-lama.pt",), md5="0" * 32)
    with pytest.raises(fetch.VerificationError, match="has MD5 .* its publisher states 0000"):
        fetch.fetch(source.name, log=quiet([]))
    assert not (weights_folder / "downloads").exists()
    registry.unregister_source(source.name)
    good = url_source(f"{server.url}/big-lama.pt", pick=("big-lama.pt",), md5=hashlib.md5(generator).hexdigest())
    assert fetch.fetch(good.name, log=quiet([])).entry["md5"] == hashlib.md5(generator).hexdigest()


def test_tampered_file_is_deleted_and_fetched_again(server, drive, weights_folder, sem_fixture) -> None:
    drive.add("FOLDER_SEM", {"InpaintingModel_gen.pth": official_generator(sem_fixture)})
    source = drive_source()
    first = fetch.fetch(source.name, log=quiet([]))
    first.path.write_bytes(first.path.read_bytes()[:-10] + b"0123456789")
    assert fetch.check_against_lock(source.name, first.path)[0] == "mismatch"
    lines: list[str] = []
    second = fetch.fetch(source.name, log=quiet(lines))
    assert second.action == "fetched" and second.sha256 == first.sha256
    assert any("failed verification and was deleted" in line for line in lines)


def test_changed_upstream_file_is_refused_unless_forced(server, drive, weights_folder, sem_fixture) -> None:
    drive.add("FOLDER_SEM", {"InpaintingModel_gen.pth": official_generator(sem_fixture, iteration=1)})
    source = drive_source()
    first = fetch.fetch(source.name, log=quiet([]))
    first.path.unlink()
    drive.add("FOLDER_SEM", {"InpaintingModel_gen.pth": official_generator(sem_fixture, iteration=2)})
    with pytest.raises(fetch.VerificationError, match="records .* nothing replaced"):
        fetch.fetch(source.name, log=quiet([]))
    assert not first.path.exists() and not (weights_folder / "downloads").exists()
    assert fetch.lock_entry(source.name)["download_sha256"] == first.entry["download_sha256"]
    forced = fetch.fetch(source.name, force=True, log=quiet([]))
    assert forced.entry["download_sha256"] != first.entry["download_sha256"]


def test_unlocked_file_is_never_replaced(drive, weights_folder) -> None:
    source = drive_source()
    weights_folder.mkdir()
    mine = weights_folder / source.filename
    mine.write_bytes(b"my own weights")
    with pytest.raises(fetch.LockConflictError, match="not recorded in weights.lock.json; nothing replaced"):
        fetch.fetch(source.name, log=quiet([]))
    assert mine.read_bytes() == b"my own weights" and drive.listed == []


def test_offline_fails_fast_with_one_line(drive, weights_folder, monkeypatch) -> None:
    source = drive_source()
    start = time.perf_counter()
    with pytest.raises(fetch.OfflineError) as info:
        fetch.fetch(source.name, offline=True, log=quiet([]))
    message = str(info.value)
    assert time.perf_counter() - start < 1 and "\n" not in message
    assert "https://drive.google.com/drive/folders/FOLDER_SEM" in message
    assert str(weights_folder / "downloads" / f"{SEM}.places2") in message
    assert drive.listed == [] and not weights_folder.exists()
    monkeypatch.setenv(fetch.OFFLINE_ENV, "1")
    with pytest.raises(fetch.OfflineError):
        fetch.fetch(source.name, log=quiet([]))


def test_file_put_by_hand_where_the_offline_message_says_is_converted(weights_folder, sem_fixture) -> None:
    source = drive_source()
    staging = fetch.downloads_dir(source)
    staging.mkdir(parents=True)
    (staging / "InpaintingModel_gen.pth").write_bytes(official_generator(sem_fixture))
    result = fetch.fetch(source.name, offline=True, log=quiet([]))
    assert result.action == "converted" and result.entry["original_file"] == "InpaintingModel_gen.pth"
    assert not staging.exists()


def test_no_network_fails_fast_and_leaves_nothing(weights_folder) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = url_source(f"http://127.0.0.1:{port}/big-lama.pt", pick=("big-lama.pt",))
    start = time.perf_counter()
    with pytest.raises(fetch.OfflineError) as info:
        fetch.fetch(source.name, log=quiet([]))
    assert time.perf_counter() - start < 5
    assert str(info.value).startswith(f"{SEM}:places2: cannot reach 127.0.0.1 (no network?); download big-lama.pt")
    assert not weights_folder.exists() or not any(weights_folder.rglob("*"))


def test_stalled_server_times_out_with_a_clear_message(server, weights_folder, sem_fixture) -> None:
    server.files["/big-lama.pt"] = official_generator(sem_fixture)
    server.stall.add("/big-lama.pt")
    source = url_source(f"{server.url}/big-lama.pt", pick=("big-lama.pt",))
    start = time.perf_counter()
    with pytest.raises(fetch.FetchError) as info:
        fetch.fetch(source.name, log=quiet([]), timeout=(2, 0.5))
    assert time.perf_counter() - start < 2.5
    assert "no answer from 127.0.0.1 for 0.5 s" in str(info.value)
    assert not (weights_folder / "downloads").exists()  # no empty partial file is left behind


def test_zip_member_is_taken_from_the_archive(server, weights_folder, sem_fixture) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("big-lama/config.yaml", "generator: {}\n")
        bundle.writestr("big-lama/models/best.ckpt", official_generator(sem_fixture))
    server.files["/big-lama.zip"] = archive.getvalue()
    source = url_source(f"{server.url}/big-lama.zip", pick=("best.ckpt",), member="big-lama/models/best.ckpt")
    result = fetch.fetch(source.name, log=quiet([]))
    assert result.entry["original_file"] == "big-lama.zip" and result.entry["member"] == "big-lama/models/best.ckpt"
    assert result.entry["download_sha256"] == sha256(archive.getvalue())
    assert not (weights_folder / "downloads").exists()


def test_folder_without_a_single_generator_lists_and_asks(server, drive, weights_folder, sem_fixture) -> None:
    generator = official_generator(sem_fixture)
    drive.add("FOLDER_MXT", {"celeba-hq/InpaintingModel_gen.pth": generator,
                             "places2/InpaintingModel_gen.pth": generator})
    source = drive_source(folder="FOLDER_MXT")
    lines: list[str] = []
    with pytest.raises(fetch.FetchError, match="no single file in the folder matches .* with --file"):
        fetch.fetch(source.name, log=quiet(lines))
    assert "  places2/InpaintingModel_gen.pth" in lines and not (weights_folder / "downloads").exists()
    result = fetch.fetch(source.name, file="places2/InpaintingModel_gen.pth", log=quiet(lines))
    assert result.entry["original_file"] == "InpaintingModel_gen.pth"
    # a dataset pattern, as M×T's entries use, picks without help
    registry.unregister_source(source.name)
    picked = drive_source(variant="celebahq", folder="FOLDER_MXT", pick=("*celeba*InpaintingModel_gen.pth",))
    assert fetch.fetch(picked.name, log=quiet(lines)).action == "fetched"


def test_tsgl_share_cannot_be_fetched_but_a_file_put_by_hand_is_converted(weights_folder) -> None:
    with pytest.raises(fetch.NotFetchableError) as info:
        fetch.fetch("tsgl:celeba", log=quiet([]))
    message = str(info.value)
    assert "https://pan.baidu.com/s/1Qm1AGFHcWuE09NvusZfonA" in message and "feqj" in message
    assert "python -m inpaintstudio weights import --model tsgl --variant celeba PATH/G_<n>.pth" in message

    fixture = load_file(str(parity_dir("tsgl") / "weights.safetensors"))
    source = registry.register_source(dataclasses.replace(registry.get_source("tsgl:celeba"), model=TSGL))
    staging = fetch.downloads_dir(source)
    staging.mkdir(parents=True)
    torch.save({f"module.{k}": v for k, v in fixture.items()}, staging / "G_10.pth")  # DataParallel state dict
    result = fetch.fetch(source.name, log=quiet([]))
    assert result.entry["original_file"] == "G_10.pth" and result.entry["tensors"] == len(fixture) == 548
    assert load_file(str(result.path)).keys() == fixture.keys()


def test_unpublished_and_unknown_variants() -> None:
    with pytest.raises(fetch.NotFetchableError, match="published no code or weights: train it"):
        fetch.fetch("csfc", log=quiet([]))
    with pytest.raises(weight_sources.UnknownVariantError, match="hint has no variant 'ffhq'; its variants: "
                                                                 "places2, celebahq, celeba, dunhuang"):
        fetch.fetch("hint:ffhq", log=quiet([]))


def test_source_table_names_every_published_folder() -> None:
    folders = {s.name: s.locations[0].ref for s in registry.published_sources()
               if s.locations[0].kind == "drive_folder"}
    assert folders == {
        "sem_net:places2": "1sgJRu-Vf6u6taZY-RpY8cFXRAH09i4fu",
        "sem_net:celebahq": "1L-Tt3mTgbJ_8Ki8jQIZE6xmddhHNl3YN",
        "mxt:places2": "1s_EqqBkJRy9VE_1OUD9rLhqua2LwtBXQ",
        "mxt:celebahq": "1s_EqqBkJRy9VE_1OUD9rLhqua2LwtBXQ",
        "hint:places2": "1mzHkz8sjA7uxgG1nTLiPZQKl1zITiTgV",
        "hint:celebahq": "1DPmw5LSVxmRXoiLzPrIePXJHla0ek6E9",
        "hint:celeba": "1oWuRmL3ye-ucHkUfbSqh_2NkzlYbKC29",
        "hint:dunhuang": "14bRa6_12MZf1Qsu3Jv6CJEFwWO0WX5qF",
        "inclg:celeba": "1H9FZ-jJUkYBDcNASX8kBnmipgGgv_y7t",
    }
    lama = registry.get_source("lama")
    assert lama.locations[0].md5 == "e3aa4aaa15225a33ec84f9f4bc47e500"
    assert lama.locations[1].member == "big-lama/models/best.ckpt"


# ------------------------------------------------------------------------------- weights import errors
class Opaque:
    """A pickled Python object inside a checkpoint (what a safe load refuses)."""


def _import_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    from inpaintstudio.cli import EXIT_BAD_INPUT, main

    assert main(["weights", "import", *argv]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert "Traceback" not in err and "weights_only" not in err and "/tmp" not in err
    return err


def test_weights_import_errors_are_one_line_with_exit_2(tmp_path, capsys, sem_fixture, weights_folder) -> None:
    upload = tmp_path / "gradio-upload-1234"
    upload.mkdir()
    junk = upload / "notes.pth"
    junk.write_bytes(b"not a checkpoint at all" * 10)
    assert _import_error(capsys, "--model", SEM, str(junk)) == (
        "error: notes.pth is not a readable PyTorch checkpoint (nor a safetensors file)\n")

    unsafe = upload / "InpaintingModel_gen.pth"
    torch.save({"generator": dict(sem_fixture), "config": Opaque()}, unsafe)
    assert f"holds pickled Python objects ({Opaque.__module__}.Opaque) that are not loaded, for safety; expected " \
        "a checkpoint of tensors" in _import_error(capsys, "--model", SEM, str(unsafe))

    wrong = dict(sem_fixture)
    wrong["patch_embed.gproj1.weight"] = torch.zeros(7, 4, 3, 3)
    wrong["extra.weight"] = torch.zeros(1)
    unsafe.write_bytes(official_generator(wrong))
    message = _import_error(capsys, "--model", SEM, str(unsafe))
    assert message.startswith(f"error: InpaintingModel_gen.pth does not fit {SEM}: ")
    assert "Expected the SEM-Net (Spatially-Enhanced Mamba Network) generator as the authors publish it " \
           "(InpaintingModel_gen.pth): 554 tensors" in message

    assert _import_error(capsys, "--model", "patchmatch", str(unsafe)).startswith(
        "error: patchmatch is a classical engine and takes no weights; deep models: ")

    discriminator = upload / "D_10.pth"
    torch.save({"module.encoder.0.weight_orig": torch.zeros(64, 3, 5, 5),
                "module.classifier.weight": torch.zeros(1, 512, 5, 5)}, discriminator)
    assert "D_10.pth is not a TSGL" in _import_error(capsys, "--model", TSGL, str(discriminator))
    assert not weights_folder.exists()  # nothing written by any refused import


# ------------------------------------------------------------------------------------ start-up list
def test_startup_list_hub_first_then_authors_with_progress_in_the_log(server, drive, weights_folder, sem_fixture,
                                                                      tmp_path, monkeypatch) -> None:
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    from inpaintstudio import weights

    hub_file = tmp_path / "hub" / f"{SEM}.places2.safetensors"
    weights.save_safetensors(sem_fixture, hub_file, metadata={"model": SEM})
    asked: list[tuple[str, str, str]] = []

    def fake_hub(repo_id: str, filename: str, revision: str) -> str:
        asked.append((repo_id, filename, revision))
        if filename != hub_file.name:
            raise LocalEntryNotFoundError(f"{filename} is not in the cache")
        return str(hub_file)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_hub)
    monkeypatch.setenv(weights.HF_REPO_ENV, "me/weights")
    monkeypatch.setenv(weights.HF_REVISION_ENV, "c0ffee")
    generator = official_generator(sem_fixture)
    drive.add("FOLDER_SEM", {"InpaintingModel_gen.pth": generator})
    drive_source("places2")
    drive_source("celebahq")
    monkeypatch.setenv(fetch.FETCH_ENV, f"{SEM}:places2, {SEM}:celebahq nonsense:model")
    lines: list[str] = []
    summary = fetch.fetch_listed(log=lines.append)

    assert asked == [("me/weights", f"{SEM}.places2.safetensors", "c0ffee"),
                     ("me/weights", f"{SEM}.celebahq.safetensors", "c0ffee")]
    entries = fetch.read_lock(weights_folder)
    assert entries[f"{SEM}:places2"]["source"] == f"https://huggingface.co/me/weights/blob/c0ffee/{hub_file.name}"
    assert entries[f"{SEM}:celebahq"]["source"] == "https://drive.google.com/drive/folders/FOLDER_SEM"
    assert summary[0].startswith(f"{SEM}:places2: {hub_file.name} -> ")
    assert summary[1].startswith(f"{SEM}:celebahq: InpaintingModel_gen.pth -> ")
    assert summary[2].startswith("nonsense:model: not fetched: no published weights are known for 'nonsense'")
    assert any("trying the authors' location" in line for line in lines)
    assert f"{SEM}:celebahq: 100 % of {len(generator) / 1e6:.1f} MB" in lines
    # a second start finds both verified and downloads nothing
    requests_before = len(server.requests)
    assert all("matches the lock" in line for line in fetch.fetch_listed(log=lines.append)[:2])
    assert len(server.requests) == requests_before
