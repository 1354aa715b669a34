"""Mobile Money deposits (billing): a wallet top-up from `pending` to exactly one outcome."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from libs.common.models.base import Base, created_at_column


class Deposit(Base):
    """Every change of `status` is `UPDATE … WHERE status = 'pending'`, so each deposit ends once;
    the credit and its ledger entry are written in the transaction that makes it successful.
    """

    __tablename__ = "deposits"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'successful', 'failed', 'expired')", name="status_known"
        ),
        CheckConstraint("provider IN ('mtn', 'airtel')", name="provider_known"),
        CheckConstraint("amount BETWEEN 500 AND 10000000", name="amount_in_bounds"),
        # The id we gave the provider (MTN X-Reference-Id, Airtel transaction.id) finds the
        # deposit a callback or status answer is about.
        UniqueConstraint("provider", "provider_reference", name="uq_deposits_provider_reference"),
        Index("ix_deposits_wallet_id_created_at", "wallet_id", text("created_at DESC")),
        # The reconciler's work list: pending deposits by when they are next due a check.
        Index("ix_deposits_due", "next_check_at", postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    wallet_id: Mapped[str] = mapped_column(ForeignKey("wallets.id"), nullable=False)
    provider: Mapped[str] = mapped_column(Text, nullable=False)
    phone_number: Mapped[str] = mapped_column(Text, nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'UGX'"))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'pending'"))
    provider_reference: Mapped[str] = mapped_column(Text, nullable=False)
    provider_transaction_id: Mapped[str | None] = mapped_column(Text)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    # When the provider accepted the collection request (NULL: not known to have arrived).
    initiated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Past this, a deposit the provider still reports pending (or never received) expires.
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    next_check_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    checks: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
