"""What every phase shares: the run's context, the load process, profiles, debit checks."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from bench.cpu import CpuMonitor
from bench.loadproc import LoadProcess
from bench.logscan import LogWatch
from bench.options import Options
from bench.platform import BenchPlatform, Customer
from bench.profiling import Profile

SEND_PATH = "/api/v1/sms/send"
OTP_TEXT = "Your Wesendall verification code is 482913. It expires in 10 minutes."
CAMPAIGN_TEXT = (
    "Wesendall Market Day: 20% off all airtime bundles this weekend. Reply STOP to opt out."
)
# Beyond the phase's own timeouts: start-up, the tail of in-flight requests, shutdown.
LOAD_GRACE = 120.0


@dataclass
class Context:
    options: Options
    monitor: CpuMonitor
    platform: BenchPlatform | None = None
    customer: Customer | None = None
    otp_customer: Customer | None = None  # with --otp-own-wallet
    logs: LogWatch | None = None

    def started(self) -> tuple[BenchPlatform, Customer, LogWatch]:
        """The platform, its customer and its logs, once the platform is up."""
        assert self.platform is not None and self.customer is not None
        assert self.logs is not None
        return self.platform, self.customer, self.logs


def progress(text: str) -> None:
    """A progress line on stderr; stdout carries only the table and the JSON."""
    print(f"bench: {text}", file=sys.stderr, flush=True)


async def start_load(ctx: Context, spec: dict[str, Any]) -> LoadProcess:
    """Start the load process and count its CPU."""
    load = await LoadProcess.start(spec)
    ctx.monitor.pids["load"] = load.pid
    return load


def start_profile(ctx: Context, phase: str, delay: float, seconds: float) -> Profile | None:
    """Start py-spy on the chosen service if this is the phase to profile."""
    options = ctx.options
    if options.profile is None or options.profile_phase != phase or ctx.platform is None:
        return None
    pid = ctx.platform.pids()[options.profile]
    profile = Profile(options.profile, pid, options.output.parent, options.profile_format)
    profile.start(delay, options.profile_seconds or seconds)
    return profile


def window_figures(result: dict[str, Any]) -> dict[str, Any]:
    """The figures a closed-loop window shares between the ceiling and single sends."""
    latency = result["latency"]
    return {
        "concurrency": result["concurrency"],
        "window_s": result["window_s"],
        "p50_ms": latency["p50_ms"],
        "p99_ms": latency["p99_ms"],
        "latency": latency,
        "statuses": result["window"]["statuses"],
        "errors": result["window"]["errors"],
        "error_samples": result["window"]["samples"],
    }


def debit_check(
    dropped: int, replied: int, unanswered: int, per_unit_35: int | None = None
) -> dict[str, Any]:
    """Whether the wallet paid exactly what the 202 replies said the sends cost."""
    debit: dict[str, Any] = {"balance_drop": dropped, "cost_in_replies": replied}
    if per_unit_35 is not None:
        debit["35_x_accepted"] = per_unit_35
    debit["ok"] = dropped == replied
    if unanswered:
        # A request that timed out may still have been admitted and charged.
        debit["requests_without_reply"] = unanswered
    return debit
