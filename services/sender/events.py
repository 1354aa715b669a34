"""Events announcing message status changes, packed one outbox row per type."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from libs.common.amqp import Topology
from libs.common.db import Connection
from libs.common.events import EVENT_FOR_STATUS, utcnow
from libs.common.ids import ulid
from libs.common.outbox import SENDER, OutboxMessage, Staged, stage
from services.sender.store import Changed


async def stage_status_events(
    connection: Connection,
    topology: Topology,
    changed: Sequence[Changed],
    request_ids: Mapping[str, str | None] | None = None,
) -> list[Staged]:
    """One event per change, carrying the request id of the send that created the message,
    staged in the caller's transaction for this process to publish once it commits.

    `request_ids` by batch id are those already known from the send jobs in hand; the
    others (a receipt's message, whose job this process may never have seen) are read.
    """
    if not changed:
        return []
    known: dict[str, str | None] = dict(request_ids or {})
    unknown = sorted({c.batch_id for c in changed} - known.keys())
    if unknown:
        rows = await connection.fetch(
            "SELECT id, request_id FROM batches WHERE id = ANY($1::text[])", unknown
        )
        known.update((row[0], row[1]) for row in rows)
    # Plain dicts in the shape of `Event`: this runs for every status change, thousands
    # a second, and pydantic models cost more than the rest. `data` says enough (status,
    # carrier id, the envelope's time) for a receiver to order one message's events.
    occurred_at = utcnow().isoformat()
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for change in changed:
        event_type = EVENT_FOR_STATUS[change.status]
        by_type[event_type].append(
            {
                "id": "evt_" + ulid(),
                "type": event_type,
                "occurred_at": occurred_at,
                "version": 1,
                "request_id": known.get(change.batch_id),
                "data": {
                    "message_id": change.id,
                    "batch_id": change.batch_id,
                    "wallet_id": change.wallet_id,
                    "recipient": change.recipient,
                    "status": change.status,
                    "error_code": change.error_code,
                    "units": change.units,
                    "cost": change.cost,
                    "carrier": change.carrier,
                    "carrier_message_id": change.carrier_message_id,
                },
            }
        )
    messages = [
        OutboxMessage(
            origin=SENDER,
            exchange=topology.events_exchange,
            routing_key=event_type,
            body=orjson.dumps(events),
        )
        for event_type, events in by_type.items()
    ]
    return await stage(connection, messages)
