"""HTTP plumbing shared by the load modes: sessions, request bodies, outcome tallies."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import aiohttp
import orjson

# A placeholder that orjson cannot produce from a real recipient list.
_SLOT = "\x00recipients\x00"
_SAMPLE_CHARS = 400
_SAMPLES_PER_OUTCOME = 3


def new_session(connections: int, timeout: float) -> aiohttp.ClientSession:
    """A session whose pool holds exactly `connections` keep-alive connections."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections, limit_per_host=connections),
        timeout=aiohttp.ClientTimeout(total=timeout),
        # The platform's replies are read as bytes; no cookie jar to consult per request.
        cookie_jar=aiohttp.DummyCookieJar(),
    )


class SendBody:
    """`POST /api/v1/sms/send` bodies from pre-encoded bytes: only the recipients vary."""

    def __init__(self, wallet_id: str, message: str, priority: str | None) -> None:
        fields: dict[str, Any] = {"walletId": wallet_id, "message": message}
        if priority is not None:
            fields["priority"] = priority
        fields["recipient"] = _SLOT
        encoded = orjson.dumps(fields)
        self._head, self._tail = encoded.split(orjson.dumps(_SLOT))

    def build(self, recipients: str | list[str]) -> bytes:
        """The body for one recipient (a string) or many (a list)."""
        return self._head + orjson.dumps(recipients) + self._tail


def headers(authorization: str | None) -> dict[str, str]:
    """Request headers, computed once per run."""
    sent = {"Content-Type": "application/json"}
    if authorization:
        sent["Authorization"] = authorization
    return sent


class Tally:
    """Replies by HTTP status and failures by exception, with the first few bodies of each."""

    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.samples: dict[str, list[str]] = {}

    def reply(self, status: int, body: bytes, expected: int = 202) -> None:
        """Count a reply; keep the body when the status is not the expected one."""
        self.statuses[status] += 1
        if status != expected:
            self._sample(str(status), body.decode(errors="replace"))

    def error(self, error: BaseException) -> None:
        """Count a request that got no reply at all (refused, reset, timed out)."""
        name = type(error).__name__
        self.errors[name] += 1
        self._sample(name, str(error))

    def _sample(self, key: str, text: str) -> None:
        kept = self.samples.setdefault(key, [])
        if len(kept) < _SAMPLES_PER_OUTCOME:
            kept.append(text[:_SAMPLE_CHARS])

    def as_json(self) -> dict[str, Any]:
        """Counts keyed by status code (as strings, for JSON) and by exception name."""
        return {
            "statuses": {str(code): n for code, n in sorted(self.statuses.items())},
            "errors": dict(self.errors),
            "samples": self.samples,
        }


# What a request can fail with short of a reply: connection trouble or the client timeout.
REQUEST_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError, asyncio.TimeoutError)


class Simulator:
    """The carrier simulator's counters, read on a session of its own."""

    def __init__(self, base_url: str) -> None:
        self._url = base_url + "/stats"
        self._session = new_session(2, timeout=30)

    async def stats(self) -> dict[str, Any]:
        """`GET /stats`, plus `distinct`: stored messages that are not resubmissions."""
        async with self._session.get(self._url) as response:
            response.raise_for_status()
            stats: dict[str, Any] = orjson.loads(await response.read())
        stats["distinct"] = stats["messages"] - stats["duplicates"]
        return stats

    async def close(self) -> None:
        """Release the session."""
        await self._session.close()
