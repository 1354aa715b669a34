"""Transactional outbox: rows committed with a state change, published later with confirms.

A crash anywhere between commit and publish only delays the message; a crash between
publish and delete publishes it again, so every consumer dedupes by id.

On the hot paths (admissions, message states) the committing process publishes its rows
itself right after the commit: they are inserted already claimed by it (`stage`), so no
relay round trip stands between a commit and its publish. A relay takes such a row only
if that process died before deleting it, once the claim runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aio_pika
import orjson
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection
from sqlalchemy import insert, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.db import Connection, autocommit, fetch_named, session_scope
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
# A staged row not deleted within this long was abandoned by the process that committed it.
STAGED_LEASE = timedelta(seconds=15)

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


# The rows `stage` inserts, claimed by the inserting process, over `stage_parameters`.
# `{source}` lets a caller insert them FROM a CTE of its own statement (its rows come
# out once per row of that source): `stage_sql("debit, ")`.
_STAGED_ROWS = (
    "INSERT INTO outbox (origin, exchange, routing_key, message_id, body, headers, priority,"
    " attempts, claimed_until)"
    " SELECT u.origin, u.exchange, u.routing_key, u.message_id, u.body,"
    " CAST(u.headers AS jsonb), u.priority, 1, now() + CAST(:outbox_lease AS interval)"
    " FROM {source}unnest(CAST(:outbox_origins AS text[]), CAST(:outbox_exchanges AS text[]),"
    "             CAST(:outbox_routing_keys AS text[]), CAST(:outbox_message_ids AS text[]),"
    "             CAST(:outbox_bodies AS bytea[]), CAST(:outbox_headers AS text[]),"
    "             CAST(:outbox_priorities AS smallint[]))"
    " AS u(origin, exchange, routing_key, message_id, body, headers, priority)"
    " RETURNING id, message_id"
)


def stage_sql(source: str = "") -> str:
    """The INSERT of staged rows, for a statement of the caller's; see `stage`."""
    return _STAGED_ROWS.format(source=source)


_STAGE = stage_sql()
_DELETE = "DELETE FROM outbox WHERE id = ANY($1::bigint[])"


@dataclass(slots=True)
class OutboxMessage:
    origin: str  # the service whose relays publish it (BILLING or SENDER)
    exchange: str
    routing_key: str
    body: bytes
    message_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    headers: dict[str, Any] = field(default_factory=dict)
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


@dataclass(frozen=True, slots=True)
class Staged:
    """An outbox row claimed by the transaction that inserts it: its process publishes it."""

    id: int
    exchange: str
    routing_key: str
    message_id: str
    body: bytes
    headers: dict[str, Any]
    priority: int
    attempts: int = 1


async def enqueue(session: AsyncSession, messages: list[OutboxMessage]) -> None:
    """Add messages to the outbox inside the caller's transaction; a relay publishes them."""
    if messages:
        await session.execute(insert(OutboxRow), [m.row() for m in messages])


async def stage(
    connection: Connection,
    messages: Sequence[OutboxMessage],
    *,
    lease: timedelta = STAGED_LEASE,
) -> list[Staged]:
    """Add messages claimed by this process, which publishes them once the caller commits
    (`publish_committed`); if it dies first, a relay publishes them after `lease`.

    `connection` is the asyncpg driver inside the caller's transaction (`db.transaction`).
    """
    if not messages:
        return []
    rows = await fetch_named(connection, _STAGE, stage_parameters(messages, lease))
    return staged_rows(messages, rows)


def stage_parameters(
    messages: Sequence[OutboxMessage], lease: timedelta = STAGED_LEASE
) -> dict[str, Any]:
    return {
        "outbox_lease": lease,
        "outbox_origins": [m.origin for m in messages],
        "outbox_exchanges": [m.exchange for m in messages],
        "outbox_routing_keys": [m.routing_key for m in messages],
        "outbox_message_ids": [m.message_id for m in messages],
        "outbox_bodies": [m.body for m in messages],
        "outbox_headers": [orjson.dumps(m.headers).decode() for m in messages],
        "outbox_priorities": [m.priority for m in messages],
    }


