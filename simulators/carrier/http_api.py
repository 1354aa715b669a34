"""Inspection HTTP API: what the carrier received, its counters, and run-time knobs.

`GET /messages` follows the API contract's "Sandbox numbers" section; the rest is for
tests and benchmarks.
"""

from __future__ import annotations

from typing import Any

import orjson
import structlog
from aiohttp import web

from simulators.carrier.sandbox import normalise_msisdn
from simulators.carrier.smsc import CarrierSmsc

log = structlog.get_logger("simulators.carrier")

SMSC_KEY = web.AppKey("smsc", CarrierSmsc)
DEFAULT_LIMIT = 1000


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _validation_error(message: str, field: str) -> web.Response:
    return _json(
        {"error": {"code": "validation_failed", "message": message, "details": {"field": field}}},
        status=422,
    )


async def get_messages(request: web.Request) -> web.Response:
    """`GET /messages?recipient=&limit=`: complete messages, newest last."""
    smsc = request.app[SMSC_KEY]
    try:
        limit = int(request.query.get("limit", DEFAULT_LIMIT))
    except ValueError:
        return _validation_error("limit must be an integer", "limit")
    if limit < 0:
        return _validation_error("limit must be >= 0", "limit")
    recipient = request.query.get("recipient", "").strip()
    if recipient:
        # A '+' left unescaped in the query string arrives as a space; strip() took it.
        messages = smsc.store.for_recipient(normalise_msisdn(recipient), limit)
    else:
        messages = smsc.store.newest(limit)
    return _json({"data": [message.as_json() for message in messages]})


async def delete_messages(request: web.Request) -> web.Response:
    """`DELETE /messages`: forget messages and counters between test or benchmark runs."""
    deleted = request.app[SMSC_KEY].reset()
    log.info("messages.cleared", deleted=deleted)
    return _json({"deleted": deleted})


async def get_stats(request: web.Request) -> web.Response:
    """`GET /stats`: binds per carrier, traffic counters, duplicates."""
    return _json(request.app[SMSC_KEY].stats())


async def get_config(request: web.Request) -> web.Response:
    """`GET /config`: the current run-time knobs."""
    return _json(request.app[SMSC_KEY].config.as_json())


async def post_config(request: web.Request) -> web.Response:
    """`POST /config` `{"receipt_delay", "submit_delay", "paused"}` (any subset)."""
    smsc = request.app[SMSC_KEY]
    try:
        changes = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return _validation_error("body must be a JSON object", "body")
    if not isinstance(changes, dict):
        return _validation_error("body must be a JSON object", "body")
    try:
        smsc.reconfigure(changes)
    except ValueError as exc:
        return _validation_error(str(exc), "body")
    log.info("config.changed", **smsc.config.as_json())
    return _json(smsc.config.as_json())


async def healthz(request: web.Request) -> web.Response:
    """`GET /healthz`: 200 once the SMPP port is listening."""
    if request.app[SMSC_KEY].listening:
        return _json({"status": "ok"})
    return _json({"status": "starting"}, status=503)


def create_app(smsc: CarrierSmsc) -> web.Application:
    """The inspection application, reading and steering `smsc`."""
    app = web.Application()
    app[SMSC_KEY] = smsc
    app.router.add_get("/messages", get_messages)
    app.router.add_delete("/messages", delete_messages)
    app.router.add_get("/stats", get_stats)
    app.router.add_get("/config", get_config)
    app.router.add_post("/config", post_config)
    app.router.add_get("/healthz", healthz)
    return app
