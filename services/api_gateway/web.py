"""Request helpers: JSON in and out, pydantic validation rendered in the contract's shape."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from libs.common.errors import DomainError, ValidationFailed

M = TypeVar("M", bound=BaseModel)
JSON = "application/json"


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type=JSON, headers=headers)


def raw_json_response(
    body: bytes, status: int, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(body=body, status=status, content_type=JSON, headers=headers)


def error_response(error: DomainError) -> web.Response:
    headers = {}
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, int(retry_after + 0.999)))
    return json_response(error.body(), status=error.status, headers=headers)


async def read_json(request: web.Request) -> Any:
    """The parsed body, or validation_failed when it is not JSON."""
    body = await request.read()
    if not body:
        raise ValidationFailed(
            "A JSON body is required.", details=[{"field": "body", "message": "empty"}]
        )
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ValidationFailed(
            "The body is not valid JSON.", details=[{"field": "body", "message": str(error)}]
        ) from error


def validate(model: type[M], data: Any) -> M:
    """The model, or validation_failed naming each bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ValidationFailed(
            "The request is invalid.", details=validation_details(error)
        ) from error


def validation_details(error: ValidationError) -> list[dict[str, Any]]:
    details = []
    for item in error.errors(include_url=False, include_context=False, include_input=False):
        location = ".".join(str(part) for part in item["loc"]) or "body"
        details.append({"field": location, "message": item["msg"]})
    return details


def query(request: web.Request, model: type[M]) -> M:
    """Query parameters validated by a model (first value of each name)."""
    return validate(model, {key: request.query[key] for key in request.query})
