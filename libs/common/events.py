"""Event envelopes published on the `events` topic exchange, named in the past tense.

A high-volume producer (the sender) packs many events into one AMQP message: the body is
always a JSON list of envelopes, which may be of several types. Such a message is routed
under each type it holds (the first as its routing key, the others in RabbitMQ's `CC`
header), so a consumer bound to one of them receives it and reads the events it wants.
Each envelope keeps its own stable `id`, and consumers skip ids they have processed,
because redelivery will happen.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, Field

from libs.common.ids import new_id

MESSAGE_SENT = "message.sent"
MESSAGE_DELIVERED = "message.delivered"
MESSAGE_UNDELIVERED = "message.undelivered"
MESSAGE_FAILED = "message.failed"
MESSAGE_EXPIRED = "message.expired"
KEY_REVOKED = "key.revoked"
DEPOSIT_SUCCEEDED = "deposit.succeeded"
# Declined, refused by the provider, or expired unanswered: `data.status` says which.
DEPOSIT_FAILED = "deposit.failed"

EVENT_FOR_STATUS = {
    "sent": MESSAGE_SENT,
    "delivered": MESSAGE_DELIVERED,
    "undelivered": MESSAGE_UNDELIVERED,
    "failed": MESSAGE_FAILED,
    "expired": MESSAGE_EXPIRED,
}
# Statuses whose message billing gives the money back for: we never handed it to a carrier.
REFUNDED_EVENTS = (MESSAGE_FAILED, MESSAGE_EXPIRED)
# The AMQP header with a message's further routing keys (RabbitMQ's sender-selected
# distribution): a message of several event types reaches every queue bound to any of them.
CC = "CC"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    id: str = Field(default_factory=lambda: new_id("evt"))
    type: str
    occurred_at: datetime = Field(default_factory=utcnow)
    version: int = 1
    request_id: str | None = None
    data: dict[str, Any]


def encode_events(events: list[Event]) -> bytes:
    return orjson.dumps([event.model_dump(mode="json") for event in events])


def decode_events(body: bytes, types: Collection[str] | None = None) -> list[Event]:
    """The events of a message's body; with `types`, only the events of those types."""
    raw = orjson.loads(body)
    if isinstance(raw, dict):
        raw = [raw]
    return [
        Event.model_validate(item) for item in raw if types is None or item.get("type") in types
    ]
