"""MTN MoMo Open API, Collection product: token, requesttopay, status.

Traps (see the provider's "common errors" page): business failures come back as HTTP 500
with a code; a reused X-Reference-Id is answered 409 without the original outcome; the
callback is sent once, unsigned and without the reference id, so the status GET decides.
"""

from __future__ import annotations

import base64
from typing import Any

import aiohttp

from libs.common.logging import get_logger
from libs.common.mobile_money import MtnSettings
from libs.common.throttle import TokenBucket
from services.billing.mobile_money.base import (
    Collection,
    Outcome,
    ProviderRefused,
    ProviderStatus,
    ProviderUnavailable,
    payer_text,
)
from services.billing.mobile_money.tokens import TokenCache, call_with_token, fetch_token

log = get_logger(__name__)

# HTTP 500 codes that are a definite "no": the request was not created and never will be.
_REFUSED_CODES = frozenset(
    {
        "NOT_ALLOWED",
        "NOT_ALLOWED_TARGET_ENVIRONMENT",
        "INVALID_CALLBACK_URL_HOST",
        "INVALID_CURRENCY",
        "PAYER_NOT_FOUND",
        "PAYEE_NOT_ALLOWED_TO_RECEIVE",
        "NOT_ENOUGH_FUNDS",
        "PAYER_LIMIT_REACHED",
    }
)


class MtnMomo:
    name = "mtn"

    def __init__(self, settings: MtnSettings, timeout: float) -> None:
        self._settings = settings
        self._base = settings.base_url.rstrip("/")
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=timeout),
            headers={
                "User-Agent": settings.user_agent,
                "Ocp-Apim-Subscription-Key": settings.subscription_key.get_secret_value(),
            },
        )
        self._tokens = TokenCache(self._fetch_token)
        self._status_pace = TokenBucket(settings.status_rate)

    async def close(self) -> None:
        await self._http.close()

    async def _fetch_token(self) -> tuple[str, float]:
        credentials = f"{self._settings.api_user}:{self._settings.api_key.get_secret_value()}"
        return await fetch_token(
            self._http,
            f"{self._base}/collection/token/",
            provider="MTN",
            default_lifetime=3600,
            headers={"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()},
        )

    async def _request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, json: Any = None
    ) -> tuple[int, dict[str, Any]]:
        def with_token(token: str) -> dict[str, str]:
            return {
                "Authorization": f"Bearer {token}",
                "X-Target-Environment": self._settings.target_environment,
                **(headers or {}),
            }

        return await call_with_token(
            self._http, self._tokens, method, f"{self._base}{path}", headers=with_token, json=json
        )

    async def initiate(self, collection: Collection, callback_url: str) -> None:
        body = {
            "amount": str(collection.amount),
            "currency": "UGX",
            "externalId": collection.deposit_id,
            "payer": {"partyIdType": "MSISDN", "partyId": collection.phone_number.lstrip("+")},
            "payerMessage": payer_text(collection.description, "Wesendall wallet top-up"),
            "payeeNote": payer_text(collection.deposit_id.replace("_", " "), "Wesendall"),
        }
        headers = {"X-Reference-Id": collection.reference, "X-Callback-Url": callback_url}
        status, answer = await self._request(
            "POST", "/collection/v1_0/requesttopay", headers=headers, json=body
        )
        code = str(answer.get("code") or "")
        if status == 202:
            return
        if status == 409:
            # Our reference was already used: an earlier attempt of ours got through.
            log.info("mtn.request_exists", reference=collection.reference)
            return
        if status == 400 or (status == 500 and code in _REFUSED_CODES):
            raise ProviderRefused(code or f"http_{status}")
        # 500 INTERNAL_PROCESSING_ERROR, 503 and the rest: the request may or may not exist.
        raise ProviderUnavailable(f"MTN requesttopay answered {status} {code}".strip())

    async def status(self, reference: str) -> ProviderStatus:
        await self._status_pace.acquire()
        status, body = await self._request("GET", f"/collection/v1_0/requesttopay/{reference}")
        if status == 404:
            return ProviderStatus(Outcome.NOT_FOUND)
        if status != 200:
            raise ProviderUnavailable(f"MTN status answered {status}")
        state = str(body.get("status", "")).upper()
        amount = _int_or_none(body.get("amount"))
        if state == "SUCCESSFUL":
            return ProviderStatus(
                Outcome.SUCCESSFUL,
                transaction_id=_str_or_none(body.get("financialTransactionId")),
                amount=amount,
            )
        if state == "FAILED":
            return ProviderStatus(Outcome.FAILED, reason=_reason(body.get("reason")))
        if state == "PENDING":
            return ProviderStatus(Outcome.PENDING)
        raise ProviderUnavailable(f"MTN status {state!r} is not one we know")


def _reason(raw: object) -> str:
    # A string in MTN's own examples; some integrations see {"code", "message"}.
    if isinstance(raw, dict):
        raw = raw.get("code") or raw.get("message")
    return str(raw or "FAILED")


def _int_or_none(raw: object) -> int | None:
    try:
        return int(str(raw))
    except ValueError:
        return None


def _str_or_none(raw: object) -> str | None:
    return None if raw in (None, "") else str(raw)
