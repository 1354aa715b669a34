"""Middlewares: request id, authentication and rate limits, and one error renderer."""

from __future__ import annotations

import re
import time

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler
from sqlalchemy.exc import DBAPIError

from libs.common.errors import DomainError, InternalError, NotFound, ValidationFailed
from libs.common.ids import ulid
from libs.common.logging import get_logger
from services.api_gateway.context import AUTH, LIMITER
from services.api_gateway.web import error_response

log = get_logger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")
REQUEST_ID_HEADER = "X-Request-Id"
# Paths anyone may read without credentials.
PUBLIC_PATHS = frozenset({"/healthz", "/api/v1/openapi.json"})


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind a request id (the caller's, if well formed) that follows the request everywhere."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = incoming if _REQUEST_ID.match(incoming) else f"req_{ulid()}"
    request["request_id"] = request_id
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.perf_counter()
    response = await handler(request)
    response.headers[REQUEST_ID_HEADER] = request_id
    log.info(
        "http.request",
        method=request.method,
        path=request.path,
        status=response.status,
        ms=round((time.perf_counter() - started) * 1000, 2),
    )
    return response


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render every failure in the contract's error shape; expected outcomes are never 500s."""
    try:
        try:
            return await handler(request)
        except DBAPIError as error:
            # A pooled connection the database dropped (a restart, a failover): the pool is
            # discarded on the spot, and a read is safe to run again on a fresh connection.
            if not (error.connection_invalidated and request.method in ("GET", "HEAD")):
                raise
            log.warning("http.read_retried", path=request.path, error=type(error).__name__)
            return await handler(request)
    except DomainError as error:
        return error_response(error)
    except web.HTTPNotFound:
        return error_response(NotFound(f"No route for {request.method} {request.path}."))
    except web.HTTPMethodNotAllowed as error:
        return error_response(
            ValidationFailed(
                f"{request.method} is not allowed here.",
                details=[
                    {"field": "method", "message": f"allowed: {sorted(error.allowed_methods)}"}
                ],
            )
        )
    except web.HTTPRequestEntityTooLarge:
        return error_response(
            ValidationFailed(
                "The body is too large.", details=[{"field": "body", "message": "too large"}]
            )
        )
    except web.HTTPException:
        raise
    except Exception:
        log.exception("http.unhandled", method=request.method, path=request.path)
        return error_response(InternalError())


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every API path needs a valid key within its rate; the principal rides on the request."""
    if request.path in PUBLIC_PATHS or not request.path.startswith("/api/"):
        return await handler(request)
    principal = await request.app[AUTH].authenticate(request.headers.get("Authorization"))
    request.app[LIMITER].check(principal.key_id, principal.rate_limit)
    request["principal"] = principal
    structlog.contextvars.bind_contextvars(key_id=principal.key_id)
    return await handler(request)
