"""MTN MoMo Collection: `/collection/token/`, requesttopay and its status, as the real API.

MTN answers logical errors (target environment, currency, callback host) with HTTP 500,
malformed requests with 400, a reused X-Reference-Id with 409 and never the original.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import yarl
from aiohttp import web

from simulators.mobile_money import bodies
from simulators.mobile_money.http_common import (
    json_reply,
    lost_response,
    mtn_error,
    platform_of,
    read_json_object,
)
from simulators.mobile_money.mtn_users import (
    MTN_USERS_KEY,
    NOT_FOUND_MESSAGE,
    ApiUser,
    subscription_denied,
)
from simulators.mobile_money.sandbox import is_uuid4, national_number
from simulators.mobile_money.tokens import TokenIssuer

MTN_TOKENS_KEY = web.AppKey("mtn_tokens", TokenIssuer)
CURRENCY = "UGX"
NOTE_LIMIT = 160
DIGITS = re.compile(r"[0-9]+")
# The gateway's own 401 for a missing, unknown or expired bearer token.
TOKEN_DENIED = {"statusCode": 401, "message": "Unauthorized. Access token is missing or invalid."}


async def create_token(request: web.Request) -> web.Response:
    """`POST /collection/token/` with Basic apiUser:apiKey -> a bearer token."""
    if (denied := subscription_denied(request)) is not None:
        return denied
    scheme, _, encoded = request.headers.get("Authorization", "").strip().partition(" ")
    user = None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        user_id, separator, api_key = decoded.partition(":")
        if separator:
            user = request.app[MTN_USERS_KEY].login(user_id, api_key)
    if user is None:
        return json_reply({"error": "login_failed"}, status=401)
    tokens = request.app[MTN_TOKENS_KEY]
    return json_reply(
        {
            "access_token": tokens.issue(user.user_id),
            "token_type": "access_token",
            "expires_in": tokens.lifetime,
        }
    )


def _caller(request: web.Request) -> ApiUser | web.Response:
    if (denied := subscription_denied(request)) is not None:
        return denied
    user_id = request.app[MTN_TOKENS_KEY].subject(request.headers.get("Authorization"))
    user = None if user_id is None else request.app[MTN_USERS_KEY].get(user_id)
    if user is None:
        return json_reply(TOKEN_DENIED, status=401)
    return user


def _wrong_environment(request: web.Request) -> web.Response | None:
    expected = platform_of(request).settings.mtn_target_environment
    if request.headers.get("X-Target-Environment", "").strip() == expected:
        return None
    return mtn_error(
        500, "NOT_ALLOWED_TARGET_ENVIRONMENT", "Access to target environment is forbidden."
    )


def _registered_host(provider_callback_host: str) -> str:
    # Integrators register either a bare host or a whole URL; MTN compares hosts.
    if "://" in provider_callback_host:
        return (yarl.URL(provider_callback_host).host or "").lower()
    return provider_callback_host.split("/")[0].split(":")[0].lower()


def _callback_url(request: web.Request, user: ApiUser) -> str | web.Response | None:
    raw = request.headers.get("X-Callback-Url")
    if raw is None:
        return None
    try:
        url = yarl.URL(raw.strip())
    except ValueError:
        url = yarl.URL()
    if not raw.strip() or url.scheme not in ("http", "https") or not url.host:
        return mtn_error(400, "INVALID_CALLBACK_URL", "X-Callback-Url must be an http(s) URL.")
    registered = user.provider_callback_host
    if registered and url.host.lower() != _registered_host(registered):
        return mtn_error(
            500, "INVALID_CALLBACK_URL_HOST", "Callback URL with host not allowed for the API user."
        )
    return str(url)


def _bad(field: str, rule: str) -> web.Response:
    return mtn_error(400, "INVALID_PARAMETER", f"{field} {rule}.")


def _check_body(body: dict[str, Any] | None) -> web.Response | None:
    """400 for malformed fields, MTN's 500s for the logical errors, None if acceptable."""
    if body is None:
        return _bad("body", "must be a JSON object")
    amount = body.get("amount")
    if not isinstance(amount, str) or not DIGITS.fullmatch(amount) or int(amount) <= 0:
        return _bad("amount", "must be a string of digits greater than zero")
    currency = body.get("currency")
    if not isinstance(currency, str) or not currency:
        return _bad("currency", "is required")
    if "externalId" in body and not isinstance(body["externalId"], str):
        return _bad("externalId", "must be a string")
    payer = body.get("payer")
    if not isinstance(payer, dict) or payer.get("partyIdType") != "MSISDN":
        return _bad("payer", "must be {partyIdType: MSISDN, partyId}")
    party_id = payer.get("partyId")
    if not isinstance(party_id, str) or not DIGITS.fullmatch(party_id) or len(party_id) > 15:
        return _bad("payer.partyId", "must be the payer's MSISDN in digits")
    for name in ("payerMessage", "payeeNote"):
        note = body.get(name)
        if note is not None and not isinstance(note, str):
            return _bad(name, "must be a string")
        if note and (len(note) > NOTE_LIMIT or "'" in note or "&" in note):
            return _bad(name, f"must be at most {NOTE_LIMIT} characters without ' or &")
    if currency != CURRENCY:
        return mtn_error(500, "INVALID_CURRENCY", "Currency not supported.")
    if not body.get("payerMessage") or not body.get("payeeNote"):
        # The live platform fails with a bare 500 when either note is empty or missing.
        return mtn_error(
            500, "INTERNAL_PROCESSING_ERROR", "An internal error occurred while processing."
        )
    return None


