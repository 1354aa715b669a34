"""Identifiers: time-ordered public ids and the random halves of API credentials."""

from __future__ import annotations

import random
import secrets
import string
import time

_BASE62 = string.digits + string.ascii_letters
# Ids need to be unique, not unguessable (every read is scoped to its wallet), so the
# fast Mersenne Twister serves; credentials below use `secrets`.
_random = random.Random()


def ulid() -> str:
    """A 32-character, lexicographically time-ordered id: 48-bit ms clock, 80 random bits.

    Time order keeps new rows at the right edge of the primary-key index. Hex is used
    because it costs a fraction of base32 on a path that mints thousands a second.
    """
    return f"{time.time_ns() // 1_000_000:012x}{_random.getrandbits(80):020x}"


def new_id(prefix: str) -> str:
    return f"{prefix}_{ulid()}"


def account_id() -> str:
    return new_id("acc")


def wallet_id() -> str:
    return new_id("wal")


def batch_id() -> str:
    return new_id("bat")


def message_id() -> str:
    return new_id("msg")


def group_id() -> str:
    return new_id("grp")


def random_base62(length: int) -> str:
    return "".join(secrets.choice(_BASE62) for _ in range(length))


def api_key(live: bool = True) -> str:
    """The public half of a credential: `sk_live_…` or, for the sandbox, `sk_test_…`."""
    return f"sk_{'live' if live else 'test'}_{random_base62(32)}"


def api_secret() -> str:
    """The private half, shown once and stored only as a bcrypt hash."""
    return f"ws_secret_{random_base62(40)}"
