"""Batches and messages. Billing inserts them at admission; the sender owns delivery state."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from libs.common.models.base import Base, created_at_column


class MessageStatus(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    EXPIRED = "expired"


_STATUSES = ", ".join(f"'{s.value}'" for s in MessageStatus)


class Batch(Base):
    """One accepted send request: the text is stored once here, not per recipient."""

    __tablename__ = "batches"
    __table_args__ = (
        Index("ix_batches_wallet_id_created_at", "wallet_id", text("created_at DESC")),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    wallet_id: Mapped[str] = mapped_column(ForeignKey("wallets.id"), nullable=False)
    api_key_id: Mapped[str | None] = mapped_column(Text)
    group_id: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text, nullable=False)
    encoding: Mapped[str] = mapped_column(Text, nullable=False)
    priority: Mapped[str] = mapped_column(Text, nullable=False)
    recipients: Mapped[int] = mapped_column(Integer, nullable=False)
    units: Mapped[int] = mapped_column(BigInteger, nullable=False)
    cost: Mapped[int] = mapped_column(BigInteger, nullable=False)
    unit_price: Mapped[int] = mapped_column(Integer, nullable=False)
    request_id: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()


class Message(Base):
    """One recipient of a batch. `units` SMS parts at `cost` UGX in total."""

    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUSES})", name="status_known"),
        Index("ix_messages_wallet_id_created_at", "wallet_id", text("created_at DESC")),
        Index("ix_messages_batch_id", "batch_id"),
        # The expiry sweep reads messages by expiry from its mark (`SweepMark`). No index
        # may mention a column that storing a submit or a receipt writes (status,
        # carrier_message_id, submitted_at, done_at): both updates stay HOT and touch no
        # index at all. Receipts find their message through `MessageRef`.
        Index("ix_messages_expires_at", "expires_at"),
        # Each message is rewritten twice (sent, then its receipt): room in the page keeps
        # those new row versions beside the old ones (HOT).
        {"postgresql_with": {"fillfactor": 60}},
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    # No foreign key: see migration 0006. `wesendall admin check-ledger` checks the link.
    batch_id: Mapped[str] = mapped_column(Text, nullable=False)
    wallet_id: Mapped[str] = mapped_column(Text, nullable=False)
    recipient: Mapped[str] = mapped_column(Text, nullable=False)
    carrier: Mapped[str] = mapped_column(Text, nullable=False)
    units: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    cost: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(
        Text, nullable=False, default=MessageStatus.QUEUED.value, server_default="queued"
    )
    error_code: Mapped[str | None] = mapped_column(Text)
    carrier_message_id: Mapped[str | None] = mapped_column(Text)
    # Parts whose final receipt has arrived, for messages sent in several parts.
    parts_done: Mapped[int] = mapped_column(
        SmallInteger, nullable=False, default=0, server_default=text("0")
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MessageRef(Base):
    """The carrier's id of a single-part message, for its receipt to find it by.

    Insert-only, written with the submit; not a column index on `messages`, which would
    make storing every submit rewrite every index of that table."""

    __tablename__ = "message_refs"

    # All three: a carrier may reuse an id (an SMSC restarted), and its receipt then finds
    # both messages; only the one still waiting for it changes.
    carrier: Mapped[str] = mapped_column(Text, primary_key=True)
    carrier_message_id: Mapped[str] = mapped_column(Text, primary_key=True)
    message_id: Mapped[str] = mapped_column(Text, primary_key=True)


class SweepMark(Base):
    """How far a periodic sweep has read: `expiry` reads messages by `expires_at`."""

    __tablename__ = "sweep_marks"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    upto: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class MessagePart(Base):
    """Carrier ids of the second and later parts of a concatenated message."""

    __tablename__ = "message_parts"
    __table_args__ = (Index("ix_message_parts_carrier_ref", "carrier", "carrier_message_id"),)

    message_id: Mapped[str] = mapped_column(Text, primary_key=True)
    part: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    carrier: Mapped[str] = mapped_column(Text, nullable=False)
    carrier_message_id: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str | None] = mapped_column(Text)


class PendingReceipt(Base):
    """A delivery receipt that matched no message yet (it beat its `submit_sm_resp`)."""

    __tablename__ = "pending_receipts"
    __table_args__ = (
        Index("ix_pending_receipts_carrier_ref", "carrier", "carrier_message_id"),
        Index("ix_pending_receipts_carrier_recipient", "carrier", "recipient"),
        Index("ix_pending_receipts_retry_at", "retry_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    carrier: Mapped[str] = mapped_column(Text, nullable=False)
    carrier_message_id: Mapped[str] = mapped_column(Text, nullable=False)
    recipient: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(Text, nullable=False)  # the SMPP stat word
    status: Mapped[str] = mapped_column(Text, nullable=False)  # what it means for us
    error_code: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    received_at: Mapped[datetime] = created_at_column()
    # Matching is retried with backoff until the message shows up or the receipt is too old.
    attempts: Mapped[int] = mapped_column(
        SmallInteger, nullable=False, default=0, server_default=text("0")
    )
    retry_at: Mapped[datetime] = created_at_column()