async def request_to_pay(request: web.Request) -> web.Response:
    """`POST /collection/v1_0/requesttopay` -> 202 with no body; the payer answers later."""
    caller = _caller(request)
    if isinstance(caller, web.Response):
        return caller
    platform = platform_of(request)
    if platform.take_injected_failure():
        return mtn_error(
            500, "INTERNAL_PROCESSING_ERROR", "An internal error occurred while processing."
        )
    if (wrong := _wrong_environment(request)) is not None:
        return wrong
    reference = request.headers.get("X-Reference-Id", "").strip()
    if not is_uuid4(reference):
        return mtn_error(400, "INVALID_REFERENCE_ID", "X-Reference-Id must be a UUID version 4.")
    callback_url = _callback_url(request, caller)
    if isinstance(callback_url, web.Response):
        return callback_url
    body = await read_json_object(request)
    if (problem := _check_body(body)) is not None:
        return problem
    assert body is not None
    if platform.get("mtn", reference.lower()) is not None:
        return mtn_error(
            409, "RESOURCE_ALREADY_EXIST", "Duplicated reference id. Creation of resource failed."
        )
    submitted: dict[str, Any] = {
        name: body[name]
        for name in ("amount", "currency", "externalId", "payer", "payerMessage", "payeeNote")
        if name in body
    }
    platform.create(
        "mtn",
        reference.lower(),
        external_id=body.get("externalId", ""),
        national=national_number(body["payer"]["partyId"]),
        amount=int(body["amount"]),
        currency=body["currency"],
        callback_url=callback_url,
        submitted=submitted,
    )
    if platform.take_lost_response():
        unavailable = mtn_error(503, "SERVICE_UNAVAILABLE", "Service temporarily unavailable.")
        return lost_response(request, unavailable)
    return web.Response(status=202)


async def request_to_pay_status(request: web.Request) -> web.Response:
    """`GET /collection/v1_0/requesttopay/{referenceId}` -> the request as MTN reports it."""
    caller = _caller(request)
    if isinstance(caller, web.Response):
        return caller
    if (wrong := _wrong_environment(request)) is not None:
        return wrong
    platform = platform_of(request)
    payment = platform.get("mtn", request.match_info["reference"].strip().lower())
    if payment is None:
        return mtn_error(404, "RESOURCE_NOT_FOUND", NOT_FOUND_MESSAGE)
    payment.status_queries += 1
    return json_reply(bodies.mtn_status(payment))


def add_routes(app: web.Application) -> None:
    """Register the collection routes."""
    app.router.add_post("/collection/token/", create_token)
    app.router.add_post("/collection/v1_0/requesttopay", request_to_pay)
    app.router.add_get("/collection/v1_0/requesttopay/{reference}", request_to_pay_status)
