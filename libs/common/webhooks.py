"""Webhook events as customers receive them, and their Standard Webhooks signatures.

Signature (standardwebhooks.com): `webhook-signature: v1,<base64 HMAC-SHA256(key,
"{webhook-id}.{webhook-timestamp}.{body}")>` where the key is the base64-decoded part of
`whsec_…`. Several signatures are separated by spaces; during a secret rotation both the
new and the old secret sign, so a receiver holding either verifies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any

import orjson

from libs.common.events import (
    DEPOSIT_FAILED,
    DEPOSIT_SUCCEEDED,
    MESSAGE_DELIVERED,
    MESSAGE_EXPIRED,
    MESSAGE_FAILED,
    MESSAGE_SENT,
    MESSAGE_UNDELIVERED,
    Event,
)

PING = "webhook.ping"
MESSAGE_EVENTS = (MESSAGE_SENT, MESSAGE_DELIVERED, MESSAGE_UNDELIVERED, MESSAGE_FAILED)
DEPOSIT_EVENTS = (DEPOSIT_SUCCEEDED, DEPOSIT_FAILED)
# What an endpoint gets when it names no events. `message.expired` (never handed to a
# carrier, refunded) is sent only to endpoints that ask for it by name.
DEFAULT_EVENTS = (*MESSAGE_EVENTS, *DEPOSIT_EVENTS)
SUBSCRIBABLE = (*DEFAULT_EVENTS, MESSAGE_EXPIRED)
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def signing_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<signature>` for this secret."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_: list[str], webhook_id: str, timestamp: int, body: bytes) -> str:
    return " ".join(sign(s, webhook_id, timestamp, body) for s in secrets_)


def wants(endpoint_events: list[str], event_type: str) -> bool:
    """Does an endpoint subscribed to `endpoint_events` receive this type?"""
    if event_type == PING:
        return True
    return event_type in (endpoint_events or DEFAULT_EVENTS)


def _message_data(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "messageId": data["message_id"],
        "batchId": data["batch_id"],
        "walletId": data["wallet_id"],
        "recipient": data["recipient"],
        "status": data["status"],
        "errorCode": data.get("error_code"),
        "units": data["units"],
        "cost": data["cost"],
    }


def payload(event: Event) -> bytes:
    """The body customers receive: `{id, type, createdAt, data}` as the contract shows."""
    message = event.type.startswith("message.")
    data = _message_data(event.data) if message else dict(event.data)
    return orjson.dumps(
        {
            "id": event.id,
            "type": event.type,
            "createdAt": event.occurred_at.isoformat(),
            "data": data,
        }
    )
