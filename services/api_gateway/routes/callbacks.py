"""Mobile Money provider callbacks. Providers call these, not customers: no Basic Auth.

A callback is only a hint. The gateway checks that it is about a deposit of ours (MTN:
the HMAC token in the path, since MTN signs nothing; Airtel: the body's hash when
authenticated callbacks are on) and asks billing to look the deposit up with the
provider. Billing credits only what the provider's status endpoint confirms, so a forged
or replayed callback can at most cause one more status request.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from sqlalchemy import text

from libs.common.db import session_scope
from libs.common.errors import InvalidSignature, NotFound, ValidationFailed
from libs.common.logging import get_logger
from libs.common.mobile_money import airtel_callback_hash_valid, callback_token_valid
from services.api_gateway.context import SESSIONS, SETTINGS, TOPUPS
from services.api_gateway.web import json_response

log = get_logger(__name__)
routes = web.RouteTableDef()
# Provider callbacks are small; anything larger is not one.
MAX_CALLBACK_BODY = 64 * 1024


async def _json_body(request: web.Request) -> Any:
    if request.content_length is not None and request.content_length > MAX_CALLBACK_BODY:
        raise ValidationFailed("The callback body is too large.")
    raw = await request.content.read(MAX_CALLBACK_BODY + 1)
    if len(raw) > MAX_CALLBACK_BODY:
        raise ValidationFailed("The callback body is too large.")
    # Logged as received: providers' payloads drift from their documentation.
    log.info("callback.received", path=request.path, body=raw[:2000].decode(errors="replace"))
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ValidationFailed("The callback body is not JSON.") from error


async def _deposit_id(request: web.Request, column: str, value: str, provider: str) -> str:
    async with session_scope(request.app[SESSIONS]) as session:
        row = (
            await session.execute(
                text(f"SELECT id, status FROM deposits WHERE provider = :p AND {column} = :v"),
                {"p": provider, "v": value},
            )
        ).one_or_none()
    if row is None:
        raise NotFound("No such deposit.")
    return str(row.id)


async def _check(request: web.Request, deposit_id: str, provider: str) -> web.Response:
    await request.app[TOPUPS].request_check(deposit_id, provider)
    log.info("callback.accepted", deposit_id=deposit_id, provider=provider)
    return json_response({"received": True})


async def mtn(request: web.Request) -> web.Response:
    deposit_id, token = request.match_info["depositId"], request.match_info["token"]
    secret = request.app[SETTINGS].mobile_money.callback_secret
    if not callback_token_valid(secret, deposit_id, token):
        log.warning("callback.bad_token", provider="mtn", deposit_id=deposit_id[:64])
        raise NotFound("No such deposit.")
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise ValidationFailed("The callback body is not a JSON object.")
    found = await _deposit_id(request, "id", deposit_id, "mtn")
    return await _check(request, found, "mtn")


@routes.post("/callbacks/airtel")
async def airtel(request: web.Request) -> web.Response:
    body = await _json_body(request)
    transaction = body.get("transaction") if isinstance(body, dict) else None
    if not isinstance(transaction, dict) or not isinstance(transaction.get("id"), str):
        raise ValidationFailed("The callback has no transaction id.")
    settings = request.app[SETTINGS].mobile_money.airtel
    given = body.get("hash")
    if settings.callback_hash_required and not (
        isinstance(given, str)
        and airtel_callback_hash_valid(settings.client_secret, transaction, given)
    ):
        log.warning("callback.bad_hash", provider="airtel", reference=transaction["id"][:64])
        raise InvalidSignature()
    found = await _deposit_id(request, "provider_reference", transaction["id"], "airtel")
    return await _check(request, found, "airtel")


# MTN sends its callback by PUT or by POST, depending on the product and environment.
routes.put("/callbacks/mtn/{depositId}/{token}")(mtn)
routes.post("/callbacks/mtn/{depositId}/{token}")(mtn)
