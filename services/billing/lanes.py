"""Which lane a send takes and how long its messages may wait for the carrier."""

from __future__ import annotations

from datetime import timedelta

from libs.common.admission import Admission, Lane
from services.billing.settings import BillingSettings


def lane_for(admission: Admission, settings: BillingSettings) -> Lane:
    """OTP-like sends (few recipients, or marked high) take the priority lane."""
    if (
        admission.priority == "high"
        or len(admission.recipients) <= settings.priority_max_recipients
    ):
        return "priority"
    return "bulk"


def validity(settings: BillingSettings, lane: Lane) -> timedelta:
    """How long a message of this lane may wait to be submitted before it expires."""
    return settings.validity_priority if lane == "priority" else settings.validity_bulk
