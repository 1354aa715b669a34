"""Two senders: `sender-priority` submits OTPs, `sender` campaigns. The priority sender
binds under its own account at each carrier, so an OTP's receipt comes back to it and
never waits behind a campaign's receipts, wherever those are held up.
"""

from __future__ import annotations

from tests.platform.client import eventually
from tests.platform.conftest import StartPlatform

CAMPAIGN = [f"+2567726{n:05d}" for n in range(60)] + [f"+2567006{n:05d}" for n in range(60)]
OTPS = ("+256772123456", "+256700123456")  # one per carrier


async def test_an_otps_receipt_does_not_wait_behind_a_stalled_campaigns_receipts(
    start_platform: StartPlatform,
) -> None:
    # Receipts come 5 s after each submit: time to stall the bulk sender with the whole
    # campaign's receipts still to come.
    platform = await start_platform(extra_env={"SIM_RECEIPT_DELAY": "5"})
    customer = await platform.customer(credit=100_000)
    campaign = await customer.send("Sale today", CAMPAIGN)
    assert campaign.status == 202, campaign
    campaign_id = campaign.body["batchId"]

    async def submitted() -> bool:
        return (await customer.counts(campaign_id))["queued"] == 0

    await eventually(submitted, timeout=30, interval=0.1)

    # The bulk sender stops acknowledging receipts: the carrier holds the campaign's.
    with platform.frozen("sender"):
        otps = [await customer.send("Your code is 4821", otp) for otp in OTPS]
        assert all(otp.status == 202 for otp in otps), otps

        async def otps_delivered() -> bool:
            for otp in otps:
                if (await customer.counts(otp.body["batchId"]))["delivered"] != 1:
                    return False
            return True

        await eventually(otps_delivered, timeout=20, interval=0.2)
        assert (await customer.counts(campaign_id))["delivered"] == 0
        stats = await platform.simulator("/stats")
        assert stats["receipts_pending"] >= len(CAMPAIGN), stats

    async def campaign_delivered() -> bool:
        return (await customer.counts(campaign_id))["delivered"] == len(CAMPAIGN)

    await eventually(campaign_delivered, timeout=60, interval=0.5)
    assert await customer.balance() == 100_000 - 35 * (len(CAMPAIGN) + len(OTPS))
    assert await platform.ledger_mismatches() == []
