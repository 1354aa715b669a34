"""Webhooks settings: timeouts, the retry schedule, isolation limits."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from libs.common.settings import CommonSettings


class WebhooksSettings(CommonSettings):
    # A receiver gets this long to answer; a slow one is a failed attempt.
    webhook_timeout: float = 10.0
    # Waits before the 2nd, 3rd, … attempt (the 1st is immediate): about 27 hours in
    # all, as the Standard Webhooks reference schedule; then the delivery is dead.
    webhook_retry_schedule: list[timedelta] = Field(
        default_factory=lambda: [
            timedelta(seconds=5),
            timedelta(minutes=5),
            timedelta(minutes=30),
            timedelta(hours=2),
            timedelta(hours=5),
            timedelta(hours=10),
            timedelta(hours=10),
        ]
    )
    # Each wait is stretched or shrunk by up to this fraction, so retries to one endpoint
    # do not arrive in lockstep.
    webhook_retry_jitter: float = 0.2
    # An endpoint failing without a single success for this long is disabled.
    webhook_disable_after: timedelta = timedelta(days=3)
    # Isolation: attempts in flight per endpoint; after `breaker_failures` failures in a
    # row an endpoint gets no attempt for `breaker_cooldown`, then one trial.
    webhook_endpoint_concurrency: int = 4
    webhook_breaker_failures: int = 5
    webhook_breaker_cooldown: timedelta = timedelta(seconds=30)
    # Response bodies are read up to this many bytes (kept for the delivery log).
    webhook_response_body_limit: int = 2048
    webhook_claim_batch: int = 200
    webhook_max_in_flight: int = 256
    webhook_poll_interval: float = 0.5
    webhook_event_prefetch: int = 32
    # Finished deliveries (and their attempts) are kept this long for the delivery log.
    webhook_retention: timedelta = timedelta(days=30)
    webhook_purge_interval: float = 3600.0
