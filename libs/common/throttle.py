"""A token bucket that paces calls (submit_sm on a bind, status requests to a provider)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    """Pace callers to `rate` per second, letting at most `burst` through back to back.

    Implemented as GCRA (a virtual-scheduling token bucket) behind a FIFO lock: callers are
    served in arrival order, and a pause ordered while they wait (a throttled answer) holds
    them all back instead of releasing a burst when it ends. Carriers police binds per second,
    so the default burst of 1 spreads traffic evenly: any one-second window then holds at most
    rate + 1 submits. rate 0 means unlimited (pauses still apply).
    """

    def __init__(
        self, rate: float, burst: int = 1, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate < 0 or burst < 1:
            raise ValueError("rate must be >= 0 and burst >= 1")
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._tolerance = (burst - 1) * self._interval
        self._clock = clock
        self._lock = asyncio.Lock()
        self._next_slot = 0.0  # theoretical arrival time of the next send
        self._paused_until = 0.0

    @property
    def rate(self) -> float:
        """Sends per second; 0 when unlimited."""
        return 1.0 / self._interval if self._interval else 0.0

    def try_acquire(self) -> bool:
        """Take this caller's send slot if it may go now: not paced beyond its rate, not
        paused, and nobody queued in `acquire` before it. Never waits."""
        if self._lock.locked():
            return False
        now = self._clock()
        if max(self._paused_until, self._next_slot - self._tolerance) > now:
            return False
        self._next_slot = max(self._next_slot, now) + self._interval
        return True

    async def acquire(self) -> None:
        """Wait for this caller's send slot and for any pause to end."""
        if self.try_acquire():
            return
        async with self._lock:
            while True:
                now = self._clock()
                ready_at = max(self._paused_until, self._next_slot - self._tolerance)
                if ready_at <= now:
                    break
                # Re-checked after waking: a pause may have been ordered or extended meanwhile.
                await asyncio.sleep(ready_at - now)
            self._next_slot = max(self._next_slot, now) + self._interval

    def pause(self, seconds: float) -> None:
        """Hold every sender for `seconds` from now (extends, never shortens, a pause)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)