def staged_rows(
    messages: Sequence[OutboxMessage], inserted: Iterable[tuple[int, str]]
) -> list[Staged]:
    """The `Staged` rows of `messages`, from the (id, message_id) pairs their insert returned."""
    ids = {message_id: row_id for row_id, message_id in inserted}
    return [
        Staged(
            ids[m.message_id],
            m.exchange,
            m.routing_key,
            m.message_id,
            m.body,
            m.headers,
            m.priority,
        )
        for m in messages
    ]


def publish_committed(relays: Sequence[OutboxRelay], staged: Sequence[Staged]) -> None:
    """Hand committed staged rows to the relay that carries their priority: the first of
    `relays` (highest minimum priority first) whose minimum the row meets. With no relays,
    the rows wait for billing's, which take them once their claim runs out."""
    if not staged or not relays:
        return
    ordered = sorted(relays, key=lambda r: r.min_priority, reverse=True)
    shares: dict[OutboxRelay, list[Staged]] = defaultdict(list)
    for row in staged:
        shares[next(r for r in ordered if row.priority >= r.min_priority)].append(row)
    for relay, rows in shares.items():
        relay.publish_committed(rows)


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
        self.min_priority = min_priority
        self._channel_lock = asyncio.Lock()
        # Staged rows being published, and the ids of those published, to delete.
        self._publishing: set[asyncio.Task[None]] = set()
        self._published: list[int] = []
        self._deleter: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wakeup.set()

    def publish_committed(self, staged: Sequence[Staged]) -> None:
        """Publish rows staged by a transaction that has committed, in the background."""
        if staged:
            task = asyncio.get_running_loop().create_task(self._publish_staged(staged))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait for staged rows in hand to be published and deleted (on shutdown)."""
        pending = [*self._publishing, *([self._deleter] if self._deleter else [])]
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    async def _publish_staged(self, staged: Sequence[Staged]) -> None:
        results = await asyncio.gather(
            *(self._publish(row) for row in staged), return_exceptions=True
        )
        failed = [row for row, result in zip(staged, results, strict=True) if result is not None]
        self._published += [
            row.id for row, result in zip(staged, results, strict=True) if result is None
        ]
        if self._published and (self._deleter is None or self._deleter.done()):
            self._deleter = asyncio.get_running_loop().create_task(self._delete_published())
        if failed:
            self._report_failed(failed, next(r for r in results if r is not None))
            # Give the rows to the relay loop now rather than when their claim runs out.
            with contextlib.suppress(Exception):
                await self._release([row.id for row in failed])
            self.wake()

    async def _delete_published(self) -> None:
        """Delete published staged rows, coalesced: one statement each round."""
        while self._published:
            ids, self._published = self._published, []
            try:
                await self._delete(ids)
            except Exception as error:  # noqa: BLE001 — kept claimed; tried again shortly
                log.warning("outbox.delete_failed", relay=self._name, error=repr(error))
                self._published[:0] = ids
                await asyncio.sleep(1.0)

    async def _delete(self, ids: list[int]) -> None:
        """Delete published rows: one statement, outside a transaction."""
        async with autocommit(self._sessions) as connection:
            await connection.execute(_DELETE, ids)

    def _report_failed(self, rows: Sequence[Any], error: BaseException) -> None:
        log.warning(
            "outbox.publish_failed",
            relay=self._name,
            failed=len(rows),
            exchange=rows[0].exchange,
            routing_key=rows[0].routing_key,
            error=repr(error),
        )

    async def _release(self, ids: list[int]) -> None:
        async with session_scope(self._sessions) as session:
            await session.execute(
                update(OutboxRow).where(OutboxRow.id.in_(ids)).values(claimed_until=None)
            )

    async def _exchange(self, name: str) -> AbstractExchange:
        if self._channel is None or self._channel.is_closed:
            async with self._channel_lock:
                if self._channel is None or self._channel.is_closed:
                    self._channel = await self._connection.channel(on_return_raises=True)
                    self._exchanges.clear()
        assert self._channel is not None
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
                        "min_priority": self.min_priority,
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
        if done:
            await self._delete(done)
        if failed:
            self._report_failed([row for row, _ in failed], failed[0][1])
            # Not published: release the lease so the next round takes them at once.
            await self._release([row.id for row, _ in failed])
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
