"""The gateway application factory: every resource opened and closed by a cleanup context."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

from aio_pika.abc import AbstractIncomingMessage
from aiohttp import web

from libs.common.amqp import Topology, connect, declare_topology
from libs.common.db import create_engine, create_sessionmaker, session_scope
from libs.common.events import KEY_REVOKED, decode_events
from libs.common.logging import get_logger
from libs.common.phones import PrefixTable
from libs.common.rpc import RpcClient
from services.api_gateway import middleware
from services.api_gateway.admissions import Admissions
from services.api_gateway.auth import Authenticator
from services.api_gateway.context import (
    ADMISSIONS,
    AMQP,
    AUTH,
    CACHES,
    LIMITER,
    PREFIXES,
    PUBLISHER,
    SESSIONS,
    SETTINGS,
    TOPOLOGY,
    TOPUPS,
)
from services.api_gateway.publisher import Publisher
from services.api_gateway.ratelimit import RateLimiter
from services.api_gateway.routes import (
    account,
    callbacks,
    docs,
    groups,
    health,
    sms,
    topups,
    webhook_deliveries,
    webhooks,
)
from services.api_gateway.settings import GatewaySettings
from services.api_gateway.topup_client import TopUpClient

log = get_logger(__name__)
# Bodies above this are refused before parsing: 10,000 recipients fit easily.
MAX_BODY = 2 * 1024 * 1024


def create_app(settings: GatewaySettings) -> web.Application:
    app = web.Application(
        client_max_size=MAX_BODY,
        middlewares=[middleware.request_context, middleware.errors, middleware.authenticate],
    )
    app[SETTINGS] = settings
    app[TOPOLOGY] = Topology(settings.amqp_namespace)
    app[PREFIXES] = PrefixTable.load(settings.operator_prefixes_file)
    app[LIMITER] = RateLimiter(settings.default_rate_limit)
    app[CACHES] = {}
    app.cleanup_ctx.extend([_database, _broker, _last_used_flusher])
    for table in (
        account.routes,
        topups.routes,
        sms.routes,
        groups.routes,
        callbacks.routes,
        webhooks.routes,
        webhook_deliveries.routes,
        health.routes,
        docs.routes,
    ):
        app.add_routes(table)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    engine = create_engine(app[SETTINGS], "wesendall-api-gateway")
    app[SESSIONS] = create_sessionmaker(engine)
    app[AUTH] = Authenticator(
        app[SESSIONS], cache_ttl=app[SETTINGS].credential_cache_ttl.total_seconds()
    )
    yield
    await engine.dispose()


async def _broker(app: web.Application) -> AsyncIterator[None]:
    settings, topology = app[SETTINGS], app[TOPOLOGY]
    connection = await connect(settings, "wesendall-api-gateway")
    app[AMQP] = connection
    channel = await connection.channel()
    await declare_topology(channel, topology, settings.carriers)
    # Each gateway instance hears every key revocation on a queue of its own.
    events = await channel.declare_exchange(topology.events_exchange, passive=True)
    revocations = await channel.declare_queue(
        topology.gateway_events_queue(uuid.uuid4().hex[:12]), exclusive=True, auto_delete=True
    )
    await revocations.bind(events, KEY_REVOKED)
    await revocations.consume(lambda message: _on_key_revoked(app, message))
    rpc = RpcClient(connection)
    await rpc.start()
    admissions = app[ADMISSIONS] = Admissions(
        app[SESSIONS],
        settings,
        topology,
        connection,
        rpc,
        direct_max_recipients=settings.direct_admission_max_recipients,
        concurrency=settings.admission_concurrency,
        round_max=settings.admission_round_max,
        rpc_timeout=settings.rpc_timeout,
    )
    app[PUBLISHER] = Publisher(connection, settings.rpc_timeout)
    app[TOPUPS] = TopUpClient(
        rpc,
        app[PUBLISHER],
        start_queue=topology.billing_deposits_rpc_queue,
        checks_queue=topology.billing_deposit_checks_queue,
        timeout=settings.rpc_timeout,
    )
    yield
    # Send jobs committed by requests already answered go out before the broker does.
    await admissions.relay.settle()
    await connection.close()


async def _on_key_revoked(app: web.Application, message: AbstractIncomingMessage) -> None:
    async with message.process():
        for event in decode_events(message.body):
            app[AUTH].revoke(event.data["key_id"])


async def _last_used_flusher(app: web.Application) -> AsyncIterator[None]:
    async def flush() -> None:
        async with session_scope(app[SESSIONS]) as session:
            await app[AUTH].flush_last_used(session)

    async def loop() -> None:
        interval = app[SETTINGS].last_used_flush_interval.total_seconds()
        while True:
            await asyncio.sleep(interval)
            try:
                await flush()
            except Exception as error:  # noqa: BLE001 — retried next interval
                log.warning("auth.last_used_flush_failed", error=repr(error))

    task = asyncio.create_task(loop(), name="last-used-flusher")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    with contextlib.suppress(Exception):
        await flush()
