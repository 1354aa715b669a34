"""Command-line options of `python -m bench`; `--quick` shrinks every size about tenfold."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path

from bench.profiling import FORMATS

PHASES = ("ceiling", "single", "campaign", "webhooks")
SERVICES = (
    "api_gateway",
    "billing",
    "billing-bulk",
    "sender",
    "sender-priority",
    "webhooks",
    "carrier-simulator",
)
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Options:
    phases: tuple[str, ...]
    concurrency: int
    ceiling_seconds: float
    warmup: float
    duration: float
    campaign_recipients: int
    batch_size: int
    campaign_in_flight: int
    otp_interval: float
    otp_max_in_flight: int
    otp_own_wallet: bool
    webhook_events: int
    drain_timeout: float
    receipt_delay: float
    carrier_rate: float
    history: int
    carrier_window: int
    carrier_binds: int
    log_level: str
    credit: int
    rate_limit: int
    profile: str | None
    profile_phase: str
    profile_format: str
    profile_seconds: float | None
    output: Path
    keep_logs: bool
    quick: bool


# Sizes for a full run and for `--quick`; a flag given on the command line wins over both.
FULL: dict[str, float | int] = {
    "ceiling_seconds": 10.0,
    "warmup": 3.0,
    "duration": 20.0,
    "campaign_recipients": 100_000,
    "webhook_events": 20_000,
    "drain_timeout": 600.0,
}
QUICK: dict[str, float | int] = {
    "ceiling_seconds": 2.0,
    "warmup": 1.0,
    "duration": 2.0,
    "campaign_recipients": 10_000,
    "webhook_events": 2_000,
    "drain_timeout": 120.0,
}


def _phases(text: str) -> tuple[str, ...]:
    chosen = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = set(chosen) - set(PHASES)
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"phases are a comma-separated subset of {PHASES}")
    return tuple(p for p in PHASES if p in chosen)


def build_parser() -> argparse.ArgumentParser:
    """The parser; `python -m bench --help` prints it."""
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the Wesendall platform on this machine (loopback only).",
    )
    p.add_argument("--quick", action="store_true", help="a smoke run: every size ~10x smaller")
    p.add_argument("--phases", type=_phases, default=PHASES, help="default: all of them")
    p.add_argument("--concurrency", type=int, default=64, help="ceiling and single sends")
    p.add_argument("--ceiling-seconds", type=float, help="default 10 (quick: 2)")
    p.add_argument("--warmup", type=float, help="seconds before measuring; default 3 (quick: 1)")
    p.add_argument("--duration", type=float, help="single-send window; default 20 (quick: 2)")
    p.add_argument("--campaign-recipients", type=int, help="default 100000 (quick: 10000)")
    p.add_argument("--batch-size", type=int, default=1000, help="recipients per campaign request")
    p.add_argument("--campaign-in-flight", type=int, default=8, help="campaign requests at once")
    p.add_argument("--otp-interval", type=float, default=0.05, help="seconds between OTPs")
    p.add_argument("--otp-max-in-flight", type=int, default=64, help="unanswered OTPs allowed")
    p.add_argument(
        "--otp-shared-wallet",
        dest="otp_own_wallet",
        action="store_false",
        help="pay the OTPs from the campaign's wallet instead of another customer's",
    )
    p.add_argument("--webhook-events", type=int, help="default 20000 (quick: 2000)")
    p.add_argument("--drain-timeout", type=float, help="default 600 (quick: 120)")
    p.add_argument("--receipt-delay", type=float, default=0.05, help="carrier simulator's")
    p.add_argument(
        "--carrier-rate", type=float, default=0, help="submit_sm/s per bind, 0 = unpaced"
    )
    p.add_argument(
        "--history", type=int, default=200_000, help="past messages in the database first"
    )
    p.add_argument("--carrier-window", type=int, default=64, help="outstanding submit_sm per bind")
    p.add_argument("--carrier-binds", type=int, default=1, help="submit binds per carrier")
    p.add_argument("--log-level", default="WARNING", help="the services' log level")
    p.add_argument("--credit", type=int, default=100_000_000, help="UGX on the test wallet")
    p.add_argument("--rate-limit", type=int, default=100_000, help="the key's requests/s")
    p.add_argument("--profile", choices=SERVICES, help="record this service with py-spy")
    p.add_argument("--profile-phase", choices=("single", "campaign", "webhooks"), default="single")
    p.add_argument("--profile-format", choices=tuple(FORMATS), default="flamegraph")
    p.add_argument("--profile-seconds", type=float, help="default: the single-send window, or 30 s")
    p.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    p.add_argument("--keep-logs", action="store_true", help="keep the services' logs")
    return p


def parse_options(argv: list[str] | None = None) -> Options:
    """Options from the command line, sizes filled in from FULL or QUICK."""
    parser = build_parser()
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    for name, value in sizes.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.campaign_recipients % args.batch_size:
        parser.error("--campaign-recipients must be a multiple of --batch-size")
    if args.webhook_events <= 0:
        parser.error("--webhook-events must be positive")
    if args.profile and args.profile_phase not in args.phases:
        parser.error(f"--profile-phase {args.profile_phase} is not among --phases")
    return Options(**{f.name: getattr(args, f.name) for f in fields(Options)})
