"""Command-line and environment settings of the carrier simulator."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

IdFormat = Literal["hex", "decimal"]
ReceiptIdFormat = Literal["same", "decimal"]


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    """Everything the simulator needs to start; tests build their own."""

    smpp_host: str = "127.0.0.1"
    smpp_port: int = 2775
    http_host: str = "127.0.0.1"
    http_port: int = 8091
    # Bound system_id -> carrier label; an unlisted system_id is labelled by itself. Each
    # carrier has a second account for priority (transactional) traffic: receipts go only
    # to binds of the account that submitted the message.
    accounts: Mapping[str, str] = field(
        default_factory=lambda: {
            "mtn": "mtn",
            "airtel": "airtel",
            "mtn-priority": "mtn",
            "airtel-priority": "airtel",
        }
    )
    receipt_delay: float = 0.5
    submit_delay: float = 0.0
    id_format: IdFormat = "hex"
    receipt_id_format: ReceiptIdFormat = "same"
    max_messages: int = 1_000_000
    # In-flight deliver_sm per session, like the window a real SMSC keeps towards an ESME.
    receipt_window: int = 32
    stats_interval: float = 5.0

    def carrier_for(self, system_id: str) -> str:
        """The carrier label a bind with this system_id is served as."""
        return self.accounts.get(system_id, system_id)


def parse_accounts(spec: str) -> dict[str, str]:
    """Parse `system_id=carrier` pairs separated by commas."""
    accounts: dict[str, str] = {}
    for pair in spec.split(","):
        pair = pair.strip()
        if not pair:
            continue
        system_id, sep, carrier = pair.partition("=")
        if not sep or not system_id.strip() or not carrier.strip():
            raise ValueError(f"account {pair!r} is not system_id=carrier")
        accounts[system_id.strip()] = carrier.strip()
    return accounts


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _accounts(text: str) -> dict[str, str]:
    try:
        return parse_accounts(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """An argument parser whose defaults come from `environ`, then from the built-in defaults."""
    defaults = SimulatorSettings()
    parser = argparse.ArgumentParser(
        prog="python -m simulators.carrier",
        description="SMPP 3.4 carrier simulator (MTN / Airtel Uganda) with an inspection API.",
    )

    def option(flag: str, env_name: str, fallback: object, text: str, **kwargs: Any) -> None:
        # argparse runs `type` over string defaults too, so env values are parsed like flags.
        default = environ.get(env_name, str(fallback))
        parser.add_argument(
            flag, default=default, help=f"{text} (env {env_name}; default {fallback})", **kwargs
        )

    option("--smpp-host", "SIM_SMPP_HOST", defaults.smpp_host, "SMPP listen address")
    option("--smpp-port", "SIM_SMPP_PORT", defaults.smpp_port, "SMPP port", type=int)
    option("--http-host", "SIM_HTTP_HOST", defaults.http_host, "inspection API address")
    option("--http-port", "SIM_HTTP_PORT", defaults.http_port, "inspection API port", type=int)
    option(
        "--accounts",
        "SIM_ACCOUNTS",
        ",".join(f"{system_id}={carrier}" for system_id, carrier in defaults.accounts.items()),
        "bound system_id -> carrier label, as system_id=carrier pairs, comma separated",
        type=_accounts,
    )
    option(
        "--receipt-delay",
        "SIM_RECEIPT_DELAY",
        defaults.receipt_delay,
        "seconds between accepting a submit and pushing its receipt",
        type=_non_negative_float,
    )
    option(
        "--submit-delay",
        "SIM_SUBMIT_DELAY",
        defaults.submit_delay,
        "seconds each submit_sm_resp is held (a slow SMSC)",
        type=_non_negative_float,
    )
    option(
        "--id-format",
        "SIM_ID_FORMAT",
        defaults.id_format,
        "message ids in submit_sm_resp: 10 hex digits or decimal",
        choices=["hex", "decimal"],
    )
    option(
        "--receipt-id-format",
        "SIM_RECEIPT_ID_FORMAT",
        defaults.receipt_id_format,
        "'decimal' quotes ids in decimal in receipts even when submit_sm_resp gave hex",
        choices=["same", "decimal"],
    )
    option(
        "--max-messages",
        "SIM_MAX_MESSAGES",
        defaults.max_messages,
        "stored messages kept for inspection; the oldest are dropped",
        type=int,
    )
    option(
        "--receipt-window",
        "SIM_RECEIPT_WINDOW",
        defaults.receipt_window,
        "deliver_sm in flight per session",
        type=int,
    )
    option(
        "--stats-interval",
        "SIM_STATS_INTERVAL",
        defaults.stats_interval,
        "seconds between traffic log lines",
        type=_non_negative_float,
    )
    return parser


def parse_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> SimulatorSettings:
    """Settings from the command line, falling back to environment variables."""
    parser = build_parser(os.environ if environ is None else environ)
    args = parser.parse_args(argv)
    if args.max_messages < 1 or args.receipt_window < 1:
        parser.error("--max-messages and --receipt-window must be >= 1")
    # argparse checks choices on the command line only, not on defaults read from the env.
    if args.id_format not in ("hex", "decimal"):
        parser.error(f"--id-format: invalid choice {args.id_format!r}")
    if args.receipt_id_format not in ("same", "decimal"):
        parser.error(f"--receipt-id-format: invalid choice {args.receipt_id_format!r}")
    return SimulatorSettings(
        smpp_host=args.smpp_host,
        smpp_port=args.smpp_port,
        http_host=args.http_host,
        http_port=args.http_port,
        accounts=args.accounts,
        receipt_delay=args.receipt_delay,
        submit_delay=args.submit_delay,
        id_format=args.id_format,
        receipt_id_format=args.receipt_id_format,
        max_messages=args.max_messages,
        receipt_window=args.receipt_window,
        stats_interval=args.stats_interval,
    )
