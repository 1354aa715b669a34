"""/api/v1/webhooks/…/deliveries: the delivery log, and replaying a delivery."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson
from aiohttp import web
from sqlalchemy import text

from libs.common.db import session_scope
from libs.common.errors import NotFound
from services.api_gateway.context import AUTH, PUBLISHER, SESSIONS, TOPOLOGY
from services.api_gateway.idempotency import idempotently
from services.api_gateway.openapi import operation
from services.api_gateway.routes.webhooks import endpoint_of, iso, wallet_body
from services.api_gateway.web import json_response, query
from services.api_gateway.webhook_schemas import (
    DeliveriesQuery,
    DeliveryList,
    ReplayQueued,
    WalletBody,
)

routes = web.RouteTableDef()


@routes.get("/api/v1/webhooks/{webhookId}/deliveries")
@operation(
    "The webhook's deliveries, newest first, with every attempt",
    query=DeliveriesQuery,
    responses={200: DeliveryList},
    errors=(401, 403, 404, 422, 429),
)
async def deliveries(request: web.Request) -> web.Response:
    params = query(request, DeliveriesQuery)
    await request.app[AUTH].authorize_wallet(request["principal"], params.walletId)
    binds: dict[str, Any] = {
        "limit": params.per_page,
        "offset": (params.page - 1) * params.per_page,
    }
    async with session_scope(request.app[SESSIONS]) as session:
        endpoint = await endpoint_of(session, request.match_info["webhookId"], params.walletId)
        binds["e"] = endpoint["id"]
        where = "endpoint_id = :e"
        if params.status:
            where += " AND status = :status"
            binds["status"] = params.status
        total = await session.scalar(
            text(f"SELECT count(*) FROM webhook_deliveries WHERE {where}"), binds
        )
        rows = (
            (
                await session.execute(
                    text(
                        f"SELECT * FROM webhook_deliveries WHERE {where}"
                        " ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset"
                    ),
                    binds,
                )
            )
            .mappings()
            .all()
        )
        attempts: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for a in (
            await session.execute(
                text(
                    "SELECT delivery_id, attempt, started_at, status_code, latency_ms, error"
                    " FROM webhook_attempts WHERE delivery_id = ANY(:ids) ORDER BY id"
                ),
                {"ids": [r["id"] for r in rows]},
            )
        ).all():
            attempts[a.delivery_id].append(
                {
                    "attempt": a.attempt,
                    "startedAt": a.started_at.isoformat(),
                    "statusCode": a.status_code,
                    "latencyMs": a.latency_ms,
                    "error": a.error,
                }
            )
    data = [
        {
            "id": r["id"],
            "eventId": r["event_id"],
            "eventType": r["event_type"],
            "status": r["status"],
            "attempts": r["attempts"],
            "nextAttemptAt": iso(r["next_attempt_at"]) if r["status"] == "pending" else None,
            "lastStatusCode": r["last_status_code"],
            "lastLatencyMs": r["last_latency_ms"],
            "lastError": r["last_error"],
            "createdAt": r["created_at"].isoformat(),
            "completedAt": iso(r["completed_at"]),
            "attemptLog": attempts[r["id"]],
        }
        for r in rows
    ]
    return json_response(
        {"data": data, "page": params.page, "per_page": params.per_page, "total": total}
    )


@routes.post("/api/v1/webhooks/deliveries/{deliveryId}/replay")
@operation(
    "Send a delivery again (same event id), e.g. after fixing the receiver",
    request=WalletBody,
    responses={202: ReplayQueued},
    errors=(401, 403, 404, 409, 422, 429, 502),
)
async def replay(request: web.Request) -> web.Response:
    payload, body = await wallet_body(request)
    delivery_id = request.match_info["deliveryId"]
    async with session_scope(request.app[SESSIONS]) as session:
        found = await session.scalar(
            text(
                "SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e"
                " ON e.id = d.endpoint_id WHERE d.id = :d AND d.wallet_id = :w"
                " AND e.status <> 'deleted'"
            ),
            {"d": delivery_id, "w": body.walletId},
        )
    if found is None:
        raise NotFound(f"Delivery {delivery_id} not found.")

    async def produce(_: str) -> web.Response:
        await request.app[PUBLISHER].publish(
            orjson.dumps({"type": "replay", "delivery_id": delivery_id}),
            routing_key=request.app[TOPOLOGY].webhooks_commands_queue,
        )
        return json_response({"deliveryId": delivery_id, "status": "pending"}, status=202)

    return await idempotently(request, payload, "", produce)
