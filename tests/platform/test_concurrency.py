"""Concurrent sends against one wallet: the balance decides, exactly, and the ledger agrees."""

from __future__ import annotations

import asyncio

from tests.platform.conftest import Platform


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
