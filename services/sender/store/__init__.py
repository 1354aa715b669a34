"""The sender's reads and writes of message delivery state, in sets (one statement per batch)."""

from services.sender.store.messages import (
    expire_overdue,
    insert_parts,
    mark_sent,
    mark_unsent,
    message_states,
)
from services.sender.store.receipts import (
    apply_receipts,
    due_parked,
    park_receipts,
    prune_parked,
    receipt_error,
    settle_parked,
    take_parked_for,
)
from services.sender.store.rows import INDEX_PLANS, Changed, ReceiptUpdate

__all__ = [
    "INDEX_PLANS",
    "Changed",
    "ReceiptUpdate",
    "apply_receipts",
    "due_parked",
    "expire_overdue",
    "insert_parts",
    "mark_sent",
    "mark_unsent",
    "message_states",
    "park_receipts",
    "prune_parked",
    "receipt_error",
    "settle_parked",
    "take_parked_for",
]
