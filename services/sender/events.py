"""Events announcing message status changes, packed one outbox row per write."""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from typing import Any

import orjson

from libs.common.amqp import Topology
from libs.common.db import Connection
from libs.common.events import CC, EVENT_FOR_STATUS, utcnow
from libs.common.outbox import SENDER, OutboxMessage, Staged, stage
from services.sender.store import Changed


async def stage_status_events(
    connection: Connection,
    topology: Topology,
    changed: Sequence[Changed],
    request_ids: MutableMapping[str, str | None] | None = None,
) -> list[Staged]:
    """One event per change, carrying the request id of the send that created the message,
    staged in the caller's transaction for this process to publish once it commits.

    `request_ids` by batch id are those the caller knows (from the send jobs in hand, or
    read before); the others (a receipt's message, whose job this process may never have
    seen) are read, and added to it.
    """
    if not changed:
        return []
    known = request_ids if request_ids is not None else {}
    unknown = sorted({c.batch_id for c in changed} - known.keys())
    if unknown:
        rows = await connection.fetch(
            "SELECT id, request_id FROM batches WHERE id = ANY($1::text[])", unknown
        )
        known.update((row[0], row[1]) for row in rows)
    # Plain dicts in the shape of `Event`: this runs for every status change, thousands
    # a second, and pydantic models cost more than the rest. `data` says enough (status,
    # carrier id, the envelope's time) for a receiver to order one message's events.
    # A message reaches each status once (every transition is conditional on the state it
    # leaves), so the message and the status name the event: its id costs no random
    # number, and an event announced twice is recognisably the same.
    occurred_at = utcnow().isoformat()
    events: list[dict[str, Any]] = []
    types: dict[str, None] = {}  # in the order they first appear
    for change in changed:
        event_type = EVENT_FOR_STATUS[change.status]
        types[event_type] = None
        events.append(
            {
                "id": f"evt_{change.id.removeprefix('msg_')}.{change.status}",
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
    # One message for the whole write, routed under each type it holds: the first as its
    # routing key, the others in RabbitMQ's CC header. A queue bound to several of them
    # gets it once; a consumer reads the events of the types it wants.
    first, *others = types
    message = OutboxMessage(
        origin=SENDER,
        exchange=topology.events_exchange,
        routing_key=first,
        body=orjson.dumps(events),
        headers={CC: others} if others else {},
    )
    return await stage(connection, [message])
