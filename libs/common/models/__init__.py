"""Tables of the one Wesendall database; each names its owning service in its docstring."""

from libs.common.models.accounts import Account, ApiKey, Wallet
from libs.common.models.base import Base
from libs.common.models.contacts import Contact, Group
from libs.common.models.deposits import Deposit
from libs.common.models.ledger import LedgerEntry, LedgerKind, WalletUsage
from libs.common.models.messaging import (
    Batch,
    Message,
    MessagePart,
    MessageRef,
    MessageStatus,
    PendingReceipt,
    SweepMark,
)
from libs.common.models.platform import IdempotencyRecord, OutboxRow
from libs.common.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "Account",
    "ApiKey",
    "Base",
    "Batch",
    "Contact",
    "Deposit",
    "Group",
    "IdempotencyRecord",
    "LedgerEntry",
    "LedgerKind",
    "Message",
    "MessagePart",
    "MessageRef",
    "MessageStatus",
    "OutboxRow",
    "PendingReceipt",
    "SweepMark",
    "Wallet",
    "WalletUsage",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
