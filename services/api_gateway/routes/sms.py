"""/api/v1/sms: send, group send, batch progress and message history."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import text

from libs.common.db import session_scope
from libs.common.errors import NotFound, ValidationFailed, WalletForbidden
from libs.common.phones import Recipient, normalise, parse_recipients, split_recipients
from libs.common.segments import count_segments
from services.api_gateway.context import AUTH, PREFIXES, SESSIONS, SETTINGS
from services.api_gateway.openapi import operation
from services.api_gateway.schemas import (
    BatchResponse,
    GroupSendRequest,
    HistoryQuery,
    HistoryResponse,
    SendRequest,
    SendResponse,
    WalletQuery,
)
from services.api_gateway.sending import (
    MAX_RECIPIENTS,
    SendPlan,
    admit_and_reply,
    reject_bad_recipients,
)
from services.api_gateway.web import json_response, query, read_json, validate

routes = web.RouteTableDef()


def _message(text_: str) -> str:
    if not text_.strip():
        raise ValidationFailed(
            "The message is empty.", details=[{"field": "message", "message": "blank"}]
        )
    return text_


@routes.post("/api/v1/sms/send")
@operation(
    "Send an SMS to one or many recipients",
    request=SendRequest,
    responses={202: SendResponse},
    errors=(401, 402, 403, 409, 422, 429, 500, 502),
)
async def send(request: web.Request) -> web.Response:
    principal = request["principal"]
    payload = await read_json(request)
    body = validate(SendRequest, payload)
    await request.app[AUTH].authorize_wallet(principal, body.walletId)
    message = _message(body.message)
    raw = split_recipients(body.recipient)
    if not raw:
        raise ValidationFailed(
            "At least one recipient is required.",
            details=[{"field": "recipient", "message": "empty"}],
        )
    if len(raw) > MAX_RECIPIENTS:
        raise ValidationFailed(
            f"At most {MAX_RECIPIENTS} recipients per request.",
            details=[{"field": "recipient", "message": f"{len(raw)} given"}],
        )
    carriers = frozenset(request.app[SETTINGS].carriers)
    good, bad = parse_recipients(raw, request.app[PREFIXES], carriers)
    reject_bad_recipients(bad)
    plan = SendPlan(
        wallet_id=body.walletId,
        message=message,
        segmentation=count_segments(message),
        recipients=good,
        priority=body.priority,
        group_id=None,
        list_messages=True,
    )
    return await admit_and_reply(request, principal, payload, plan)


@routes.post("/api/v1/sms/group")
@operation(
    "Send an SMS to every contact of a group",
    request=GroupSendRequest,
    responses={202: SendResponse},
    errors=(401, 402, 403, 404, 409, 422, 429, 500, 502),
)
async def send_to_group(request: web.Request) -> web.Response:
    principal = request["principal"]
    payload = await read_json(request)
    body = validate(GroupSendRequest, payload)
    await request.app[AUTH].authorize_wallet(principal, body.walletId)
    message = _message(body.message)
    async with session_scope(request.app[SESSIONS]) as session:
        owner = await session.scalar(
            text("SELECT wallet_id FROM groups WHERE id = :g"), {"g": body.groupId}
        )
        if owner is None:
            raise NotFound(f"Group {body.groupId} not found.")
        if owner != body.walletId:
            raise WalletForbidden("This group belongs to another wallet.")
        phones = (
            await session.scalars(
                text("SELECT phone FROM contacts WHERE group_id = :g ORDER BY id"),
                {"g": body.groupId},
            )
        ).all()
    if not phones:
        raise ValidationFailed(
            "The group has no contacts.", details=[{"field": "groupId", "message": "empty group"}]
        )
    recipients = _routable_contacts(request, list(phones))
    settings = request.app[SETTINGS]
    plan = SendPlan(
        wallet_id=body.walletId,
        message=message,
        segmentation=count_segments(message),
        recipients=recipients,
        priority=body.priority,
        group_id=body.groupId,
        list_messages=len(recipients) <= settings.group_messages_listed_max,
    )
    return await admit_and_reply(request, principal, payload, plan)


def _routable_contacts(request: web.Request, phones: list[str]) -> list[Recipient]:
    """Contacts are stored normalised; routes are decided now, by today's prefix table."""
    carriers = frozenset(request.app[SETTINGS].carriers)
    good, bad = parse_recipients(phones, request.app[PREFIXES], carriers)
    reject_bad_recipients(bad)
    return good


