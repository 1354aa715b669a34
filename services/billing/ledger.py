"""Ledger operations besides admission: credits, refunds and the balance invariant."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import NotFound, ValidationFailed
from libs.common.events import REFUNDED_EVENTS, Event
from libs.common.logging import get_logger
from libs.common.models import LedgerEntry, LedgerKind

log = get_logger(__name__)


async def credit(
    session: AsyncSession,
    wallet_id: str,
    amount: int,
    *,
    kind: LedgerKind = LedgerKind.ADJUSTMENT,
    reference: str | None = None,
    description: str | None = None,
) -> int:
    """Add money (or remove it, when negative) with its ledger entry; returns the balance."""
    if amount == 0:
        raise ValidationFailed("amount must not be zero")
    row = (
        await session.execute(
            text(
                "UPDATE wallets SET balance = balance + :amount"
                " WHERE id = :wallet_id AND balance + :amount >= 0 RETURNING balance"
            ),
            {"amount": amount, "wallet_id": wallet_id},
        )
    ).one_or_none()
    if row is None:
        exists = await session.scalar(
            text("SELECT 1 FROM wallets WHERE id = :wallet_id"), {"wallet_id": wallet_id}
        )
        if exists is None:
            raise NotFound(f"wallet {wallet_id} not found")
        raise ValidationFailed("the adjustment would make the balance negative")
    balance = int(row[0])
    await session.execute(
        insert(LedgerEntry).values(
            wallet_id=wallet_id,
            kind=kind.value,
            amount=amount,
            balance_after=balance,
            reference=reference,
            description=description,
        )
    )
    return balance


async def refund_messages(session: AsyncSession, events: Iterable[Event]) -> int:
    """Give back each failed or expired message's cost once; returns how many were refunded.

    The message row, not the event, decides: only a message whose stored status is
    failed or expired is refunded, for its stored cost, to its own wallet. The partial
    unique index on (message_id) for refunds makes a second refund impossible.
    """
    ids = sorted({e.data["message_id"] for e in events if e.type in REFUNDED_EVENTS})
    if not ids:
        return 0
    rows = (
        await session.execute(
            text(
                "SELECT m.id, m.wallet_id, m.batch_id, m.cost, m.status FROM messages m"
                " WHERE m.id = ANY(:ids) AND m.status IN ('failed', 'expired')"
                " AND NOT EXISTS (SELECT 1 FROM ledger_entries l"
                "   WHERE l.kind = 'refund' AND l.message_id = m.id)"
            ),
            {"ids": ids},
        )
    ).all()
    by_wallet: dict[str, list[tuple[str, str, int, str]]] = defaultdict(list)
    for message_id, wallet_id, batch_id, cost, status in rows:
        if cost > 0:
            by_wallet[wallet_id].append((message_id, batch_id, cost, status))
    refunded = 0
    # Wallets in a fixed order, so two consumers refunding overlapping sets never deadlock.
    for wallet_id in sorted(by_wallet):
        messages = by_wallet[wallet_id]
        balance = (
            await session.execute(
                text("SELECT balance FROM wallets WHERE id = :w FOR UPDATE"), {"w": wallet_id}
            )
        ).scalar_one()
        # Re-check under the wallet lock: a concurrent consumer may have refunded some.
        done = set(
            (
                await session.scalars(
                    text(
                        "SELECT message_id FROM ledger_entries"
                        " WHERE kind = 'refund' AND message_id = ANY(:ids)"
                    ),
                    {"ids": [m[0] for m in messages]},
                )
            ).all()
        )
        entries = []
        for message_id, batch_id, cost, status in messages:
            if message_id in done:
                continue
            balance += cost
            entries.append(
                {
                    "wallet_id": wallet_id,
                    "kind": LedgerKind.REFUND.value,
                    "amount": cost,
                    "balance_after": balance,
                    "batch_id": batch_id,
                    "message_id": message_id,
                    "description": f"refund: message {status}",
                }
            )
        if entries:
            await session.execute(insert(LedgerEntry), entries)
            await session.execute(
                text("UPDATE wallets SET balance = :b WHERE id = :w"),
                {"b": balance, "w": wallet_id},
            )
            refunded += len(entries)
            log.info("billing.refunded", wallet_id=wallet_id, messages=len(entries))
    return refunded


async def ledger_mismatches(session: AsyncSession) -> list[tuple[str, int, int]]:
    """Wallets whose balance differs from the sum of their ledger: (wallet, balance, sum)."""
    rows = await session.execute(
        text(
            "SELECT w.id, w.balance, COALESCE(l.total, 0) FROM wallets w"
            " LEFT JOIN (SELECT wallet_id, SUM(amount) AS total FROM ledger_entries"
            "            GROUP BY wallet_id) l ON l.wallet_id = w.id"
            " WHERE w.balance <> COALESCE(l.total, 0)"
        )
    )
    return [(r[0], int(r[1]), int(r[2])) for r in rows]


async def unbatched_messages(session: AsyncSession, limit: int = 100) -> list[tuple[str, str]]:
    """Messages without their batch, or with the batch of another wallet: (message, batch).

    Nothing but admission writes messages, in the transaction that writes their batch, so
    there should be none; the table has no foreign key to say so (migration 0006).
    """
    rows = await session.execute(
        text(
            "SELECT m.id, m.batch_id FROM messages m LEFT JOIN batches b ON b.id = m.batch_id"
            " WHERE b.id IS NULL OR b.wallet_id <> m.wallet_id ORDER BY m.id LIMIT :limit"
        ),
        {"limit": limit},
    )
    return [(r[0], r[1]) for r in rows]
