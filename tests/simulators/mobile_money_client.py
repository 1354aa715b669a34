"""A merchant's client for the Mobile Money simulator, written to the real APIs."""

from __future__ import annotations

import base64
import json
from typing import Any

import aiohttp

from tests.simulators.mobile_money_harness import (
    AIRTEL_CLIENT_ID,
    AIRTEL_CLIENT_SECRET,
    MTN_API_KEY,
    MTN_API_USER,
    MTN_SUBSCRIPTION_KEY,
)


class MomoClient:
    """Talks to the simulator the way a merchant written to the real APIs would."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base = base_url

    async def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """(status, decoded JSON or None for an empty body)."""
        async with self.session.request(
            method, self.base + path, json=json_body, data=data, headers=headers or {}
        ) as response:
            raw = await response.read()
            return response.status, json.loads(raw) if raw else None

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        """A `/_sim/` call that must succeed; its JSON body."""
        status, answer = await self.call(method, path, json_body=body)
        assert status == 200, (status, answer)
        return answer

    async def requests(self, **filters: str) -> list[dict[str, Any]]:
        """`GET /_sim/requests` with these filters."""
        query = "&".join(f"{name}={value}" for name, value in filters.items())
        return list((await self.control("GET", f"/_sim/requests?{query}"))["data"])

    # MTN

    async def mtn_token(self, api_user: str = MTN_API_USER, api_key: str = MTN_API_KEY) -> str:
        status, body = await self.mtn_token_call(api_user, api_key)
        assert status == 200, (status, body)
        return str(body["access_token"])

    async def mtn_token_call(
        self, api_user: str, api_key: str, subscription_key: str | None = MTN_SUBSCRIPTION_KEY
    ) -> tuple[int, Any]:
        basic = base64.b64encode(f"{api_user}:{api_key}".encode()).decode()
        headers = {"Authorization": f"Basic {basic}"}
        if subscription_key is not None:
            headers["Ocp-Apim-Subscription-Key"] = subscription_key
        return await self.call("POST", "/collection/token/", headers=headers)

    @staticmethod
    def mtn_headers(token: str, **extra: str) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {token}",
            "Ocp-Apim-Subscription-Key": MTN_SUBSCRIPTION_KEY,
            "X-Target-Environment": "sandbox",
        }
        headers.update(extra)
        return headers

    @staticmethod
    def mtn_body(party_id: str, **changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "amount": "5000",
            "currency": "UGX",
            "externalId": "topup-1",
            "payer": {"partyIdType": "MSISDN", "partyId": party_id},
            "payerMessage": "Wesendall top-up",
            "payeeNote": "Wallet top-up",
        }
        body.update(changes)
        return body

    async def request_to_pay(
        self,
        token: str,
        reference: str,
        party_id: str,
        *,
        callback_url: str | None = None,
        headers: dict[str, str] | None = None,
        **changes: Any,
    ) -> tuple[int, Any]:
        extra = {"X-Reference-Id": reference, **(headers or {})}
        if callback_url is not None:
            extra["X-Callback-Url"] = callback_url
        return await self.call(
            "POST",
            "/collection/v1_0/requesttopay",
            json_body=self.mtn_body(party_id, **changes),
            headers=self.mtn_headers(token, **extra),
        )

    async def mtn_status(self, token: str, reference: str) -> tuple[int, Any]:
        return await self.call(
            "GET", f"/collection/v1_0/requesttopay/{reference}", headers=self.mtn_headers(token)
        )

    # Airtel

    async def airtel_token(self) -> str:
        status, body = await self.airtel_token_call(AIRTEL_CLIENT_ID, AIRTEL_CLIENT_SECRET)
        assert status == 200, (status, body)
        return str(body["access_token"])

    async def airtel_token_call(self, client_id: str, client_secret: str) -> tuple[int, Any]:
        body = {
            "client_id": client_id,
            "client_secret": client_secret,
            "grant_type": "client_credentials",
        }
        return await self.call("POST", "/auth/oauth2/token", json_body=body)

    @staticmethod
    def airtel_headers(token: str, **extra: str) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {token}", "X-Country": "UG", "X-Currency": "UGX"}
        headers.update(extra)
        return headers

    async def airtel_pay(
        self,
        token: str,
        transaction_id: str,
        msisdn: str,
        *,
        amount: Any = 5000,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        body = {
            "reference": "Wesendall top-up",
            "subscriber": {"country": "UG", "currency": "UGX", "msisdn": msisdn},
            "transaction": {
                "amount": amount,
                "country": "UG",
                "currency": "UGX",
                "id": transaction_id,
            },
        }
        return await self.call(
            "POST",
            "/merchant/v1/payments/",
            json_body=body,
            headers=headers if headers is not None else self.airtel_headers(token),
        )

    async def airtel_enquiry(self, token: str, transaction_id: str) -> tuple[int, Any]:
        return await self.call(
            "GET", f"/standard/v1/payments/{transaction_id}", headers=self.airtel_headers(token)
        )

    async def mtn_settled(self, token: str, reference: str) -> dict[str, Any] | None:
        """The MTN status body once it is no longer PENDING, else None (for `eventually`)."""
        status, body = await self.mtn_status(token, reference)
        assert status == 200, (status, body)
        return body if body["status"] != "PENDING" else None

    async def airtel_settled(self, token: str, transaction_id: str) -> Any:
        """The Airtel enquiry once it is no longer TIP, else None (for `eventually`)."""
        status, body = await self.airtel_enquiry(token, transaction_id)
        assert status == 200, (status, body)
        return body if body["data"]["transaction"]["status"] != "TIP" else None
