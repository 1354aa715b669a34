"""Concurrent sends against one wallet: the balance decides, exactly, and the ledger agrees."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from tests.platform.conftest import Platform, StartPlatform


async def test_forty_concurrent_sends_against_a_balance_for_twenty(platform: Platform) -> None:
    customer = await platform.customer(credit=20 * 35)
    replies = await asyncio.gather(
        *(customer.send(f"Concurrent {n}", f"+25677230{n:04d}") for n in range(40))
    )
    statuses = sorted(r.status for r in replies)
    assert statuses == [202] * 20 + [402] * 20
    assert all(r.code == "insufficient_balance" for r in replies if r.status == 402)
    assert await customer.balance() == 0
    assert (
        await platform.scalar(
            "SELECT count(*) FROM messages WHERE wallet_id = :w", w=customer.wallet_id
        )
        == 20
    )
    assert (
        await platform.scalar(
            "SELECT count(*) FROM ledger_entries WHERE wallet_id = :w AND kind = 'charge'",
            w=customer.wallet_id,
        )
        == 20
    )
    assert await platform.ledger_mismatches() == []


async def test_a_send_answered_with_an_error_at_the_deadline_is_never_charged(
    start_platform: StartPlatform,
) -> None:
    """Billing waits on the wallet's lock past the gateway's deadline: the customer gets an
    error, so the admission must not commit once the lock is free."""
    platform = await start_platform(extra_env={"WESENDALL_RPC_TIMEOUT": "2"})
    customer = await platform.customer(credit=10_000)
    async with platform.sessions() as session, session.begin():
        # Another admission of the same wallet, slow to commit, holds its row.
        await session.execute(
            text("SELECT 1 FROM wallets WHERE id = :w FOR UPDATE"), {"w": customer.wallet_id}
        )
        reply = await customer.send("Stuck behind the lock", "0772123460")
        assert reply.status == 500 and reply.code == "internal_error", reply
        await asyncio.sleep(0.5)
    # The lock is free now; give billing time to do whatever it would do with the request.
    await asyncio.sleep(2)
    assert await customer.balance() == 10_000
    assert (
        await platform.scalar(
            "SELECT count(*) FROM batches WHERE wallet_id = :w", w=customer.wallet_id
        )
        == 0
    )
    after = await customer.send("And then it goes", "0772123461")
    assert after.status == 202
    assert await customer.balance() == 10_000 - 35
    assert await platform.ledger_mismatches() == []
