"""Persistent, confirmed publishes from the gateway (commands and test events)."""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from libs.common.errors import SendFailed


class Publisher:
    def __init__(self, connection: AbstractRobustConnection, timeout: float) -> None:
        self._connection = connection
        self._timeout = timeout
        self._channel: AbstractChannel | None = None

    async def publish(
        self, body: bytes, *, routing_key: str, exchange: str = "", message_id: str | None = None
    ) -> None:
        """Publish and wait for the broker's confirm; SendFailed when it cannot be had."""
        try:
            if self._channel is None or self._channel.is_closed:
                self._channel = await self._connection.channel(publisher_confirms=True)
            target = (
                await self._channel.get_exchange(exchange, ensure=False)
                if exchange
                else self._channel.default_exchange
            )
            await target.publish(
                aio_pika.Message(
                    body,
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=message_id,
                ),
                routing_key=routing_key,
                mandatory=not exchange,
                timeout=self._timeout,
            )
        except Exception as error:
            raise SendFailed("The request could not be queued; try again.") from error
