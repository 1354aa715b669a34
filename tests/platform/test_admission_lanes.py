"""Admissions in two lanes: `billing` admits small sends, `billing-bulk` large ones, and
each takes the other's while that one is gone, so neither kind of send depends on both."""

from __future__ import annotations

import asyncio

from tests.platform.conftest import StartPlatform

# More than the gateway batches with OTPs (WESENDALL_RPC_BATCH_MAX_RECIPIENTS, 10).
LARGE = [f"+2567725{n:05d}" for n in range(50)]


async def test_a_large_send_is_admitted_by_billing_bulk_and_an_otp_by_billing(
    start_platform: StartPlatform,
) -> None:
    platform = await start_platform(extra_env={"WESENDALL_RPC_TIMEOUT": "2"})
    customer = await platform.customer(credit=100_000)

    with platform.frozen("billing-bulk"):
        otp = await customer.send("Your code is 1234", "0772123456")
        campaign = await customer.send("Sale today", LARGE)
    assert otp.status == 202, otp
    assert (campaign.status, campaign.code) == (500, "internal_error")  # waited on billing-bulk

    with platform.frozen("billing"):
        campaign = await customer.send("Sale today", LARGE)
        otp = await customer.send("Your code is 1234", "0772123456")
    assert campaign.status == 202, campaign
    assert (otp.status, otp.code) == (500, "internal_error")  # waited on billing

    # Neither timed-out request was charged: billing found them past their deadline.
    await asyncio.sleep(0.5)
    assert await customer.balance() == 100_000 - 35 - 35 * len(LARGE)
    assert await platform.ledger_mismatches() == []


async def test_with_one_billing_process_gone_the_other_admits_both_lanes(
    start_platform: StartPlatform,
) -> None:
    platform = await start_platform()
    customer = await platform.customer(credit=100_000)

    platform.stack.kill("billing-bulk")
    campaign = await customer.send("Sale today", LARGE)
    assert campaign.status == 202, campaign
    platform.stack.restart("billing-bulk")
    await asyncio.to_thread(platform.stack.wait_healthy, 30)

    platform.stack.kill("billing")
    otp = await customer.send("Your code is 1234", "0772123456")
    assert otp.status == 202, otp
    platform.stack.restart("billing")
    await asyncio.to_thread(platform.stack.wait_healthy, 30)

    assert await customer.balance() == 100_000 - 35 * len(LARGE) - 35
    assert await platform.ledger_mismatches() == []
