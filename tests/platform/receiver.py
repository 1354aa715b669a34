"""A customer's webhook receiver, as a real HTTP server in the test process."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.infra import free_port, serve_locally


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


def verify(secret: str, received: Received, tolerance: float = 300) -> bool:
    """Verify a delivery the way the Standard Webhooks libraries do, from the spec alone."""
    msg_id = received.headers["webhook-id"]
    timestamp = received.headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = f"{msg_id}.{timestamp}.".encode() + received.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for candidate in received.headers["webhook-signature"].split(" "):
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False


@dataclass
class Receiver:
    """Paths decide behaviour: /ok/…, /slow/… (200 after 0.2 s), /fail/{n}/… (500 n times,
    then 200), /hang/…, /redirect/…; `mode` overrides a path's behaviour ("ok", "fail", "hang")."""

    port: int = field(default_factory=free_port)
    received: dict[str, list[Received]] = field(default_factory=lambda: defaultdict(list))
    modes: dict[str, str] = field(default_factory=dict)
    _failures: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> None:
        self._runner = await serve_locally(self._handle, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.path
        body = await request.read()
        self.received[path].append(Received(path, dict(request.headers), body, time.time()))
        mode = self.modes.get(path) or path.split("/")[1]
        if mode == "hang":
            await asyncio.sleep(8)
        if mode == "slow":
            await asyncio.sleep(0.2)
        if mode == "fail":
            limit = int(path.split("/")[2]) if path.split("/")[2].isdigit() else 10**9
            self._failures[path] += 1
            if self._failures[path] <= limit:
                return web.Response(status=500, text="not now")
        if mode == "redirect":
            raise web.HTTPFound(self.url("/ok/redirected"))
        return web.Response(status=200, text="thanks")

    def at(self, path: str) -> list[Received]:
        return list(self.received.get(path, []))
