"""python -m services.sender: SMPP binds per carrier, submits, receipts, message states."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import replace

from libs.common.amqp import Topology, connect, declare_topology, durable_queue
from libs.common.db import create_engine, create_sessionmaker
from libs.common.logging import get_logger
from libs.common.outbox import SENDER, OutboxRelay
from libs.common.runtime import run, start_service
from services.sender.carriers.pool import CarrierPool
from services.sender.carriers.smpp import SmppBind
from services.sender.consumers import JobConsumer
from services.sender.deferral import Deferrer
from services.sender.receipts import Receipt, final_status
from services.sender.scheduler import CarrierScheduler
from services.sender.settings import CarrierLinkSettings, SenderSettings
from services.sender.store import INDEX_PLANS
from services.sender.sweeper import sweep_forever
from services.sender.work import Registry
from services.sender.writer import OutcomeWriter

log = get_logger(__name__)
# On shutdown, how long in-hand messages may take to reach an outcome before we let go.
DRAIN_TIMEOUT = 15.0


def _receipt_handler(
    writer: OutcomeWriter, carrier: str, link: CarrierLinkSettings
) -> Callable[[Receipt], asyncio.Future[None] | None]:
    """Final receipts go to the writer; intermediate ones (ENROUTE, …) change nothing.

    The future it returns completes once the receipt is committed: only then does the bind
    acknowledge it to the carrier.
    """

    def on_receipt(receipt: Receipt) -> asyncio.Future[None] | None:
        status = final_status(receipt.state, link.accepted_is_final)
        if status is None:
            return None
        return writer.receipt(carrier, receipt, status, durable=True)

    return on_receipt


async def _report(
    writer: OutcomeWriter,
    registry: Registry,
    schedulers: dict[str, CarrierScheduler],
    interval: float,
) -> None:
    """One line every so often with what moved and what waits: the sender's vital signs."""
    previous: dict[str, int] = {}
    while True:
        await asyncio.sleep(interval)
        stats = dict(writer.stats)
        moved = {k: v - previous.get(k, 0) for k, v in stats.items() if v != previous.get(k, 0)}
        previous = stats
        if moved or len(registry):
            flushes = moved.get("flushes", 0)
            log.info(
                "sender.progress",
                interval_s=interval,
                in_hand=len(registry),
                backlog={carrier: s.backlog for carrier, s in schedulers.items()},
                # Held messages submitted again with no receipt: possible carrier duplicates.
                resubmitted_after_hold={
                    carrier: s.resubmitted_after_hold for carrier, s in schedulers.items()
                },
                writer_backlog=writer.backlog,
                avg_flush_ms=round(moved.get("flush_ms", 0) / flushes, 1) if flushes else None,
                **{k: v for k, v in moved.items() if k not in ("flush_ms",)},
            )


async def main(settings: SenderSettings, stop: asyncio.Event) -> None:
    start_service("sender", settings)
    topology = Topology(settings.amqp_namespace)
    engine = create_engine(settings, "wesendall-sender", INDEX_PLANS)
    sessions = create_sessionmaker(engine)
    connection = await connect(settings, "wesendall-sender")
    setup = await connection.channel()
    await declare_topology(setup, topology, settings.carriers)
    await setup.close()
    relay = OutboxRelay(
        sessions,
        connection,
        origin=SENDER,
        best_effort_exchanges=frozenset({topology.events_exchange}),
        name="sender",
    )
    registry = Registry()
    writer = OutcomeWriter(
        sessions,
        topology,
        registry,
        relay,
        flush_interval=settings.flush_interval,
        flush_max=settings.flush_max,
        flush_concurrency=settings.flush_concurrency,
        receipt_flush_min=settings.receipt_flush_min,
    )
    deferrer = Deferrer(connection, topology)
    pools: dict[str, CarrierPool] = {}
    receivers: list[SmppBind] = []
    schedulers: dict[str, CarrierScheduler] = {}
    for carrier in settings.carriers:
        link = settings.carrier_links[carrier]
        pool = CarrierPool.smpp(
            carrier,
            link.bind_config(),
            _receipt_handler(writer, carrier, link),
            binds=link.binds,
        )
        for _ in range(link.receiver_binds):
            receiver = SmppBind(
                carrier,
                replace(link.bind_config(), bind_type="RX"),
                _receipt_handler(writer, carrier, link),
            )
            await receiver.start()
            receivers.append(receiver)
        scheduler = CarrierScheduler(
            carrier,
            pool,
            writer,
            capacity=link.binds * link.window,
            transient_attempts=settings.transient_attempts,
            retry_backoff=settings.retry_backoff,
            ambiguous_hold=settings.ambiguous_hold.total_seconds(),
            defer=deferrer.defer,
        )
        writer.set_adopter(carrier, scheduler)
        pools[carrier], schedulers[carrier] = pool, scheduler
        await pool.start()
        scheduler.start()
    background = [
        asyncio.create_task(writer.run(), name="writer"),
        asyncio.create_task(writer.rematch_forever(), name="rematch-receipts"),
        asyncio.create_task(
            _report(writer, registry, schedulers, settings.report_interval), name="report"
        ),
        asyncio.create_task(relay.run(), name="outbox-relay"),
        asyncio.create_task(sweep_forever(sessions, topology, relay, settings), name="sweeper"),
    ]
    jobs = JobConsumer(sessions, registry, schedulers, writer)
    consumers = []
    for carrier in settings.carriers:
        for lane, consumer_priority in settings.lanes.items():
            channel = await connection.channel()
            prefetch = settings.prefetch_priority if lane == "priority" else settings.prefetch_bulk
            await channel.set_qos(prefetch_count=prefetch)
            queue = await durable_queue(
                channel, topology, settings.carriers, topology.send_queue(carrier, lane)
            )
            tag = await queue.consume(jobs.on_job, arguments={"x-priority": consumer_priority})
            consumers.append((queue, tag))
    log.info("sender.started", carriers=settings.carriers, lanes=settings.lanes)
    try:
        await stop.wait()
        log.info("sender.stopping", in_hand=len(registry))
        for queue, tag in consumers:
            # Take no new jobs; let the messages in hand reach an outcome first, so as few
            # as possible come back to the queue ambiguous.
            with contextlib.suppress(Exception):
                await queue.cancel(tag)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(registry.idle.wait(), DRAIN_TIMEOUT)
        for receiver in receivers:
            await receiver.close()
        await writer.flush()
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        for scheduler in schedulers.values():
            await scheduler.stop()
        for receiver in receivers:
            await receiver.close()
        for pool in pools.values():
            await pool.close()
        await relay.settle()
        with contextlib.suppress(Exception):
            await relay.drain_once()
        await connection.close()
        await engine.dispose()


if __name__ == "__main__":
    run(lambda stop: main(SenderSettings(), stop))
