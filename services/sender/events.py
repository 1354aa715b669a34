"""Events announcing message status changes, packed one outbox row per type."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.amqp import Topology
from libs.common.events import Event, MessageStatusData, encode_events, message_status_event
from libs.common.outbox import OutboxMessage
from services.sender.store import Changed


async def status_events(
    session: AsyncSession, topology: Topology, changed: Sequence[Changed]
) -> list[OutboxMessage]:
    """One event per change, carrying the request id of the send that created the message."""
    if not changed:
        return []
    request_ids: dict[str, str | None] = dict(
        (
            await session.execute(
                text("SELECT id, request_id FROM batches WHERE id = ANY(CAST(:ids AS text[]))"),
                {"ids": sorted({c.batch_id for c in changed})},
            )
        ).all()
    )
    by_type: dict[str, list[Event]] = defaultdict(list)
    for change in changed:
        event = message_status_event(
            MessageStatusData(
                message_id=change.id,
                batch_id=change.batch_id,
                wallet_id=change.wallet_id,
                recipient=change.recipient,
                status=change.status,
                error_code=change.error_code,
                units=change.units,
                cost=change.cost,
                carrier=change.carrier,
                carrier_message_id=change.carrier_message_id,
            ),
            request_id=request_ids.get(change.batch_id),
        )
        by_type[event.type].append(event)
    return [
        OutboxMessage(
            exchange=topology.events_exchange,
            routing_key=event_type,
            body=encode_events(events),
        )
        for event_type, events in by_type.items()
    ]
