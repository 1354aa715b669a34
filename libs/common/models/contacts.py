"""Contact groups (gateway): what customers manage directly."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from libs.common.models.base import Base, created_at_column


class Group(Base):
    __tablename__ = "groups"
    __table_args__ = (Index("ix_groups_wallet_id_created_at", "wallet_id", "created_at"),)

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    wallet_id: Mapped[str] = mapped_column(ForeignKey("wallets.id"), nullable=False)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("group_id", "phone"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    group_id: Mapped[str] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), nullable=False
    )
    phone: Mapped[str] = mapped_column(Text, nullable=False)
    name: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
