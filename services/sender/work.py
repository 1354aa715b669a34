"""What the sender holds in memory: one Work per message, and the jobs waiting on them.

A job (one AMQP delivery) is acked only when every one of its messages has an outcome
stored in Postgres; until then a crash redelivers it and nothing is lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from libs.common.admission import JobMessage, JobText, Lane
from libs.common.logging import get_logger

log = get_logger(__name__)


@dataclass(eq=False)
class JobState:
    """One consumed send job; `ack` runs once its last message is resolved."""

    job_id: str
    pending: int
    ack: Callable[[], object]
    acked: bool = False

    def resolve_one(self) -> None:
        self.pending -= 1
        if self.pending <= 0 and not self.acked:
            self.acked = True
            self.ack()


@dataclass(eq=False)
class Work:
    """One message on its way to a carrier."""

    message: JobMessage
    text: JobText
    carrier: str
    lane: Lane
    expires_at: datetime
    jobs: list[JobState] = field(default_factory=list)
    attempts: int = 0
    # A previous attempt may have reached the carrier (crash, lost connection): resending
    # could duplicate it, so a receipt is waited for first.
    ambiguous: bool = False
    resolved: bool = False

    @property
    def id(self) -> str:
        return self.message.id


class Registry:
    """Messages in this process, so a job delivered twice never submits a message twice."""

    def __init__(self) -> None:
        self._works: dict[str, Work] = {}
        self.idle = asyncio.Event()
        self.idle.set()

    def __len__(self) -> int:
        return len(self._works)

    def get(self, message_id: str) -> Work | None:
        return self._works.get(message_id)

    def add(self, work: Work) -> None:
        self._works[work.id] = work
        self.idle.clear()

    def resolve(self, work: Work) -> None:
        """The message's outcome is stored (or handed on): release it and its jobs."""
        if work.resolved:
            return
        work.resolved = True
        self._works.pop(work.id, None)
        for job in work.jobs:
            job.resolve_one()
        if not self._works:
            self.idle.set()
