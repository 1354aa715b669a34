"""Request and response models of the webhook endpoints API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from libs.common.webhooks import DEFAULT_EVENTS, SUBSCRIBABLE
from services.api_gateway.schemas import WALLET, Request

EVENTS_DOC = (
    f"Event types to receive: any of {', '.join(SUBSCRIBABLE)}. Omitted or empty: "
    f"{', '.join(DEFAULT_EVENTS)}."
)


class WebhookCreate(Request):
    walletId: str = WALLET
    url: str = Field(
        min_length=1,
        max_length=2048,
        description="Where to POST events: https, a public address.",
        examples=["https://example.com/wesendall/events"],
    )
    events: list[str] | None = Field(default=None, max_length=20, description=EVENTS_DOC)


class WalletBody(Request):
    walletId: str = WALLET


class RotateSecret(Request):
    walletId: str = WALLET
    overlapSeconds: int = Field(
        default=86_400,
        ge=0,
        le=7 * 86_400,
        description="How long the old secret keeps signing beside the new one.",
    )


class WebhookCreated(BaseModel):
    id: str
    url: str
    events: list[str]
    secret: str = Field(description="`whsec_…`, shown only here: keep it to verify signatures.")
    status: Literal["enabled"]
    createdAt: datetime


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    status: Literal["enabled", "disabled"]
    disabledReason: str | None = Field(
        default=None, description="Why deliveries stopped (an endpoint failing for days)."
    )
    failingSince: datetime | None = None
    createdAt: datetime


class WebhookList(BaseModel):
    data: list[WebhookOut]


class SecretRotated(BaseModel):
    id: str
    secret: str
    previousSecretExpiresAt: datetime


class PingQueued(BaseModel):
    eventId: str
    type: Literal["webhook.ping"] = "webhook.ping"


class DeliveriesQuery(Request):
    walletId: str = WALLET
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=50, ge=1, le=100)
    status: Literal["pending", "succeeded", "dead"] | None = None


class AttemptOut(BaseModel):
    attempt: int
    startedAt: datetime
    statusCode: int | None
    latencyMs: int | None
    error: str | None


class DeliveryOut(BaseModel):
    id: str
    eventId: str
    eventType: str
    status: Literal["pending", "succeeded", "dead"] = Field(
        description="dead: every retry failed (or the endpoint was disabled); replay it."
    )
    attempts: int
    nextAttemptAt: datetime | None
    lastStatusCode: int | None
    lastLatencyMs: int | None
    lastError: str | None
    createdAt: datetime
    completedAt: datetime | None
    attemptLog: list[AttemptOut]


class DeliveryList(BaseModel):
    data: list[DeliveryOut]
    page: int
    per_page: int
    total: int


class ReplayQueued(BaseModel):
    deliveryId: str
    status: Literal["pending"] = "pending"
