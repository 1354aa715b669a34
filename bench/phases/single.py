"""Phase 1: single-recipient sends at fixed concurrency, then the carrier's drain."""

from __future__ import annotations

from typing import Any

from bench import numbers
from bench.phases.common import (
    LOAD_GRACE,
    OTP_TEXT,
    SEND_PATH,
    Context,
    debit_check,
    progress,
    start_load,
    start_profile,
    window_figures,
)
from bench.stats import rate


async def run_single(ctx: Context) -> dict[str, Any]:
    """Accepted sends/s and latency; whether the carrier kept pace; whether each was paid."""
    options = ctx.options
    platform, customer, logs = ctx.started()
    await platform.wait_quiet()
    await platform.simulator("DELETE", "/messages")  # counters from zero
    balance_before = await platform.balance(customer)
    logs.mark()
    progress(
        f"single sends: {options.warmup:.0f}s warm-up, {options.duration:.0f}s measured"
        f" at concurrency {options.concurrency}"
    )
    load = await start_load(
        ctx,
        {
            "mode": "closed",
            "url": platform.base_url + SEND_PATH,
            "authorization": customer.authorization,
            "wallet_id": customer.wallet_id,
            "message": OTP_TEXT,
            "stream": numbers.SINGLE,
            "concurrency": options.concurrency,
            "warmup": options.warmup,
            "duration": options.duration,
            "simulator_url": platform.simulator_url,
            "read_cost": True,
            "drain_timeout": options.drain_timeout,
        },
    )
    profile = start_profile(ctx, "single", options.warmup, options.duration)
    result = await load.result(
        options.warmup + options.duration + options.drain_timeout + LOAD_GRACE
    )
    balance_after = await platform.balance(customer)
    opened, closed, drain = (
        result["simulator_at_open"],
        result["simulator_at_close"],
        result["drain"],
    )
    summary: dict[str, Any] = {
        "accepted_per_s": result["accepted_per_s"],
        "accepted": result["accepted"],
        **window_figures(result),
        "carrier_submits_per_s": rate(
            closed["submits"] - opened["submits"], closed["at"] - opened["at"]
        ),
        "accepted_total": result["accepted_total"],
        # Accepted (202 read by the client) but not yet received by the carrier.
        "backlog_at_close": result["accepted_at_close"] - closed["distinct"],
        "drained": drain["drained"],
        "drain_s": round(drain["final"]["at"] - result["window_end_wall"], 2),
        "carrier_received": drain["final"]["distinct"],
        "carrier_duplicates": drain["final"]["duplicates"],
        "debit": debit_check(
            balance_before - balance_after,
            result["cost_total"],
            unanswered=sum(result["total"]["errors"].values()),
            per_unit_35=35 * result["accepted_total"],
        ),
        "cpu": await ctx.monitor.usage_after(
            result["window_start_wall"], result["window_end_wall"]
        ),
        "service_logs": logs.read(),
        "exited": platform.stack.exited(),
    }
    if profile is not None:
        summary["profile"] = await profile.finish()
    return summary
