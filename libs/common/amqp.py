"""RabbitMQ: named robust connections, the topology every service agrees on, confirmed publishes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractQueue,
    AbstractRobustConnection,
    ExchangeType,
)

from libs.common.events import REFUNDED_EVENTS
from libs.common.settings import CommonSettings

QUORUM: dict[str, Any] = {"x-queue-type": "quorum"}
# Retry delays for send jobs that a carrier could not take now (seconds).
RETRY_DELAYS = (5, 30, 300)
# What the webhooks service hears: status changes, deposit outcomes, and test pings.
WEBHOOK_BINDINGS = ("message.*", "deposit.*", "webhook.ping")


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
    def billing_bulk_rpc_queue(self) -> str:
        """Admissions of large sends (the gateway admits small ones itself)."""
        return self._n("billing.rpc.bulk")

    @property
    def billing_refunds_queue(self) -> str:
        return self._n("billing.refunds")

    @property
    def billing_deposits_rpc_queue(self) -> str:
        """Top-up starts: kept apart from admissions, which must never wait on a provider."""
        return self._n("billing.deposits.rpc")

    @property
    def billing_deposit_checks_queue(self) -> str:
        """Commands to ask a provider where a deposit stands (sent on its callbacks)."""
        return self._n("billing.deposit-checks")

    @property
    def webhooks_events_queue(self) -> str:
        return self._n("webhooks.events")

    @property
    def webhooks_commands_queue(self) -> str:
        """Replays asked for through the API."""
        return self._n("webhooks.commands")

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


def queue_arguments(topology: Topology, carriers: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Every durable queue of the topology with its declaration arguments."""
    dead_lettered = {**QUORUM, "x-dead-letter-exchange": topology.dead_letter_exchange}
    queues: dict[str, dict[str, Any]] = {topology.dead_letter_queue: dict(QUORUM)}
    for carrier in carriers:
        for lane in LANES:
            # A job redelivered this often is poison: park it where an operator sees it.
            queues[topology.send_queue(carrier, lane)] = {**dead_lettered, "x-delivery-limit": 20}
    for delay in RETRY_DELAYS:
        queues[topology.retry_queue(delay)] = {
            **QUORUM,
            "x-message-ttl": delay * 1000,
            # On expiry the job goes back to the send exchange under its own routing key.
            "x-dead-letter-exchange": topology.send_exchange,
        }
    queues[topology.billing_bulk_rpc_queue] = {**dead_lettered, "x-delivery-limit": 5}
    queues[topology.billing_refunds_queue] = {**dead_lettered, "x-delivery-limit": 20}
    queues[topology.billing_deposits_rpc_queue] = {**dead_lettered, "x-delivery-limit": 5}
    queues[topology.billing_deposit_checks_queue] = {**dead_lettered, "x-delivery-limit": 20}
    queues[topology.webhooks_events_queue] = {**dead_lettered, "x-delivery-limit": 20}
    queues[topology.webhooks_commands_queue] = {**dead_lettered, "x-delivery-limit": 20}
    return queues


async def durable_queue(
    channel: AbstractChannel, topology: Topology, carriers: Iterable[str], name: str
) -> AbstractQueue:
    """A queue to consume from, declared so that a reconnecting channel restores its consumers."""
    return await channel.declare_queue(
        name, durable=True, arguments=queue_arguments(topology, carriers)[name]
    )


async def declare_topology(
    channel: AbstractChannel, topology: Topology, carriers: Iterable[str]
) -> None:
    """Declare every exchange and queue; idempotent, so each process calls it at start."""
    carriers = list(carriers)
    queues = {
        name: await channel.declare_queue(name, durable=True, arguments=arguments)
        for name, arguments in queue_arguments(topology, carriers).items()
    }
    dlx = await channel.declare_exchange(
        topology.dead_letter_exchange, ExchangeType.FANOUT, durable=True
    )
    await queues[topology.dead_letter_queue].bind(dlx)
    send = await channel.declare_exchange(topology.send_exchange, ExchangeType.DIRECT, durable=True)
    events = await channel.declare_exchange(
        topology.events_exchange, ExchangeType.TOPIC, durable=True
    )
    for carrier in carriers:
        for lane in LANES:
            await queues[topology.send_queue(carrier, lane)].bind(
                send, topology.send_routing_key(carrier, lane)
            )
    for delay in RETRY_DELAYS:
        exchange = await channel.declare_exchange(
            topology.retry_exchange(delay), ExchangeType.FANOUT, durable=True
        )
        await queues[topology.retry_queue(delay)].bind(exchange)
    for event_type in REFUNDED_EVENTS:
        await queues[topology.billing_refunds_queue].bind(events, event_type)
    for pattern in WEBHOOK_BINDINGS:
        await queues[topology.webhooks_events_queue].bind(events, pattern)


async def delete_topology(
    channel: AbstractChannel, topology: Topology, carriers: Iterable[str]
) -> None:
    """Remove every queue and exchange of a namespace (test runs clean up after themselves)."""
    queues = [
        topology.dead_letter_queue,
        topology.billing_bulk_rpc_queue,
        topology.billing_refunds_queue,
        topology.billing_deposits_rpc_queue,
        topology.billing_deposit_checks_queue,
        topology.webhooks_events_queue,
        topology.webhooks_commands_queue,
        *(topology.retry_queue(d) for d in RETRY_DELAYS),
        *(topology.send_queue(c, lane) for c in carriers for lane in LANES),
    ]
    exchanges = [
        topology.send_exchange,
        topology.events_exchange,
        topology.dead_letter_exchange,
        *(topology.retry_exchange(d) for d in RETRY_DELAYS),
    ]
    for name in queues:
        await channel.queue_delete(name)
    for name in exchanges:
        await channel.exchange_delete(name)
