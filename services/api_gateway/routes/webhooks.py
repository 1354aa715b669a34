"""/api/v1/webhooks: endpoints, test pings, the delivery log, replays, secret rotation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web
from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.db import session_scope
from libs.common.egress import EgressRefused, check_url
from libs.common.errors import NotFound, ValidationFailed
from libs.common.events import Event
from libs.common.ids import new_id
from libs.common.webhooks import DEFAULT_EVENTS, PING, SUBSCRIBABLE, new_secret
from services.api_gateway.context import AUTH, PUBLISHER, SESSIONS, SETTINGS, TOPOLOGY
from services.api_gateway.idempotency import idempotently
from services.api_gateway.openapi import operation
from services.api_gateway.web import json_response, query, read_json, validate
from services.api_gateway.webhook_schemas import (
    PingQueued,
    RotateSecret,
    SecretRotated,
    WalletBody,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookOut,
)

routes = web.RouteTableDef()
MAX_ENDPOINTS_PER_WALLET = 20


def _checked_url(request: web.Request, url: str) -> str:
    settings = request.app[SETTINGS]
    try:
        checked = check_url(
            url, allow_private=settings.allow_private_webhooks, require_https=settings.is_production
        )
    except EgressRefused as refused:
        raise ValidationFailed(
            "We cannot deliver to this URL.",
            details=[{"field": "url", "reason": refused.reason, "message": str(refused)}],
        ) from refused
    return str(checked)


def _checked_events(events: list[str] | None) -> list[str]:
    unknown = sorted(set(events or ()) - set(SUBSCRIBABLE))
    if unknown:
        raise ValidationFailed(
            "Unknown event types.",
            details=[{"field": "events", "message": f"not an event type: {e}"} for e in unknown],
        )
    return sorted(set(events or ()), key=SUBSCRIBABLE.index)


async def endpoint_of(session: AsyncSession, endpoint_id: str, wallet_id: str) -> RowMapping:
    row = (
        (
            await session.execute(
                text(
                    "SELECT * FROM webhook_endpoints"
                    " WHERE id = :id AND wallet_id = :w AND status <> 'deleted'"
                ),
                {"id": endpoint_id, "w": wallet_id},
            )
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise NotFound(f"Webhook {endpoint_id} not found.")
    return row


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def endpoint_view(row: RowMapping) -> dict[str, Any]:
    """An endpoint as the API lists it: never its secret."""
    return {
        "id": row["id"],
        "url": row["url"],
        "events": row["events"] or list(DEFAULT_EVENTS),
        "status": row["status"],
        "disabledReason": row["disabled_reason"],
        "failingSince": iso(row["failing_since"]),
        "createdAt": row["created_at"].isoformat(),
    }


@routes.post("/api/v1/webhooks")
@operation(
    "Register a URL to receive signed events",
    request=WebhookCreate,
    responses={201: WebhookCreated},
    errors=(401, 403, 409, 422, 429),
)
async def create(request: web.Request) -> web.Response:
    payload = await read_json(request)
    body = validate(WebhookCreate, payload)
    await request.app[AUTH].authorize_wallet(request["principal"], body.walletId)
    url = _checked_url(request, body.url)
    events = _checked_events(body.events)

    async def produce(endpoint_id: str) -> web.Response:
        secret = new_secret()
        async with session_scope(request.app[SESSIONS]) as session:
            count = await session.scalar(
                text(
                    "SELECT count(*) FROM webhook_endpoints"
                    " WHERE wallet_id = :w AND status <> 'deleted'"
                ),
                {"w": body.walletId},
            )
            if count >= MAX_ENDPOINTS_PER_WALLET:
                raise ValidationFailed(
                    f"A wallet has at most {MAX_ENDPOINTS_PER_WALLET} webhooks.",
                    details=[{"field": "url", "message": "too many webhooks"}],
                )
            created_at = (
                await session.execute(
                    text(
                        "INSERT INTO webhook_endpoints (id, wallet_id, url, events, secret)"
                        " VALUES (:id, :w, :url, :events, :secret) RETURNING created_at"
                    ),
                    {
                        "id": endpoint_id,
                        "w": body.walletId,
                        "url": url,
                        "events": events,
                        "secret": secret,
                    },
                )
            ).scalar_one()
        return json_response(
            {
                "id": endpoint_id,
                "url": url,
                "events": events or list(DEFAULT_EVENTS),
                "secret": secret,
                "status": "enabled",
                "createdAt": created_at.isoformat(),
            },
            status=201,
        )

    return await idempotently(request, payload, new_id("wh"), produce)


@routes.get("/api/v1/webhooks")
@operation(
    "List a wallet's webhooks (without secrets)",
    query=WalletBody,
    responses={200: WebhookList},
    errors=(401, 403, 422, 429),
)
async def list_endpoints(request: web.Request) -> web.Response:
    params = query(request, WalletBody)
    await request.app[AUTH].authorize_wallet(request["principal"], params.walletId)
    async with session_scope(request.app[SESSIONS]) as session:
        rows = (
            await session.execute(
                text(
                    "SELECT * FROM webhook_endpoints WHERE wallet_id = :w AND status <> 'deleted'"
                    " ORDER BY created_at"
                ),
                {"w": params.walletId},
            )
        ).mappings()
        data = [endpoint_view(r) for r in rows]
    return json_response({"data": data})


@routes.delete("/api/v1/webhooks/{webhookId}")
@operation("Delete a webhook", query=WalletBody, responses={204: None}, errors=(401, 403, 404))
async def delete(request: web.Request) -> web.Response:
    params = query(request, WalletBody)
    await request.app[AUTH].authorize_wallet(request["principal"], params.walletId)
    async with session_scope(request.app[SESSIONS]) as session:
        endpoint = await endpoint_of(session, request.match_info["webhookId"], params.walletId)
        # Kept, marked deleted: its delivery log stays readable for support.
        await session.execute(
            text(
                "UPDATE webhook_endpoints SET status = 'deleted', updated_at = now() WHERE id = :id"
            ),
            {"id": endpoint["id"]},
        )
    return web.Response(status=204)


async def wallet_body(request: web.Request) -> tuple[Any, WalletBody]:
    payload = await read_json(request)
    body = validate(WalletBody, payload)
    await request.app[AUTH].authorize_wallet(request["principal"], body.walletId)
    return payload, body


@routes.post("/api/v1/webhooks/{webhookId}/test")
@operation(
    "Send a webhook.ping event to this webhook",
    request=WalletBody,
    responses={202: PingQueued},
    errors=(401, 403, 404, 409, 422, 429, 502),
)
async def ping(request: web.Request) -> web.Response:
    payload, body = await wallet_body(request)
    async with session_scope(request.app[SESSIONS]) as session:
        endpoint = await endpoint_of(session, request.match_info["webhookId"], body.walletId)

    async def produce(event_id: str) -> web.Response:
        event = Event(
            id=event_id,
            type=PING,
            request_id=request.get("request_id"),
            data={"walletId": body.walletId, "endpointId": endpoint["id"], "message": "ping"},
        )
        await request.app[PUBLISHER].publish(
            orjson.dumps(event.model_dump(mode="json")),
            exchange=request.app[TOPOLOGY].events_exchange,
            routing_key=PING,
            message_id=event.id,
        )
        return json_response({"eventId": event.id, "type": PING}, status=202)

    return await idempotently(request, payload, new_id("evt"), produce)


@routes.post("/api/v1/webhooks/{webhookId}/enable")
@operation(
    "Turn a disabled webhook back on (after fixing the receiver); replay what it missed",
    request=WalletBody,
    responses={200: WebhookOut},
    errors=(401, 403, 404, 409, 422, 429),
)
async def enable(request: web.Request) -> web.Response:
    payload, body = await wallet_body(request)

    async def produce(_: str) -> web.Response:
        async with session_scope(request.app[SESSIONS]) as session:
            endpoint = await endpoint_of(session, request.match_info["webhookId"], body.walletId)
            row = (
                (
                    await session.execute(
                        text(
                            "UPDATE webhook_endpoints SET status = 'enabled',"
                            " disabled_reason = NULL, failing_since = NULL, updated_at = now()"
                            " WHERE id = :id RETURNING *"
                        ),
                        {"id": endpoint["id"]},
                    )
                )
                .mappings()
                .one()
            )
        return json_response(endpoint_view(row))

    return await idempotently(request, payload, "", produce)


@routes.post("/api/v1/webhooks/{webhookId}/rotate-secret")
@operation(
    "Replace the signing secret; the old one keeps signing during the overlap",
    request=RotateSecret,
    responses={200: SecretRotated},
    errors=(401, 403, 404, 409, 422, 429),
)
async def rotate(request: web.Request) -> web.Response:
    payload = await read_json(request)
    body = validate(RotateSecret, payload)
    await request.app[AUTH].authorize_wallet(request["principal"], body.walletId)

    async def produce(_: str) -> web.Response:
        secret = new_secret()
        until = datetime.now(UTC) + timedelta(seconds=body.overlapSeconds)
        async with session_scope(request.app[SESSIONS]) as session:
            endpoint = await endpoint_of(session, request.match_info["webhookId"], body.walletId)
            await session.execute(
                text(
                    "UPDATE webhook_endpoints SET previous_secret = secret, secret = :s,"
                    " previous_secret_expires_at = :until, updated_at = now() WHERE id = :id"
                ),
                {"s": secret, "until": until, "id": endpoint["id"]},
            )
        return json_response(
            {"id": endpoint["id"], "secret": secret, "previousSecretExpiresAt": until.isoformat()}
        )

    return await idempotently(request, payload, "", produce)
