"""What one wallet's admission transaction accepts, and the lane each send takes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from libs.common.admission import Admission, AdmitResult, Lane
from libs.common.admission.settings import AdmissionSettings
from libs.common.pricing import Quote


def lane_for(admission: Admission, settings: AdmissionSettings) -> Lane:
    """OTP-like sends (few recipients, or marked high) take the priority lane."""
    if (
        admission.priority == "high"
        or len(admission.recipients) <= settings.priority_max_recipients
    ):
        return "priority"
    return "bulk"


def validity(settings: AdmissionSettings, lane: Lane) -> timedelta:
    """How long a message of this lane may wait to be submitted before it expires."""
    return settings.validity_priority if lane == "priority" else settings.validity_bulk


@dataclass(frozen=True, slots=True)
class AcceptedMessage:
    admission: Admission
    message_id: str
    recipient: str
    carrier: str
    lane: Lane
    cost: int


@dataclass(frozen=True, slots=True)
class Accepted:
    """The admissions one transaction charges: each with its cost, all at one price."""

    wallet_id: str
    admissions: list[tuple[Admission, int]]
    results: dict[str, AdmitResult]
    quote: Quote
    now: datetime

    @property
    def price(self) -> int:
        return self.quote.price

    def messages(self, settings: AdmissionSettings) -> Iterator[AcceptedMessage]:
        """Every new message, with the id, lane and cost it is admitted with."""
        for admission, _ in self.admissions:
            lane = lane_for(admission, settings)
            cost = admission.units * self.price
            ids = self.results[admission.batch_id].message_ids
            for message_id, recipient, carrier in zip(
                ids, admission.recipients, admission.carriers, strict=True
            ):
                yield AcceptedMessage(admission, message_id, recipient, carrier, lane, cost)
