"""OAuth access tokens, fetched once and reused until shortly before they expire."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from libs.common.logging import get_logger
from services.billing.mobile_money.base import ProviderUnavailable, json_object

log = get_logger(__name__)

# Providers ask integrators not to fetch a token per transaction: refresh this long early.
REFRESH_EARLY = 60.0

Fetch = Callable[[], Awaitable[tuple[str, float]]]


class TokenCache:
    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        """A valid token; concurrent callers wait for one fetch instead of each making one."""
        if self._token is not None and time.monotonic() < self._refresh_at:
            return self._token
        async with self._lock:
            if self._token is None or time.monotonic() >= self._refresh_at:
                token, lifetime = await self._fetch()
                self._token = token
                self._refresh_at = time.monotonic() + max(lifetime - REFRESH_EARLY, lifetime / 2)
            return self._token

    def invalidate(self, token: str) -> None:
        """Forget `token` after the provider refused it (it expired or was revoked early)."""
        if self._token == token:
            self._token = None


async def call_with_token(
    http: aiohttp.ClientSession,
    tokens: TokenCache,
    method: str,
    url: str,
    *,
    headers: Callable[[str], dict[str, str]],
    json: Any = None,
) -> tuple[int, dict[str, Any]]:
    """One call with a bearer token; a refused token is replaced and the call made again."""
    for attempt in (1, 2):
        token = await tokens.get()
        try:
            async with http.request(method, url, headers=headers(token), json=json) as response:
                body = await json_object(response)
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            raise ProviderUnavailable(f"{method} {url} failed: {error!r}") from error
        if status == 401 and attempt == 1:
            tokens.invalidate(token)
            continue
        return status, body
    raise ProviderUnavailable(f"two fresh tokens refused for {method} {url}")


async def fetch_token(
    http: aiohttp.ClientSession,
    url: str,
    *,
    provider: str,
    default_lifetime: float,
    headers: dict[str, str] | None = None,
    json: Any = None,
) -> tuple[str, float]:
    """POST for an OAuth access token: (token, lifetime in seconds).

    `expires_in` may be a number or, as Airtel sends it, a string ("180").
    """
    try:
        async with http.post(url, headers=headers, json=json) as response:
            body = await json_object(response)
            if response.status != 200 or "access_token" not in body:
                log.error("mobile_money.token_refused", provider=provider, status=response.status)
                raise ProviderUnavailable(f"{provider} token request answered {response.status}")
            return str(body["access_token"]), float(body.get("expires_in") or default_lifetime)
    except (aiohttp.ClientError, TimeoutError) as error:
        raise ProviderUnavailable(f"{provider} token request failed: {error!r}") from error
