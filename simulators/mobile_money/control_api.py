"""Control endpoints under `/_sim/` for tests: payer behaviour, faults, what happened."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from simulators.mobile_money.http_common import json_reply, platform_of, read_json_object
from simulators.mobile_money.logs import log
from simulators.mobile_money.sandbox import Behaviour, e164, national_number
from simulators.mobile_money.state import PROVIDERS

DEFAULT_LIMIT = 1000


def _validation_error(message: str, field: str) -> web.Response:
    return json_reply(
        {"error": {"code": "validation_failed", "message": message, "details": {"field": field}}},
        status=422,
    )


def _national(text: str) -> str | None:
    # A '+' left unescaped in a query string arrives as a space; strip() takes it.
    national = national_number(text.strip())
    return national if national.isdigit() else None


async def put_payer(request: web.Request) -> web.Response:
    """`PUT /_sim/payers/{msisdn}` `{"behaviour"}`: how this payer answers from now on."""
    national = _national(request.match_info["msisdn"])
    if national is None:
        return _validation_error("msisdn must be a phone number", "msisdn")
    body = await read_json_object(request)
    try:
        behaviour = Behaviour(str((body or {}).get("behaviour")))
    except ValueError:
        choices = ", ".join(b.value for b in Behaviour)
        return _validation_error(f"behaviour must be one of {choices}", "behaviour")
    platform_of(request).set_behaviour(national, behaviour)
    log.info("payer.configured", msisdn=e164(national), behaviour=str(behaviour))
    return json_reply({"msisdn": e164(national), "behaviour": str(behaviour)})


async def delete_payer(request: web.Request) -> web.Response:
    """`DELETE /_sim/payers/{msisdn}`: back to the sandbox behaviour."""
    national = _national(request.match_info["msisdn"])
    if national is None:
        return _validation_error("msisdn must be a phone number", "msisdn")
    platform = platform_of(request)
    platform.reset_behaviour(national)
    return json_reply(
        {"msisdn": e164(national), "behaviour": str(platform.behaviour_for(national))}
    )


async def get_payers(request: web.Request) -> web.Response:
    """`GET /_sim/payers`: the payers whose behaviour was set."""
    return json_reply({"data": platform_of(request).overrides()})


async def get_config(request: web.Request) -> web.Response:
    """`GET /_sim/config`: the current knobs."""
    return json_reply(platform_of(request).config.as_json())


async def post_config(request: web.Request) -> web.Response:
    """`POST /_sim/config` with any subset of the knobs."""
    platform = platform_of(request)
    changes = await read_json_object(request)
    if changes is None:
        return _validation_error("body must be a JSON object", "body")
    try:
        platform.config.update(changes)
    except ValueError as exc:
        return _validation_error(str(exc), "body")
    log.info("config.changed", **platform.config.as_json())
    return json_reply(platform.config.as_json())


def _same_reference(provider: str, stored: str, wanted: str) -> bool:
    # MTN references are UUIDs, stored lowercased; Airtel ids are the merchant's own.
    return stored == (wanted.lower() if provider == "mtn" else wanted)


def _limit(request: web.Request) -> int | web.Response:
    try:
        limit = int(request.query.get("limit", DEFAULT_LIMIT))
    except ValueError:
        return _validation_error("limit must be an integer", "limit")
    if limit < 0:
        return _validation_error("limit must be >= 0", "limit")
    return limit


async def get_requests(request: web.Request) -> web.Response:
    """`GET /_sim/requests?provider=&msisdn=&reference=&limit=`: newest `limit`, oldest first."""
    limit = _limit(request)
    if isinstance(limit, web.Response):
        return limit
    provider = request.query.get("provider", "").strip() or None
    if provider is not None and provider not in PROVIDERS:
        return _validation_error("provider must be mtn or airtel", "provider")
    msisdn = request.query.get("msisdn", "").strip()
    national = _national(msisdn) if msisdn else None
    if msisdn and national is None:
        return _validation_error("msisdn must be a phone number", "msisdn")
    reference = request.query.get("reference", "").strip()
    found = [
        r.as_json()
        for r in platform_of(request).find(provider, None if national is None else e164(national))
        if not reference or _same_reference(r.provider, r.reference, reference)
    ]
    return json_reply({"data": found[-limit:] if limit else []})


async def get_callbacks(request: web.Request) -> web.Response:
    """`GET /_sim/callbacks?provider=&reference=`: every delivery attempt, oldest first."""
    provider = request.query.get("provider", "").strip()
    reference = request.query.get("reference", "").strip()
    attempts: list[dict[str, Any]] = [
        attempt.as_json()
        for attempt in platform_of(request).callbacks.attempts
        if (not provider or attempt.provider == provider)
        and (not reference or _same_reference(attempt.provider, attempt.reference, reference))
    ]
    return json_reply({"data": attempts})


async def post_reset(request: web.Request) -> web.Response:
    """`POST /_sim/reset`: forget requests, callbacks, payer overrides and changed knobs."""
    cleared = platform_of(request).reset()
    log.info("simulator.reset", **cleared)
    return json_reply(cleared)


async def healthz(request: web.Request) -> web.Response:
    """`GET /healthz`: 200 while serving."""
    return json_reply({"status": "ok"})


def add_routes(app: web.Application) -> None:
    """Register the control routes."""
    app.router.add_put("/_sim/payers/{msisdn}", put_payer)
    app.router.add_delete("/_sim/payers/{msisdn}", delete_payer)
    app.router.add_get("/_sim/payers", get_payers)
    app.router.add_get("/_sim/config", get_config)
    app.router.add_post("/_sim/config", post_config)
    app.router.add_get("/_sim/requests", get_requests)
    app.router.add_get("/_sim/callbacks", get_callbacks)
    app.router.add_post("/_sim/reset", post_reset)
    app.router.add_get("/healthz", healthz)
