"""Stores outcomes in batches: one transaction writes message states, part ids, parked
receipts and the events announcing each change; only after it commits are jobs acked.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.amqp import Topology
from libs.common.db import session_scope
from libs.common.logging import get_logger
from libs.common.outbox import OutboxRelay, enqueue
from services.sender import store
from services.sender.events import status_events
from services.sender.receipts import Receipt
from services.sender.store import Changed, ReceiptUpdate
from services.sender.work import Registry, Work

log = get_logger(__name__)


class Adopter(Protocol):
    """Held (ambiguous) messages of one carrier that an orphan receipt may prove were sent."""

    def claim(self, receipt: Receipt) -> Work | None:
        """The held message this receipt belongs to, taken out of the hold."""

    def unclaim(self, work: Work) -> None:
        """Put a claimed message back on hold (its transaction did not commit)."""


@dataclass
class _Batch:
    sent: list[tuple[Work, list[str], datetime]] = field(default_factory=list)
    unsent: list[tuple[Work, str, str | None]] = field(default_factory=list)
    # A receipt with a future is acknowledged to the carrier only once that future is done.
    receipts: list[tuple[ReceiptUpdate, asyncio.Future[None] | None]] = field(default_factory=list)
    handed_on: list[Work] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sent) + len(self.unsent) + len(self.receipts) + len(self.handed_on)

    def merge(self, other: _Batch) -> None:
        self.sent[:0] = other.sent
        self.unsent[:0] = other.unsent
        self.receipts[:0] = other.receipts
        self.handed_on[:0] = other.handed_on


class OutcomeWriter:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        topology: Topology,
        registry: Registry,
        relay: OutboxRelay,
        *,
        flush_interval: float,
        flush_max: int,
    ) -> None:
        self._sessions = sessions
        self._topology = topology
        self._registry = registry
        self._relay = relay
        self._interval = flush_interval
        self._max = flush_max
        self._batch = _Batch()
        self._wakeup = asyncio.Event()
        self._adopters: dict[str, Adopter] = {}
        self.stats: dict[str, int] = defaultdict(int)

    def set_adopter(self, carrier: str, adopter: Adopter) -> None:
        self._adopters[carrier] = adopter

    def sent(self, work: Work, carrier_message_ids: list[str]) -> None:
        self._batch.sent.append((work, carrier_message_ids, datetime.now(UTC)))
        self._poke()

    def unsent(self, work: Work, status: str, error_code: str | None) -> None:
        """A message that never reached the carrier ends failed or expired."""
        self._batch.unsent.append((work, status, error_code))
        self._poke()

    def handed_on(self, work: Work) -> None:
        """The message left this process another way (a delay queue): release its job."""
        self._batch.handed_on.append(work)
        self._poke()

    def receipt(
        self, carrier: str, receipt: Receipt, status: str, *, durable: bool = False
    ) -> asyncio.Future[None] | None:
        """Queue a receipt; with `durable`, a future that completes once it is committed."""
        future = asyncio.get_running_loop().create_future() if durable else None
        self._batch.receipts.append((ReceiptUpdate(carrier, receipt, status), future))
        # The carrier's window holds until these are stored: write them without waiting.
        self._wakeup.set()
        return future

    def _poke(self) -> None:
        if len(self._batch) >= self._max:
            self._wakeup.set()

    @property
    def backlog(self) -> int:
        return len(self._batch)

    async def run(self) -> None:
        """Flush every interval (sooner when the batch is full), until cancelled."""
        backoff = self._interval
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=backoff)
            self._wakeup.clear()
            try:
                await self.flush()
                backoff = self._interval
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 — outcomes stay in memory; retry
                log.warning("sender.flush_failed", error=repr(error), backlog=len(self._batch))
                backoff = min(max(backoff * 2, 0.1), 5.0)

    async def flush(self) -> None:
        batch, self._batch = self._batch, _Batch()
        if not len(batch):
            return
        adopted: list[Work] = []
        try:
            async with session_scope(self._sessions) as session:
                changed = await self._write(session, batch, adopted)
                await self._announce(session, changed)
        except BaseException:
            # Everything waits here for the next attempt; receipts stay unanswered to the
            # carrier meanwhile, so a crash now leaves them with the carrier, not lost.
            self._batch.merge(batch)
            for work in adopted:
                self._adopters[work.carrier].unclaim(work)
            raise
        for _, future in batch.receipts:
            if future is not None and not future.done():
                future.set_result(None)
        for work in adopted:
            self._registry.resolve(work)
        for work, _, _ in batch.sent:
            self._registry.resolve(work)
        for work, _, _ in batch.unsent:
            self._registry.resolve(work)
        for work in batch.handed_on:
            self._registry.resolve(work)
        self._relay.wake()
        for change in changed:
            self.stats[change.status] += 1

    async def _write(
        self, session: AsyncSession, batch: _Batch, adopted: list[Work]
    ) -> list[Changed]:
        changed = await store.mark_sent(
            session, [(w.id, ids[0], at) for w, ids, at in batch.sent if ids]
        )
        await store.insert_parts(
            session,
            [
                (w.id, number, w.carrier, cid)
                for w, ids, _ in batch.sent
                if len(ids) > 1
                for number, cid in enumerate(ids, start=1)
            ],
        )
        changed += await store.mark_unsent(
            session, [(w.id, status, code) for w, status, code in batch.unsent]
        )
        # Receipts that beat their submit_sm_resp were parked: match them now.
        receipts = [update for update, _ in batch.receipts]
        if batch.sent:
            parked = await store.take_parked(
                session, carrier_ids=[(w.carrier, ids[0]) for w, ids, _ in batch.sent if ids]
            )
            receipts += parked
        done, unmatched = await store.apply_receipts(session, receipts)
        changed += done
        changed += await self._adopt(session, unmatched, adopted)
        return changed

    async def _adopt(
        self, session: AsyncSession, unmatched: list[ReceiptUpdate], adopted: list[Work]
    ) -> list[Changed]:
        """Orphan receipts may prove a held message was sent; the rest are parked."""
        pairs: list[tuple[Work, ReceiptUpdate]] = []
        orphans: list[ReceiptUpdate] = []
        for update in unmatched:
            adopter = self._adopters.get(update.carrier)
            work = adopter.claim(update.receipt) if adopter else None
            if work is None:
                orphans.append(update)
            else:
                pairs.append((work, update))
                adopted.append(work)
        await store.park_receipts(session, orphans)
        self.stats["receipts_parked"] += len(orphans)
        if not pairs:
            return []
        now = datetime.now(UTC)
        changed = await store.mark_sent(
            session, [(w.id, u.receipt.carrier_message_id, now) for w, u in pairs]
        )
        done, _ = await store.apply_receipts(session, [u for _, u in pairs])
        self.stats["adopted"] += len(pairs)
        log.info("sender.adopted_by_receipt", messages=len(pairs))
        return changed + done

    async def _announce(self, session: AsyncSession, changed: list[Changed]) -> None:
        await enqueue(session, await status_events(session, self._topology, changed))
