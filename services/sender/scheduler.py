"""One carrier's submit loop: the priority lane drained before bulk, retries, and the hold
for messages that may already have reached the carrier.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from libs.common.admission import Lane
from libs.common.logging import get_logger
from libs.common.segments import EncodedMessage, encode_for_smpp
from services.sender.carriers.base import CarrierLink, Submission, SubmitKind, SubmitOutcome
from services.sender.receipts import Receipt
from services.sender.work import Work
from services.sender.writer import OutcomeWriter

log = get_logger(__name__)

# How long a throttled message waits before it goes back to the front of its lane (seconds).
THROTTLE_RETRY = 0.05

# Hands a message to the delay queues after repeated transient failures; True once published.
Deferrer = Callable[[Work], Awaitable[bool]]


class CarrierScheduler:
    def __init__(
        self,
        carrier: str,
        link: CarrierLink,
        writer: OutcomeWriter,
        *,
        capacity: int,
        transient_attempts: int,
        retry_backoff: float,
        ambiguous_hold: float,
        defer: Deferrer,
    ) -> None:
        self.carrier = carrier
        self._link = link
        self._writer = writer
        self._lanes: dict[Lane, deque[Work]] = {"priority": deque(), "bulk": deque()}
        # Messages handed to the link and not yet answered, at most `capacity` (the binds'
        # windows together): the rest wait in their lanes, where an OTP goes first.
        self._capacity = capacity
        self._in_flight = 0
        self._running = False
        self._pumping = False
        self._transient_attempts = transient_attempts
        self._retry_backoff = retry_backoff
        self._hold_seconds = ambiguous_hold
        self._defer = defer
        self._held: dict[str, list[Work]] = {}
        self._references = itertools.count(1)
        self._encoded: dict[str, EncodedMessage] = {}
        self.resubmitted_after_hold = 0

    # -- intake ---------------------------------------------------------------------------
    def submit(self, work: Work, *, front: bool = False) -> None:
        lane = self._lanes[work.lane]
        if front:
            lane.appendleft(work)
        else:
            lane.append(work)
        self._pump()

    def hold(self, work: Work) -> None:
        """Wait for a receipt proving the message was sent, then submit it if none came."""
        work.ambiguous = True
        self._held.setdefault(work.message.recipient, []).append(work)
        asyncio.get_running_loop().call_later(self._hold_seconds, self._release, work)

    def _release(self, work: Work) -> None:
        waiting = self._held.get(work.message.recipient, [])
        if work in waiting:
            waiting.remove(work)
            if not waiting:
                self._held.pop(work.message.recipient, None)
            self.resubmitted_after_hold += 1
            log.warning(
                "sender.resubmit_after_hold",
                message_id=work.id,
                carrier=self.carrier,
                request_id=work.text.request_id,
            )
            self.submit(work, front=True)

    def claim(self, receipt: Receipt) -> Work | None:
        """The held message an orphan receipt belongs to (same handset, same text start)."""
        digits = (receipt.recipient or "").lstrip("+")
        waiting = self._held.get("+" + digits)
        if not waiting:
            return None
        match = next(
            (w for w in waiting if receipt.text and w.text.message.startswith(receipt.text)),
            waiting[0],
        )
        waiting.remove(match)
        if not waiting:
            self._held.pop(match.message.recipient, None)
        return match

    def held_recipients(self) -> list[str]:
        return list(self._held)

    def unclaim(self, work: Work) -> None:
        self._held.setdefault(work.message.recipient, []).append(work)
        asyncio.get_running_loop().call_later(self._hold_seconds, self._release, work)

    @property
    def backlog(self) -> dict[str, int]:
        return {
            "priority": len(self._lanes["priority"]),
            "bulk": len(self._lanes["bulk"]),
            "held": sum(len(v) for v in self._held.values()),
        }

    # -- submitting -----------------------------------------------------------------------
    def start(self) -> None:
        self._running = True
        self._pump()

    async def stop(self) -> None:
        """Hand no more messages to the carrier; those in flight still get their outcomes."""
        self._running = False

    def _pump(self) -> None:
        """Hand queued messages to the link while it has room: priority lane first.

        Called whenever a message is queued or an outcome frees a slot. Outcomes may come
        back within `send` itself (a refusal), so a nested call leaves the work to the loop
        already running rather than recursing once per message.
        """
        if self._pumping or not self._running:
            return
        self._pumping = True
        priority, bulk = self._lanes["priority"], self._lanes["bulk"]
        try:
            while self._in_flight < self._capacity:
                if priority:
                    work = priority.popleft()
                elif bulk:
                    work = bulk.popleft()
                else:
                    return
                if not work.resolved:
                    self._dispatch(work)
        finally:
            self._pumping = False

    def _dispatch(self, work: Work) -> None:
        remaining = work.expires_at - datetime.now(UTC)
        if remaining.total_seconds() <= 0:
            self._writer.unsent(work, "expired", "validity_expired")
            return
        encoded = self._encode(work)
        work.attempts += 1
        self._in_flight += 1
        try:
            self._link.send(
                Submission(
                    work.message.recipient,
                    encoded.parts,
                    encoded.data_coding,
                    encoded.esm_class,
                    remaining,
                ),
                functools.partial(self._submitted, work),
            )
        except Exception:
            self._in_flight -= 1
            log.exception("sender.submit_crashed", message_id=work.id, carrier=self.carrier)
            self._retry_later(work)

    def _submitted(self, work: Work, outcome: SubmitOutcome) -> None:
        self._in_flight -= 1
        try:
            self._settle(work, outcome)
        except Exception:
            log.exception("sender.settle_failed", message_id=work.id, carrier=self.carrier)
            self._retry_later(work)
        self._pump()

    def _encode(self, work: Work) -> EncodedMessage:
        """Single-part texts are encoded once per batch; multi-part ones need a fresh reference."""
        cached = self._encoded.get(work.message.batch_id)
        if cached is not None:
            return cached
        encoded = encode_for_smpp(work.text.message, next(self._references) & 0xFF)
        if len(encoded.parts) == 1:
            if len(self._encoded) > 10_000:
                self._encoded.clear()
            self._encoded[work.message.batch_id] = encoded
        return encoded

    def _settle(self, work: Work, outcome: SubmitOutcome) -> None:
        kind = outcome.kind
        if kind is SubmitKind.OK:
            self._writer.sent(work, outcome.carrier_message_ids)
        elif kind is SubmitKind.PERMANENT:
            log.info(
                "sender.rejected",
                message_id=work.id,
                carrier=self.carrier,
                error_code=outcome.error_code,
                request_id=work.text.request_id,
            )
            self._writer.unsent(work, "failed", outcome.error_code or "carrier_rejected")
        elif kind is SubmitKind.THROTTLED:
            work.attempts -= 1  # the carrier's pace, not the message, is at fault
            asyncio.get_running_loop().call_later(
                THROTTLE_RETRY, lambda: self.submit(work, front=True)
            )
        elif kind is SubmitKind.CONNECTION_LOST or outcome.carrier_message_ids:
            log.warning(
                "sender.outcome_unknown",
                message_id=work.id,
                carrier=self.carrier,
                error_code=outcome.error_code,
            )
            self.hold(work)
        else:
            self._retry_later(work)

    def _retry_later(self, work: Work) -> None:
        """Transient failure: back off here a few times, then hand over to the delay queues."""
        if work.attempts < self._transient_attempts:
            delay = self._retry_backoff * 2 ** max(work.attempts - 1, 0)
            asyncio.get_running_loop().call_later(delay, self.submit, work)
            return

        async def defer() -> None:
            if await self._defer(work):
                self._writer.handed_on(work)
            else:
                asyncio.get_running_loop().call_later(self._retry_backoff, self.submit, work)

        asyncio.get_running_loop().create_task(defer())
