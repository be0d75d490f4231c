"""The studio answers only its own origin: a guard in front of every HTTP and websocket request.

A page on another site must not drive the studio from a user's browser, neither by a cross-origin
request (``Origin: https://evil.example``) nor by DNS rebinding (``Host: evil.example`` resolving to
127.0.0.1). So every request whose ``Host`` is not the bound address, or whose ``Origin`` (when sent)
is not one of the studio's own, gets ``403`` before Gradio sees it: no page, no API call, no upload,
no CORS preflight, and so no ``Access-Control-Allow-Origin`` echo for a foreign origin.

Allowed:

* ``127.0.0.1``, ``localhost``, ``[::1]`` and the bound address (unless a wildcard such as
  ``0.0.0.0``), each with the bound port only;
* host names listed in ``$INPAINTSTUDIO_ALLOWED_HOSTS`` (comma-separated; any port, for a reverse
  proxy or a LAN name) and ``$SPACE_HOST`` (set by Hugging Face Spaces); ``*`` turns the check off.

The guard is installed through the launch's ``lifespan`` hook, which runs before the server accepts
its first request, and wraps the whole middleware stack (Gradio's CORS layer included).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import ClientDisconnect

__all__ = ["ALLOWED_HOSTS_ENV", "HostPolicy", "HostOriginGuard", "install"]

LOG = logging.getLogger(__name__)
ALLOWED_HOSTS_ENV = "INPAINTSTUDIO_ALLOWED_HOSTS"
SPACE_HOST_ENV = "SPACE_HOST"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
_WILDCARD_BINDS = ("", "0.0.0.0", "::")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _split(authority: str, scheme: str = "http") -> tuple[str, int] | None:
    """``host[:port]`` → (lower-case host name, port), or ``None`` when it does not parse."""
    try:
        parts = urlsplit(f"{scheme}://{authority}")
        name, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not name or parts.path or parts.query or parts.username is not None:
        return None
    return name.lower().rstrip("."), port if port is not None else _DEFAULT_PORTS.get(scheme, 80)


@dataclass(frozen=True)
class HostPolicy:
    """Which ``Host`` and ``Origin`` values the studio accepts.

    Args:
        port: the bound port; loopback names and the bound address are accepted with it only.
        local_names: loopback names and the bound address.
        named_hosts: extra host names accepted on any port (a Space's host, a proxy's name).
        open: accept every host (``*`` in ``$INPAINTSTUDIO_ALLOWED_HOSTS``).
    """

    port: int
    local_names: frozenset[str]
    named_hosts: frozenset[str] = frozenset()
    open: bool = False

    @classmethod
    def for_launch(cls, host: str | None, port: int, extra_hosts: Iterable[str] = ()) -> HostPolicy:
        """The policy of a studio bound to ``host:port`` (see the module docstring for the environment)."""
        local = set(LOOPBACK_NAMES)
        bound = (host or "").strip().strip("[]").lower()
        if bound not in _WILDCARD_BINDS:
            local.add(bound)
        named = {name.strip().lower() for name in extra_hosts if name.strip()}
        named.update(v.strip().lower() for v in os.environ.get(ALLOWED_HOSTS_ENV, "").split(",") if v.strip())
        space = os.environ.get(SPACE_HOST_ENV, "").strip().lower()
        if space:
            named.add(space)
        open_ = "*" in named
        named = {_split(name)[0] if _split(name) else name for name in named - {"*"}}
        return cls(port=int(port), local_names=frozenset(local), named_hosts=frozenset(named), open=open_)

    def _accepts(self, name: str, port: int) -> bool:
        return name in self.named_hosts or (name in self.local_names and port == self.port)

    def allows_host(self, header: str | None) -> bool:
        if self.open:
            return True
        parsed = _split(header or "")
        return parsed is not None and self._accepts(*parsed)

    def allows_origin(self, header: str | None) -> bool:
        """An absent ``Origin`` is a same-origin navigation or a non-browser client: allowed."""
        if self.open or header is None:
            return True
        try:
            parts = urlsplit(header)
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or parts.path not in ("", "/"):
            return False  # includes "null" (sandboxed frames, file: pages)
        parsed = _split(parts.netloc, parts.scheme)
        return parsed is not None and self._accepts(*parsed)


class HostOriginGuard:
    """ASGI middleware: ``403`` for a foreign ``Host`` or ``Origin``, before anything else runs; a client that
    disconnects mid-request (a tab closed during an upload) ends its request quietly instead of a traceback."""

    def __init__(self, app: ASGIApp, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for key, value in scope.get("headers", []):
            name = key.decode("latin-1").lower()
            if name in ("host", "origin"):
                headers.setdefault(name, value.decode("latin-1"))
        if "host" not in headers:
            server = scope.get("server")
            headers["host"] = f"{server[0]}:{server[1]}" if server else ""
        if self.policy.allows_host(headers["host"]) and self.policy.allows_origin(headers.get("origin")):
            try:
                await self.app(scope, receive, send)
            except ClientDisconnect:
                # a browser closed mid-upload: nobody is left to answer and nothing is lost
                LOG.info("a client disconnected during %s %s", scope.get("method", ""), scope.get("path", ""))
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = (b"403 Forbidden: this InpaintStudio answers only its own address. To serve it under another "
                b"host name, list it in " + ALLOWED_HOSTS_ENV.encode() + b".\n")
        await send({
            "type": "http.response.start",
            "status": 403,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())],
        })
        await send({"type": "http.response.body", "body": body})


def install(options: dict[str, Any]) -> dict[str, Any]:
    """Add the guard to ``Blocks.launch`` keywords (uses their ``server_name`` and ``server_port``)."""
    policy = HostPolicy.for_launch(options.get("server_name"), int(options["server_port"]))
    app_kwargs = dict(options.get("app_kwargs") or {})
    user_lifespan = app_kwargs.get("lifespan")

    @asynccontextmanager
    async def guarded(app: Any) -> AsyncIterator[Any]:
        # Starlette has built its middleware stack before the lifespan starts and serves no request
        # until it has: wrapping the stack here puts the guard in front of everything, race-free.
        if not isinstance(app.middleware_stack, HostOriginGuard):
            app.middleware_stack = HostOriginGuard(app.middleware_stack, policy)
        if user_lifespan is None:
            yield None
        else:
            async with user_lifespan(app) as state:
                yield state

    app_kwargs["lifespan"] = guarded
    return {**options, "app_kwargs": app_kwargs}
