"""What the outcome writer holds until its next flush, and who may claim orphan receipts."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from services.sender.receipts import Receipt
from services.sender.store import ReceiptUpdate
from services.sender.work import Work


class Adopter(Protocol):
    """Held (ambiguous) messages of one carrier that an orphan receipt may prove were sent."""

    def claim(self, receipt: Receipt) -> Work | None:
        """The held message this receipt belongs to, taken out of the hold."""

    def unclaim(self, work: Work) -> None:
        """Put a claimed message back on hold (its transaction did not commit)."""

    def held_recipients(self) -> list[str]:
        """The handsets of the messages on hold."""


@dataclass(eq=False, slots=True)
class SentOutcome:
    """A submit the carrier accepted; its receipt may join it before the write."""

    work: Work
    ids: list[str]
    at: float  # Unix time the carrier took it
    receipt: ReceiptUpdate | None = None
    future: asyncio.Future[None] | None = None


# Receipts waiting for an in-flight flush, each with the future acknowledging it (if any).
LateReceipts = list[tuple[ReceiptUpdate, asyncio.Future[None] | None]]


@dataclass
class OutcomeBatch:
    """Outcomes waiting for one transaction."""

    sent: list[SentOutcome] = field(default_factory=list)
    unsent: list[tuple[Work, str, str | None]] = field(default_factory=list)
    # A receipt with a future is acknowledged to the carrier only once that future is done.
    receipts: list[tuple[ReceiptUpdate, asyncio.Future[None] | None]] = field(default_factory=list)
    handed_on: list[Work] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sent) + len(self.unsent) + len(self.receipts) + len(self.handed_on)

    def merge(self, other: OutcomeBatch) -> None:
        self.sent[:0] = other.sent
        self.unsent[:0] = other.unsent
        self.receipts[:0] = other.receipts
        self.handed_on[:0] = other.handed_on
