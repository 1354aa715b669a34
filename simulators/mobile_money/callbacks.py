"""Delivers callbacks to merchants: each copy sent once, never retried, failures only logged."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from datetime import UTC, datetime
from typing import Any

import aiohttp

from simulators.mobile_money.logs import log
from simulators.mobile_money.state import CallbackAttempt, PaymentRequest

# Gap between the copies of one callback: providers repeat a notification a moment later.
COPY_GAP = 0.1


class CallbackSender:
    """Owns the HTTP client session and the callback tasks in flight."""

    def __init__(self, timeout: float, attempts: deque[CallbackAttempt]) -> None:
        self.attempts = attempts
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Open the client session."""
        self._session = aiohttp.ClientSession(timeout=self._timeout)

    async def close(self) -> None:
        """Abandon callbacks still in flight and close the session."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def in_flight(self) -> int:
        """Callback deliveries not finished yet."""
        return len(self._tasks)

    def deliver(
        self, request: PaymentRequest, method: str, url: str, body: dict[str, Any], copies: int
    ) -> None:
        """Send `copies` identical callbacks for `request`, a short moment apart."""
        if copies < 1:
            return
        task = asyncio.ensure_future(self._deliver(request, method, url, body, copies))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(
        self, request: PaymentRequest, method: str, url: str, body: dict[str, Any], copies: int
    ) -> None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        for copy in range(copies):
            if copy:
                await asyncio.sleep(COPY_GAP)
            await self._send(request, method, url, body, payload)

    async def _send(
        self,
        request: PaymentRequest,
        method: str,
        url: str,
        body: dict[str, Any],
        payload: bytes,
    ) -> None:
        attempt = CallbackAttempt(
            request.provider, request.reference, url, method, body, datetime.now(UTC)
        )
        self.attempts.append(attempt)
        request.callbacks_sent += 1
        if self._session is None:
            attempt.error = "simulator is shutting down"
            return
        try:
            async with self._session.request(
                method, url, data=payload, headers={"Content-Type": "application/json"}
            ) as response:
                await response.read()
                attempt.status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            attempt.error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # noqa: BLE001 — a callback must never take the simulator down
            attempt.error = f"{type(exc).__name__}: {exc}"
            log.exception("callback.crashed", provider=request.provider, url=url)
            return
        if attempt.error is not None or (attempt.status or 0) >= 300:
            log.warning(
                "callback.failed",
                provider=request.provider,
                reference=request.reference,
                url=url,
                status=attempt.status,
                error=attempt.error,
            )
        else:
            log.info(
                "callback.sent",
                provider=request.provider,
                reference=request.reference,
                url=url,
                status=attempt.status,
            )
