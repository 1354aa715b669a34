"""/api/v1/groups: contact groups and their contacts, scoped to a wallet."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text

from libs.common import ids
from libs.common.db import session_scope
from libs.common.errors import NotFound, ValidationFailed, WalletForbidden
from libs.common.phones import Recipient, normalise
from services.api_gateway.context import AUTH, PREFIXES, SESSIONS, SETTINGS
from services.api_gateway.idempotency import idempotently
from services.api_gateway.openapi import operation
from services.api_gateway.schemas import (
    ContactsAdd,
    ContactsAdded,
    GroupCreate,
    GroupList,
    GroupOut,
    WalletQuery,
)
from services.api_gateway.web import json_response, query, read_json, validate

routes = web.RouteTableDef()


@routes.get("/api/v1/groups")
@operation(
    "List a wallet's contact groups",
    query=WalletQuery,
    responses={200: GroupList},
    errors=(401, 403, 422, 429),
)
async def list_groups(request: web.Request) -> web.Response:
    params = query(request, WalletQuery)
    await request.app[AUTH].authorize_wallet(request["principal"], params.walletId)
    async with session_scope(request.app[SESSIONS]) as session:
        rows = (
            await session.execute(
                text(
                    "SELECT g.id, g.title, g.description, g.created_at,"
                    " (SELECT count(*) FROM contacts c WHERE c.group_id = g.id) AS contact_count"
                    " FROM groups g WHERE g.wallet_id = :w ORDER BY g.created_at DESC, g.id DESC"
                ),
                {"w": params.walletId},
            )
        ).all()
    return json_response(
        {
            "data": [
                {
                    "id": r.id,
                    "title": r.title,
                    "description": r.description,
                    "contactCount": r.contact_count,
                    "createdAt": r.created_at.isoformat(),
                }
                for r in rows
            ]
        }
    )


@routes.post("/api/v1/groups")
@operation(
    "Create a contact group",
    request=GroupCreate,
    responses={201: GroupOut},
    errors=(401, 403, 422, 429),
)
async def create_group(request: web.Request) -> web.Response:
    payload = await read_json(request)
    body = validate(GroupCreate, payload)
    await request.app[AUTH].authorize_wallet(request["principal"], body.walletId)
    title = body.title.strip()
    if not title:
        raise ValidationFailed(
            "The title is blank.", details=[{"field": "title", "message": "blank"}]
        )

    async def create(group_id: str) -> web.Response:
        async with session_scope(request.app[SESSIONS]) as session:
            created_at = await session.scalar(
                text(
                    "INSERT INTO groups (id, wallet_id, title, description)"
                    " VALUES (:id, :w, :title, :description)"
                    " ON CONFLICT (id) DO UPDATE SET title = groups.title RETURNING created_at"
                ),
                {
                    "id": group_id,
                    "w": body.walletId,
                    "title": title,
                    "description": body.description,
                },
            )
        return json_response(
            {
                "id": group_id,
                "title": title,
                "description": body.description,
                "contactCount": 0,
                "createdAt": created_at.isoformat(),
            },
            status=201,
        )

    return await idempotently(request, payload, ids.group_id(), create)


@routes.post("/api/v1/groups/{groupId}/contacts")
@operation(
    "Add contacts to a group; duplicates are skipped",
    request=ContactsAdd,
    responses={200: ContactsAdded},
    errors=(401, 403, 404, 422, 429),
)
async def add_contacts(request: web.Request) -> web.Response:
    payload = await read_json(request)
    body = validate(ContactsAdd, payload)
    await request.app[AUTH].authorize_wallet(request["principal"], body.walletId)
    group_id = request.match_info["groupId"]
    table, carriers = request.app[PREFIXES], frozenset(request.app[SETTINGS].carriers)
    phones, names, bad = [], [], []
    for index, contact in enumerate(body.contacts):
        found = normalise(contact.phone, table, carriers)
        if isinstance(found, Recipient):
            phones.append(found.e164)
            names.append(contact.name)
        else:
            bad.append(
                {
                    "field": f"contacts.{index}.phone",
                    "recipient": contact.phone,
                    "reason": found.reason,
                    "message": found.message,
                }
            )
    if bad:
        raise ValidationFailed(f"{len(bad)} contact(s) have unusable numbers.", details=bad)

    async def add(_: str) -> web.Response:
        return await _insert_contacts(request, group_id, body, phones, names)

    return await idempotently(request, payload, group_id, add)


async def _insert_contacts(
    request: web.Request,
    group_id: str,
    body: ContactsAdd,
    phones: list[str],
    names: list[str | None],
) -> web.Response:
    async with session_scope(request.app[SESSIONS]) as session:
        owner = await session.scalar(
            text("SELECT wallet_id FROM groups WHERE id = :g FOR UPDATE"), {"g": group_id}
        )
        if owner is None:
            raise NotFound(f"Group {group_id} not found.")
        if owner != body.walletId:
            raise WalletForbidden("This group belongs to another wallet.")
        added = await session.scalar(
            text(
                "WITH new AS (INSERT INTO contacts (group_id, phone, name)"
                " SELECT :g, p, n FROM unnest(CAST(:phones AS text[]), CAST(:names AS text[]))"
                " AS t(p, n) ON CONFLICT (group_id, phone) DO NOTHING RETURNING 1)"
                " SELECT count(*) FROM new"
            ),
            {"g": group_id, "phones": phones, "names": names},
        )
        count = await session.scalar(
            text("SELECT count(*) FROM contacts WHERE group_id = :g"), {"g": group_id}
        )
    return json_response(
        {"added": added, "skipped": len(body.contacts) - added, "contactCount": count}
    )
