"""Stores outcomes in batches: one transaction writes message states, part ids, parked
receipts and the events announcing each change; only after it commits are jobs acked.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.amqp import Topology
from libs.common.db import Connection, autocommit, transaction
from libs.common.logging import get_logger
from libs.common.outbox import OutboxRelay, Staged
from services.sender import store
from services.sender.events import stage_status_events
from services.sender.outcomes import Adopter, LateReceipts, OutcomeBatch, SentOutcome
from services.sender.receipts import Receipt
from services.sender.store import Changed, ReceiptUpdate
from services.sender.work import Registry, Work

log = get_logger(__name__)
REMATCH_BATCH = 1_000
REQUEST_IDS_KEPT = 10_000


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
        flush_concurrency: int = 3,
        receipt_flush_min: int = 32,
    ) -> None:
        self._sessions = sessions
        self._topology = topology
        self._registry = registry
        self._relay = relay
        self._interval = flush_interval
        self._delay = flush_interval
        self._concurrency = flush_concurrency
        self._max = flush_max
        self._receipt_flush_min = receipt_flush_min
        self._batch = OutcomeBatch()
        # Receipts in the batch whose acknowledgement to the carrier waits for its commit,
        # and flushes in flight: see `_poke`.
        self._unacknowledged = 0
        self._flushes = 0
        # Single-part submits of the current batch by (carrier, carrier message id): a
        # receipt that arrives before they are written completes them in the same row write.
        self._open: dict[tuple[str, str], SentOutcome] = {}
        # The same for submits whose flush is in flight: a receipt for one of them waits in
        # its flush's list and joins the next batch once that flush ends, instead of being
        # parked as an orphan (a row write, then a re-match) because it came a moment early.
        self._flushing: dict[tuple[str, str], LateReceipts] = {}
        self._wakeup = asyncio.Event()
        self._adopters: dict[str, Adopter] = {}
        # The request id of each batch seen lately (batch ids are never reused).
        self._request_ids: dict[str, str | None] = {}
        self.stats: dict[str, int] = defaultdict(int)

    def set_adopter(self, carrier: str, adopter: Adopter) -> None:
        self._adopters[carrier] = adopter

    def sent(self, work: Work, carrier_message_ids: list[str]) -> None:
        entry = SentOutcome(work, carrier_message_ids, time.time())
        self._batch.sent.append(entry)
        self._index(entry)
        self._poke()

    def _index(self, entry: SentOutcome) -> None:
        if len(entry.ids) == 1:
            self._open[(entry.work.carrier, entry.ids[0])] = entry

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
        update = ReceiptUpdate(carrier, receipt, status)
        key = (carrier, receipt.carrier_message_id)
        entry = self._open.get(key)
        if entry is not None and entry.receipt is None:
            entry.receipt, entry.future = update, future
        elif key in self._flushing:
            self._flushing[key].append((update, future))
        else:
            self._batch.receipts.append((update, future))
        if future is not None and key not in self._flushing:
            self._unacknowledged += 1
        self._poke()
        return future

    def _poke(self) -> None:
        """Wake the flush loop when the batch is full, or when enough receipts wait for their
        commit and no flush is in flight: the carrier holds back further receipts until we
        acknowledge these. Otherwise they ride the next interval's flush, as a flush per
        receipt would make many tiny transactions under a steady stream."""
        if len(self._batch) >= self._max or (
            self._flushes == 0 and self._unacknowledged >= self._receipt_flush_min
        ):
            self._wakeup.set()

    @property
    def backlog(self) -> int:
        return len(self._batch)

    async def run(self) -> None:
        """Flush every interval (sooner when full), with a few flushes in flight at once.

        Concurrent flushes touch different messages; a receipt written before its
        message's `sent` is parked and re-matched (see `rematch_parked`).
        """
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), timeout=self._delay)
                self._wakeup.clear()
                while len(running) >= self._concurrency:
                    await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                if len(self._batch):
                    task = asyncio.create_task(self._guarded_flush())
                    running.add(task)
                    task.add_done_callback(running.discard)
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _guarded_flush(self) -> None:
        try:
            await self.flush()
            self._delay = self._interval
        except Exception as error:  # noqa: BLE001 — outcomes stay in memory; retry
            log.warning("sender.flush_failed", error=repr(error), backlog=len(self._batch))
            self._delay = min(max(self._delay * 2, 0.1), 5.0)

    async def rematch_forever(self, interval: float = 0.5) -> None:
        """Match parked receipts again as their messages' submits get stored, and look
        among them for the receipts of the messages this process holds."""
        while True:
            await asyncio.sleep(interval)
            try:
                while await self.rematch_parked() >= REMATCH_BATCH:
                    pass
                for carrier, adopter in self._adopters.items():
                    await self.recover_parked(carrier, adopter.held_recipients())
            except Exception as error:  # noqa: BLE001 — tried again next round
                log.warning("sender.rematch_failed", error=repr(error))

    async def recover_parked(self, carrier: str, recipients: Iterable[str]) -> None:
        """Take the receipts parked for these handsets of `carrier` into the next flush,
        where they may prove held messages sent.

        A receipt for a message another process submitted before it died is parked by
        whichever process's bind it reaches, and any process's `rematch_parked` may take
        it while it is due, backing it off each time it matches nothing there. The held
        messages it can prove sent are only in this process, so this process looks for
        it itself, whenever it holds any, instead of waiting for its turn to come round.
        """
        keys = [(carrier, recipient) for recipient in recipients]
        if not keys:
            return
        async with autocommit(self._sessions) as connection:
            parked = await store.take_parked_for(connection, keys)
        for update in parked:
            self.receipt(update.carrier, update.receipt, update.status)

    async def rematch_parked(self) -> int:
        """One round over the parked receipts that are due; returns how many were due."""
        adopted: list[Work] = []
        staged: list[Staged] = []
        try:
            async with transaction(self._sessions) as connection:
                due = await store.due_parked(connection, REMATCH_BATCH)
                if not due:
                    return 0
                done, unmatched = await store.apply_receipts(connection, [u for _, u in due])
                pairs, _ = self._claim(unmatched)
                done += await self._write_adopted(connection, pairs)
                adopted = [work for work, _ in pairs]
                still = {id(update) for update in unmatched} - {id(u) for _, u in pairs}
                await store.settle_parked(
                    connection,
                    matched=[row for row, u in due if id(u) not in still],
                    waiting=[row for row, u in due if id(u) in still],
                )
                staged = await self._announce(connection, done, adopted)
        except BaseException:
            for work in adopted:
                self._adopters[work.carrier].unclaim(work)
            raise
        for work in adopted:
            self._registry.resolve(work)
        self._relay.publish_committed(staged)
        return len(due)

    async def flush(self) -> None:
        batch, self._batch = self._batch, OutcomeBatch()
        opened, self._open = self._open, {}
        if not len(batch):
            return
        unacknowledged, self._unacknowledged = self._unacknowledged, 0
        late: LateReceipts = []
        for key in opened:
            self._flushing[key] = late
        self._flushes += 1
        try:
            await self._flush(batch)
        except BaseException:
            self._unacknowledged += unacknowledged  # back in the batch, still waiting
            raise
        finally:
            self._flushes -= 1
            for key in opened:
                self._flushing.pop(key, None)
            # Committed: these now match their stored submits; failed: the submits are back
            # in the batch, written before receipts in the same transaction.
            self._batch.receipts += late
            self._unacknowledged += sum(1 for _, future in late if future is not None)
            self._poke()

    async def _flush(self, batch: OutcomeBatch) -> None:
        started = time.perf_counter()
        adopted: list[Work] = []
        try:
            async with transaction(self._sessions) as connection:
                changed = await self._write(connection, batch, adopted)
                works = [e.work for e in batch.sent] + [w for w, _, _ in batch.unsent] + adopted
                staged = await self._announce(connection, changed, works)
        except BaseException:
            # Everything waits here for the next attempt; receipts stay unanswered to the
            # carrier meanwhile, so a crash now leaves them with the carrier, not lost.
            self._batch.merge(batch)
            for entry in batch.sent:
                self._index(entry)
            for work in adopted:
                self._adopters[work.carrier].unclaim(work)
            raise
        futures = [f for _, f in batch.receipts] + [e.future for e in batch.sent]
        for future in futures:
            if future is not None and not future.done():
                future.set_result(None)
        for work in adopted:
            self._registry.resolve(work)
        for entry in batch.sent:
            self._registry.resolve(entry.work)
        for work, _, _ in batch.unsent:
            self._registry.resolve(work)
        for work in batch.handed_on:
            self._registry.resolve(work)
        self._relay.publish_committed(staged)
        for change in changed:
            self.stats[change.status] += 1
        self.stats["flushes"] += 1
        self.stats["flushed_items"] += len(batch)
        self.stats["flush_ms"] += int((time.perf_counter() - started) * 1000)

    async def _write(
        self, connection: Connection, batch: OutcomeBatch, adopted: list[Work]
    ) -> list[Changed]:
        accepted = [e for e in batch.sent if e.ids]
        changed = await store.mark_sent(
            connection,
            [(e.work.id, e.ids[0], e.at) for e in accepted],
            [
                (e.receipt.status, store.receipt_error(e.receipt)) if e.receipt else ("sent", None)
                for e in accepted
            ],
        )
        await store.insert_parts(
            connection,
            [
                (e.work.id, number, e.work.carrier, cid)
                for e in accepted
                if len(e.ids) > 1
                for number, cid in enumerate(e.ids, start=1)
            ],
        )
        changed += await store.mark_unsent(
            connection, [(w.id, status, code) for w, status, code in batch.unsent]
        )
        done, unmatched = await store.apply_receipts(
            connection, [update for update, _ in batch.receipts]
        )
        changed += done
        # A receipt that matches no stored message: it beat its submit_sm_resp (parked
        # and matched again later), or proves a held message was sent after all.
        pairs, orphans = self._claim(unmatched)
        adopted += [work for work, _ in pairs]
        changed += await self._write_adopted(connection, pairs)
        await store.park_receipts(connection, orphans)
        self.stats["receipts_parked"] += len(orphans)
        return changed

    def _claim(
        self, unmatched: list[ReceiptUpdate]
    ) -> tuple[list[tuple[Work, ReceiptUpdate]], list[ReceiptUpdate]]:
        pairs: list[tuple[Work, ReceiptUpdate]] = []
        orphans: list[ReceiptUpdate] = []
        for update in unmatched:
            adopter = self._adopters.get(update.carrier)
            work = adopter.claim(update.receipt) if adopter else None
            if work is None:
                orphans.append(update)
            else:
                pairs.append((work, update))
        return pairs, orphans

    async def _write_adopted(
        self, connection: Connection, pairs: list[tuple[Work, ReceiptUpdate]]
    ) -> list[Changed]:
        if not pairs:
            return []
        now = time.time()
        changed = await store.mark_sent(
            connection,
            [(work.id, update.receipt.carrier_message_id, now) for work, update in pairs],
            [(update.status, store.receipt_error(update)) for _, update in pairs],
        )
        self.stats["adopted"] += len(pairs)
        log.info("sender.adopted_by_receipt", messages=len(pairs))
        return changed

    async def _announce(
        self, connection: Connection, changed: list[Changed], works: Iterable[Work] = ()
    ) -> list[Staged]:
        """Stage the events: published by this process as soon as the flush commits. The
        request ids of `works`' sends come from their jobs, those of other batches from
        what earlier flushes read: a campaign's receipts name one batch, looked up once."""
        known = self._request_ids
        if len(known) > REQUEST_IDS_KEPT:
            known.clear()
        for work in works:
            known[work.message.batch_id] = work.text.request_id
        return await stage_status_events(connection, self._topology, changed, known)
