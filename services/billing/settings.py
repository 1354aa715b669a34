"""Billing settings: large admissions, top-ups, refunds and the reconciler."""

from __future__ import annotations

from datetime import timedelta

from libs.common.admission.settings import AdmissionSettings


class BillingSettings(AdmissionSettings):
    rpc_prefetch: int = 32
    # The consumer priority this process takes large sends' admissions with, or None to
    # take none. Small sends are admitted by the gateway itself; large ones by a billing
    # process, so a campaign's thousand-row writes never run in the event loop that
    # answers OTPs. `billing-bulk` takes them first, `billing` only while it is gone or full.
    admission_priority: int | None = 0
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
