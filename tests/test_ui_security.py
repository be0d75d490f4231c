"""The studio answers only its own origin: real HTTP requests against a launched studio."""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import time
import uuid
from pathlib import Path

import pytest

from inpaintstudio.ui.security import ALLOWED_HOSTS_ENV, HostPolicy
from inpaintstudio.ui.session import StudioConfig

EVIL = "evil.example"


@pytest.fixture(scope="module")
def studio() -> tuple[int, Path]:
    os.environ.pop(ALLOWED_HOSTS_ENV, None)
    os.environ.pop("SPACE_HOST", None)
    from inpaintstudio.ui.studio import serve_in_background

    demo, url = serve_in_background(StudioConfig())
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    yield port, Path(demo.server_app.uploaded_file_dir)
    demo.close()


def _request(port: int, method: str, path: str, headers: dict[str, str], body: bytes | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for key, value in headers.items():
        connection.putheader(key, value)
    if body is not None:
        connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body)
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, payload


def _multipart(name: str, data: bytes) -> tuple[str, bytes]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body


def _uploaded_names(folder: Path) -> set[str]:
    return {p.name for p in folder.rglob("*") if p.is_file()} if folder.is_dir() else set()


def test_own_address_is_served(studio: tuple[int, Path]) -> None:
    port, _ = studio
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        status, _, page = _request(port, "GET", "/", {"Host": host})
        assert status == 200 and b"InpaintStudio" in page, host
    status, headers, _ = _request(port, "GET", "/gradio_api/info",
                                  {"Host": f"127.0.0.1:{port}", "Origin": f"http://127.0.0.1:{port}"})
    assert status == 200 and headers.get("access-control-allow-origin") == f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("host", [EVIL, f"{EVIL}:{{port}}", "127.0.0.1:1", "localhost", "", "127.0.0.1:{port}@x"])
def test_foreign_host_is_refused(studio: tuple[int, Path], host: str) -> None:
    port, _ = studio
    status, headers, body = _request(port, "GET", "/gradio_api/info", {"Host": host.format(port=port)})
    assert status == 403 and b"only its own address" in body
    assert "access-control-allow-origin" not in headers


@pytest.mark.parametrize("origin", [f"http://{EVIL}", "null", "http://127.0.0.1:1", "https://localhost:{port}.evil"])
def test_foreign_origin_is_refused_without_a_cors_echo(studio: tuple[int, Path], origin: str) -> None:
    port, _ = studio
    origin = origin.format(port=port)
    for host in (f"127.0.0.1:{port}", EVIL):  # DNS rebinding sends both Host and Origin = evil
        status, headers, body = _request(port, "GET", "/gradio_api/info", {"Host": host, "Origin": origin})
        assert status == 403 and b"only its own address" in body and "access-control-allow-origin" not in headers
        preflight = {"Host": host, "Origin": origin, "Access-Control-Request-Method": "POST"}
        status, headers, _ = _request(port, "OPTIONS", "/gradio_api/upload", preflight)
        assert status == 403 and "access-control-allow-origin" not in headers


def test_cross_origin_upload_is_not_stored(studio: tuple[int, Path]) -> None:
    port, folder = studio
    marker = f"cross-{uuid.uuid4().hex}.png"
    content_type, body = _multipart(marker, b"not really a png")
    foreign = {"Host": f"127.0.0.1:{port}", "Origin": f"http://{EVIL}", "Content-Type": content_type}
    status, _, _ = _request(port, "POST", "/gradio_api/upload", foreign, body)
    assert status == 403 and marker not in _uploaded_names(folder)
    status, _, _ = _request(port, "POST", "/gradio_api/upload", {**foreign, "Host": EVIL}, body)
    assert status == 403 and marker not in _uploaded_names(folder)
    own = {**foreign, "Origin": f"http://127.0.0.1:{port}"}
    status, _, answer = _request(port, "POST", "/gradio_api/upload", own, body)
    assert status == 200 and marker in json.loads(answer)[0]


def test_hub_download_is_not_an_api_endpoint(studio: tuple[int, Path]) -> None:
    port, _ = studio
    status, _, info = _request(port, "GET", "/gradio_api/info", {"Host": f"127.0.0.1:{port}"})
    assert status == 200
    named = json.loads(info)["named_endpoints"]
    assert "/hub_download" not in named and "/run" in named


def test_policy_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOWED_HOSTS_ENV, "studio.lan, Proxy.Example:8443")
    monkeypatch.setenv("SPACE_HOST", "me-studio.hf.space")
    policy = HostPolicy.for_launch("0.0.0.0", 7860)
    assert policy.allows_host("me-studio.hf.space") and policy.allows_origin("https://me-studio.hf.space")
    assert policy.allows_host("studio.lan:7860") and policy.allows_host("proxy.example")
    assert policy.allows_host("127.0.0.1:7860") and not policy.allows_host("0.0.0.0:7860")
    assert not policy.allows_host("127.0.0.1:7861") and not policy.allows_host(EVIL)
    assert not policy.allows_origin("file://") and policy.allows_origin(None)
    bound = HostPolicy.for_launch("192.168.1.5", 7000)
    assert bound.allows_host("192.168.1.5:7000") and not bound.allows_host("192.168.1.5:80")
    monkeypatch.setenv(ALLOWED_HOSTS_ENV, "*")
    assert HostPolicy.for_launch("127.0.0.1", 7860).allows_host(EVIL)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_client_that_disconnects_mid_upload_leaves_no_traceback(studio: tuple[int, Path]) -> None:
    port, _ = studio
    records = _Records()
    watched = [logging.getLogger(name) for name in ("uvicorn.error", "uvicorn", "inpaintstudio.ui.security")]
    for logger in watched:
        logger.addHandler(records)
    before = logging.getLogger("inpaintstudio.ui.security").level
    logging.getLogger("inpaintstudio.ui.security").setLevel(logging.INFO)
    try:
        content_type, body = _multipart("photo.png", b"x" * 50_000)
        head = (f"POST /gradio_api/upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body) * 100}\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(head + body[: len(body) // 2])  # the tab closes halfway through the upload
        deadline = time.monotonic() + 20
        while not any("disconnected" in record.getMessage() for record in records.records):
            assert time.monotonic() < deadline, [record.getMessage() for record in records.records]
            time.sleep(0.1)
    finally:
        for logger in watched:
            logger.removeHandler(records)
        logging.getLogger("inpaintstudio.ui.security").setLevel(before)
    assert not [record for record in records.records if record.exc_info or record.levelno >= logging.ERROR]
    status, _, _ = _request(port, "GET", "/", {"Host": f"127.0.0.1:{port}"})
    assert status == 200
