"""Top-ups through failures: billing killed while payers approve, or down when one starts."""

from __future__ import annotations

import asyncio

from tests.platform.client import eventually
from tests.platform.conftest import StartPlatform


async def test_billing_killed_while_payers_approve_credits_each_deposit_once(
    start_platform: StartPlatform,
) -> None:
    # Payers approve after 1.5 s, so the callbacks reach the gateway while billing is dead.
    platform = await start_platform(extra_env={"MOMO_SIM_APPROVAL_DELAY": "1.5"})
    customer = await platform.customer(credit=0)
    replies = await asyncio.gather(
        *(customer.topup(1000 + n, f"07{7 if n % 2 else 5}2124{n:03d}") for n in range(10))
    )
    assert all(r.status == 202 for r in replies), replies
    platform.stack.kill("billing")
    await asyncio.sleep(3)  # every approval callback arrives meanwhile
    platform.stack.restart("billing")
    await asyncio.to_thread(platform.stack.wait_healthy, 30)

    async def all_ended() -> bool:
        statuses = [(await customer.deposit(r.body["depositId"])).body["status"] for r in replies]
        return all(status == "successful" for status in statuses)

    await eventually(all_ended, timeout=30)
    credits = await platform.rows(
        "SELECT reference, count(*) FROM ledger_entries WHERE kind = 'deposit'"
        " AND wallet_id = :w GROUP BY reference",
        w=customer.wallet_id,
    )
    assert sorted(count for _, count in credits) == [1] * 10
    assert await customer.balance() == sum(1000 + n for n in range(10))
    assert await platform.ledger_mismatches() == []


async def test_a_topup_started_while_billing_is_down_is_retried_once_with_its_key(
    start_platform: StartPlatform,
) -> None:
    platform = await start_platform(extra_env={"WESENDALL_RPC_TIMEOUT": "2"})
    customer = await platform.customer(credit=0)
    platform.stack.kill("billing")
    headers = {"Idempotency-Key": "topup-during-outage"}
    failed = await customer.topup(5000, "0772125000", headers=headers)
    assert failed.status == 500 and failed.code == "internal_error"
    platform.stack.restart("billing")
    await asyncio.to_thread(platform.stack.wait_healthy, 30)
    # Billing found the request waiting, past the gateway's deadline, and started nothing.
    await asyncio.sleep(1)
    deposits = await platform.scalar(
        "SELECT count(*) FROM deposits WHERE wallet_id = :w", w=customer.wallet_id
    )
    assert deposits == 0
    retried = await customer.topup(5000, "0772125000", headers=headers)
    assert retried.status == 202, retried
    deposit_id = retried.body["depositId"]

    async def credited() -> bool:
        return (await customer.deposit(deposit_id)).body["status"] == "successful"

    await eventually(credited)
    assert await customer.balance() == 5000
    assert await platform.ledger_mismatches() == []
