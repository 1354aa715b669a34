"""Airtel Money collections: OAuth token, `/merchant/v1/payments/` and the enquiry.

Airtel answers most business errors with HTTP 200 and `status.success: false`; an accepted
payment (`DP00800001006`, "in process") is not a paid one.
"""

from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web

from simulators.mobile_money import bodies
from simulators.mobile_money.http_common import (
    json_reply,
    lost_response,
    platform_of,
    read_json_object,
)
from simulators.mobile_money.tokens import TokenIssuer

AIRTEL_TOKENS_KEY = web.AppKey("airtel_tokens", TokenIssuer)
COUNTRY = "UG"
CURRENCY = "UGX"
NATIONAL_LENGTH = 9


def envelope(
    data: dict[str, Any],
    code: str,
    message: str,
    result_code: str,
    response_code: str,
    success: bool,
) -> dict[str, Any]:
    """Airtel's `{"data", "status"}` reply."""
    return {
        "data": data,
        "status": {
            "code": code,
            "message": message,
            "result_code": result_code,
            "response_code": response_code,
            "success": success,
        },
    }


def failure(code: str, message: str, result_code: str, http_status: int = 200) -> web.Response:
    """A `success: false` reply; nothing was created, except for a duplicate id."""
    # Unknown outcomes (platform error, repeated id) read as "ambiguous: enquire".
    ambiguous = result_code in ("ESB000001", "ESB000041")
    response_code = bodies.AIRTEL_AMBIGUOUS if ambiguous else bodies.AIRTEL_FAILED
    body = envelope({}, code, message, result_code, response_code, False)
    return json_reply(body, status=http_status)


async def create_token(request: web.Request) -> web.Response:
    """`POST /auth/oauth2/token` `{"client_id", "client_secret", "grant_type"}` -> a token."""
    settings = platform_of(request).settings
    body = await read_json_object(request)
    if body is None:
        return json_reply(
            {"error": "invalid_request", "error_description": "Body must be a JSON object."}, 400
        )
    if body.get("grant_type") != "client_credentials":
        return json_reply(
            {"error": "unsupported_grant_type", "error_description": "Use client_credentials."},
            400,
        )
    client_id, secret = body.get("client_id"), body.get("client_secret")
    if (
        not isinstance(client_id, str)
        or not isinstance(secret, str)
        or not hmac.compare_digest(client_id.encode(), settings.airtel_client_id.encode())
        or not hmac.compare_digest(secret.encode(), settings.airtel_client_secret.encode())
    ):
        return json_reply(
            {"error": "invalid_client", "error_description": "Client authentication failed."},
            401,
        )
    tokens = request.app[AIRTEL_TOKENS_KEY]
    # Airtel sends expires_in as a string.
    return json_reply(
        {
            "access_token": tokens.issue(client_id),
            "expires_in": str(tokens.lifetime),
            "token_type": "bearer",
        }
    )


def _refused(request: web.Request) -> web.Response | None:
    """401 without a live token; 400 unless X-Country and X-Currency name Uganda's market."""
    if request.app[AIRTEL_TOKENS_KEY].subject(request.headers.get("Authorization")) is None:
        return json_reply(
            {"error": "invalid_token", "error_description": "Access token is invalid or expired."},
            401,
        )
    country = request.headers.get("X-Country", "").strip()
    currency = request.headers.get("X-Currency", "").strip()
    if not country or not currency:
        return failure(
            "400",
            "Mandatory parameters are missing either in the header or body.",
            "ROUTER003",
            400,
        )
    if country != COUNTRY:
        return failure("400", "Invalid country code provided.", "ROUTER006", 400)
    if currency != CURRENCY:
        return failure("400", "Invalid currency provided.", "ROUTER112", 400)
    return None


def _identifier(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _amount(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return value if isinstance(value, int) and value > 0 else None


def _check_payment(body: dict[str, Any] | None) -> tuple[str, str] | None:
    """(result_code, message) of the first problem, or None."""
    if body is None:
        return "ESB000008", "Field validation: body must be a JSON object."
    subscriber, transaction = body.get("subscriber"), body.get("transaction")
    if not isinstance(subscriber, dict) or not isinstance(transaction, dict):
        return "ESB000008", "Field validation: subscriber and transaction are required."
    if _identifier(body.get("reference")) is None:
        return "ESB000008", "Field validation: reference is required."
    if _identifier(transaction.get("id")) is None:
        return "ESB000008", "Field validation: transaction.id is required."
    for part in (subscriber, transaction):
        if part.get("country", COUNTRY) != COUNTRY:
            return "ESB000034", "Invalid Country Name."
        if part.get("currency", CURRENCY) != CURRENCY:
            return "ESB000035", "Invalid Currency Code."
    msisdn = _identifier(subscriber.get("msisdn"))
    if msisdn is None or not msisdn.isdigit():
        return "ESB000008", "Field validation: subscriber.msisdn must be digits."
    if len(msisdn) != NATIONAL_LENGTH:
        # Airtel wants the national number: a number with its 256 prefix is refused.
        return "ESB000033", f"Invalid MSISDN Length. MSISDN Length should be {NATIONAL_LENGTH}."
    if _amount(transaction.get("amount")) is None:
        return "ESB000008", "Field validation: transaction.amount must be a positive integer."
    return None


async def create_payment(request: web.Request) -> web.Response:
    """`POST /merchant/v1/payments/` -> accepted ("in process") or `success: false`."""
    if (refused := _refused(request)) is not None:
        return refused
    platform = platform_of(request)
    if platform.take_injected_failure():
        return failure("500", "Something went wrong.", "ESB000001", 500)
    body = await read_json_object(request)
    if (problem := _check_payment(body)) is not None:
        result_code, message = problem
        return failure("400", message, result_code)
    assert body is not None
    transaction_id = str(_identifier(body["transaction"]["id"]))
    if platform.get("airtel", transaction_id) is not None:
        return failure("400", "External Transaction ID already exists", "ESB000041")
    platform.create(
        "airtel",
        transaction_id,
        external_id=str(_identifier(body["reference"])),
        national=str(_identifier(body["subscriber"]["msisdn"])),
        amount=int(_amount(body["transaction"]["amount"]) or 0),
        currency=CURRENCY,
        callback_url=platform.settings.airtel_callback_url,
    )
    if platform.take_lost_response():
        unavailable = failure("503", "Service Unavailable", "ESB000001", 503)
        return lost_response(request, unavailable)
    accepted = {"transaction": {"id": transaction_id, "status": "Success."}}
    return json_reply(
        envelope(accepted, "200", "SUCCESS", "ESB000010", bodies.AIRTEL_IN_PROCESS, True)
    )


async def payment_enquiry(request: web.Request) -> web.Response:
    """`GET /standard/v1/payments/{id}` -> TIP, TS (with airtel_money_id) or TF."""
    if (refused := _refused(request)) is not None:
        return refused
    payment = platform_of(request).get("airtel", request.match_info["transaction_id"].strip())
    if payment is None:
        return failure("404", "Transaction not found", "ESB000045", 404)
    payment.status_queries += 1
    data = {"transaction": bodies.airtel_enquiry_transaction(payment)}
    response_code = bodies.airtel_response_code(payment)
    return json_reply(envelope(data, "200", "SUCCESS", "ESB000010", response_code, True))


def add_routes(app: web.Application) -> None:
    """Register the collection routes."""
    app.router.add_post("/auth/oauth2/token", create_token)
    app.router.add_post("/merchant/v1/payments/", create_payment)
    app.router.add_get("/standard/v1/payments/{transaction_id}", payment_enquiry)
