"""Opaque bearer tokens with an enforced lifetime, one issuer per provider."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_LIVE_TOKENS = 100_000


class TokenIssuer:
    """Issues tokens for a subject (API user or client id) and checks them until they expire."""

    def __init__(
        self,
        lifetime: int,
        clock: Callable[[], float] = time.monotonic,
        capacity: int = MAX_LIVE_TOKENS,
    ) -> None:
        self.lifetime = lifetime
        self._clock = clock
        self._capacity = capacity
        # Insertion order is expiry order, because every token lives the same time.
        self._tokens: OrderedDict[str, tuple[float, str]] = OrderedDict()

    def issue(self, subject: str) -> str:
        """A new token for `subject`, valid for `lifetime` seconds from now."""
        now = self._clock()
        self._forget_expired(now)
        token = secrets.token_urlsafe(48)
        self._tokens[token] = (now + self.lifetime, subject)
        while len(self._tokens) > self._capacity:
            self._tokens.popitem(last=False)
        return token

    def subject(self, authorization: str | None) -> str | None:
        """The subject of a live `Bearer <token>` header, else None (missing, unknown, expired)."""
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        entry = self._tokens.get(token.strip())
        if entry is None:
            return None
        expires_at, subject = entry
        if self._clock() >= expires_at:
            return None
        return subject

    def _forget_expired(self, now: float) -> None:
        while self._tokens:
            token, (expires_at, _) = next(iter(self._tokens.items()))
            if expires_at > now:
                return
            del self._tokens[token]