@routes.get("/api/v1/sms/batches/{batchId}")
@operation(
    "Follow a batch (campaign) through delivery",
    query=WalletQuery,
    responses={200: BatchResponse},
    errors=(401, 403, 404, 422, 429),
)
async def batch(request: web.Request) -> web.Response:
    params = query(request, WalletQuery)
    await request.app[AUTH].authorize_wallet(request["principal"], params.walletId)
    batch_id = request.match_info["batchId"]
    async with session_scope(request.app[SESSIONS]) as session:
        row = (
            await session.execute(
                text(
                    "SELECT id, recipients, units, cost, created_at FROM batches"
                    " WHERE id = :b AND wallet_id = :w"
                ),
                {"b": batch_id, "w": params.walletId},
            )
        ).one_or_none()
        if row is None:
            raise NotFound(f"Batch {batch_id} not found.")
        counts: dict[str, int] = dict(
            (
                await session.execute(
                    text(
                        "SELECT status, count(*) FROM messages WHERE batch_id = :b GROUP BY status"
                    ),
                    {"b": batch_id},
                )
            ).all()
        )
    statuses = ("queued", "sent", "delivered", "undelivered", "failed", "expired")
    return json_response(
        {
            "batchId": row.id,
            "recipients": row.recipients,
            "units": row.units,
            "cost": row.cost,
            "createdAt": row.created_at.isoformat(),
            "counts": {s: counts.get(s, 0) for s in statuses},
        }
    )


@routes.get("/api/v1/sms/history")
@operation(
    "List sent messages, newest first",
    query=HistoryQuery,
    responses={200: HistoryResponse},
    errors=(401, 403, 422, 429),
)
async def history(request: web.Request) -> web.Response:
    params = query(request, HistoryQuery)
    await request.app[AUTH].authorize_wallet(request["principal"], params.walletId)
    where = ["m.wallet_id = :w"]
    binds: dict[str, Any] = {"w": params.walletId}
    if params.status:
        where.append("m.status = :status")
        binds["status"] = params.status
    if params.recipient:
        found = normalise(
            params.recipient, request.app[PREFIXES], frozenset(request.app[SETTINGS].carriers)
        )
        if not isinstance(found, Recipient):
            raise ValidationFailed(
                "The recipient filter is not a valid Ugandan mobile number.",
                details=[{"field": "recipient", "reason": found.reason, "message": found.message}],
            )
        where.append("m.recipient = :recipient")
        binds["recipient"] = found.e164
    if params.batchId:
        where.append("m.batch_id = :batch")
        binds["batch"] = params.batchId
    if params.from_:
        where.append("m.created_at >= :from_")
        binds["from_"] = params.from_
    if params.to:
        where.append("m.created_at < :to")
        binds["to"] = params.to
    clause = " AND ".join(where)
    binds["limit"] = params.per_page
    binds["offset"] = (params.page - 1) * params.per_page
    async with session_scope(request.app[SESSIONS]) as session:
        total = await session.scalar(text(f"SELECT count(*) FROM messages m WHERE {clause}"), binds)
        rows = (
            await session.execute(
                text(
                    "SELECT m.id, m.batch_id, m.recipient, b.message, m.status, m.units, m.cost,"
                    " m.error_code, m.created_at, m.updated_at"
                    " FROM messages m JOIN batches b ON b.id = m.batch_id"
                    f" WHERE {clause} ORDER BY m.created_at DESC, m.id DESC"
                    " LIMIT :limit OFFSET :offset"
                ),
                binds,
            )
        ).all()
    data = [
        {
            "id": r.id,
            "batchId": r.batch_id,
            "recipient": r.recipient,
            "message": r.message,
            "status": r.status,
            "units": r.units,
            "cost": r.cost,
            "errorCode": r.error_code,
            "createdAt": r.created_at.isoformat(),
            "updatedAt": r.updated_at.isoformat(),
        }
        for r in rows
    ]
    return json_response(
        {"data": data, "page": params.page, "per_page": params.per_page, "total": total}
    )
