"""Several binds to one carrier behind the same CarrierLink interface."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Protocol

from services.sender.carriers.base import (
    NO_RESPONSE,
    CarrierLink,
    Outcome,
    ReceiptCallback,
    Submission,
    SubmitKind,
    SubmitOutcome,
    send_as_task,
)
from services.sender.carriers.smpp import SmppBind
from services.sender.carriers.smpp_config import SmppBindConfig


class PooledLink(CarrierLink, Protocol):
    """A link the pool can balance over: it reports its load and whether it may submit."""

    @property
    def outstanding(self) -> int:
        """Submits sent and not yet answered."""

    @property
    def can_submit(self) -> bool:
        """False for receive-only links."""


class CarrierPool:
    """Spread submits over the links that are up, least outstanding first.

    Carriers cap throughput per bind, so a pool of N binds multiplies the window and the rate.
    Each message goes whole over one bind, so its parts reach the SMSC in order.
    """

    def __init__(self, name: str, links: Sequence[PooledLink], *, wait_timeout: float) -> None:
        if not links:
            raise ValueError("a pool needs at least one link")
        self.name = name
        self._links = list(links)
        self._wait_timeout = wait_timeout
        self._turn = itertools.count()

    @classmethod
    def smpp(
        cls, name: str, config: SmppBindConfig, on_receipt: ReceiptCallback, *, binds: int = 1
    ) -> CarrierPool:
        """A pool of `binds` identical SMPP binds sharing one receipt callback."""
        links = [SmppBind(name, config, on_receipt) for _ in range(binds)]
        return cls(name, links, wait_timeout=config.response_timeout)

    @property
    def links(self) -> list[PooledLink]:
        """The pooled links, in construction order."""
        return list(self._links)

    @property
    def outstanding(self) -> int:
        """Submits outstanding over all links."""
        return sum(link.outstanding for link in self._links)

    async def start(self) -> None:
        """Start every link; each binds in the background."""
        for link in self._links:
            await link.start()

    def is_up(self) -> bool:
        """Whether at least one link that can submit is up."""
        return any(link.is_up() and link.can_submit for link in self._links)

    async def wait_up(self, timeout: float) -> bool:
        """Wait until any submitting link is up; False if none is within timeout seconds."""
        if self.is_up():
            return True
        waiters = [
            asyncio.ensure_future(link.wait_up(timeout)) for link in self._links if link.can_submit
        ]
        try:
            for finished in asyncio.as_completed(waiters):
                if await finished:
                    return True
            return False
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def submit(self, message: Submission) -> SubmitOutcome:
        """Submit the whole message over the least loaded link that is up."""
        link = self._pick()
        if link is None and await self.wait_up(self._wait_timeout):
            link = self._pick()
        if link is None:
            return SubmitOutcome(SubmitKind.TRANSIENT, [], NO_RESPONSE, "not_bound")
        return await link.submit(message)

    def send(self, message: Submission, done: Outcome) -> None:
        """`submit` through the least loaded link that is up; with none up, the wait for
        one happens in a task."""
        link = self._pick()
        if link is None:
            send_as_task(self.submit(message), done)
            return
        link.send(message, done)

    async def close(self) -> None:
        """Unbind and close every link."""
        await asyncio.gather(*(link.close() for link in self._links))

    def _pick(self) -> PooledLink | None:
        # Ties go round-robin so an idle pool still spreads its traffic over every bind:
        # the search starts one link further each time and keeps the first of the least
        # loaded. (Called once per submit: no lists or keys built.)
        links = self._links
        count = len(links)
        start = next(self._turn) % count
        best: PooledLink | None = None
        for offset in range(count):
            link = links[(start + offset) % count]
            ready = link.can_submit and link.is_up()
            if ready and (best is None or link.outstanding < best.outstanding):
                best = link
        return best
