"""What the sender's statements return: the rows a transition changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from services.sender.receipts import Receipt

# Every statement of the sender reaches messages through an index (by id, by expiry;
# receipts through `message_refs`). Statistics taken while nearly every message was
# delivered say one message is queued or sent; a campaign makes 100k of them before
# autoanalyze runs, and the planner then joined every queued message with every id of a
# flush: 8-30 s per update instead of 8 ms. Without sequential scans it probes the
# primary key.
INDEX_PLANS = {"enable_seqscan": "off"}

# The state a transition leaves, as an array parameter: one prepared statement serves
# every caller, and the planner always probes the primary key for the rows named.
QUEUED = ["queued"]
RETURNED = (
    "m.id, m.batch_id, m.wallet_id, m.recipient, m.units, m.cost, m.carrier,"
    " m.carrier_message_id, m.status, m.error_code"
)


class Changed(NamedTuple):
    """A message whose status this transaction changed: what its event says.

    A NamedTuple, built straight from the row: a frozen dataclass per row was 6% of the
    bulk sender's CPU during a campaign.
    """

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
    make = Changed._make
    return [make(row) for row in rows]
