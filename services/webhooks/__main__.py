"""python -m services.webhooks: turn events into signed deliveries and send them."""

from __future__ import annotations

import asyncio

from libs.common.amqp import Topology, connect, declare_topology, durable_queue
from libs.common.db import create_engine, create_sessionmaker
from libs.common.egress import safe_session
from libs.common.logging import get_logger
from libs.common.runtime import run, start_service
from services.webhooks.consumers import WebhookConsumers
from services.webhooks.delivery import USER_AGENT
from services.webhooks.dispatcher import Dispatcher
from services.webhooks.settings import WebhooksSettings

log = get_logger(__name__)


async def main(settings: WebhooksSettings, stop: asyncio.Event) -> None:
    start_service("webhooks", settings)
    topology = Topology(settings.amqp_namespace)
    # The claim's best plan depends on how many deliveries wait, which swings from none to
    # many in seconds: a plan cached while the table was empty made claims take a minute.
    engine = create_engine(settings, "wesendall-webhooks", {"plan_cache_mode": "force_custom_plan"})
    sessions = create_sessionmaker(engine)
    http = safe_session(
        allow_private=settings.allow_private_webhooks,
        timeout=settings.webhook_timeout,
        max_connections=settings.webhook_max_in_flight,
        user_agent=USER_AGENT,
    )
    connection = await connect(settings, "wesendall-webhooks")
    dispatcher = Dispatcher(sessions, settings, http)
    consumers = WebhookConsumers(sessions, dispatcher)
    try:
        channel = await connection.channel()
        await declare_topology(channel, topology, settings.carriers)
        await channel.set_qos(prefetch_count=settings.webhook_event_prefetch)
        events = await durable_queue(
            channel, topology, settings.carriers, topology.webhooks_events_queue
        )
        await events.consume(consumers.handle_events)
        commands = await durable_queue(
            channel, topology, settings.carriers, topology.webhooks_commands_queue
        )
        await commands.consume(consumers.handle_commands)
        tasks = [
            asyncio.create_task(dispatcher.run(), name="webhook-dispatcher"),
            asyncio.create_task(dispatcher.purge_forever(), name="webhook-purge"),
        ]
        log.info("webhooks.started", allow_private=settings.allow_private_webhooks)
        await stop.wait()
        log.info("webhooks.stopping")
        await channel.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await dispatcher.close()
    finally:
        await connection.close()
        await http.close()
        await engine.dispose()


if __name__ == "__main__":
    run(lambda stop: main(WebhooksSettings(), stop))
