"""Phase 4: webhook deliveries per second, from the events exchange to a local receiver.

The events are published straight to the platform's `events` exchange, packed as the
sender packs them, for a fresh wallet with one endpoint: the figure is the webhooks
service's (consume, store, claim, sign, POST, record), not SMS sending's.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aio_pika
import orjson
from aio_pika.abc import AbstractChannel, AbstractExchange

from bench.numbers import number_at
from bench.phases.common import Context, progress, start_profile
from bench.platform import BenchPlatform, Customer
from bench.receiver import WebhookReceiver
from bench.stats import latency_summary, rate
from libs.common.amqp import Topology, connect
from libs.common.events import MESSAGE_DELIVERED, utcnow
from libs.common.ids import ulid
from libs.common.settings import CommonSettings
from services.webhooks.settings import WebhooksSettings

WEBHOOKS_PATH = "/api/v1/webhooks"
EVENTS_PER_MESSAGE = 100  # envelopes in one AMQP message, as the sender packs them
_PUBLISHES_IN_FLIGHT = 32  # messages awaiting their confirm at once
_BACKLOG_TIMEOUT = 120.0
_POLL_INTERVAL = 0.2
_PROFILE_SECONDS = 30.0
_CONNECTION = "wesendall-bench-events"


async def register(platform: BenchPlatform, customer: Customer, url: str) -> str:
    """Register `url` for the wallet's `message.delivered` events; return the secret."""
    async with platform.http.post(
        platform.base_url + WEBHOOKS_PATH,
        json={"walletId": customer.wallet_id, "url": url, "events": [MESSAGE_DELIVERED]},
        headers={"Authorization": customer.authorization},
    ) as response:
        if response.status != 201:
            raise RuntimeError(f"registering the webhook: HTTP {response.status}")
        return str((await response.json())["secret"])


def envelopes(wallet_id: str, first: int, count: int) -> list[dict[str, Any]]:
    """`count` `message.delivered` envelopes in the sender's shape, stamped now."""
    occurred_at = utcnow().isoformat()
    batch_id = "bat_" + ulid()
    return [
        {
            "id": "evt_" + ulid(),
            "type": MESSAGE_DELIVERED,
            "occurred_at": occurred_at,
            "version": 1,
            "request_id": None,
            "data": {
                "message_id": "msg_" + ulid(),
                "batch_id": batch_id,
                "wallet_id": wallet_id,
                "recipient": number_at(index),
                "status": "delivered",
                "error_code": None,
                "units": 1,
                "cost": 35,
                "carrier": "mtn",
                "carrier_message_id": f"B{index:09d}",
            },
        }
        for index in range(first, first + count)
    ]


async def publish(exchange: AbstractExchange, wallet_id: str, events: int) -> int:
    """Publish `events` events, persistent and confirmed; return the AMQP messages sent."""
    gate = asyncio.Semaphore(_PUBLISHES_IN_FLIGHT)

    async def one(first: int) -> None:
        async with gate:
            batch = envelopes(wallet_id, first, min(EVENTS_PER_MESSAGE, events - first))
            message = aio_pika.Message(
                orjson.dumps(batch),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=batch[0]["id"],
            )
            # Mandatory: an event no queue takes would otherwise vanish, and be waited for.
            await exchange.publish(message, MESSAGE_DELIVERED, mandatory=True, timeout=30)

    starts = range(0, events, EVENTS_PER_MESSAGE)
    await asyncio.gather(*(one(first) for first in starts))
    return len(starts)


async def events_backlog(channel: AbstractChannel, topology: Topology) -> int:
    """Wait until the webhooks service has taken the events earlier phases left queued."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _BACKLOG_TIMEOUT
    while True:
        queue = await channel.declare_queue(topology.webhooks_events_queue, passive=True)
        waiting = int(queue.declaration_result.message_count or 0)
        if waiting == 0 or loop.time() >= deadline:
            return waiting
        await asyncio.sleep(_POLL_INTERVAL)


async def run_webhooks(ctx: Context) -> dict[str, Any]:
    """Deliveries/s and event-to-receipt latency for one endpoint, and their checks."""
    options = ctx.options
    platform, _, logs = ctx.started()
    await platform.wait_quiet()
    customer = await platform.create_customer(options.credit, options.rate_limit)
    receiver = WebhookReceiver(options.webhook_events)
    await receiver.start()
    topology = Topology(platform.namespace)
    connection = await connect(CommonSettings(amqp_url=platform.amqp_url), _CONNECTION)
    try:
        receiver.secret = await register(platform, customer, receiver.url)
        channel = await connection.channel(on_return_raises=True)
        backlog = await events_backlog(channel, topology)
        exchange = await channel.get_exchange(topology.events_exchange, ensure=False)
        logs.mark()
        progress(
            f"webhooks: {options.webhook_events:,} message.delivered events in messages of"
            f" {EVENTS_PER_MESSAGE}, to one endpoint on this machine"
        )
        profile = start_profile(ctx, "webhooks", 0.0, _PROFILE_SECONDS)
        started = time.time()
        messages = await publish(exchange, customer.wallet_id, options.webhook_events)
        published = time.time()
        all_delivered = await receiver.wait_all(options.drain_timeout)
    finally:
        await connection.close()
        await receiver.stop()
    first, last = receiver.first_at, receiver.last_at
    summary: dict[str, Any] = {
        "events": options.webhook_events,
        "amqp_messages": messages,
        "endpoint_concurrency": WebhooksSettings().webhook_endpoint_concurrency,
        "backlog_before": backlog,
        "publish_s": round(published - started, 3),
        "published_per_s": rate(options.webhook_events, published - started),
        "deliveries": receiver.deliveries,
        "distinct": len(receiver.ids),
        "duplicates": receiver.duplicates,
        "missing": options.webhook_events - len(receiver.ids),
        "unreadable": receiver.unreadable,
        "all_delivered": all_delivered,
        "receive_s": round(last - first, 3) if first and last else None,
        "deliveries_per_s": rate(receiver.deliveries, last - first) if first and last else None,
        "end_to_end_s": round(last - started, 3) if last else None,
        "deliveries_per_s_end_to_end": rate(receiver.deliveries, last - started) if last else None,
        "latency": latency_summary(receiver.latencies),
        "signatures": {"checked": receiver.checked, "ok": receiver.verified},
        "cpu": await ctx.monitor.usage_after(started, last) if last else None,
        "service_logs": logs.read(),
        "exited": platform.stack.exited(),
    }
    if profile is not None:
        summary["profile"] = await profile.finish()
    return summary
