"""Payment requests, the callbacks made for them, and the knobs tests turn at run time."""

from __future__ import annotations

import enum
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from simulators.mobile_money.sandbox import Behaviour

Provider = Literal["mtn", "airtel"]
PROVIDERS: tuple[Provider, ...] = ("mtn", "airtel")
ACCEPT_THEN_FAIL_MODES = ("status_503", "disconnect")
MAX_CALLBACK_ATTEMPTS = 10_000


def iso_millis(moment: datetime) -> str:
    """`2026-01-31T12:00:00.000Z`, the timestamp shape the simulators report."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


class Phase(enum.Enum):
    """Where a request stands, whatever the provider calls it."""

    PENDING = "pending"
    SUCCESSFUL = "successful"
    FAILED = "failed"


_NATIVE_STATUS: dict[Provider, dict[Phase, str]] = {
    "mtn": {Phase.PENDING: "PENDING", Phase.SUCCESSFUL: "SUCCESSFUL", Phase.FAILED: "FAILED"},
    "airtel": {Phase.PENDING: "TIP", Phase.SUCCESSFUL: "TS", Phase.FAILED: "TF"},
}


@dataclass(slots=True)
class PaymentRequest:
    """One collection request: what the merchant asked for and what the payer did."""

    provider: Provider
    reference: str  # MTN X-Reference-Id (lowercased) or Airtel transaction.id
    external_id: str  # MTN externalId or Airtel reference
    national: str
    msisdn: str
    amount: int
    currency: str
    callback_url: str | None
    behaviour: Behaviour
    # The merchant's own fields, echoed back by MTN's status GET exactly as they were sent.
    submitted: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    phase: Phase = Phase.PENDING
    provider_id: str | None = None  # financialTransactionId or airtel_money_id, once paid
    callbacks_sent: int = 0
    status_queries: int = 0

    @property
    def status(self) -> str:
        """The provider's own word for the phase: PENDING/SUCCESSFUL/FAILED or TIP/TS/TF."""
        return _NATIVE_STATUS[self.provider][self.phase]

    def as_json(self) -> dict[str, Any]:
        """The inspection view served by `GET /_sim/requests`."""
        return {
            "provider": self.provider,
            "reference": self.reference,
            "externalId": self.external_id,
            "msisdn": self.msisdn,
            "amount": self.amount,
            "currency": self.currency,
            "status": self.status,
            "behaviour": str(self.behaviour),
            "createdAt": iso_millis(self.created_at),
            "callbackUrl": self.callback_url,
            "callbacksSent": self.callbacks_sent,
            "statusQueries": self.status_queries,
        }


class RequestStore:
    """Requests by (provider, reference), oldest first, never more than `capacity`."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._requests: OrderedDict[tuple[Provider, str], PaymentRequest] = OrderedDict()

    def __len__(self) -> int:
        return len(self._requests)

    def __iter__(self) -> Iterator[PaymentRequest]:
        return iter(self._requests.values())

    def get(self, provider: Provider, reference: str) -> PaymentRequest | None:
        """The request, or None if it never existed or was dropped as the oldest."""
        return self._requests.get((provider, reference))

    def add(self, request: PaymentRequest) -> list[PaymentRequest]:
        """Store `request`; return the oldest requests dropped to make room."""
        self._requests[(request.provider, request.reference)] = request
        dropped = []
        while len(self._requests) > self.capacity:
            dropped.append(self._requests.popitem(last=False)[1])
        return dropped

    def clear(self) -> int:
        """Forget every request; return how many there were."""
        count = len(self._requests)
        self._requests.clear()
        return count


@dataclass(slots=True)
class CallbackAttempt:
    """One callback delivery attempt and what the receiver said."""

    provider: Provider
    reference: str
    url: str
    method: str
    body: dict[str, Any]
    sent_at: datetime
    status: int | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The inspection view served by `GET /_sim/callbacks`."""
        return {
            "provider": self.provider,
            "reference": self.reference,
            "url": self.url,
            "method": self.method,
            "body": self.body,
            "sentAt": iso_millis(self.sent_at),
            "status": self.status,
            "error": self.error,
        }


def new_callback_log() -> deque[CallbackAttempt]:
    """A bounded log: the oldest attempts fall off."""
    return deque(maxlen=MAX_CALLBACK_ATTEMPTS)


@dataclass(slots=True)
class RuntimeConfig:
    """Behaviour that `POST /_sim/config` changes while the simulator runs."""

    approval_delay: float
    callback_copies: int
    drop_callbacks: bool = False
    fail_next_requests: int = 0
    response_delay: float = 0.0
    accept_then_fail_response: int = 0
    accept_then_fail_mode: str = "status_503"

    def update(self, changes: dict[str, Any]) -> None:
        """Apply validated changes; raise ValueError naming the first bad field."""
        updates: dict[str, Any] = {}
        for name, value in changes.items():
            if name in ("approval_delay", "response_delay"):
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ValueError(f"{name} must be a number >= 0")
                updates[name] = float(value)
            elif name in ("callback_copies", "fail_next_requests", "accept_then_fail_response"):
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(f"{name} must be an integer >= 0")
                updates[name] = value
            elif name == "drop_callbacks":
                if not isinstance(value, bool):
                    raise ValueError("drop_callbacks must be true or false")
                updates[name] = value
            elif name == "accept_then_fail_mode":
                if value not in ACCEPT_THEN_FAIL_MODES:
                    raise ValueError(
                        f"accept_then_fail_mode must be one of {ACCEPT_THEN_FAIL_MODES}"
                    )
                updates[name] = value
            else:
                raise ValueError(f"unknown setting {name!r}")
        for name, value in updates.items():
            setattr(self, name, value)

    def as_json(self) -> dict[str, Any]:
        """The knobs as a JSON-ready dict."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}
