"""Authentication, wallet scoping and rate limits, as the contract's error table says."""

from __future__ import annotations

import asyncio
from datetime import datetime

from tests.platform.client import Customer, basic, eventually
from tests.platform.conftest import Platform

BALANCE = "/api/v1/account/balance"


async def _balance_with(customer: Customer, auth: str | bool) -> tuple[int, str | None]:
    reply = await customer.request(
        "GET", BALANCE, params={"walletId": customer.wallet_id}, auth=auth
    )
    return reply.status, reply.code


async def test_missing_or_malformed_credentials_are_invalid(customer: Customer) -> None:
    for auth in (
        False,
        "Bearer abc",
        "Basic !!!not-base64!!!",
        "Basic " + "bm9jb2xvbg==",  # "nocolon"
        basic(customer.api_key, ""),
        basic("", customer.api_secret),
    ):
        assert await _balance_with(customer, auth) == (401, "invalid_credentials"), auth


async def test_unknown_key_and_wrong_secret_are_invalid(customer: Customer) -> None:
    assert await _balance_with(customer, basic("sk_live_unknown", customer.api_secret)) == (
        401,
        "invalid_credentials",
    )
    assert await _balance_with(customer, basic(customer.api_key, "ws_secret_wrong")) == (
        401,
        "invalid_credentials",
    )
    # Once the right secret is cached, a wrong one is still refused.
    assert await _balance_with(customer, True) == (200, None)
    assert await _balance_with(customer, basic(customer.api_key, "ws_secret_wrong")) == (
        401,
        "invalid_credentials",
    )


async def test_a_revoked_key_is_refused_at_once_even_from_the_cache(
    platform: Platform, customer: Customer
) -> None:
    assert await _balance_with(customer, True) == (200, None)  # now in the fast path
    await platform.cli("admin", "revoke-key", "--key", customer.api_key)

    async def refused() -> bool:
        return await _balance_with(customer, True) == (401, "key_revoked")

    # The key.revoked event evicts it; nothing waits for the cache to expire.
    await eventually(refused, timeout=3)


async def test_another_accounts_wallet_is_forbidden(platform: Platform, customer: Customer) -> None:
    other = await platform.customer()
    for wallet in (other.wallet_id, "wal_does_not_exist"):
        reply = await customer.request("GET", BALANCE, params={"walletId": wallet})
        assert (reply.status, reply.code) == (403, "wallet_forbidden")
        reply = await customer.request(
            "POST",
            "/api/v1/sms/send",
            json={"walletId": wallet, "message": "hi", "recipient": "0772123456"},
        )
        assert (reply.status, reply.code) == (403, "wallet_forbidden")
    assert await other.balance() == 10_000


async def test_over_the_keys_rate_requests_get_429_with_retry_after(platform: Platform) -> None:
    customer = await platform.customer(rate_limit=2)  # 2/s, bursts of 4
    replies = await asyncio.gather(
        *(
            customer.request("GET", BALANCE, params={"walletId": customer.wallet_id})
            for _ in range(8)
        )
    )
    limited = [r for r in replies if r.status == 429]
    assert limited, [r.status for r in replies]
    assert all(r.code == "rate_limited" for r in limited)
    assert all(int(r.headers["Retry-After"]) >= 1 for r in limited)


async def test_last_used_is_recorded_without_a_write_per_request(
    platform: Platform, customer: Customer
) -> None:
    for _ in range(5):
        await customer.balance()

    async def recorded() -> datetime | None:
        return await platform.scalar(
            "SELECT last_used_at FROM api_keys WHERE id = :k", k=customer.api_key
        )

    await eventually(recorded, timeout=5)


async def test_secrets_never_reach_the_logs(platform: Platform, customer: Customer) -> None:
    await customer.send("log check", "0772123456")
    await customer.request(
        "GET",
        BALANCE,
        params={"walletId": customer.wallet_id},
        auth=basic(customer.api_key, "ws_secret_typo"),
    )
    for path in platform.logs.glob("*.log"):
        content = path.read_text(errors="replace")
        assert customer.api_secret not in content, path.name
        assert "ws_secret_typo" not in content, path.name
