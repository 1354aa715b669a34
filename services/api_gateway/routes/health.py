"""/healthz: 200 only when Postgres, RabbitMQ and every service's consumers are up."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web
from sqlalchemy import text

from libs.common.db import session_scope
from libs.common.logging import get_logger
from services.api_gateway.context import AMQP, CACHES, SESSIONS, SETTINGS, TOPOLOGY
from services.api_gateway.openapi import operation
from services.api_gateway.schemas import HealthResponse
from services.api_gateway.web import json_response

routes = web.RouteTableDef()
log = get_logger(__name__)
CHECK_TIMEOUT = 2.0


@routes.get("/healthz")
@operation("Is the platform up?", responses={200: HealthResponse, 503: HealthResponse}, public=True)
async def healthz(request: web.Request) -> web.Response:
    cache: dict[str, Any] = request.app[CACHES].setdefault("health", {})
    if cache.get("until", 0.0) < time.monotonic():
        checks = await _checks(request.app)
        cache.update(checks=checks, until=time.monotonic() + 1.0)
    checks = cache["checks"]
    healthy = all(v == "ok" for v in checks.values())
    return json_response(
        {"status": "ok" if healthy else "degraded", "checks": checks},
        status=200 if healthy else 503,
    )


async def _checks(app: web.Application) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(CHECK_TIMEOUT), session_scope(app[SESSIONS]) as session:
            await session.execute(text("SELECT 1"))
        checks["postgres"] = "ok"
    except Exception as error:  # noqa: BLE001 — any failure means "down"
        checks["postgres"] = f"down: {type(error).__name__}"
    topology, carriers = app[TOPOLOGY], app[SETTINGS].carriers
    consumers = {
        "billing": [
            topology.billing_bulk_rpc_queue,
            topology.billing_refunds_queue,
            topology.billing_deposits_rpc_queue,
            topology.billing_deposit_checks_queue,
        ],
        "webhooks": [topology.webhooks_events_queue, topology.webhooks_commands_queue],
        **{
            f"sender.{c}": [topology.send_queue(c, "priority"), topology.send_queue(c, "bulk")]
            for c in carriers
        },
    }
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            channel = await app[AMQP].channel()
            try:
                checks["rabbitmq"] = "ok"
                for service, queues in consumers.items():
                    counts = []
                    for name in queues:
                        queue = await channel.declare_queue(name, passive=True)
                        counts.append(queue.declaration_result.consumer_count)
                    checks[service] = "ok" if all(counts) else "no consumers"
            finally:
                await channel.close()
    except Exception as error:  # noqa: BLE001
        checks.setdefault("rabbitmq", f"down: {type(error).__name__}")
        for service in consumers:
            checks.setdefault(service, "unknown")
    return checks
