"""python -m services.billing: admissions over RPC, refunds from events, the outbox relay."""

from __future__ import annotations

import asyncio

from libs.common.amqp import Topology, connect, declare_topology, durable_queue
from libs.common.db import create_engine, create_sessionmaker
from libs.common.logging import configure_logging, get_logger
from libs.common.outbox import BILLING, PRIORITY_HIGH, OutboxRelay
from libs.common.rpc import RpcServer
from libs.common.runtime import run
from services.billing.consumers import BillingConsumers
from services.billing.settings import BillingSettings

log = get_logger(__name__)


async def main(settings: BillingSettings, stop: asyncio.Event) -> None:
    configure_logging("billing", settings.log_level, settings.log_format)
    topology = Topology(settings.amqp_namespace)
    engine = create_engine(settings, "wesendall-billing")
    sessions = create_sessionmaker(engine)
    connection = await connect(settings, "wesendall-billing")
    try:
        setup = await connection.channel()
        await declare_topology(setup, topology, settings.carriers)
        await setup.close()
        best_effort = frozenset({topology.events_exchange})
        relay = OutboxRelay(
            sessions, connection, origin=BILLING, best_effort_exchanges=best_effort, name="billing"
        )
        # OTP send jobs get a relay of their own, so they never queue behind the many rows
        # of a campaign the main relay is publishing.
        priority_relay = OutboxRelay(
            sessions,
            connection,
            origin=BILLING,
            best_effort_exchanges=best_effort,
            name="billing-priority",
            min_priority=PRIORITY_HIGH,
        )
        consumers = BillingConsumers(sessions, settings, topology, [priority_relay, relay])
        rpc_channel = await connection.channel()
        await rpc_channel.set_qos(prefetch_count=settings.rpc_prefetch)
        rpc_queue = await durable_queue(
            rpc_channel, topology, settings.carriers, topology.billing_rpc_queue
        )
        rpc = RpcServer(rpc_channel, rpc_queue, consumers.handle_admit)
        await rpc.start()
        refunds_channel = await connection.channel()
        await refunds_channel.set_qos(prefetch_count=settings.refund_prefetch)
        refunds = await durable_queue(
            refunds_channel, topology, settings.carriers, topology.billing_refunds_queue
        )
        await refunds.consume(consumers.handle_refunds)
        relay_tasks = [
            asyncio.create_task(relay.run(), name="outbox-relay"),
            asyncio.create_task(priority_relay.run(), name="outbox-relay-priority"),
        ]
        log.info("billing.started", carriers=settings.carriers)
        await stop.wait()
        log.info("billing.stopping")
        await rpc.stop()
        await refunds_channel.close()
        for task in relay_tasks:
            task.cancel()
        await asyncio.gather(*relay_tasks, return_exceptions=True)
    finally:
        await connection.close()
        await engine.dispose()


if __name__ == "__main__":
    run(lambda stop: main(BillingSettings(), stop))
