"""Per-key request rate limits: a token bucket per API key in this gateway instance."""

from __future__ import annotations

import time
from dataclasses import dataclass

from libs.common.errors import RateLimited


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Allows `rate` requests a second per key with bursts of twice that."""

    def __init__(self, default_rate: int) -> None:
        self._default = default_rate
        self._buckets: dict[str, _Bucket] = {}

    def check(self, key_id: str, rate: int | None) -> None:
        """Spend one token or raise RateLimited with the seconds until one is back."""
        rate = rate or self._default
        capacity = 2.0 * rate
        now = time.monotonic()
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = _Bucket(capacity, now)
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens < 1.0:
            raise RateLimited(retry_after=(1.0 - bucket.tokens) / rate)
        bucket.tokens -= 1.0
