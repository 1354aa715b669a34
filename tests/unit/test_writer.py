"""The outcome writer's batching: a receipt that arrives while its submit's flush is in
flight waits for that flush and rides the next one, instead of being parked as an orphan."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from libs.common.admission import JobMessage, JobText
from libs.common.amqp import Topology
from services.sender.receipts import Receipt
from services.sender.work import Registry, Work
from services.sender.writer import OutcomeWriter


class _GatedWriter(OutcomeWriter):
    """A writer whose database write waits for the test to let it finish (or fail)."""

    def __init__(self, receipt_flush_min: int = 16) -> None:
        super().__init__(
            None,  # type: ignore[arg-type]  # no database: _flush is replaced
            Topology(""),
            Registry(),
            None,  # type: ignore[arg-type]
            flush_interval=1.0,
            flush_max=1_000,
            receipt_flush_min=receipt_flush_min,
        )
        self.gate = asyncio.Event()
        self.fail = False
        self.written: list[Any] = []

    async def _flush(self, batch: Any) -> None:
        self.written.append(batch)
        await self.gate.wait()
        if self.fail:
            # What the real write does when its transaction fails: everything back.
            self._batch.merge(batch)
            for entry in batch.sent:
                self._index(entry)
            raise ConnectionError("the database went away")


def _work(n: int) -> Work:
    return Work(
        message=JobMessage(
            id=f"msg_{n}", batch_id="bat_1", recipient="+256772000001", units=1, cost=35
        ),
        text=JobText(message="Hello", encoding="GSM-7", wallet_id="wal_1"),
        carrier="mtn",
        lane="bulk",
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )


def _receipt(carrier_message_id: str) -> Receipt:
    return Receipt(carrier_message_id, "DELIVRD", None, "256772000001", None, None, "Hello", b"")


async def test_a_receipt_for_a_submit_being_written_joins_the_next_flush() -> None:
    writer = _GatedWriter()
    writer.sent(_work(1), ["C1"])
    flushing = asyncio.create_task(writer.flush())
    await asyncio.sleep(0)
    assert len(writer.written) == 1 and writer.backlog == 0

    future = writer.receipt("mtn", _receipt("C1"), "delivered", durable=True)
    # Not in the next batch yet: written now, it would match no stored message and be parked.
    assert writer.backlog == 0
    writer.gate.set()
    await flushing
    assert [update.receipt.carrier_message_id for update, _ in writer._batch.receipts] == ["C1"]
    assert writer._batch.receipts[0][1] is future and future is not None and not future.done()


async def test_a_receipt_for_a_submit_whose_write_failed_rides_with_it_again() -> None:
    writer = _GatedWriter()
    writer.fail = True
    writer.sent(_work(1), ["C1"])
    flushing = asyncio.create_task(writer.flush())
    await asyncio.sleep(0)
    writer.receipt("mtn", _receipt("C1"), "delivered")
    writer.gate.set()
    await asyncio.gather(flushing, return_exceptions=True)
    # The submit and its receipt are both in the retried batch, submit written first.
    assert [entry.work.id for entry in writer._batch.sent] == ["msg_1"]
    assert [update.receipt.carrier_message_id for update, _ in writer._batch.receipts] == ["C1"]


async def test_receipts_for_submits_nobody_is_writing_go_straight_into_the_batch() -> None:
    writer = _GatedWriter()
    writer.receipt("mtn", _receipt("UNKNOWN"), "delivered")
    assert writer.backlog == 1


async def test_receipts_awaiting_their_commit_are_written_at_once_when_no_flush_is_in_flight() -> (
    None
):
    writer = _GatedWriter(receipt_flush_min=3)
    writer.gate.set()
    running = asyncio.create_task(writer.run())
    try:
        await asyncio.sleep(0.01)
        writer.receipt("mtn", _receipt("C1"), "delivered", durable=True)
        writer.receipt("mtn", _receipt("C2"), "delivered", durable=True)
        writer.receipt("mtn", _receipt("C3"), "delivered")  # acknowledged already: no wait
        await asyncio.sleep(0.1)
        assert writer.written == []  # the interval is a second away

        writer.receipt("mtn", _receipt("C4"), "delivered", durable=True)
        await asyncio.sleep(0.1)
        assert [len(batch.receipts) for batch in writer.written] == [4]
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_receipts_wait_for_the_flush_in_flight_and_count_again_if_it_fails() -> None:
    writer = _GatedWriter(receipt_flush_min=2)
    writer.fail = True
    writer.receipt("mtn", _receipt("C1"), "delivered", durable=True)
    flushing = asyncio.create_task(writer.flush())
    await asyncio.sleep(0)
    writer._wakeup.clear()

    writer.receipt("mtn", _receipt("C2"), "delivered", durable=True)
    assert not writer._wakeup.is_set()  # one flush is in flight and one receipt waits

    writer.gate.set()
    await asyncio.gather(flushing, return_exceptions=True)
    # The failed flush gave C1 back: two wait again, and nothing is in flight.
    assert [u.receipt.carrier_message_id for u, _ in writer._batch.receipts] == ["C1", "C2"]
    assert writer._wakeup.is_set()
