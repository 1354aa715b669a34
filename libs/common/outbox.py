"""Transactional outbox: rows committed with a state change, published later with confirms.

A crash anywhere between commit and publish only delays the message; a crash between
publish and delete publishes it again, so every consumer dedupes by id.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection
from sqlalchemy import delete, insert, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.db import session_scope
from libs.common.logging import get_logger
from libs.common.models import OutboxRow

log = get_logger(__name__)

# Outbox origins: each service's relays publish what that service wrote.
BILLING = "billing"
SENDER = "sender"

PRIORITY_HIGH = 10
PRIORITY_NORMAL = 0
# AMQP header with the publish attempt of an outbox message: 1 for the first.
PUBLISH_ATTEMPT = "x-publish-attempt"
# A claimed row not deleted within this long was abandoned by a dead relay.
CLAIM_LEASE = "30 seconds"

_CLAIM = text(
    "UPDATE outbox o SET attempts = o.attempts + 1,"
    f" claimed_until = now() + interval '{CLAIM_LEASE}'"
    " WHERE o.id IN (SELECT id FROM outbox"
    "   WHERE origin = :origin AND priority >= :min_priority"
    "   AND (claimed_until IS NULL OR claimed_until < now())"
    "   ORDER BY priority DESC, id LIMIT :limit FOR UPDATE SKIP LOCKED)"
    " RETURNING o.id, o.exchange, o.routing_key, o.message_id, o.body, o.headers, o.attempts,"
    " o.priority"
)


@dataclass(slots=True)
class OutboxMessage:
    origin: str  # the service whose relays publish it (BILLING or SENDER)
    exchange: str
    routing_key: str
    body: bytes
    message_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    headers: dict[str, str] = field(default_factory=dict)
    priority: int = PRIORITY_NORMAL

    def row(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "exchange": self.exchange,
            "routing_key": self.routing_key,
            "body": self.body,
            "message_id": self.message_id,
            "headers": self.headers,
            "priority": self.priority,
        }


async def enqueue(session: AsyncSession, messages: list[OutboxMessage]) -> None:
    """Add messages to the outbox inside the caller's transaction."""
    if messages:
        await session.execute(insert(OutboxRow), [m.row() for m in messages])


class OutboxRelay:
    """Publishes committed outbox rows, highest priority first, and deletes what the broker took.

    Several relays (one per process that writes the outbox) share the table through
    `FOR UPDATE SKIP LOCKED`. `wake()` after a commit makes the relay publish at once;
    otherwise it polls.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        connection: AbstractRobustConnection,
        *,
        origin: str,
        best_effort_exchanges: frozenset[str] = frozenset(),
        batch_size: int = 200,
        poll_interval: float = 0.5,
        name: str = "outbox",
        min_priority: int = PRIORITY_NORMAL,
    ) -> None:
        self._sessions = sessions
        self._connection = connection
        # Events may have no subscriber yet; commands must reach a queue (mandatory).
        self._best_effort = best_effort_exchanges
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._wakeup = asyncio.Event()
        self._channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._name = name
        self._origin = origin
        # A relay for high-priority rows only never waits behind a campaign's bulk rows.
        self._min_priority = min_priority

    def wake(self) -> None:
        self._wakeup.set()

    async def _exchange(self, name: str) -> AbstractExchange:
        if self._channel is None or self._channel.is_closed:
            self._channel = await self._connection.channel(on_return_raises=True)
            self._exchanges.clear()
        if name not in self._exchanges:
            self._exchanges[name] = await self._channel.get_exchange(name, ensure=False)
        return self._exchanges[name]

    async def _publish(self, row: Any) -> None:
        exchange = await self._exchange(row.exchange)
        message = aio_pika.Message(
            row.body,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=row.message_id,
            headers={**(row.headers or {}), PUBLISH_ATTEMPT: row.attempts},
        )
        await exchange.publish(
            message,
            row.routing_key,
            mandatory=row.exchange not in self._best_effort,
            timeout=10,
        )

    async def drain_once(self) -> int:
        """Publish one batch; returns how many rows left the outbox.

        Rows are claimed (attempts + 1, a lease) in a committed transaction before they
        are published, so a message published by a relay that died before deleting its
        row goes out again marked as a possible duplicate (attempt > 1): consumers check
        those against the database and trust first attempts.
        """
        async with session_scope(self._sessions) as session:
            # The claim is bookkeeping on the path of every OTP: it does not wait for the WAL
            # flush, whose stalls under a campaign's writes reach hundreds of milliseconds.
            # Only an operating-system crash in that instant could lose it, and then at worst
            # the batch is published again unmarked.
            await session.execute(text("SET LOCAL synchronous_commit = off"))
            rows = (
                await session.execute(
                    _CLAIM,
                    {
                        "limit": self._batch_size,
                        "min_priority": self._min_priority,
                        "origin": self._origin,
                    },
                )
            ).all()
        if not rows:
            return 0
        results = await asyncio.gather(
            *(self._publish(row) for row in rows), return_exceptions=True
        )
        done = [row.id for row, result in zip(rows, results, strict=True) if result is None]
        failed = [
            (row, result) for row, result in zip(rows, results, strict=True) if result is not None
        ]
        async with session_scope(self._sessions) as session:
            if done:
                await session.execute(delete(OutboxRow).where(OutboxRow.id.in_(done)))
            if failed:
                # Not published: release the lease so the next round takes them at once.
                await session.execute(
                    update(OutboxRow)
                    .where(OutboxRow.id.in_([row.id for row, _ in failed]))
                    .values(claimed_until=None)
                )
        if failed:
            row, error = failed[0]
            log.warning(
                "outbox.publish_failed",
                relay=self._name,
                failed=len(failed),
                exchange=row.exchange,
                routing_key=row.routing_key,
                error=repr(error),
            )
        if failed and not done:
            raise ConnectionError("outbox publish failed")
        return len(done)

    async def run(self) -> None:
        """Drain until cancelled; back off while the broker or database is away."""
        backoff = self._poll_interval
        while True:
            try:
                while await self.drain_once() >= self._batch_size:
                    pass
                backoff = self._poll_interval
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 — any fault: keep the rows, retry later
                log.warning("outbox.relay_error", relay=self._name, error=repr(error))
                backoff = min(backoff * 2, 5.0)
                self._channel = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=backoff)
            self._wakeup.clear()
