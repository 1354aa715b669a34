"""messages no longer carry a foreign key to batches

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 19:10:00.000000

Postgres checks a foreign key once per inserted row, through a query of its own: a
campaign request of 1,000 recipients ran 1,000 look-ups of the one batch they all belong
to. In a 100,000-recipient campaign that check (`SPI_execute_snapshot` under `CopyFrom`)
was 20-29% of Postgres' CPU, the largest single item; with a young `batches` table the
cached plan of the check was even a sequential scan of it, per message.

Messages are written in one place only: billing's admission, in the transaction (for
small sends the very statement) that inserts their batch, which is never deleted. What the
key guarded is checked instead where the ledger is: `wesendall admin check-ledger` reports
any message whose batch is missing or belongs to another wallet.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("fk_messages_batch_id_batches", "messages", type_="foreignkey")


def downgrade() -> None:
    # Added unchecked, then validated: the check reads the table without blocking writes.
    op.execute(
        "ALTER TABLE messages ADD CONSTRAINT fk_messages_batch_id_batches"
        " FOREIGN KEY (batch_id) REFERENCES batches (id) NOT VALID"
    )
    op.execute("ALTER TABLE messages VALIDATE CONSTRAINT fk_messages_batch_id_batches")
