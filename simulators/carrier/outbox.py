"""Receipts on their way to one receiving session, and how we learn they arrived.

Every deliver_sm carries a sequence number of ours, and the ESME's deliver_sm_resp (or
generic_nack) with that number settles the receipt it carried, on any bind type. At most
`window` are outstanding per session, as a real SMSC keeps towards an ESME. A receipt
answered with an error status (an ESME that could not store it answers ESME_RX_T_APPN) is
retried with backoff; one left unanswered for RESPONSE_TIMEOUT is retried too, so it may
arrive twice but never not at all.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Protocol

from simulators.carrier.receipts import Receipt, receipt_pdu
from simulators.carrier.server import Session
from simulators.carrier.state import RuntimeConfig

# SMPP 3.4 leaves the response timer to the implementation (§2.7); 30 s is the usual one.
RESPONSE_TIMEOUT = 30.0


class Settlement(Protocol):
    """What the dispatcher does with a receipt once its fate is known."""

    def delivered(self) -> None: ...
    def retry(self, receipt: Receipt, failed_session: int) -> None: ...


class Outbox:
    """Receipts queued for, or awaiting their deliver_sm_resp from, one receiving session."""

    __slots__ = (
        "_config",
        "_in_flight",
        "_loop",
        "_settle",
        "_timer",
        "_window",
        "open",
        "queue",
        "session",
        "session_id",
        "system_id",
    )

    def __init__(
        self, session: Session, settle: Settlement, config: RuntimeConfig, window: int
    ) -> None:
        self.session = session
        self.session_id = session.session_id
        self.system_id = session.system_id
        self.queue: deque[Receipt] = deque()
        # By sequence number, in the order sent: the first entry has the nearest deadline.
        self._in_flight: dict[int, tuple[Receipt, float]] = {}
        self.open = True
        self._settle = settle
        self._config = config
        self._window = window
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None  # armed while anything is in flight
        session.deliveries = self

    def pump(self) -> None:
        """Send queued receipts as far as the window allows, in one write."""
        queue = self.queue
        in_flight = self._in_flight
        room = self._window - len(in_flight)
        if room <= 0 or not queue or not self.open or self._config.paused:
            return
        next_sequence = self.session.next_sequence
        now = time.time()
        deadline = self._loop.time() + RESPONSE_TIMEOUT
        pdus: list[bytes] = []
        while queue and room > 0:
            room -= 1
            receipt = queue.popleft()
            sequence = next_sequence()
            pdus.append(receipt_pdu(sequence, receipt, now))
            in_flight[sequence] = (receipt, deadline)
        self.session.send(b"".join(pdus))
        if self._timer is None:
            self._timer = self._loop.call_at(deadline, self._expire)

    def answered(self, sequence: int, status: int) -> None:
        """The ESME answered one of our deliver_sm: settle the receipt it carried."""
        entry = self._in_flight.pop(sequence, None)
        if entry is None:
            return  # already timed out and retried, or a sequence number we never used
        if status:
            self._settle.retry(entry[0], self.session_id)
        else:
            self._settle.delivered()

    def close(self) -> tuple[list[Receipt], list[Receipt]]:
        """The session has gone: return (never sent, sent but unanswered) for re-routing.

        The ESME may have had the unanswered ones, so they may arrive twice.
        """
        self.open = False
        self.session.deliveries = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        queued = list(self.queue)
        unanswered = [receipt for receipt, _ in self._in_flight.values()]
        self.queue.clear()
        self._in_flight.clear()
        return queued, unanswered

    def _expire(self) -> None:
        """Retry receipts whose deliver_sm went unanswered for RESPONSE_TIMEOUT."""
        self._timer = None
        if not self.open:
            return
        in_flight = self._in_flight
        now = self._loop.time()
        expired = []
        for sequence, (_, deadline) in in_flight.items():
            if deadline > now:
                break
            expired.append(sequence)
        for sequence in expired:
            self._settle.retry(in_flight.pop(sequence)[0], self.session_id)
        if in_flight:
            _, deadline = next(iter(in_flight.values()))
            self._timer = self._loop.call_at(deadline, self._expire)
        self.pump()
