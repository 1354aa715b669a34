"""Provider-native JSON for a request: MTN's status body and Airtel's enquiry and callback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from simulators.mobile_money.sandbox import Behaviour
from simulators.mobile_money.state import PaymentRequest, Phase

MTN_REASONS = {
    Behaviour.DECLINE: "APPROVAL_REJECTED",
    Behaviour.INSUFFICIENT_FUNDS: "NOT_ENOUGH_FUNDS",
}

# Airtel's DP008… response codes for a collection ("in process", "success", "refused", …).
AIRTEL_IN_PROCESS = "DP00800001006"
AIRTEL_SUCCESS = "DP00800001001"
AIRTEL_REFUSED = "DP00800001008"
AIRTEL_NOT_ENOUGH_BALANCE = "DP00800001007"
AIRTEL_AMBIGUOUS = "DP00800001000"
AIRTEL_FAILED = "DP00800001005"


def mtn_status(request: PaymentRequest) -> dict[str, Any]:
    """The body of `GET /collection/v1_0/requesttopay/{id}`, also PUT as the callback.

    MTN echoes the merchant's own fields and never includes the X-Reference-Id.
    """
    submitted = request.submitted
    body: dict[str, Any] = {"amount": submitted["amount"], "currency": submitted["currency"]}
    if request.phase is Phase.SUCCESSFUL:
        body["financialTransactionId"] = request.provider_id
    for name in ("externalId", "payer", "payerMessage", "payeeNote"):
        if name in submitted:
            body[name] = submitted[name]
    body["status"] = request.status
    if request.phase is Phase.FAILED:
        body["reason"] = MTN_REASONS.get(request.behaviour, "INTERNAL_PROCESSING_ERROR")
    return body


def airtel_message(request: PaymentRequest) -> str:
    """The human text Airtel puts in `transaction.message`."""
    if request.phase is Phase.SUCCESSFUL:
        return (
            f"Paid {request.currency} {request.amount:,} to the merchant, "
            f"Trans ID {request.provider_id}."
        )
    if request.phase is Phase.FAILED:
        if request.behaviour is Behaviour.INSUFFICIENT_FUNDS:
            return "Insufficient funds: the subscriber's balance is too low."
        return "Transaction declined by the subscriber."
    return "Transaction in progress."


def airtel_response_code(request: PaymentRequest) -> str:
    """`status.response_code` of an enquiry for this request."""
    if request.phase is Phase.SUCCESSFUL:
        return AIRTEL_SUCCESS
    if request.phase is Phase.FAILED:
        if request.behaviour is Behaviour.INSUFFICIENT_FUNDS:
            return AIRTEL_NOT_ENOUGH_BALANCE
        return AIRTEL_REFUSED
    return AIRTEL_IN_PROCESS


def airtel_enquiry_transaction(request: PaymentRequest) -> dict[str, Any]:
    """`data.transaction` of `GET /standard/v1/payments/{id}`.

    Airtel generates an airtel_money_id only for TS, never for TIP or TF.
    """
    transaction: dict[str, Any] = {}
    if request.phase is Phase.SUCCESSFUL:
        transaction["airtel_money_id"] = request.provider_id
    transaction["id"] = request.reference
    transaction["message"] = airtel_message(request)
    transaction["status"] = request.status
    return transaction


def airtel_hash(transaction: dict[str, Any], client_secret: str) -> str:
    """base64(HMAC-SHA256(client_secret, compact JSON of `transaction` in its key order))."""
    compact = json.dumps(transaction, separators=(",", ":"), ensure_ascii=False)
    digest = hmac.new(client_secret.encode(), compact.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def airtel_callback(request: PaymentRequest, client_secret: str | None) -> dict[str, Any]:
    """The body Airtel POSTs to the merchant's callback URL; hashed when a secret is given."""
    # Key order matters: the hash is computed over exactly this serialisation.
    transaction: dict[str, Any] = {
        "id": request.reference,
        "message": airtel_message(request),
        "status_code": request.status,
        "airtel_money_id": request.provider_id,
    }
    body: dict[str, Any] = {"transaction": transaction}
    if client_secret is not None:
        body["hash"] = airtel_hash(transaction, client_secret)
    return body
