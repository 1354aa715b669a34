"""One benchmark run: the ceiling, then a platform of its own for the other phases."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from typing import Any

from bench.cpu import CpuMonitor
from bench.logscan import LogWatch
from bench.machine import describe
from bench.options import Options
from bench.phases.campaign import run_campaign
from bench.phases.ceiling import run_ceiling
from bench.phases.common import Context, progress
from bench.phases.single import run_single
from bench.phases.webhooks import run_webhooks
from bench.platform import start_platform, stop_platform
from bench.report import add_cpu_costs, add_ratios
from libs.common.settings import DEFAULT_AMQP_URL, DEFAULT_DATABASE_URL

PLATFORM_PHASES = frozenset({"single", "campaign", "webhooks"})


def servers() -> tuple[str, str]:
    """Postgres and RabbitMQ: the configured ones, or the conventional local ones."""
    return (
        os.environ.get("WESENDALL_DATABASE_URL", DEFAULT_DATABASE_URL),
        os.environ.get("WESENDALL_AMQP_URL", DEFAULT_AMQP_URL),
    )


async def run(options: Options) -> dict[str, Any]:
    """Run the chosen phases and return the results document."""
    database_url, amqp_url = servers()
    results: dict[str, Any] = {
        "ceiling": None,
        "single": None,
        "campaign": None,
        "otp_during_campaign": None,
        "webhooks": None,
        "machine": await describe(database_url, amqp_url),
    }
    results["machine"]["quick"] = options.quick
    monitor = CpuMonitor(
        pids={"bench": os.getpid()},
        commands={"postgres": ("postgres",), "rabbitmq": ("beam.smp",)},
    )
    ctx = Context(options, monitor)
    sampling = asyncio.ensure_future(monitor.run()) if CpuMonitor.available() else None
    try:
        if "ceiling" in options.phases:
            results["ceiling"] = await run_ceiling(ctx)
        if PLATFORM_PHASES.intersection(options.phases):
            await _platform_phases(ctx, results, database_url, amqp_url)
    finally:
        if sampling is not None:
            sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampling
    add_ratios(results)
    add_cpu_costs(results)
    return results


async def _platform_phases(
    ctx: Context, results: dict[str, Any], database_url: str, amqp_url: str
) -> None:
    options = ctx.options
    progress("starting the platform")
    platform = await start_platform(
        database_url,
        amqp_url,
        # A short receipt delay keeps receipts from piling up behind the measured submits.
        extra_env={
            "SIM_RECEIPT_DELAY": str(options.receipt_delay),
            # The simulator is a fast SMSC: the benchmark measures our pipeline, not a
            # carrier's contractual pace (which production configures per bind).
            **{
                f"WESENDALL_CARRIER_LINKS__{carrier}__{name}": str(value)
                for carrier in ("MTN", "AIRTEL")
                for name, value in (
                    ("RATE", options.carrier_rate),
                    ("WINDOW", options.carrier_window),
                    ("BINDS", options.carrier_binds),
                )
            },
        },
        log_level=options.log_level,
    )
    ctx.platform, ctx.logs = platform, LogWatch(platform.logs)
    ctx.monitor.pids.update(platform.pids())
    ctx.monitor.database = platform.database
    troubles = ["the run did not finish"]
    try:
        progress(f"priming the database with {options.history:,} past messages")
        await platform.prime_history(options.history)
        ctx.customer = await platform.create_customer(options.credit, options.rate_limit)
        if options.otp_own_wallet:
            ctx.otp_customer = await platform.create_customer(options.credit, options.rate_limit)
        if "single" in options.phases:
            results["single"] = await run_single(ctx)
        if "campaign" in options.phases:
            results["campaign"], results["otp_during_campaign"] = await run_campaign(ctx)
        if "webhooks" in options.phases:
            results["webhooks"] = await run_webhooks(ctx)
        troubles = _troubles(results)
    finally:
        if troubles:
            progress("the platform misbehaved: " + "; ".join(troubles))
            print(f"bench: the end of each service's log ({platform.logs}):", file=sys.stderr)
            print(platform.log_tails(), file=sys.stderr)
        keep = bool(troubles) or options.keep_logs
        if keep:
            progress(f"service logs kept in {platform.logs}")
        await stop_platform(platform, keep_logs=keep)


def _troubles(results: dict[str, Any]) -> list[str]:
    """What in the results says the platform misbehaved, worth its logs on the terminal."""
    found = []
    for phase in ("single", "campaign", "otp_during_campaign", "webhooks"):
        result = results.get(phase) or {}
        if any(code != "202" for code in result.get("statuses", {})) or result.get("errors"):
            found.append(f"{phase}: non-202 replies or requests without a reply")
        if any(log["errors"] for log in (result.get("service_logs") or {}).values()):
            found.append(f"{phase}: services logged errors")
        if result.get("exited"):
            found.append(f"{phase}: processes exited: {result['exited']}")
        if result.get("drained") is False or result.get("not_at_carrier"):
            found.append(f"{phase}: the carrier did not receive every accepted message")
        if result.get("debit") and not result["debit"]["ok"]:
            found.append(f"{phase}: the wallet was not debited what the replies said")
    return found + _webhook_troubles(results.get("webhooks"))


def _webhook_troubles(result: dict[str, Any] | None) -> list[str]:
    """Events the receiver never got, or deliveries it could not read or verify."""
    if not result:
        return []
    found = []
    if result["missing"]:
        found.append(f"webhooks: {result['missing']:,} events were never delivered")
    if result["unreadable"]:
        found.append(f"webhooks: {result['unreadable']:,} deliveries without an id or createdAt")
    signatures = result["signatures"]
    if signatures["ok"] < signatures["checked"]:
        found.append(
            f"webhooks: {signatures['checked'] - signatures['ok']} of"
            f" {signatures['checked']} signatures did not verify"
        )
    return found
