"""Periodic housekeeping: expire what waited past its validity, forget stale parked receipts."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.amqp import Topology
from libs.common.db import transaction
from libs.common.logging import get_logger
from libs.common.outbox import OutboxRelay
from services.sender import store
from services.sender.events import stage_status_events
from services.sender.settings import SenderSettings

log = get_logger(__name__)
SWEEP_LIMIT = 5_000


async def sweep_once(
    sessions: async_sessionmaker[AsyncSession],
    topology: Topology,
    relay: OutboxRelay,
    settings: SenderSettings,
) -> int:
    """Expire one batch of overdue queued messages (billing refunds them on the event)."""
    async with transaction(sessions) as connection:
        expired = await store.expire_overdue(connection, settings.expiry_grace, SWEEP_LIMIT)
        staged = await stage_status_events(connection, topology, expired)
        pruned = await store.prune_parked(connection, settings.pending_receipt_ttl)
    relay.publish_committed(staged)
    if expired or pruned:
        log.info("sender.swept", expired=len(expired), receipts_pruned=pruned)
    return len(expired)


async def sweep_forever(
    sessions: async_sessionmaker[AsyncSession],
    topology: Topology,
    relay: OutboxRelay,
    settings: SenderSettings,
) -> None:
    while True:
        try:
            while await sweep_once(sessions, topology, relay, settings) >= SWEEP_LIMIT:
                pass
        except Exception as error:  # noqa: BLE001 — try again next round
            log.warning("sender.sweep_failed", error=repr(error))
        await asyncio.sleep(settings.sweep_interval)
