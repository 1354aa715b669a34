"""A customer of the platform, as our tests play one: credentials and an HTTP client."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp

T = TypeVar("T")


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def code(self) -> str | None:
        return (
            (self.body or {}).get("error", {}).get("code") if isinstance(self.body, dict) else None
        )


@dataclass
class Customer:
    http: aiohttp.ClientSession
    base_url: str
    account_id: str
    wallet_id: str
    api_key: str
    api_secret: str

    @property
    def authorization(self) -> str:
        return basic(self.api_key, self.api_secret)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        auth: str | bool = True,
        data: bytes | None = None,
    ) -> Reply:
        """`auth`: True for our credentials, False for none, or a whole Authorization value."""
        sent = dict(headers or {})
        if auth is True:
            sent["Authorization"] = self.authorization
        elif auth:
            sent["Authorization"] = auth
        async with self.http.request(
            method, self.base_url + path, json=json, params=params, headers=sent, data=data
        ) as response:
            body = await response.json(content_type=None) if response.content_length != 0 else None
            return Reply(response.status, body, dict(response.headers))

    async def send(self, message: str, recipient: Any, **extra: Any) -> Reply:
        headers = extra.pop("headers", None)
        return await self.request(
            "POST",
            "/api/v1/sms/send",
            json={"walletId": self.wallet_id, "message": message, "recipient": recipient, **extra},
            headers=headers,
        )

    async def balance(self) -> int:
        reply = await self.request(
            "GET", "/api/v1/account/balance", params={"walletId": self.wallet_id}
        )
        assert reply.status == 200, reply
        return int(reply.body["balance"])

    async def history(self, **params: Any) -> Reply:
        return await self.request(
            "GET", "/api/v1/sms/history", params={"walletId": self.wallet_id, **params}
        )

    async def topup(self, amount: Any, phone_number: Any, **extra: Any) -> Reply:
        headers = extra.pop("headers", None)
        body = {"walletId": self.wallet_id, "amount": amount, "phone_number": phone_number}
        return await self.request(
            "POST", "/api/v1/account/topup", json={**body, **extra}, headers=headers
        )

    async def deposit(self, deposit_id: str) -> Reply:
        return await self.request(
            "GET", f"/api/v1/account/topup/{deposit_id}", params={"walletId": self.wallet_id}
        )

    async def transactions(self, **params: Any) -> Reply:
        return await self.request(
            "GET", "/api/v1/account/transactions", params={"walletId": self.wallet_id, **params}
        )

    async def batch(self, batch_id: str) -> Reply:
        return await self.request(
            "GET", f"/api/v1/sms/batches/{batch_id}", params={"walletId": self.wallet_id}
        )

    async def counts(self, batch_id: str) -> dict[str, int]:
        """The batch's messages counted by status."""
        reply = await self.batch(batch_id)
        assert reply.status == 200, reply
        counts: dict[str, int] = reply.body["counts"]
        return counts

    async def settled(self, batch_id: str, *, timeout: float = 20.0) -> dict[str, Any]:
        """The batch once every message has its final status (none queued or sent)."""

        async def final() -> dict[str, Any] | None:
            reply = await self.batch(batch_id)
            assert reply.status == 200, reply
            counts = reply.body["counts"]
            return reply.body if counts["queued"] == counts["sent"] == 0 else None

        return await eventually(final, timeout=timeout, interval=0.2)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def eventually(
    check: Callable[[], Awaitable[T | None]], *, timeout: float = 20.0, interval: float = 0.1
) -> T:
    """Poll `check` until it returns something truthy; fail with the last value after timeout."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")
