"""/api/v1/openapi.json: the API described by the models that validate it."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.api_gateway.context import CACHES, SETTINGS
from services.api_gateway.openapi import build_spec, operation
from services.api_gateway.web import json_response

routes = web.RouteTableDef()


@routes.get("/api/v1/openapi.json")
@operation("This document", responses={200: None}, public=True)
async def openapi(request: web.Request) -> web.Response:
    caches = request.app[CACHES]
    spec: dict[str, Any] | None = caches.get("openapi")
    if spec is None:
        spec = caches["openapi"] = build_spec(request.app, request.app[SETTINGS].public_url)
    return json_response(spec)
