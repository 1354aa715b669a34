"""Phases 2 and 3: a campaign in large requests, with the OTP stream running through it."""

from __future__ import annotations

from typing import Any

from bench import otp
from bench.phases.common import (
    CAMPAIGN_TEXT,
    LOAD_GRACE,
    OTP_TEXT,
    SEND_PATH,
    Context,
    debit_check,
    progress,
    start_load,
    start_profile,
)
from bench.platform import BenchPlatform, Customer
from bench.stats import rate

_POLL_INTERVAL = 0.25
_PROFILE_SECONDS = 30.0


def _payer(customer: Customer | None) -> dict[str, str]:
    """The wallet and key the OTPs are paid with, when not the campaign's."""
    if customer is None:
        return {}
    return {"wallet_id": customer.wallet_id, "authorization": customer.authorization}


async def _balance(platform: BenchPlatform, payers: list[Customer]) -> int:
    return sum([await platform.balance(payer) for payer in payers])


async def run_campaign(ctx: Context) -> tuple[dict[str, Any], dict[str, Any]]:
    """The campaign's figures and the OTPs' figures."""
    options = ctx.options
    platform, customer, logs = ctx.started()
    await platform.wait_quiet()
    await platform.simulator("DELETE", "/messages")  # counters from zero
    payers = [customer] if ctx.otp_customer is None else [customer, ctx.otp_customer]
    balance_before = await _balance(platform, payers)
    logs.mark()
    progress(
        f"campaign: {options.campaign_recipients} recipients in"
        f" {options.campaign_recipients // options.batch_size} requests,"
        f" {options.campaign_in_flight} in flight, an OTP every {options.otp_interval * 1000:.0f}ms"
    )
    load = await start_load(
        ctx,
        {
            "mode": "campaign",
            "url": platform.base_url + SEND_PATH,
            "authorization": customer.authorization,
            "wallet_id": customer.wallet_id,
            "message": CAMPAIGN_TEXT,
            "recipients": options.campaign_recipients,
            "batch": options.batch_size,
            "in_flight": options.campaign_in_flight,
            "otp": {
                "interval": options.otp_interval,
                "message": OTP_TEXT,
                "max_in_flight": options.otp_max_in_flight,
                **_payer(ctx.otp_customer),
            },
            "simulator_url": platform.simulator_url,
            "poll_interval": _POLL_INTERVAL,
            "drain_timeout": options.drain_timeout,
        },
    )
    profile = start_profile(ctx, "campaign", 0.0, _PROFILE_SECONDS)
    result = await load.result(options.drain_timeout * 2 + LOAD_GRACE)
    balance_after = await _balance(platform, payers)
    sent, otps_sent, samples = result["campaign"], result["otp"], result["samples"]
    progress(f"looking up {len(otps_sent['accepted'])} OTPs at the carrier simulator")
    otp_recipients = [r for r, _, _ in otps_sent["accepted"]]
    received = await otp.lookup(platform, otp_recipients)
    settled = await platform.settled(otp_recipients)
    arrivals = sorted(received.values())
    accepted = sent["accepted_recipients"]
    first, last = sent["first_request_wall"], sent["last_accepted_wall"]
    done = otp.campaign_finished(samples, arrivals, accepted)
    accept_s = last - first if last else None
    submit_s = done - first if done else None
    stored = otp.receipts_stored(samples)
    receipts_s = stored - first if stored else None
    campaign: dict[str, Any] = {
        "recipients": options.campaign_recipients,
        "requests": sent["requests"],
        "batch": sent["batch"],
        "in_flight": sent["in_flight"],
        "otp_wallet": "campaign's" if ctx.otp_customer is None else "own",
        "accepted_recipients": accepted,
        "accept_s": round(accept_s, 2) if accept_s else None,
        "accepted_recipients_per_s": rate(accepted, accept_s),
        "submit_s": round(submit_s, 2) if submit_s else None,
        "submitted_recipients_per_s": rate(accepted, submit_s),
        "drained": done is not None,
        "carrier_received": otp.campaign_arrived(samples[-1], arrivals) if samples else 0,
        "carrier_peak_submits_per_s": otp.peak_rate(samples),
        "receipts_s": round(receipts_s, 2) if receipts_s else None,
        "receipts_stored_per_s": rate(accepted, receipts_s),
        "receipts_unstored_when_submitted": otp.receipts_unstored_at(samples, done),
        "request_latency": sent["latency"],
        "statuses": sent["statuses"],
        "errors": sent["errors"],
        "error_samples": sent["samples"],
        "debit": debit_check(
            balance_before - balance_after,
            sent["cost_total"] + otps_sent["cost_total"],
            unanswered=sum(sent["errors"].values()) + sum(otps_sent["errors"].values()),
        ),
        "cpu_while_accepting": await ctx.monitor.usage_after(first, last) if last else None,
        "cpu_while_draining": (
            await ctx.monitor.usage_after(last, done) if last and done else None
        ),
        "service_logs": logs.read(),
        "exited": platform.stack.exited(),
    }
    if profile is not None:
        campaign["profile"] = await profile.finish()
    return campaign, otp.summarise(otps_sent, received, settled, last, done)
