"""Basic Auth with bcrypt at rest and a keyed-hash fast path in memory.

bcrypt costs ~100 ms a check, so after one successful check the gateway keeps an
HMAC of the secret (with a per-process random key) for a short time. A `key.revoked`
event evicts the key at once; `lastUsedAt` is written at most once a minute per key.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import bcrypt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.db import session_scope
from libs.common.errors import InvalidCredentials, KeyRevoked, WalletForbidden
from libs.common.logging import get_logger

log = get_logger(__name__)

# Unknown keys are remembered briefly so a flood of bad keys does not become a flood of queries.
_NEGATIVE_TTL = 5.0


@dataclass(slots=True)
class Principal:
    """Who is calling: the key, its account, and the wallets that account owns."""

    key_id: str
    account_id: str
    wallet_ids: set[str]
    rate_limit: int | None
    digest: bytes = b""
    expires: float = 0.0
    revoked: bool = False


@dataclass(slots=True)
class _Miss:
    until: float


def parse_basic(header: str | None) -> tuple[str, str]:
    """(key, secret) from an Authorization header, or InvalidCredentials."""
    if not header or not header[:6].lower() == "basic ":
        raise InvalidCredentials()
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as error:
        raise InvalidCredentials() from error
    key, sep, secret = decoded.partition(":")
    if not sep or not key or not secret or len(key) > 128 or len(secret) > 256:
        raise InvalidCredentials()
    return key, secret


@dataclass
class Authenticator:
    sessions: async_sessionmaker[AsyncSession]
    cache_ttl: float
    _pepper: bytes = field(default_factory=lambda: os.urandom(32))
    _cache: dict[str, Principal | _Miss] = field(default_factory=dict)
    _inflight: dict[tuple[str, bytes], asyncio.Future[Principal | None]] = field(
        default_factory=dict
    )
    _revoked: set[str] = field(default_factory=set)
    _used: dict[str, datetime] = field(default_factory=dict)

    def _digest(self, secret: str) -> bytes:
        return hmac.new(self._pepper, secret.encode(), hashlib.sha256).digest()

    async def authenticate(self, header: str | None) -> Principal:
        """The caller's principal, or InvalidCredentials / KeyRevoked."""
        key, secret = parse_basic(header)
        if key in self._revoked:
            raise KeyRevoked()
        now = time.monotonic()
        entry = self._cache.get(key)
        if isinstance(entry, _Miss) and entry.until > now:
            raise InvalidCredentials()
        if not isinstance(entry, Principal) or entry.expires <= now:
            entry = await self._verify_once(key, secret)
        elif not hmac.compare_digest(entry.digest, self._digest(secret)):
            raise InvalidCredentials()
        if entry.revoked:
            raise KeyRevoked()
        self._used[key] = datetime.now(UTC)
        return entry

    async def _verify_once(self, key: str, secret: str) -> Principal:
        """One bcrypt check per key and secret at a time; concurrent callers share it."""
        digest = self._digest(secret)
        pending = self._inflight.get((key, digest))
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._inflight[(key, digest)] = pending
            try:
                principal = await self._load_and_verify(key, secret)
                pending.set_result(principal)
            except BaseException as error:
                pending.set_exception(error)
                # The waiters (if any) see the error; nobody else needs to retrieve it.
                pending.exception()
                raise
            finally:
                self._inflight.pop((key, digest), None)
        else:
            principal = await asyncio.shield(pending)
        if principal is None or not hmac.compare_digest(principal.digest, digest):
            raise InvalidCredentials()
        return principal

    async def _load_and_verify(self, key: str, secret: str) -> Principal | None:
        async with session_scope(self.sessions) as session:
            row = (
                await session.execute(
                    text(
                        "SELECT k.account_id, k.secret_hash, k.revoked_at, k.rate_limit,"
                        " ARRAY(SELECT w.id FROM wallets w WHERE w.account_id = k.account_id)"
                        " FROM api_keys k WHERE k.id = :key"
                    ),
                    {"key": key},
                )
            ).one_or_none()
        if row is None:
            self._cache[key] = _Miss(time.monotonic() + _NEGATIVE_TTL)
            return None
        account_id, secret_hash, revoked_at, rate_limit, wallet_ids = row
        ok = await asyncio.to_thread(bcrypt.checkpw, secret.encode(), secret_hash.encode())
        if not ok:
            log.info("auth.wrong_secret", key_id=key)
            return None
        principal = Principal(
            key_id=key,
            account_id=account_id,
            wallet_ids=set(wallet_ids),
            rate_limit=rate_limit,
            digest=self._digest(secret),
            expires=time.monotonic() + self.cache_ttl,
            revoked=revoked_at is not None,
        )
        self._cache[key] = principal
        return principal

    async def authorize_wallet(self, principal: Principal, wallet_id: str) -> None:
        """WalletForbidden unless the principal's account owns the wallet."""
        if wallet_id in principal.wallet_ids:
            return
        # A wallet created after the key was cached: ask the database once.
        async with session_scope(self.sessions) as session:
            owner = await session.scalar(
                text("SELECT account_id FROM wallets WHERE id = :w"), {"w": wallet_id}
            )
        if owner != principal.account_id:
            raise WalletForbidden()
        principal.wallet_ids.add(wallet_id)

    def revoke(self, key_id: str) -> None:
        """Evict a revoked key everywhere in this process, at once."""
        self._revoked.add(key_id)
        self._cache.pop(key_id, None)
        log.info("auth.key_evicted", key_id=key_id)

    async def flush_last_used(self, session: AsyncSession) -> int:
        """Write `last_used_at` for keys used since the last flush (one write per key)."""
        used, self._used = self._used, {}
        if not used:
            return 0
        await session.execute(
            text(
                "UPDATE api_keys k SET last_used_at = u.at"
                " FROM unnest(CAST(:ids AS text[]), CAST(:ats AS timestamptz[])) AS u(id, at)"
                " WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)"
            ),
            {"ids": list(used), "ats": list(used.values())},
        )
        return len(used)


def hash_secret(secret: str, rounds: int) -> str:
    """The bcrypt hash stored for a new secret."""
    return bcrypt.hashpw(secret.encode(), bcrypt.gensalt(rounds)).decode()
