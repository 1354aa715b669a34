"""Send admission: what is asked and answered, and the send job handed to the sender.

The gateway admits small sends itself, a transaction per wallet for whatever arrived
together (`charge.admit_for_wallet`); large ones travel to billing over RPC, where one
request carries one admission (`AdmitRequest`). Either way the same code charges them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

Priority = Literal["high", "normal"]
Lane = Literal["priority", "bulk"]


class Admission(BaseModel):
    """Admit one send request: charge it and queue one message per recipient, or nothing."""

    batch_id: str
    wallet_id: str
    api_key_id: str | None = None
    group_id: str | None = None
    message: str
    encoding: str
    units: int  # SMS parts per recipient
    priority: Priority = "normal"
    recipients: list[str]  # E.164, deduplicated
    carriers: list[str]  # the carrier of each recipient, same order
    request_id: str | None = None
    # A retry of a request whose outcome was unknown (same Idempotency-Key, same batch id):
    # billing answers the batch if it exists instead of charging again.
    retry: bool = False


class AdmitRequest(BaseModel):
    admissions: list[Admission]
    deadline: float  # unix time after which the caller no longer listens


AdmitError = Literal["insufficient_balance", "wallet_not_found", "internal_error", "deadline"]


class AdmitResult(BaseModel):
    batch_id: str
    ok: bool
    error: AdmitError | None = None
    balance: int | None = None
    unit_price: int | None = None
    cost: int | None = None
    created_at: datetime | None = None
    message_ids: list[str] = []  # same order as the admission's recipients


class AdmitReply(BaseModel):
    results: list[AdmitResult]


class JobMessage(BaseModel):
    id: str
    batch_id: str
    recipient: str
    units: int
    cost: int
    # Times this message went through the delay queues after transient carrier failures.
    deferrals: int = 0


class JobText(BaseModel):
    message: str
    encoding: str
    wallet_id: str
    request_id: str | None = None


class SendJob(BaseModel):
    """A chunk of messages for one carrier lane; the sender acks it once every outcome is stored."""

    job_id: str
    carrier: str
    lane: Lane
    expires_at: datetime
    texts: dict[str, JobText]  # by batch id
    messages: list[JobMessage]
