"""Claims due deliveries and runs their attempts, so one endpoint never holds up another.

Isolation: each endpoint has at most `per_endpoint_concurrency` attempts in flight, and
an endpoint at its cap (or with its breaker open) is left out of the next claim, so the
claim always fills with other endpoints' work. A hanging endpoint costs its own few
slots and its own timeouts; everybody else's deliveries keep flowing. Any number of
dispatchers can run: a claim takes only deliveries still due under the row lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from datetime import timedelta

import aiohttp
from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.db import session_scope
from libs.common.logging import get_logger
from services.webhooks import store
from services.webhooks.delivery import attempt
from services.webhooks.settings import WebhooksSettings

log = get_logger(__name__)


class Breaker:
    """After `threshold` failures in a row, no attempts for `cooldown` seconds."""

    def __init__(self, threshold: int, cooldown: float) -> None:
        self._threshold = threshold
        self._cooldown = cooldown
        self._failures = 0
        self._open_until = 0.0

    def is_open(self) -> bool:
        return time.monotonic() < self._open_until

    def observe(self, ok: bool) -> None:
        if ok:
            self._failures, self._open_until = 0, 0.0
            return
        self._failures += 1
        if self._failures >= self._threshold:
            self._open_until = time.monotonic() + self._cooldown
            # Once the cooldown ends, one more failure opens it again.
            self._failures = self._threshold - 1


class Dispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: WebhooksSettings,
        http: aiohttp.ClientSession,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._http = http
        self._in_flight: dict[str, int] = defaultdict(int)
        self._breakers: dict[str, Breaker] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        # Longer than any attempt can take, so a lease only lapses when its holder died.
        self._lease = timedelta(seconds=settings.webhook_timeout * 3 + 30)

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            # Cleared before claiming: a wake during the claim leads straight to another.
            self._wake.clear()
            try:
                claimed = await self._claim_round()
            except Exception:  # the database may be restarting; try again shortly
                log.exception("webhooks.claim_failed")
                claimed = 0
            if claimed == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._settings.webhook_poll_interval)

    async def purge_forever(self) -> None:
        """Keep the delivery log to its retention period, a batch at a time."""
        while True:
            try:
                while True:
                    async with session_scope(self._sessions) as session:
                        purged = await store.purge_finished(
                            session, self._settings.webhook_retention
                        )
                    if purged:
                        log.info("webhooks.purged", deliveries=purged)
                    if purged < 5000:
                        break
            except Exception:  # retried at the next interval
                log.exception("webhooks.purge_failed")
            await asyncio.sleep(self._settings.webhook_purge_interval)

    def _breaker(self, endpoint_id: str) -> Breaker:
        breaker = self._breakers.get(endpoint_id)
        if breaker is None:
            breaker = Breaker(
                self._settings.webhook_breaker_failures,
                self._settings.webhook_breaker_cooldown.total_seconds(),
            )
            self._breakers[endpoint_id] = breaker
        return breaker

    async def _claim_round(self) -> int:
        settings = self._settings
        room = min(settings.webhook_claim_batch, settings.webhook_max_in_flight - len(self._tasks))
        if room <= 0:
            return 0
        cap = self._settings.webhook_endpoint_concurrency
        skip = {e for e, n in self._in_flight.items() if n >= cap}
        skip |= {e for e, b in self._breakers.items() if b.is_open()}
        async with session_scope(self._sessions) as session:
            rows = await store.claim_due(
                session,
                skip_endpoints=sorted(skip),
                in_flight=dict(self._in_flight),
                per_endpoint=cap,
                limit=room,
                lease=self._lease,
            )
        for row in rows:
            # Claimed up to the cap per endpoint: counted now, so the next claim sees them.
            self._in_flight[row["endpoint_id"]] += 1
            task = asyncio.create_task(self._deliver(row))
            self._tasks.add(task)
            task.add_done_callback(self._done)
        return len(rows)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._wake.set()

    async def _deliver(self, row: RowMapping) -> None:
        endpoint_id = row["endpoint_id"]
        try:
            outcome = await attempt(self._http, self._settings, row)
            self._breaker(endpoint_id).observe(outcome.ok)
            async with session_scope(self._sessions) as session:
                status = await store.record(
                    session,
                    row,
                    outcome,
                    schedule=self._settings.webhook_retry_schedule,
                    jitter=self._settings.webhook_retry_jitter,
                    disable_after=self._settings.webhook_disable_after,
                )
            log.info(
                "webhook.attempted",
                delivery_id=row["id"],
                endpoint_id=endpoint_id,
                event_id=row["event_id"],
                attempt=row["attempts"] + 1,
                status_code=outcome.status_code,
                latency_ms=outcome.latency_ms,
                error=outcome.error,
                delivery_status=status,
            )
        except Exception:
            # Not recorded: the lease lapses and the attempt is made again (at least once).
            log.exception("webhook.attempt_unrecorded", delivery_id=row["id"])
        finally:
            self._in_flight[endpoint_id] -= 1
            if self._in_flight[endpoint_id] <= 0:
                del self._in_flight[endpoint_id]

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
