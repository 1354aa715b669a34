"""Pushes delivery receipts to bound sessions, like a real SMSC: late, routed, never lost.

No task or coroutine per receipt: due receipts wait in one heap released by a single loop
timer, and each receiving session has an outbox (see `outbox`) pumped up to its window and
settled by the session's deliver_sm_resp. At several thousand receipts a second that keeps
the event loop free for submits.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections import deque

from simulators.carrier.outbox import Outbox
from simulators.carrier.receipts import Receipt
from simulators.carrier.server import Session
from simulators.carrier.state import Counters, RuntimeConfig

_TICK = 0.005  # receipts due within one tick go out together
_RETRY_BASE = 0.1
_RETRY_MAX = 5.0
_AVOID_AFTER = 3  # failed attempts on the submitting session before trying its siblings


class ReceiptDispatcher:
    """Schedules receipts, routes them to sessions, retries them with backoff."""

    def __init__(self, config: RuntimeConfig, counters: Counters, window: int) -> None:
        self.config = config
        self.window = window
        self._counters = counters
        self._loop = asyncio.get_running_loop()
        self._heap: list[tuple[float, int, Receipt]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._outboxes: dict[int, Outbox] = {}
        self._by_system: dict[str, list[Outbox]] = {}
        self._turn = itertools.count()
        self._unrouted: dict[str, deque[Receipt]] = {}
        self.outstanding = 0  # scheduled and not yet acknowledged by an ESME
        self._closed = False

    # -- sessions -------------------------------------------------------------------------

    def session_bound(self, session: Session) -> None:
        """Start delivering to a new receiving session, beginning with receipts that had none."""
        # A transmitter is never sent deliver_sm (SMPP 3.4 §2.2).
        if not session.receives or self._closed:
            return
        outbox = Outbox(session, self, self.config, self.window)
        self._outboxes[outbox.session_id] = outbox
        self._by_system.setdefault(outbox.system_id, []).append(outbox)
        waiting = self._unrouted.pop(outbox.system_id, None)
        if waiting:
            outbox.queue.extend(waiting)
            outbox.pump()

    def session_unbound(self, session_id: int) -> None:
        """Re-route what was queued for, or unanswered by, a session that has gone."""
        outbox = self._outboxes.pop(session_id, None)
        if outbox is None:
            return
        siblings = self._by_system.get(outbox.system_id, [])
        siblings.remove(outbox)
        if not siblings:
            self._by_system.pop(outbox.system_id, None)
        queued, unanswered = outbox.close()
        if self._closed:
            return
        self._route_all(queued)
        for receipt in unanswered:
            self.retry(receipt, session_id)

    # -- scheduling -----------------------------------------------------------------------

    def schedule(self, receipt: Receipt, delay: float) -> None:
        """Issue `receipt` after `delay` seconds."""
        due = self._loop.time() + delay
        heapq.heappush(self._heap, (due, next(self._order), receipt))
        self.outstanding += 1
        if due + _TICK < self._timer_at:  # a timer due within a tick of it will do
            self._arm(due)

    def retry(self, receipt: Receipt, failed_session: int) -> None:
        """Try a receipt again later, with exponential backoff."""
        receipt.attempts += 1
        self._counters.receipt_retries += 1
        if receipt.attempts >= _AVOID_AFTER:
            # Its session keeps failing (or died without us hearing of it): prefer a sibling.
            receipt.avoid_session = failed_session
        delay = min(_RETRY_BASE * 2 ** (receipt.attempts - 1), _RETRY_MAX)
        due = self._loop.time() + delay
        heapq.heappush(self._heap, (due, next(self._order), receipt))
        if due + _TICK < self._timer_at:
            self._arm(due)

    def delivered(self) -> None:
        """An ESME acknowledged a receipt."""
        self.outstanding -= 1
        self._counters.receipts_sent += 1

    def resume(self) -> None:
        """Apply a config change: release due receipts and pump every session if unpaused."""
        if self.config.paused:
            return
        for outbox in list(self._outboxes.values()):
            outbox.pump()
        if self._heap:
            self._arm(self._heap[0][0])

    def close(self) -> None:
        """Stop delivering (receipts still pending die with the process)."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, math.inf

    def _arm(self, when: float) -> None:
        if self.config.paused or self._closed:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(when, self._release)
        self._timer_at = when

    def _release(self) -> None:
        self._timer, self._timer_at = None, math.inf
        if self.config.paused:
            return  # they stay in the heap; resume() re-arms
        now = self._loop.time()
        heap = self._heap
        due: list[Receipt] = []
        while heap and heap[0][0] <= now:
            due.append(heapq.heappop(heap)[2])
        self._route_all(due)
        if heap:
            self._arm(max(heap[0][0], now + _TICK))

    # -- routing --------------------------------------------------------------------------

    def _route_all(self, receipts: deque[Receipt] | list[Receipt]) -> None:
        touched: dict[int, Outbox] = {}
        for receipt in receipts:
            outbox = self._route(receipt)
            if outbox is not None:
                touched[outbox.session_id] = outbox
        for outbox in touched.values():
            outbox.pump()

    def _route(self, receipt: Receipt) -> Outbox | None:
        """The submitting session if it is still bound, else a sibling of the same system_id."""
        outbox = self._outboxes.get(receipt.session_id)
        if outbox is None or receipt.avoid_session == receipt.session_id:
            outbox = self._sibling(receipt.system_id, receipt.avoid_session)
        if outbox is None:
            # Nobody of that system_id can receive: keep it until one binds.
            self._unrouted.setdefault(receipt.system_id, deque()).append(receipt)
            return None
        outbox.queue.append(receipt)
        return outbox

    def _sibling(self, system_id: str, avoid: int | None) -> Outbox | None:
        bound = self._by_system.get(system_id)
        if not bound:
            return None
        # The avoided session is still better than holding the receipt back.
        candidates = [o for o in bound if o.session_id != avoid] or bound
        return candidates[next(self._turn) % len(candidates)]
