"""Billing settings: validity, and how admissions are chunked into send jobs."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from libs.common.admission import Lane
from libs.common.settings import CommonSettings


def _both_lanes() -> dict[Lane, int]:
    return {"priority": 0, "bulk": 0}


class BillingSettings(CommonSettings):
    # How long a message may wait for its carrier before it expires and is refunded.
    validity_priority: timedelta = timedelta(minutes=10)
    validity_bulk: timedelta = timedelta(hours=24)
    # A send with at most this many recipients rides the priority lane even without
    # "priority": "high", so an OTP never waits behind a campaign.
    priority_max_recipients: int = 10
    # Messages per send job: larger jobs cost the sender less per message (2,000 to
    # 2,500 recipients/s in make bench going from 100 to 400); a job redelivered after a
    # crash is re-checked whole, which bounds how large they should grow.
    job_size: int = 400
    rpc_prefetch: int = 32
    # The admission queues this process consumes, each with its consumer priority: large
    # sends are admitted by a process of their own, so the many statements of an OTP's
    # admission never wait in an event loop busy with a campaign's thousand-row writes;
    # each process also takes the other lane at a lower priority, only while the process
    # that owns it is gone or full.
    admission_lanes: dict[Lane, int] = Field(default_factory=_both_lanes)
    # Top-ups, refunds and the deposit reconciler: off in a process that only admits.
    background_work: bool = True
    refund_prefetch: int = 16
    # Top-ups. A deposit the provider still reports pending (or never received) this long
    # after it was started expires; MTN gives the payer about five minutes to approve.
    deposit_expiry: timedelta = timedelta(minutes=15)
    # How long the start of a top-up waits for the provider before answering "pending"
    # (the request goes on in the background; the reconciler covers a crash).
    deposit_initiate_wait: float = 5.0
    # Status checks for deposits whose callback has not come: first after this, then
    # doubling up to the maximum. A request that may not have reached the provider is
    # looked for (and sent again under the same reference) after `deposit_retry_after`.
    deposit_first_check: timedelta = timedelta(seconds=30)
    deposit_max_check_interval: timedelta = timedelta(minutes=2)
    deposit_retry_after: timedelta = timedelta(seconds=10)
    reconcile_interval: float = 2.0
    reconcile_batch: int = 20
    # MTN allows about 10 status requests a second.
    reconcile_concurrency: int = 5
    deposit_rpc_prefetch: int = 8
    deposit_check_prefetch: int = 8
