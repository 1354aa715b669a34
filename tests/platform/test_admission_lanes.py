"""Where sends are admitted: small ones by the gateway itself, large ones by `billing-bulk`,
and by `billing` while `billing-bulk` is gone, so an OTP depends on neither billing
process and a campaign on either one."""

from __future__ import annotations

import asyncio

from tests.platform.conftest import StartPlatform

# More than the gateway admits itself (WESENDALL_DIRECT_ADMISSION_MAX_RECIPIENTS, 10).
LARGE = [f"+2567725{n:05d}" for n in range(50)]


async def test_an_otp_is_admitted_by_the_gateway_and_a_large_send_by_billing_bulk(
    start_platform: StartPlatform,
) -> None:
    platform = await start_platform(extra_env={"WESENDALL_RPC_TIMEOUT": "2"})
    customer = await platform.customer(credit=100_000)

    with platform.frozen("billing"), platform.frozen("billing-bulk"):
        otp = await customer.send("Your code is 1234", "0772123456")
        campaign = await customer.send("Sale today", LARGE)
    assert otp.status == 202, otp
    assert (campaign.status, campaign.code) == (500, "internal_error")  # waited on billing-bulk
    await customer.settled(otp.body["batchId"], timeout=30)

    with platform.frozen("billing"):
        campaign = await customer.send("Sale today", LARGE)
    assert campaign.status == 202, campaign

    # The timed-out campaign was not charged: billing-bulk found it past its deadline.
    await asyncio.sleep(0.5)
    assert await customer.balance() == 100_000 - 35 - 35 * len(LARGE)
    assert await platform.ledger_mismatches() == []


async def test_with_billing_bulk_gone_billing_admits_large_sends(
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
    await customer.settled(campaign.body["batchId"], timeout=60)
    await customer.settled(otp.body["batchId"], timeout=30)
    platform.stack.restart("billing")
    await asyncio.to_thread(platform.stack.wait_healthy, 30)

    assert await customer.balance() == 100_000 - 35 * len(LARGE) - 35
    assert await platform.ledger_mismatches() == []
