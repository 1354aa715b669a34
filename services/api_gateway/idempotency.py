"""`Idempotency-Key` on POSTs, scoped to the API key (IETF httpapi idempotency-key draft).

Same key and body within the TTL: the first response again, nothing charged twice.
Still running: 409. Different body: 422. A 5xx leaves the key retryable, and the retry
reuses the first attempt's batch id so its admission can answer it instead of charging again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import orjson
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.db import session_scope
from libs.common.errors import (
    DomainError,
    IdempotencyConflict,
    IdempotencyMismatch,
    InternalError,
    ValidationFailed,
)
from services.api_gateway.context import SESSIONS, SETTINGS
from services.api_gateway.web import error_response, raw_json_response

HEADER = "Idempotency-Key"
_KEY = re.compile(r'^"?([\x21\x23-\x7e]{1,255})"?$')


@dataclass(frozen=True, slots=True)
class Replay:
    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Proceed:
    resource_id: str


def parse_key(header: str | None) -> str | None:
    """The key from the header (a bare or quoted string), None when absent."""
    if header is None:
        return None
    match = _KEY.match(header.strip())
    if match is None:
        raise ValidationFailed(
            "Idempotency-Key must be 1 to 255 printable ASCII characters",
            details=[{"field": HEADER, "message": "invalid format"}],
        )
    return match.group(1)


def request_hash(method: str, path: str, payload: object) -> str:
    """A fingerprint of what was asked: method, path and the body with keys sorted."""
    canonical = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


async def begin(
    session: AsyncSession,
    *,
    api_key_id: str,
    key: str,
    method: str,
    path: str,
    fingerprint: str,
    resource_id: str,
    ttl: timedelta,
    stale_after: timedelta,
) -> Replay | Proceed:
    """Claim the key for this request, or say what the first request's outcome was."""
    params = {
        "api_key_id": api_key_id,
        "key": key,
        "method": method,
        "path": path,
        "hash": fingerprint,
        "rid": resource_id,
    }
    inserted = await session.scalar(
        text(
            "INSERT INTO idempotency_keys"
            " (api_key_id, key, method, path, request_hash, state, resource_id)"
            " VALUES (:api_key_id, :key, :method, :path, :hash, 'in_flight', :rid)"
            " ON CONFLICT (api_key_id, key) DO NOTHING RETURNING resource_id"
        ),
        params,
    )
    if inserted is not None:
        return Proceed(inserted)
    row = (
        await session.execute(
            text(
                "SELECT request_hash, state, resource_id, status_code, response_body,"
                " created_at < now() - CAST(:ttl AS interval) AS expired,"
                " updated_at < now() - CAST(:stale AS interval) AS stale"
                " FROM idempotency_keys WHERE api_key_id = :api_key_id AND key = :key FOR UPDATE"
            ),
            {**params, "ttl": ttl, "stale": stale_after},
        )
    ).one()
    if row.expired:
        # Past its lifetime the key is free again: a new request with a new resource.
        await session.execute(
            text(
                "UPDATE idempotency_keys SET method = :method, path = :path, request_hash = :hash,"
                " state = 'in_flight', resource_id = :rid, status_code = NULL,"
                " response_body = NULL, created_at = now(), updated_at = now(), completed_at = NULL"
                " WHERE api_key_id = :api_key_id AND key = :key"
            ),
            params,
        )
        return Proceed(resource_id)
    if row.request_hash != fingerprint:
        raise IdempotencyMismatch()
    if row.state == "completed":
        return Replay(row.status_code, row.response_body)
    if row.state == "in_flight" and not row.stale:
        raise IdempotencyConflict()
    await session.execute(
        text(
            "UPDATE idempotency_keys SET state = 'in_flight', updated_at = now()"
            " WHERE api_key_id = :api_key_id AND key = :key"
        ),
        params,
    )
    return Proceed(row.resource_id)


async def finish(
    session: AsyncSession, *, api_key_id: str, key: str, status: int, body: bytes
) -> None:
    """Keep a final response for replay, or free the key for a retry after a 5xx."""
    if status >= 500:
        await session.execute(
            text(
                "UPDATE idempotency_keys SET state = 'failed', updated_at = now()"
                " WHERE api_key_id = :api_key_id AND key = :key"
            ),
            {"api_key_id": api_key_id, "key": key},
        )
        return
    await session.execute(
        text(
            "UPDATE idempotency_keys SET state = 'completed', status_code = :status,"
            " response_body = :body, completed_at = now()"
            " WHERE api_key_id = :api_key_id AND key = :key"
        ),
        {"api_key_id": api_key_id, "key": key, "status": status, "body": body},
    )


Produce = Callable[[str], Awaitable[web.Response]]


async def idempotently(
    request: web.Request, payload: object, resource_id: str, produce: Produce
) -> web.Response:
    """Run a POST once per Idempotency-Key (when given): replay, refuse, or produce and keep.

    `produce` receives the resource id to create: a fresh one, or on a retry after an
    unknown outcome, the one the first attempt used.
    """
    key = parse_key(request.headers.get(HEADER))
    if key is None:
        return await produce(resource_id)
    principal, app = request["principal"], request.app
    settings = app[SETTINGS]
    async with session_scope(app[SESSIONS]) as session:
        outcome = await begin(
            session,
            api_key_id=principal.key_id,
            key=key,
            method=request.method,
            path=request.path,
            fingerprint=request_hash(request.method, request.path, payload),
            resource_id=resource_id,
            ttl=settings.idempotency_ttl,
            stale_after=settings.idempotency_stale_after,
        )
    if isinstance(outcome, Replay):
        return raw_json_response(outcome.body, outcome.status, {"Idempotent-Replayed": "true"})
    response = error_response(InternalError())
    try:
        response = await produce(outcome.resource_id)
    except DomainError as error:
        response = error_response(error)
    finally:
        async with session_scope(app[SESSIONS]) as session:
            await finish(
                session,
                api_key_id=principal.key_id,
                key=key,
                status=response.status,
                body=bytes(response.body or b""),  # type: ignore[arg-type]
            )
    return response
