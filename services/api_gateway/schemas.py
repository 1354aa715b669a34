"""Request and response models of the public API, named field by field as the contract says.

The same models validate requests and generate the OpenAPI document.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

WALLET = Field(
    description="The wallet to act on; the API key's account must own it.",
    examples=["wal_01jd6x3v9k2m4n5p6q7r8s9t0v"],
    min_length=1,
    max_length=64,
)
PRIORITY_DOC = (
    '"high" (or a send with few recipients) takes the priority lane: an OTP never waits '
    "behind a campaign."
)
MESSAGE = Field(
    min_length=1,
    max_length=1600,
    description="The text. GSM-7 fits 160 characters in one unit (153 per unit beyond); any "
    "character outside GSM-7 makes it UCS-2 (70, then 67 per unit).",
    examples=["Your Wesendall code is 482913"],
)


class Request(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


class SendRequest(Request):
    walletId: str = WALLET
    message: str = MESSAGE
    recipient: str | list[str] = Field(
        description="One number, an array, or a comma/space separated list, in any Ugandan "
        "form (+256…, 256…, 07…). Normalised to E.164 and deduplicated; at most 10,000.",
        examples=["+256772123456, 0701234567"],
    )
    priority: Literal["high", "normal"] = Field(default="normal", description=PRIORITY_DOC)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "walletId": "wal_01jd6x3v9k2m4n5p6q7r8s9t0v",
                    "message": "Your Wesendall code is 482913",
                    "recipient": "+256772123456",
                    "priority": "high",
                }
            ]
        }
    )


class GroupSendRequest(Request):
    walletId: str = WALLET
    groupId: str = Field(min_length=1, max_length=64, examples=["grp_01jd6x3v9k2m4n5p6q7r8s9t0v"])
    message: str = MESSAGE
    priority: Literal["high", "normal"] = Field(default="normal", description=PRIORITY_DOC)


class SentMessage(BaseModel):
    id: str
    recipient: str
    units: int
    cost: int
    status: Literal["queued"] = "queued"


class SendResponse(BaseModel):
    batchId: str
    status: Literal["queued"] = "queued"
    recipients: int
    units: int
    cost: int
    currency: Literal["UGX"] = "UGX"
    balance: int
    encoding: Literal["GSM-7", "UCS-2"]
    messages: list[SentMessage] | None = Field(
        default=None, description="Left out for group sends over 1,000 contacts."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "batchId": "bat_01jd6x3v9k2m4n5p6q7r8s9t0v",
                    "status": "queued",
                    "recipients": 1,
                    "units": 1,
                    "cost": 35,
                    "currency": "UGX",
                    "balance": 4930,
                    "encoding": "GSM-7",
                    "messages": [
                        {
                            "id": "msg_01jd6x3v9k2m4n5p6q7r8s9t0v000000",
                            "recipient": "+256772123456",
                            "units": 1,
                            "cost": 35,
                            "status": "queued",
                        }
                    ],
                }
            ]
        }
    )


MessageStatusName = Literal["queued", "sent", "delivered", "undelivered", "failed", "expired"]


class BatchCounts(BaseModel):
    queued: int = 0
    sent: int = 0
    delivered: int = 0
    undelivered: int = 0
    failed: int = 0
    expired: int = 0


class BatchResponse(BaseModel):
    batchId: str
    recipients: int
    units: int
    cost: int
    createdAt: datetime
    counts: BatchCounts


class HistoryQuery(Request):
    walletId: str = WALLET
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=50, ge=1, le=100)
    status: MessageStatusName | None = None
    recipient: str | None = Field(default=None, description="Any Ugandan form of the number.")
    batchId: str | None = None
    from_: datetime | None = Field(default=None, alias="from", description="ISO-8601, inclusive.")
    to: datetime | None = Field(default=None, description="ISO-8601, exclusive.")

    model_config = ConfigDict(populate_by_name=True)


class HistoryMessage(BaseModel):
    id: str
    batchId: str
    recipient: str
    message: str
    status: MessageStatusName
    units: int
    cost: int
    errorCode: str | None
    createdAt: datetime
    updatedAt: datetime


class HistoryResponse(BaseModel):
    data: list[HistoryMessage]
    page: int
    per_page: int
    total: int


class WalletQuery(Request):
    walletId: str = WALLET


class BalanceResponse(BaseModel):
    walletId: str
    balance: int
    currency: Literal["UGX"] = "UGX"
    costPerSms: int = Field(description="What one SMS unit costs this wallet now.")


class GroupCreate(Request):
    walletId: str = WALLET
    title: str = Field(min_length=1, max_length=120, examples=["Customers, Kampala"])
    description: str | None = Field(default=None, max_length=1000)


class GroupOut(BaseModel):
    id: str
    title: str
    description: str | None
    contactCount: int
    createdAt: datetime


class GroupList(BaseModel):
    data: list[GroupOut]


class ContactIn(BaseModel):
    phone: str = Field(min_length=1, max_length=40, examples=["0772123456"])
    name: str | None = Field(default=None, max_length=120)


class ContactsAdd(Request):
    walletId: str = WALLET
    contacts: list[ContactIn] = Field(min_length=1, max_length=10_000)


class ContactsAdded(BaseModel):
    added: int
    skipped: int
    contactCount: int


class ErrorBody(BaseModel):
    code: str = Field(examples=["validation_failed"])
    message: str
    details: Any | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    checks: dict[str, str]
