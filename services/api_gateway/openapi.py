"""OpenAPI 3.1 document built from the routes and the pydantic models that validate them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from services.api_gateway.schemas import ErrorResponse

F = TypeVar("F", bound=Callable[..., Any])
REF = "#/components/schemas/{model}"

ERROR_CODES: dict[int, tuple[str, str]] = {
    401: (
        "invalid_credentials | key_revoked",
        "Missing, malformed, unknown or revoked credentials.",
    ),
    402: ("insufficient_balance", "The wallet cannot pay for the whole request; nothing was sent."),
    403: ("wallet_forbidden", "The wallet (or group) is not the key owner's."),
    404: ("not_found", "Unknown group, batch or route."),
    409: ("idempotency_conflict", "A request with this Idempotency-Key is still in flight."),
    422: (
        "validation_failed | idempotency_mismatch",
        "Invalid body or query (details name each field or recipient), or a reused key.",
    ),
    429: ("rate_limited", "Over the key's request rate; see Retry-After."),
    500: ("internal_error", "Transient fault; retry once with backoff and an Idempotency-Key."),
    502: ("send_failed", "The send could not be queued; the wallet was not charged."),
}


@dataclass(frozen=True)
class Operation:
    summary: str
    request: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    responses: dict[int, type[BaseModel] | None] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    public: bool = False


def operation(
    summary: str,
    *,
    request: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    responses: dict[int, type[BaseModel] | None] | None = None,
    errors: Iterable[int] = (),
    public: bool = False,
) -> Callable[[F], F]:
    """Attach what the OpenAPI document says about a handler."""

    def mark(handler: F) -> F:
        handler.__openapi__ = Operation(  # type: ignore[attr-defined]
            summary, request, query, responses or {}, tuple(errors), public
        )
        return handler

    return mark


def build_spec(app: web.Application, server_url: str) -> dict[str, Any]:
    """The document for every route that carries an `operation`."""
    operations: list[tuple[str, str, Operation]] = []
    for route in app.router.routes():
        op = getattr(route.handler, "__openapi__", None)
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if op is not None and path:
            operations.append((route.method.lower(), path, op))
    inputs = {op.request for _, _, op in operations if op.request is not None}
    outputs = {m for _, _, op in operations for m in op.responses.values() if m is not None}
    outputs.add(ErrorResponse)
    _, definitions = models_json_schema(
        [(m, "validation") for m in sorted(inputs, key=_name)]
        + [(m, "serialization") for m in sorted(outputs - inputs, key=_name)],
        ref_template=REF,
    )
    paths: dict[str, dict[str, Any]] = {}
    for method, path, op in operations:
        paths.setdefault(path, {})[method] = _operation(path, op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Wesendall API",
            "version": "1.0.0",
            "description": "Send SMS over MTN Uganda and Airtel Uganda, paid from a UGX wallet. "
            "Authenticate with HTTP Basic: the API key as user name, the secret as password.",
        },
        "servers": [{"url": server_url}],
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {"basicAuth": {"type": "http", "scheme": "basic"}},
        },
        "security": [{"basicAuth": []}],
        "paths": paths,
    }


def _name(model: type[BaseModel]) -> str:
    return model.__name__


def _operation(path: str, op: Operation) -> dict[str, Any]:
    doc: dict[str, Any] = {"summary": op.summary, "parameters": _parameters(path, op)}
    if op.public:
        doc["security"] = []
    if op.request is not None:
        doc["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": REF.format(model=op.request.__name__)}}
            },
        }
        doc["parameters"].append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Retry safely: the same key and body within 24 h returns the "
                "first response and charges nothing more.",
                "schema": {"type": "string", "maxLength": 255},
            }
        )
    responses: dict[str, Any] = {}
    for status, model in op.responses.items():
        entry: dict[str, Any] = {"description": "OK" if status < 300 else ""}
        if model is not None:
            entry["content"] = {
                "application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}
            }
        responses[str(status)] = entry
    for status in op.errors:
        code, description = ERROR_CODES[status]
        responses[str(status)] = {
            "description": f"`{code}`: {description}",
            "content": {
                "application/json": {"schema": {"$ref": REF.format(model="ErrorResponse")}}
            },
        }
    doc["responses"] = responses
    return doc


def _parameters(path: str, op: Operation) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _path_names(path)
    ]
    if op.query is not None:
        schema = op.query.model_json_schema(by_alias=True)
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            params.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in required,
                    "description": prop.get("description", ""),
                    "schema": {k: v for k, v in prop.items() if k not in ("description", "title")},
                }
            )
    return params


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]
