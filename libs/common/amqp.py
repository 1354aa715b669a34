"""RabbitMQ: named robust connections, the topology every service agrees on, confirmed publishes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractRobustConnection,
    ExchangeType,
)

from libs.common.events import REFUNDED_EVENTS
from libs.common.settings import CommonSettings

QUORUM: dict[str, Any] = {"x-queue-type": "quorum"}
# Retry delays for send jobs that a carrier could not take now (seconds).
RETRY_DELAYS = (5, 30, 300)


@dataclass(frozen=True)
class Topology:
    """Exchange and queue names, prefixed by the namespace so parallel runs never collide."""

    namespace: str = ""

    def _n(self, name: str) -> str:
        return f"{self.namespace}{name}"

    @property
    def send_exchange(self) -> str:
        return self._n("sms.send")

    @property
    def events_exchange(self) -> str:
        return self._n("events")

    @property
    def dead_letter_exchange(self) -> str:
        return self._n("dead-letters")

    @property
    def dead_letter_queue(self) -> str:
        return self._n("dead-letters")

    @property
    def billing_rpc_queue(self) -> str:
        return self._n("billing.rpc")

    @property
    def billing_refunds_queue(self) -> str:
        return self._n("billing.refunds")

    def send_queue(self, carrier: str, lane: str) -> str:
        return self._n(f"send.{carrier}.{lane}")

    @staticmethod
    def send_routing_key(carrier: str, lane: str) -> str:
        return f"{carrier}.{lane}"

    def retry_exchange(self, delay: int) -> str:
        return self._n(f"sms.retry.{delay}s")

    def retry_queue(self, delay: int) -> str:
        return self._n(f"send.retry.{delay}s")

    def gateway_events_queue(self, instance: str) -> str:
        return self._n(f"api_gateway.events.{instance}")


LANES = ("priority", "bulk")


async def connect(settings: CommonSettings, name: str) -> AbstractRobustConnection:
    """A robust connection named after its process, so the broker shows who holds what."""
    return await aio_pika.connect_robust(
        settings.amqp_url,
        client_properties={"connection_name": name},
        timeout=10,
    )


async def declare_topology(
    channel: AbstractChannel, topology: Topology, carriers: Iterable[str]
) -> None:
    """Declare every exchange and queue; idempotent, so each process calls it at start."""
    dlx = await channel.declare_exchange(
        topology.dead_letter_exchange, ExchangeType.FANOUT, durable=True
    )
    dlq = await channel.declare_queue(topology.dead_letter_queue, durable=True, arguments=QUORUM)
    await dlq.bind(dlx)
    dead_lettered = {**QUORUM, "x-dead-letter-exchange": topology.dead_letter_exchange}

    send = await channel.declare_exchange(topology.send_exchange, ExchangeType.DIRECT, durable=True)
    events = await channel.declare_exchange(
        topology.events_exchange, ExchangeType.TOPIC, durable=True
    )
    for carrier in carriers:
        for lane in LANES:
            queue = await channel.declare_queue(
                topology.send_queue(carrier, lane),
                durable=True,
                # A job redelivered this often is poison: park it where an operator sees it.
                arguments={**dead_lettered, "x-delivery-limit": 20},
            )
            await queue.bind(send, topology.send_routing_key(carrier, lane))
    for delay in RETRY_DELAYS:
        exchange = await channel.declare_exchange(
            topology.retry_exchange(delay), ExchangeType.FANOUT, durable=True
        )
        queue = await channel.declare_queue(
            topology.retry_queue(delay),
            durable=True,
            arguments={
                **QUORUM,
                "x-message-ttl": delay * 1000,
                # On expiry the job goes back to the send exchange under its own routing key.
                "x-dead-letter-exchange": topology.send_exchange,
            },
        )
        await queue.bind(exchange)
    await channel.declare_queue(
        topology.billing_rpc_queue, durable=True, arguments={**dead_lettered, "x-delivery-limit": 5}
    )
    refunds = await channel.declare_queue(
        topology.billing_refunds_queue,
        durable=True,
        arguments={**dead_lettered, "x-delivery-limit": 20},
    )
    for event_type in REFUNDED_EVENTS:
        await refunds.bind(events, event_type)


async def publish(
    exchange: AbstractExchange,
    routing_key: str,
    body: bytes,
    *,
    message_id: str,
    headers: dict[str, Any] | None = None,
    mandatory: bool = True,
    correlation_id: str | None = None,
    reply_to: str | None = None,
    expiration: float | None = None,
    timeout: float = 10,
) -> None:
    """Publish a persistent JSON message and wait for the broker's confirm."""
    message = aio_pika.Message(
        body,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message_id,
        headers=headers or {},
        correlation_id=correlation_id,
        reply_to=reply_to,
        expiration=expiration,
    )
    await exchange.publish(message, routing_key, mandatory=mandatory, timeout=timeout)
