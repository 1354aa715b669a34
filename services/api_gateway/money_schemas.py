"""Request and response models of the top-up and wallet statement endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from libs.common.mobile_money import MAX_TOPUP, MIN_TOPUP
from services.api_gateway.schemas import WALLET, Request

DepositStatus = Literal["pending", "successful", "failed", "expired"]
LedgerType = Literal["charge", "refund", "deposit", "adjustment"]


class TopUpRequest(Request):
    walletId: str = WALLET
    # Strict: 5000.0, "5000" and true are refused rather than guessed at.
    amount: int = Field(
        strict=True,
        ge=MIN_TOPUP,
        le=MAX_TOPUP,
        description=f"Whole UGX, {MIN_TOPUP:,} to {MAX_TOPUP:,}.",
        examples=[5000],
    )
    phone_number: str = Field(
        min_length=1,
        max_length=32,
        description="The payer's MTN or Airtel Uganda number, in any form (+256…, 256…, 0…). "
        "The prefix decides the provider: MTN MoMo or Airtel Money.",
        examples=["+256772123456"],
    )
    description: str | None = Field(
        default=None,
        max_length=160,
        description="Shown to the payer where the provider allows it.",
        examples=["March SMS credit"],
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "walletId": "wal_01jd6x3v9k2m4n5p6q7r8s9t0v",
                    "amount": 5000,
                    "phone_number": "0772123456",
                    "description": "March SMS credit",
                }
            ]
        }
    )


class DepositResponse(BaseModel):
    depositId: str
    walletId: str
    status: DepositStatus = Field(
        description="pending until the payer approves or declines on the phone; the wallet "
        "is credited once, when it becomes successful."
    )
    amount: int
    currency: Literal["UGX"] = "UGX"
    provider: Literal["mtn", "airtel"]
    phone_number: str = Field(examples=["+256772123456"])
    description: str | None = None
    failureReason: str | None = Field(
        default=None, description="Why a deposit failed or expired (the provider's reason)."
    )
    providerTransactionId: str | None = None
    createdAt: datetime
    updatedAt: datetime
    completedAt: datetime | None = None


class DepositQuery(Request):
    walletId: str = WALLET


class TransactionsQuery(Request):
    walletId: str = WALLET
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=50, ge=1, le=100)


class Transaction(BaseModel):
    id: int
    type: LedgerType
    amount: int = Field(description="Signed UGX: charges are negative.")
    balanceAfter: int = Field(description="The wallet balance right after this entry.")
    currency: Literal["UGX"] = "UGX"
    batchId: str | None = None
    messageId: str | None = None
    depositId: str | None = None
    reference: str | None = None
    description: str | None = None
    createdAt: datetime


class TransactionsResponse(BaseModel):
    data: list[Transaction]
    page: int
    per_page: int
    total: int
