"""What every process that admits sends must agree on: lanes, validity and job sizes."""

from __future__ import annotations

from datetime import timedelta

from libs.common.settings import CommonSettings


class AdmissionSettings(CommonSettings):
    """Settings of the admission transaction, shared by the gateway (which admits small
    sends itself) and billing (which admits large ones)."""

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
