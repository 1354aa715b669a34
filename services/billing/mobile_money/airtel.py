"""Airtel Money Open API, collections: token, payment request, status.

Traps: an accepted request (DP00800001006 / ESB000010) is "in process", not paid; a reused
transaction id is refused with ESB000041 rather than answered with the first outcome; some
codes mean "in doubt, enquire" rather than failure. The subscriber's msisdn is sent without
the country code.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from libs.common.logging import get_logger
from libs.common.mobile_money import AirtelSettings
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

ALREADY_EXISTS = "ESB000041"
# Result/response codes after which the request may exist: ask for its status, never fail it.
IN_DOUBT = frozenset(
    {"DP00800001000", "ESB000001", "ESB000004", "ESB000008", "ESB000014", "ROUTER117", "0000900"}
)
_STATUS_OUTCOMES = {"TS": Outcome.SUCCESSFUL, "TF": Outcome.FAILED}


class AirtelMoney:
    name = "airtel"

    def __init__(self, settings: AirtelSettings, timeout: float) -> None:
        self._settings = settings
        self._base = settings.base_url.rstrip("/")
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=timeout),
            headers={"User-Agent": settings.user_agent, "Accept": "*/*"},
        )
        self._tokens = TokenCache(self._fetch_token)

    async def close(self) -> None:
        await self._http.close()

    async def _fetch_token(self) -> tuple[str, float]:
        return await fetch_token(
            self._http,
            f"{self._base}/auth/oauth2/token",
            provider="Airtel",
            default_lifetime=180,
            json={
                "client_id": self._settings.client_id,
                "client_secret": self._settings.client_secret.get_secret_value(),
                "grant_type": "client_credentials",
            },
        )

    async def _request(
        self, method: str, path: str, *, json: Any = None
    ) -> tuple[int, dict[str, Any]]:
        def with_token(token: str) -> dict[str, str]:
            return {
                "Authorization": f"Bearer {token}",
                "X-Country": self._settings.country,
                "X-Currency": self._settings.currency,
            }

        return await call_with_token(
            self._http, self._tokens, method, f"{self._base}{path}", headers=with_token, json=json
        )

    async def initiate(self, collection: Collection, callback_url: str) -> None:
        # Airtel calls back the one URL configured on the merchant app; `callback_url` is
        # for providers that take it per request.
        del callback_url
        body = {
            "reference": payer_text(collection.description, "Wesendall wallet top-up", 64),
            "subscriber": {
                "country": self._settings.country,
                "currency": self._settings.currency,
                "msisdn": collection.phone_number.removeprefix("+256"),
            },
            "transaction": {
                "amount": collection.amount,
                "country": self._settings.country,
                "currency": self._settings.currency,
                "id": collection.reference,
            },
        }
        status, answer = await self._request("POST", "/merchant/v1/payments/", json=body)
        result = _status_block(answer)
        codes = {str(result.get("result_code", "")), str(result.get("response_code", ""))}
        if status == 200 and result.get("success") is True:
            return
        if ALREADY_EXISTS in codes:
            log.info("airtel.request_exists", reference=collection.reference)
            return
        if status >= 500 or codes & IN_DOUBT or not result:
            raise ProviderUnavailable(f"Airtel payment request answered {status} {sorted(codes)}")
        raise ProviderRefused(str(result.get("result_code") or result.get("message") or status))

    async def status(self, reference: str) -> ProviderStatus:
        status, body = await self._request("GET", f"/standard/v1/payments/{reference}")
        result = _status_block(body)
        if status == 404 or str(result.get("code")) == "404":
            return ProviderStatus(Outcome.NOT_FOUND)
        if status != 200:
            raise ProviderUnavailable(f"Airtel status answered {status}")
        data = body.get("data")
        transaction = data.get("transaction") if isinstance(data, dict) else None
        if not isinstance(transaction, dict):
            raise ProviderUnavailable("Airtel status without a transaction")
        state = str(transaction.get("status", "")).upper()
        outcome = _STATUS_OUTCOMES.get(state, Outcome.PENDING)  # TIP, TA, DP…: still open
        if outcome is Outcome.SUCCESSFUL:
            money_id = transaction.get("airtel_money_id")
            return ProviderStatus(outcome, transaction_id=str(money_id) if money_id else None)
        if outcome is Outcome.FAILED:
            return ProviderStatus(outcome, reason=str(transaction.get("message") or "TF"))
        return ProviderStatus(outcome)


def _status_block(body: dict[str, Any]) -> dict[str, Any]:
    """The `status` object Airtel puts in every answer (codes, success), or {}."""
    block = body.get("status")
    return block if isinstance(block, dict) else {}
