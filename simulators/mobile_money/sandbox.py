"""The sandbox payers of the API contract, payer behaviours and provider-style ids."""

from __future__ import annotations

import enum
import secrets
import string
import uuid
from datetime import UTC, datetime


class Behaviour(enum.StrEnum):
    """How a payer answers the approval prompt on their phone."""

    APPROVE = "approve"
    DECLINE = "decline"
    NEVER = "never"
    INSUFFICIENT_FUNDS = "insufficient_funds"


# Keyed by national significant number, the part both providers agree on.
SANDBOX_PAYERS: dict[str, Behaviour] = {
    "700000999": Behaviour.DECLINE,
    "700000888": Behaviour.NEVER,
}


def national_number(msisdn: str) -> str:
    """The national significant number (7XXXXXXXX) of `+2567…`, `2567…`, `07…` or `7…`."""
    digits = msisdn.strip().lstrip("+")
    if digits.startswith("256") and len(digits) == 12:
        return digits[3:]
    if digits.startswith("0") and len(digits) == 10:
        return digits[1:]
    return digits


def e164(national: str) -> str:
    """`+256` and a Ugandan national number; anything else keeps its own digits."""
    return f"+256{national}" if len(national) == 9 else f"+{national}"


def default_behaviour(national: str) -> Behaviour:
    """What a payer does unless a test told the simulator otherwise."""
    return SANDBOX_PAYERS.get(national, Behaviour.APPROVE)


def is_uuid4(text: str) -> bool:
    """True for a canonical (hyphenated, any case) RFC 4122 version 4 UUID."""
    try:
        parsed = uuid.UUID(text)
    except ValueError:
        return False
    return parsed.version == 4 and str(parsed) == text.lower()


def financial_transaction_id() -> str:
    """An MTN financialTransactionId: ten digits, as the wallet platform issues them."""
    return str(1_000_000_000 + secrets.randbelow(9_000_000_000))


def airtel_money_id(now: datetime | None = None) -> str:
    """An Airtel Money id shaped like `MP210603.1234.L06941`."""
    moment = now or datetime.now(UTC)
    letter = secrets.choice(string.ascii_uppercase)
    return f"MP{moment:%y%m%d.%H%M}.{letter}{secrets.randbelow(100_000):05d}"
