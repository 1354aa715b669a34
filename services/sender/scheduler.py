"""One carrier's submit loop: the priority lane drained before bulk, retries, and the hold
for messages that may already have reached the carrier.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from libs.common.admission import Lane
from libs.common.logging import get_logger
from libs.common.segments import EncodedMessage, encode_for_smpp
from services.sender.carriers.base import CarrierLink, SubmitKind, SubmitOutcome
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
        workers: int,
        transient_attempts: int,
        retry_backoff: float,
        ambiguous_hold: float,
        defer: Deferrer,
    ) -> None:
        self.carrier = carrier
        self._link = link
        self._writer = writer
        self._lanes: dict[Lane, deque[Work]] = {"priority": deque(), "bulk": deque()}
        self._ready = asyncio.Event()
        self._workers = workers
        self._transient_attempts = transient_attempts
        self._retry_backoff = retry_backoff
        self._hold_seconds = ambiguous_hold
        self._defer = defer
        self._held: dict[str, list[Work]] = {}
        self._references = itertools.count(1)
        self._encoded: dict[str, EncodedMessage] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.resubmitted_after_hold = 0

    # -- intake ---------------------------------------------------------------------------
    def submit(self, work: Work, *, front: bool = False) -> None:
        lane = self._lanes[work.lane]
        if front:
            lane.appendleft(work)
        else:
            lane.append(work)
        self._ready.set()

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
        for number in range(self._workers):
            self._tasks.append(
                asyncio.create_task(self._work(), name=f"submit-{self.carrier}-{number}")
            )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _next(self) -> Work:
        while True:
            for lane in ("priority", "bulk"):
                if self._lanes[lane]:  # type: ignore[index]
                    return self._lanes[lane].popleft()  # type: ignore[index]
            self._ready.clear()
            await self._ready.wait()

    async def _work(self) -> None:
        while True:
            work = await self._next()
            if work.resolved:
                continue
            try:
                await self._submit(work)
            except asyncio.CancelledError:
                # Not resolved: the job stays unacked and comes back after a restart.
                raise
            except Exception:
                log.exception("sender.submit_crashed", message_id=work.id, carrier=self.carrier)
                self._retry_later(work)

    async def _submit(self, work: Work) -> None:
        now = datetime.now(UTC)
        remaining = work.expires_at - now
        if remaining.total_seconds() <= 0:
            self._writer.unsent(work, "expired", "validity_expired")
            return
        encoded = self._encode(work)
        work.attempts += 1
        outcome = await self._link.submit(
            work.message.recipient,
            encoded.parts,
            data_coding=encoded.data_coding,
            esm_class=encoded.esm_class,
            validity=remaining,
        )
        self._settle(work, outcome)

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
