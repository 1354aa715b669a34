"""A customer's webhook endpoint inside the bench process: counts, dedupes, times, verifies.

It answers 200 with an empty body at once and keeps only figures, so at tens of thousands
of deliveries it is never what limits the rate. Latency runs from the event's `createdAt`
(when the bench packed it) to receipt; both clocks are this machine's.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from aiohttp import web

from tests.infra import free_port, serve_locally
from tests.platform.receiver import Received, verify

PATH = "/wesendall/events"
# Signatures checked with the secret from registration: a sample proves the signing is
# right, and checking every one would put HMAC work on the receiver's path.
VERIFY_SAMPLE = 100


@dataclass
class WebhookReceiver:
    expected: int  # distinct events to wait for
    secret: str = ""
    port: int = field(default_factory=free_port)
    deliveries: int = 0
    ids: set[str] = field(default_factory=set)
    latencies: list[float] = field(default_factory=list)  # seconds, one per delivery
    first_at: float | None = None  # wall time of the first receipt
    last_at: float | None = None
    checked: int = 0
    verified: int = 0
    unreadable: int = 0  # deliveries without a webhook-id or a readable createdAt
    _complete: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    @property
    def duplicates(self) -> int:
        return self.deliveries - len(self.ids)

    async def start(self) -> None:
        """Listen on 127.0.0.1 at `port`."""
        self._runner = await serve_locally(self._handle, self.port)

    async def stop(self) -> None:
        """Close the listener and any open connections."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_all(self, timeout: float) -> bool:
        """Whether every expected event arrived within `timeout` seconds."""
        try:
            await asyncio.wait_for(self._complete.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        at = time.time()
        self.deliveries += 1
        self.first_at = self.first_at or at
        self.last_at = at
        webhook_id = request.headers.get("webhook-id")
        try:
            created = datetime.fromisoformat(orjson.loads(body)["createdAt"]).timestamp()
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            created = None
        if webhook_id is None or created is None:
            self.unreadable += 1
        else:
            self.ids.add(webhook_id)
            self.latencies.append(at - created)
        if self.checked < VERIFY_SAMPLE:
            self.checked += 1
            self.verified += self._signed_right(request, body, at)
        if len(self.ids) >= self.expected:
            self._complete.set()
        return web.Response(status=200)

    def _signed_right(self, request: web.Request, body: bytes, at: float) -> bool:
        headers = {name.lower(): value for name, value in request.headers.items()}
        try:
            return verify(self.secret, Received(request.path, headers, body, at))
        except (KeyError, ValueError):  # a header missing or not a number
            return False
