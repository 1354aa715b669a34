"""python -m services.billing: admissions over RPC, refunds from events, the outbox relay."""

from __future__ import annotations

import asyncio

from libs.common.amqp import Topology, connect, declare_topology, durable_queue
from libs.common.db import create_engine, create_sessionmaker
from libs.common.logging import configure_logging, get_logger
from libs.common.outbox import OutboxRelay
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
        relay = OutboxRelay(
            sessions,
            connection,
            best_effort_exchanges=frozenset({topology.events_exchange}),
            name="billing",
        )
        consumers = BillingConsumers(sessions, settings, topology, relay)
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
        relay_task = asyncio.create_task(relay.run(), name="outbox-relay")
        log.info("billing.started", carriers=settings.carriers)
        await stop.wait()
        log.info("billing.stopping")
        await rpc.stop()
        await refunds_channel.close()
        relay_task.cancel()
        await asyncio.gather(relay_task, return_exceptions=True)
    finally:
        await connection.close()
        await engine.dispose()


if __name__ == "__main__":
    run(lambda stop: main(BillingSettings(), stop))
