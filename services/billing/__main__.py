"""python -m services.billing: large admissions and top-ups over RPC, refunds, reconciliation,
relays."""

from __future__ import annotations

import asyncio

from aio_pika.abc import AbstractChannel, AbstractQueue

from libs.common.amqp import Topology, connect, declare_topology, durable_queue
from libs.common.db import create_engine, create_sessionmaker
from libs.common.logging import get_logger
from libs.common.outbox import BILLING, PRIORITY_HIGH, OutboxRelay
from libs.common.rpc import RpcServer
from libs.common.runtime import run, start_service
from services.billing.consumers import BillingConsumers
from services.billing.mobile_money import create_providers
from services.billing.settings import BillingSettings
from services.billing.topups import TopUps

log = get_logger(__name__)


async def main(settings: BillingSettings, stop: asyncio.Event) -> None:
    start_service("billing", settings)
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
        topups = TopUps(
            sessions, settings, topology, create_providers(settings.mobile_money), [relay]
        )
        consumers = BillingConsumers(sessions, settings, topology, [priority_relay, relay], topups)

        async def queue(name: str, prefetch: int) -> tuple[AbstractChannel, AbstractQueue]:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=prefetch)
            return channel, await durable_queue(channel, topology, settings.carriers, name)

        admissions = []
        if settings.admission_priority is not None:
            server = RpcServer(
                *await queue(topology.billing_bulk_rpc_queue, settings.rpc_prefetch),
                consumers.handle_admit,
            )
            await server.start(settings.admission_priority)
            admissions.append(server)
        tasks = [
            asyncio.create_task(relay.run(), name="outbox-relay"),
            asyncio.create_task(priority_relay.run(), name="outbox-relay-priority"),
        ]
        servers: list[RpcServer] = []
        channels: list[AbstractChannel] = []
        if settings.background_work:
            deposits_rpc = RpcServer(
                *await queue(topology.billing_deposits_rpc_queue, settings.deposit_rpc_prefetch),
                consumers.handle_start_deposit,
            )
            await deposits_rpc.start()
            servers.append(deposits_rpc)
            refunds_channel, refunds = await queue(
                topology.billing_refunds_queue, settings.refund_prefetch
            )
            await refunds.consume(consumers.handle_refunds)
            checks_channel, checks = await queue(
                topology.billing_deposit_checks_queue, settings.deposit_check_prefetch
            )
            await checks.consume(consumers.handle_deposit_check)
            channels += [refunds_channel, checks_channel]
            tasks.append(asyncio.create_task(topups.reconcile_forever(), name="deposit-reconciler"))
        log.info(
            "billing.started",
            carriers=settings.carriers,
            admission_priority=settings.admission_priority,
            background_work=settings.background_work,
        )
        await stop.wait()
        log.info("billing.stopping")
        for server in [*admissions, *servers]:
            await server.stop()
        for channel in channels:
            await channel.close()
        for r in (priority_relay, relay):
            await r.settle()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await topups.close()
    finally:
        await connection.close()
        await engine.dispose()


if __name__ == "__main__":
    run(lambda stop: main(BillingSettings(), stop))
