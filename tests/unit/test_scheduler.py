"""One carrier's scheduler: at most `capacity` messages with the link, the priority lane
first, every outcome acted on, and a window that hands its slots out in order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from libs.common.admission import JobMessage, JobText, Lane
from services.sender.carriers.base import (
    NO_RESPONSE,
    Outcome,
    Submission,
    SubmitKind,
    SubmitOutcome,
)
from services.sender.carriers.window import Window
from services.sender.scheduler import CarrierScheduler
from services.sender.work import Work


class _HeldLink:
    """A link whose answers wait for the test; or, with `refuse`, refuses at once."""

    def __init__(self, refuse: str | None = None) -> None:
        self.sent: list[tuple[str, Outcome]] = []
        self.refuse = refuse

    def send(self, message: Submission, done: Outcome) -> None:
        if self.refuse:
            done(SubmitOutcome(SubmitKind.PERMANENT, [], 0x0B, self.refuse))
            return
        self.sent.append((message.destination, done))

    def answer(self, n: int, outcome: SubmitOutcome) -> None:
        self.sent[n][1](outcome)


class _Writer:
    def __init__(self) -> None:
        self.outcomes: list[tuple[str, str, Any]] = []

    def sent(self, work: Work, ids: list[str]) -> None:
        self.outcomes.append((work.id, "sent", ids))

    def unsent(self, work: Work, status: str, error_code: str | None) -> None:
        self.outcomes.append((work.id, status, error_code))

    def handed_on(self, work: Work) -> None:
        self.outcomes.append((work.id, "handed_on", None))


def _work(n: int, lane: Lane = "bulk", *, expires_in: float = 3600) -> Work:
    return Work(
        message=JobMessage(
            id=f"msg_{n}", batch_id="bat_1", recipient=f"+2567720000{n:02d}", units=1, cost=35
        ),
        text=JobText(message="Hello", encoding="GSM-7", wallet_id="wal_1"),
        carrier="mtn",
        lane=lane,
        expires_at=datetime.now(UTC) + timedelta(seconds=expires_in),
    )


def _scheduler(link: Any, writer: _Writer, capacity: int = 2) -> CarrierScheduler:
    async def defer(work: Work) -> bool:
        return True

    scheduler = CarrierScheduler(
        "mtn",
        link,
        writer,  # type: ignore[arg-type]
        capacity=capacity,
        transient_attempts=1,
        retry_backoff=0.01,
        ambiguous_hold=60,
        defer=defer,
    )
    scheduler.start()
    return scheduler


OK = SubmitOutcome(SubmitKind.OK, ["C1"], 0, None)


async def test_the_link_holds_at_most_capacity_and_an_otp_goes_before_queued_bulk() -> None:
    link, writer = _HeldLink(), _Writer()
    scheduler = _scheduler(link, writer, capacity=2)
    for n in range(4):
        scheduler.submit(_work(n))
    assert [destination for destination, _ in link.sent] == ["+256772000000", "+256772000001"]

    scheduler.submit(_work(9, "priority"))
    link.answer(0, OK)  # a slot frees: the OTP takes it, ahead of the bulk queued before it
    assert [destination for destination, _ in link.sent][2] == "+256772000009"
    assert writer.outcomes == [("msg_0", "sent", ["C1"])]
    assert scheduler.backlog == {"priority": 0, "bulk": 2, "held": 0}


async def test_outcomes_given_back_within_send_neither_recurse_nor_stall() -> None:
    writer = _Writer()
    scheduler = _scheduler(_HeldLink(refuse="ESME_RINVDSTADR"), writer, capacity=1)
    for n in range(5_000):  # each refusal frees the only slot before `send` returns
        scheduler.submit(_work(n))
    assert len(writer.outcomes) == 5_000
    assert writer.outcomes[-1] == ("msg_4999", "failed", "ESME_RINVDSTADR")


async def test_an_expired_message_is_not_sent_and_ends_expired() -> None:
    link, writer = _HeldLink(), _Writer()
    scheduler = _scheduler(link, writer)
    scheduler.submit(_work(1, expires_in=-1))
    assert link.sent == []
    assert writer.outcomes == [("msg_1", "expired", "validity_expired")]


async def test_a_lost_answer_holds_the_message_and_a_transient_one_is_handed_on() -> None:
    link, writer = _HeldLink(), _Writer()
    scheduler = _scheduler(link, writer)
    scheduler.submit(_work(1))
    scheduler.submit(_work(2))
    link.answer(0, SubmitOutcome(SubmitKind.CONNECTION_LOST, [], NO_RESPONSE, "connection_lost"))
    link.answer(1, SubmitOutcome(SubmitKind.TRANSIENT, [], 0x08, "ESME_RSYSERR"))
    assert scheduler.backlog["held"] == 1  # waits for a receipt before any resubmit
    await asyncio.sleep(0.05)  # after its one attempt here, the delay queues take it
    assert writer.outcomes == [("msg_2", "handed_on", None)]


async def test_a_stopped_scheduler_hands_nothing_more_to_the_link() -> None:
    link, writer = _HeldLink(), _Writer()
    scheduler = _scheduler(link, writer, capacity=1)
    scheduler.submit(_work(1))
    scheduler.submit(_work(2))
    await scheduler.stop()
    link.answer(0, OK)  # the outcome in flight is still acted on
    assert len(link.sent) == 1
    assert writer.outcomes == [("msg_1", "sent", ["C1"])]


async def test_a_window_hands_its_slots_out_in_order() -> None:
    window = Window(1)
    assert window.try_take()
    assert not window.try_take()
    order: list[int] = []

    async def take(n: int) -> None:
        await window.take()
        order.append(n)

    waiting = [asyncio.create_task(take(n)) for n in range(3)]
    await asyncio.sleep(0)
    waiting[1].cancel()
    await asyncio.sleep(0)
    window.give()  # to the first waiter, not to a newcomer
    assert not window.try_take()
    await asyncio.sleep(0)
    window.give()  # past the cancelled one, to the third
    await asyncio.sleep(0)
    assert order == [0, 2]
    with pytest.raises(asyncio.CancelledError):
        await waiting[1]
    window.give()
    assert window.try_take()
