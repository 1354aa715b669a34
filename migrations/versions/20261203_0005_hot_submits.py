"""carrier ids of single-part messages in their own table; expiry swept from a mark

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 17:00:00.000000

Storing a submit (queued -> sent) set two columns that indexes on `messages` depend on:
`carrier_message_id` (the receipt look-up) and `submitted_at` (the expiry index's
predicate). So it was never a HOT update: a new entry in every index of the table, and
Postgres then pruning the old ones as pages filled (`heap_index_delete_tuples` alone was
~10% of Postgres' CPU during a 100,000-recipient campaign). Now:

- receipts find single-part messages through `message_refs` (insert-only, its key the
  only index),
  as they already found the parts of multi-part ones through `message_parts`;
- the expiry sweep reads `messages` by `expires_at` over a plain index, from the mark in
  `sweep_marks` up to now: every message expires exactly once, so each is read by the
  sweep about once, and the sweep mark moves forward as it goes.

No index of `messages` now depends on a column either update writes: both are HOT
while the page has room (fillfactor 60).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Keyed by all three: a carrier may reuse an id (an SMSC restarted), and its receipt
    # then finds both messages; only the one still waiting for it changes.
    op.create_table(
        "message_refs",
        sa.Column("carrier", sa.Text(), nullable=False),
        sa.Column("carrier_message_id", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint(
            "carrier", "carrier_message_id", "message_id", name="pk_message_refs"
        ),
    )
    op.execute(
        "INSERT INTO message_refs (carrier, carrier_message_id, message_id)"
        " SELECT carrier, carrier_message_id, id FROM messages"
        " WHERE carrier_message_id IS NOT NULL AND units = 1"
    )
    op.create_table(
        "sweep_marks",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("upto", sa.DateTime(timezone=True), nullable=False),
    )
    # Everything the old index still lists is what the sweep has yet to look at.
    op.execute(
        "INSERT INTO sweep_marks (name, upto) SELECT 'expiry',"
        " COALESCE((SELECT min(expires_at) FROM messages WHERE submitted_at IS NULL"
        "   AND status = 'queued'), now())"
    )
    op.create_index("ix_messages_expires_at", "messages", ["expires_at"])
    op.drop_index(
        "ix_messages_unsubmitted_expires_at",
        table_name="messages",
        postgresql_where=sa.text("submitted_at IS NULL"),
    )
    op.drop_index(
        "ix_messages_carrier_ref",
        table_name="messages",
        postgresql_where=sa.text("carrier_message_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.create_index(
        "ix_messages_carrier_ref",
        "messages",
        ["carrier", "carrier_message_id"],
        postgresql_where=sa.text("carrier_message_id IS NOT NULL"),
    )
    op.create_index(
        "ix_messages_unsubmitted_expires_at",
        "messages",
        ["expires_at"],
        postgresql_where=sa.text("submitted_at IS NULL"),
    )
    op.drop_index("ix_messages_expires_at", table_name="messages")
    op.drop_table("sweep_marks")
    op.drop_table("message_refs")
