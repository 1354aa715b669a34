"""Cross-cutting tables: the transactional outbox and idempotency records."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, LargeBinary, SmallInteger, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from libs.common.models.base import Base, created_at_column


class OutboxRow(Base):
    """An AMQP message committed with the state change it announces; the relay publishes it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_origin_priority_id", "origin", text("priority DESC"), "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # The service whose relays publish the row, so a sender's stream of events never
    # occupies billing's relays (which carry the OTP send jobs).
    origin: Mapped[str] = mapped_column(Text, nullable=False)
    exchange: Mapped[str] = mapped_column(Text, nullable=False)
    routing_key: Mapped[str] = mapped_column(Text, nullable=False)
    message_id: Mapped[str] = mapped_column(Text, nullable=False)
    body: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    headers: Mapped[dict[str, str]] = mapped_column(
        JSONB, nullable=False, default=dict, server_default=text("'{}'::jsonb")
    )
    # Higher first: an OTP's send job overtakes a campaign's waiting rows.
    priority: Mapped[int] = mapped_column(
        SmallInteger, nullable=False, default=0, server_default=text("0")
    )
    # Publish attempts so far, and until when the relay that claimed the row may publish it.
    attempts: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default=text("0")
    )
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()


class IdempotencyRecord(Base):
    """The first response to an `Idempotency-Key`, scoped to the API key, kept 24 hours."""

    __tablename__ = "idempotency_keys"

    api_key_id: Mapped[str] = mapped_column(Text, primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    method: Mapped[str] = mapped_column(Text, nullable=False)
    path: Mapped[str] = mapped_column(Text, nullable=False)
    request_hash: Mapped[str] = mapped_column(Text, nullable=False)
    # in_flight → completed (response kept), or → failed (a 5xx: the same key may retry).
    state: Mapped[str] = mapped_column(
        Text, nullable=False, default="in_flight", server_default="in_flight"
    )
    # The batch this key stands for: a retry after an unknown outcome reuses it, so
    # billing answers the first admission instead of charging again.
    resource_id: Mapped[str | None] = mapped_column(Text)
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = created_at_column()
    # When the current attempt started; an in-flight record this old belongs to a dead request.
    updated_at: Mapped[datetime] = created_at_column()
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
