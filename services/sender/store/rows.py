"""What the sender's statements return: the rows a transition changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.sender.receipts import Receipt

# The state a transition leaves, as an array parameter: one prepared statement serves
# every caller, and the planner always probes the primary key for the rows named.
QUEUED = ["queued"]
RETURNED = (
    "m.id, m.batch_id, m.wallet_id, m.recipient, m.units, m.cost, m.carrier,"
    " m.carrier_message_id, m.status, m.error_code"
)


@dataclass(frozen=True, slots=True)
class Changed:
    """A message whose status this transaction changed: what its event says."""

    id: str
    batch_id: str
    wallet_id: str
    recipient: str
    units: int
    cost: int
    carrier: str
    carrier_message_id: str | None
    status: str
    error_code: str | None


@dataclass(frozen=True, slots=True)
class ReceiptUpdate:
    carrier: str
    receipt: Receipt
    status: str  # our final status: delivered / undelivered


def changed_rows(rows: Any) -> list[Changed]:
    return [Changed(*row) for row in rows]
