"""What every route shares: the platform key, JSON replies, latency and lost-response faults."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from simulators.mobile_money.logs import log
from simulators.mobile_money.platform import WalletPlatform

PLATFORM_KEY = web.AppKey("platform", WalletPlatform)
# Paths that are the simulator's own, never slowed down or broken on purpose.
OWN_PATHS = ("/_sim/", "/healthz")


def json_reply(body: Any, status: int = 200) -> web.Response:
    """A JSON response."""
    return web.json_response(body, status=status)


def mtn_error(status: int, code: str, message: str) -> web.Response:
    """MTN's error shape, `{"code", "message"}`."""
    return json_reply({"code": code, "message": message}, status=status)


async def read_json_object(request: web.Request) -> dict[str, Any] | None:
    """The request body as a JSON object, or None if it is not one."""
    try:
        body = json.loads(await request.read() or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def platform_of(request: web.Request) -> WalletPlatform:
    """The wallet platform behind this application."""
    return request.app[PLATFORM_KEY]


def lost_response(request: web.Request, unavailable: web.Response) -> web.Response:
    """Hide an accepted request from its caller: a 503, or a dropped connection."""
    if platform_of(request).config.accept_then_fail_mode == "disconnect":
        transport = request.transport
        if transport is not None:
            transport.abort()
        # The connection is gone; raising stops aiohttp from writing anything more.
        raise web.HTTPServiceUnavailable()
    return unavailable


@web.middleware
async def provider_behaviour(request: web.Request, handler: Any) -> web.StreamResponse:
    """Apply `response_delay` to provider paths, and answer unexpected errors with a 500."""
    if not request.path.startswith(OWN_PATHS):
        delay = platform_of(request).config.response_delay
        if delay > 0:
            await asyncio.sleep(delay)
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException:
        raise
    except Exception:  # noqa: BLE001 — answered in the provider's shape, and logged
        log.exception("request.crashed", method=request.method, path=request.path)
        return json_reply({"code": "INTERNAL_PROCESSING_ERROR", "message": "Simulator error"}, 500)
    return response
