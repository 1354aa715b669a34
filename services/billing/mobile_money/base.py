"""What billing needs from a Mobile Money provider, whichever it is."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp


class Outcome(enum.StrEnum):
    PENDING = "pending"
    SUCCESSFUL = "successful"
    FAILED = "failed"
    # The provider has no request under this reference: it never arrived.
    NOT_FOUND = "not_found"


@dataclass(frozen=True, slots=True)
class Collection:
    """One request to collect `amount` UGX from a payer, under our reference."""

    reference: str
    deposit_id: str
    phone_number: str  # E.164, +2567XXXXXXXX
    amount: int
    description: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderStatus:
    outcome: Outcome
    transaction_id: str | None = None
    reason: str | None = None
    # The amount the provider says it collected, when it says (MTN does, Airtel does not).
    amount: int | None = None


class ProviderUnavailable(Exception):
    """No answer we can act on (timeout, 5xx, an "in doubt" code): ask the status later."""


class ProviderRefused(Exception):
    """The provider turned the request down for good; the payer was never asked to pay."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PaymentProvider(Protocol):
    name: str

    async def initiate(self, collection: Collection, callback_url: str) -> None:
        """Ask the payer to approve; returns once the provider has the request (or had it)."""

    async def status(self, reference: str) -> ProviderStatus:
        """Where the request under `reference` stands, as the provider sees it now."""

    async def close(self) -> None:
        """Release connections."""


_UNSAFE = re.compile(r"[^A-Za-z0-9 .,\-]")


def payer_text(text: str | None, fallback: str, limit: int = 160) -> str:
    """A note shown to the payer: MTN refuses characters such as ' and & and over 160."""
    cleaned = " ".join(_UNSAFE.sub(" ", text or "").split())
    return (cleaned or fallback)[:limit]


async def json_object(response: aiohttp.ClientResponse) -> dict[str, Any]:
    """The body as a JSON object, or {} (providers answer 202 and some errors with no body)."""
    try:
        body = await response.json(content_type=None)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
