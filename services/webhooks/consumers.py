"""Thin consumers: events become deliveries; API commands replay them."""

from __future__ import annotations

import orjson
from aio_pika.abc import AbstractIncomingMessage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.db import autocommit, session_scope
from libs.common.logging import get_logger
from libs.common.webhooks import PING, SUBSCRIBABLE
from services.webhooks import store
from services.webhooks.dispatcher import Dispatcher

log = get_logger(__name__)
_HEARD = frozenset({*SUBSCRIBABLE, PING})


class WebhookConsumers:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], dispatcher: Dispatcher) -> None:
        self._sessions = sessions
        self._dispatcher = dispatcher

    async def handle_events(self, message: AbstractIncomingMessage) -> None:
        """Create the deliveries; the ack waits for their insert (redelivery adds none twice)."""
        async with message.process(requeue=True):
            raw = orjson.loads(message.body)
            envelopes = raw if isinstance(raw, list) else [raw]
            events = [e for e in envelopes if e.get("type") in _HEARD]
            if not events:
                return
            async with autocommit(self._sessions) as connection:
                created = await store.create_deliveries(connection, events)
            if created:
                self._dispatcher.wake()

    async def handle_commands(self, message: AbstractIncomingMessage) -> None:
        async with message.process(requeue=True):
            command = orjson.loads(message.body)
            if command.get("type") != "replay":
                log.warning("webhooks.unknown_command", command=command)
                return
            async with session_scope(self._sessions) as session:
                found = await store.replay(session, command["delivery_id"])
            log.info("webhook.replayed", delivery_id=command["delivery_id"], found=found)
            self._dispatcher.wake()
