"""The append-only ledger (billing). For every wallet: balance == SUM(ledger_entries.amount)."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from libs.common.models.base import Base, created_at_column


class LedgerKind(enum.StrEnum):
    CHARGE = "charge"
    REFUND = "refund"
    DEPOSIT = "deposit"
    ADJUSTMENT = "adjustment"


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint("kind IN ('charge', 'refund', 'deposit', 'adjustment')", name="kind_known"),
        # One charge per batch and one refund per message, whatever retries happen.
        Index(
            "uq_ledger_entries_charge_batch",
            "batch_id",
            unique=True,
            postgresql_where=text("kind = 'charge'"),
        ),
        Index(
            "uq_ledger_entries_refund_message",
            "message_id",
            unique=True,
            postgresql_where=text("kind = 'refund'"),
        ),
        # One credit per deposit: a replayed callback or a racing poll cannot pay twice.
        Index(
            "uq_ledger_entries_deposit_reference",
            "reference",
            unique=True,
            postgresql_where=text("kind = 'deposit'"),
        ),
        Index("ix_ledger_entries_wallet_id_id", "wallet_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    wallet_id: Mapped[str] = mapped_column(ForeignKey("wallets.id"), nullable=False)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    balance_after: Mapped[int] = mapped_column(BigInteger, nullable=False)
    batch_id: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()


class WalletUsage(Base):
    """SMS units admitted per wallet per UTC day, for the 30-day volume price tier."""

    __tablename__ = "wallet_usage_daily"

    wallet_id: Mapped[str] = mapped_column(ForeignKey("wallets.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    units: Mapped[int] = mapped_column(
        BigInteger, nullable=False, default=0, server_default=text("0")
    )
