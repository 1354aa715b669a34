"""Command-line and environment settings of the Mobile Money simulator."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yarl


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    """Everything the simulator needs to start; tests build their own."""

    host: str = "127.0.0.1"
    port: int = 8092
    mtn_subscription_key: str = "sim-mtn-subscription-key"
    mtn_api_user: str = "2a0f2b6e-4c2f-4b8e-9d57-3f8c0d1e5a11"
    mtn_api_key: str = "sim-mtn-api-key"
    mtn_target_environment: str = "sandbox"
    # The providerCallbackHost of the configured API user; None accepts any callback host.
    mtn_callback_host: str | None = None
    mtn_token_lifetime: int = 3600
    airtel_client_id: str = "sim-airtel-client-id"
    airtel_client_secret: str = "sim-airtel-client-secret"
    # Airtel calls back one URL registered for the merchant app; None sends no callbacks.
    airtel_callback_url: str | None = None
    airtel_authenticated_callbacks: bool = True
    airtel_token_lifetime: int = 180
    approval_delay: float = 1.0
    callback_copies: int = 2
    callback_timeout: float = 5.0
    max_requests: int = 100_000


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError("must be true or false")


def _optional_url(text: str) -> str | None:
    if not text.strip():
        return None
    url = yarl.URL(text.strip())
    if url.scheme not in ("http", "https") or not url.host:
        raise argparse.ArgumentTypeError("must be an http(s) URL")
    return str(url)


def _optional_text(text: str) -> str | None:
    return text.strip() or None


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """An argument parser whose defaults come from `environ`, then from the built-in defaults."""
    defaults = SimulatorSettings()
    parser = argparse.ArgumentParser(
        prog="python -m simulators.mobile_money",
        description="MTN MoMo and Airtel Money collection API simulator with control endpoints.",
    )

    def option(flag: str, env_name: str, fallback: object, text: str, **kwargs: Any) -> None:
        # argparse runs `type` over string defaults too, so env values are parsed like flags.
        default = environ.get(env_name, "" if fallback is None else str(fallback))
        shown = "unset" if fallback is None else fallback
        parser.add_argument(
            flag, default=default, help=f"{text} (env {env_name}; default {shown})", **kwargs
        )

    option("--host", "MOMO_SIM_HOST", defaults.host, "listen address")
    option("--port", "MOMO_SIM_PORT", defaults.port, "listen port", type=int)
    option(
        "--mtn-subscription-key",
        "MOMO_SIM_MTN_SUBSCRIPTION_KEY",
        defaults.mtn_subscription_key,
        "the Ocp-Apim-Subscription-Key every MTN call must carry",
    )
    option("--mtn-api-user", "MOMO_SIM_MTN_API_USER", defaults.mtn_api_user, "MTN API user id")
    option("--mtn-api-key", "MOMO_SIM_MTN_API_KEY", defaults.mtn_api_key, "its API key")
    option(
        "--mtn-target-environment",
        "MOMO_SIM_MTN_TARGET_ENVIRONMENT",
        defaults.mtn_target_environment,
        "the X-Target-Environment MTN calls must name",
    )
    option(
        "--mtn-callback-host",
        "MOMO_SIM_MTN_CALLBACK_HOST",
        defaults.mtn_callback_host,
        "providerCallbackHost of the configured API user; X-Callback-Url hosts must match it",
        type=_optional_text,
    )
    option(
        "--mtn-token-lifetime",
        "MOMO_SIM_MTN_TOKEN_LIFETIME",
        defaults.mtn_token_lifetime,
        "seconds an MTN access token is accepted",
        type=_positive_int,
    )
    option(
        "--airtel-client-id", "MOMO_SIM_AIRTEL_CLIENT_ID", defaults.airtel_client_id, "client id"
    )
    option(
        "--airtel-client-secret",
        "MOMO_SIM_AIRTEL_CLIENT_SECRET",
        defaults.airtel_client_secret,
        "client secret, also the key of the callback hash",
    )
    option(
        "--airtel-callback-url",
        "MOMO_SIM_AIRTEL_CALLBACK_URL",
        defaults.airtel_callback_url,
        "the merchant app's callback URL; unset sends no Airtel callbacks",
        type=_optional_url,
    )
    option(
        "--airtel-authenticated-callbacks",
        "MOMO_SIM_AIRTEL_AUTHENTICATED_CALLBACKS",
        "true",
        "add the HMAC 'hash' to Airtel callbacks (true/false)",
        type=_boolean,
    )
    option(
        "--airtel-token-lifetime",
        "MOMO_SIM_AIRTEL_TOKEN_LIFETIME",
        defaults.airtel_token_lifetime,
        "seconds an Airtel access token is accepted",
        type=_positive_int,
    )
    option(
        "--approval-delay",
        "MOMO_SIM_APPROVAL_DELAY",
        defaults.approval_delay,
        "seconds from a request to the payer's answer",
        type=_non_negative_float,
    )
    option(
        "--callback-copies",
        "MOMO_SIM_CALLBACK_COPIES",
        defaults.callback_copies,
        "times each final callback is delivered",
        type=_non_negative_int,
    )
    option(
        "--callback-timeout",
        "MOMO_SIM_CALLBACK_TIMEOUT",
        defaults.callback_timeout,
        "seconds a callback receiver gets to answer",
        type=_non_negative_float,
    )
    option(
        "--max-requests",
        "MOMO_SIM_MAX_REQUESTS",
        defaults.max_requests,
        "payment requests kept; the oldest are dropped",
        type=_positive_int,
    )
    return parser


def parse_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> SimulatorSettings:
    """Settings from the command line, falling back to environment variables."""
    parser = build_parser(os.environ if environ is None else environ)
    args = parser.parse_args(argv)
    for name in ("mtn_subscription_key", "mtn_api_user", "mtn_api_key", "airtel_client_id"):
        if not getattr(args, name).strip():
            parser.error(f"--{name.replace('_', '-')} must not be empty")
    if not args.airtel_client_secret:
        parser.error("--airtel-client-secret must not be empty")
    if args.callback_timeout <= 0:
        parser.error("--callback-timeout must be > 0")
    return SimulatorSettings(
        host=args.host,
        port=args.port,
        mtn_subscription_key=args.mtn_subscription_key,
        mtn_api_user=args.mtn_api_user,
        mtn_api_key=args.mtn_api_key,
        mtn_target_environment=args.mtn_target_environment,
        mtn_callback_host=args.mtn_callback_host,
        mtn_token_lifetime=args.mtn_token_lifetime,
        airtel_client_id=args.airtel_client_id,
        airtel_client_secret=args.airtel_client_secret,
        airtel_callback_url=args.airtel_callback_url,
        airtel_authenticated_callbacks=args.airtel_authenticated_callbacks,
        airtel_token_lifetime=args.airtel_token_lifetime,
        approval_delay=args.approval_delay,
        callback_copies=args.callback_copies,
        callback_timeout=args.callback_timeout,
        max_requests=args.max_requests,
    )
