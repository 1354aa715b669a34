"""Mobile Money settings and the callback checks the gateway and billing share.

Providers call us back without authentication we can rely on: MTN's callback is unsigned
and carries no reference id, Airtel's is signed only when "authenticated callbacks" are
enabled on the merchant app. So a callback is only ever a hint: the gateway checks that it
names a deposit of ours (an HMAC token in MTN's callback path, the hash on Airtel's body),
and billing credits nothing until the provider's status endpoint confirms the payment.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from pydantic import BaseModel, SecretStr

# Our operator names (libs/common/operator_prefixes.toml) -> the Mobile Money provider
# that collects from that operator's subscribers.
PROVIDER_FOR_OPERATOR = {"mtn": "mtn", "airtel": "airtel"}
PROVIDER_NAMES = {"mtn": "MTN MoMo", "airtel": "Airtel Money"}

DEPOSIT_STATUSES = ("pending", "successful", "failed", "expired")
MIN_TOPUP = 500
MAX_TOPUP = 10_000_000


class MtnSettings(BaseModel):
    """MTN MoMo Collection. Defaults reach the Mobile Money simulator on loopback."""

    base_url: str = "http://127.0.0.1:8092"
    subscription_key: SecretStr = SecretStr("sim-mtn-subscription-key")
    api_user: str = "2a0f2b6e-4c2f-4b8e-9d57-3f8c0d1e5a11"
    api_key: SecretStr = SecretStr("sim-mtn-api-key")
    # "mtnuganda" in production, "sandbox" in MTN's sandbox (and our simulator's default).
    target_environment: str = "sandbox"
    # Some gateways in front of MTN refuse well-known client libraries' User-Agents.
    user_agent: str = "wesendall-billing/1"
    # MTN allows about 10 status requests a second per subscription.
    status_rate: float = 8.0


class AirtelSettings(BaseModel):
    """Airtel Money collections. Defaults reach the Mobile Money simulator on loopback."""

    base_url: str = "http://127.0.0.1:8092"
    client_id: str = "sim-airtel-client-id"
    client_secret: SecretStr = SecretStr("sim-airtel-client-secret")
    country: str = "UG"
    currency: str = "UGX"
    # When the merchant app has "authenticated callbacks" on, every callback carries a hash
    # we verify; with it off, a callback is accepted only as a hint to ask for the status.
    callback_hash_required: bool = True
    user_agent: str = "wesendall-billing/1"


class MobileMoneySettings(BaseModel):
    mtn: MtnSettings = MtnSettings()
    airtel: AirtelSettings = AirtelSettings()
    # Where providers reach the gateway's callback endpoints (MTN: the host must be the one
    # registered with the API user).
    callback_base_url: str = "http://127.0.0.1:8080"
    # Keys the per-deposit token in MTN callback URLs. Must be set outside dev and test.
    callback_secret: SecretStr = SecretStr("dev-only-callback-secret")
    request_timeout: float = 10.0


def callback_token(secret: SecretStr, deposit_id: str) -> str:
    """The token that makes a deposit's callback URL unguessable."""
    digest = hmac.new(
        secret.get_secret_value().encode(), deposit_id.encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def callback_token_valid(secret: SecretStr, deposit_id: str, token: str) -> bool:
    return hmac.compare_digest(callback_token(secret, deposit_id), token)


def mtn_callback_url(settings: MobileMoneySettings, deposit_id: str) -> str:
    token = callback_token(settings.callback_secret, deposit_id)
    return f"{settings.callback_base_url.rstrip('/')}/callbacks/mtn/{deposit_id}/{token}"


def airtel_callback_hash(client_secret: SecretStr, transaction: dict[str, Any]) -> str:
    """Airtel's callback hash: base64(HMAC-SHA256(client secret, compact JSON of `transaction`))."""
    payload = json.dumps(transaction, separators=(",", ":"), ensure_ascii=False)
    digest = hmac.new(
        client_secret.get_secret_value().encode(), payload.encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


def airtel_callback_hash_valid(
    client_secret: SecretStr, transaction: dict[str, Any], given: str
) -> bool:
    return hmac.compare_digest(airtel_callback_hash(client_secret, transaction), given)


class StartDeposit(BaseModel):
    """Gateway -> billing: create this deposit (once, by id) and ask the provider to collect."""

    deposit_id: str
    wallet_id: str
    amount: int
    phone_number: str
    provider: str
    description: str | None = None
    request_id: str | None = None
    # Unix time after which the gateway has stopped waiting: starting then would prompt a
    # payer for a top-up the customer was told failed.
    deadline: float


class StartDepositReply(BaseModel):
    ok: bool
    error: str | None = None
    deposit: dict[str, Any] | None = None


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def deposit_view(row: Any) -> dict[str, Any]:
    """A deposit as the public API shows it (from a `deposits` row mapping)."""
    return {
        "depositId": row["id"],
        "walletId": row["wallet_id"],
        "status": row["status"],
        "amount": row["amount"],
        "currency": row["currency"],
        "provider": row["provider"],
        "phone_number": row["phone_number"],
        "description": row["description"],
        "failureReason": row["failure_reason"],
        "providerTransactionId": row["provider_transaction_id"],
        "createdAt": _iso(row["created_at"]),
        "updatedAt": _iso(row["updated_at"]),
        "completedAt": _iso(row["completed_at"]),
    }
