"""The deposit state machine in Postgres: pending -> successful | failed | expired, once.

Every transition is `UPDATE … WHERE id = :id AND status = 'pending'`; the one that wins
writes, in the same transaction, the credit and its ledger entry (successful) and the
`deposit.*` event for the outbox. A losing transition changes nothing. The partial unique
index on ledger entries (kind 'deposit', reference = deposit id) is the last line: a
second credit for one deposit cannot be written.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import RowMapping, insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.amqp import Topology
from libs.common.events import DEPOSIT_FAILED, DEPOSIT_SUCCEEDED, Event, encode_events
from libs.common.logging import get_logger
from libs.common.mobile_money import PROVIDER_NAMES, StartDeposit, deposit_view
from libs.common.models import LedgerEntry, LedgerKind
from libs.common.outbox import BILLING, OutboxMessage, enqueue

log = get_logger(__name__)


class WalletNotFound(Exception):
    pass


async def create_deposit(
    session: AsyncSession,
    start: StartDeposit,
    reference: str,
    *,
    expires_in: timedelta,
    first_check_in: timedelta,
) -> RowMapping:
    """The deposit under `start.deposit_id`, created pending unless it already exists."""
    wallet = await session.scalar(
        text("SELECT 1 FROM wallets WHERE id = :w"), {"w": start.wallet_id}
    )
    if wallet is None:
        raise WalletNotFound(start.wallet_id)
    row = (
        (
            await session.execute(
                text(
                    "INSERT INTO deposits (id, wallet_id, provider, phone_number, amount,"
                    " description, provider_reference, request_id, expires_at, next_check_at)"
                    " VALUES (:id, :wallet_id, :provider, :phone, :amount, :description,"
                    "  :reference, :request_id, now() + :expires_in, now() + :first_check_in)"
                    " ON CONFLICT (id) DO NOTHING RETURNING *"
                ),
                {
                    "id": start.deposit_id,
                    "wallet_id": start.wallet_id,
                    "provider": start.provider,
                    "phone": start.phone_number,
                    "amount": start.amount,
                    "description": start.description,
                    "reference": reference,
                    "request_id": start.request_id,
                    "expires_in": expires_in,
                    "first_check_in": first_check_in,
                },
            )
        )
        .mappings()
        .one_or_none()
    )
    if row is not None:
        return row
    existing = await load(session, start.deposit_id)
    if existing is None or existing["wallet_id"] != start.wallet_id:
        raise WalletNotFound(start.wallet_id)
    return existing


async def load(session: AsyncSession, deposit_id: str) -> RowMapping | None:
    return (
        (await session.execute(text("SELECT * FROM deposits WHERE id = :id"), {"id": deposit_id}))
        .mappings()
        .one_or_none()
    )


async def by_reference(session: AsyncSession, provider: str, reference: str) -> RowMapping | None:
    return (
        (
            await session.execute(
                text("SELECT * FROM deposits WHERE provider = :p AND provider_reference = :r"),
                {"p": provider, "r": reference},
            )
        )
        .mappings()
        .one_or_none()
    )


async def mark_initiated(session: AsyncSession, deposit_id: str, next_check_at: datetime) -> None:
    """The provider has the request: the payer is being asked; look again at `next_check_at`."""
    await session.execute(
        text(
            "UPDATE deposits SET initiated_at = COALESCE(initiated_at, now()),"
            " next_check_at = :at, updated_at = now() WHERE id = :id AND status = 'pending'"
        ),
        {"id": deposit_id, "at": next_check_at},
    )


async def schedule(session: AsyncSession, deposit_id: str, next_check_at: datetime) -> None:
    await session.execute(
        text("UPDATE deposits SET next_check_at = :at WHERE id = :id AND status = 'pending'"),
        {"id": deposit_id, "at": next_check_at},
    )


async def claim_due(session: AsyncSession, limit: int, lease: timedelta) -> list[RowMapping]:
    """Pending deposits due a check, leased so other reconcilers leave them alone meanwhile."""
    result = await session.execute(
        text(
            "UPDATE deposits SET next_check_at = now() + :lease, checks = checks + 1"
            " WHERE id IN (SELECT id FROM deposits WHERE status = 'pending'"
            "   AND next_check_at <= now() ORDER BY next_check_at LIMIT :limit"
            "   FOR UPDATE SKIP LOCKED)"
            " RETURNING *"
        ),
        {"lease": lease, "limit": limit},
    )
    return list(result.mappings().all())


async def succeed(
    session: AsyncSession,
    topology: Topology,
    deposit_id: str,
    transaction_id: str | None,
) -> bool:
    """pending -> successful with the credit; False when the deposit had already ended."""
    row = (
        (
            await session.execute(
                text(
                    "UPDATE deposits SET status = 'successful', provider_transaction_id = :txn,"
                    " completed_at = now(), updated_at = now()"
                    " WHERE id = :id AND status = 'pending' RETURNING *"
                ),
                {"id": deposit_id, "txn": transaction_id},
            )
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        return False
    balance = (
        await session.execute(
            text("UPDATE wallets SET balance = balance + :amount WHERE id = :w RETURNING balance"),
            {"amount": row["amount"], "w": row["wallet_id"]},
        )
    ).scalar_one()
    await session.execute(
        insert(LedgerEntry).values(
            wallet_id=row["wallet_id"],
            kind=LedgerKind.DEPOSIT.value,
            amount=row["amount"],
            balance_after=balance,
            reference=deposit_id,
            description=f"top-up via {PROVIDER_NAMES[row['provider']]} from {row['phone_number']}",
        )
    )
    await _announce(session, topology, DEPOSIT_SUCCEEDED, row, balance=balance)
    log.info(
        "deposit.credited",
        deposit_id=deposit_id,
        wallet_id=row["wallet_id"],
        amount=row["amount"],
        balance=balance,
    )
    return True


async def end_unpaid(
    session: AsyncSession,
    topology: Topology,
    deposit_id: str,
    status: str,
    reason: str,
) -> bool:
    """pending -> failed or expired; False when the deposit had already ended."""
    assert status in ("failed", "expired")
    row = (
        (
            await session.execute(
                text(
                    "UPDATE deposits SET status = :status, failure_reason = :reason,"
                    " completed_at = now(), updated_at = now()"
                    " WHERE id = :id AND status = 'pending' RETURNING *"
                ),
                {"id": deposit_id, "status": status, "reason": reason},
            )
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        return False
    await _announce(session, topology, DEPOSIT_FAILED, row)
    log.info("deposit.ended", deposit_id=deposit_id, status=status, reason=reason)
    return True


async def _announce(
    session: AsyncSession, topology: Topology, event_type: str, row: RowMapping, **extra: Any
) -> None:
    event = Event(
        type=event_type, request_id=row["request_id"], data={**deposit_view(row), **extra}
    )
    await enqueue(
        session,
        [
            OutboxMessage(
                origin=BILLING,
                exchange=topology.events_exchange,
                routing_key=event_type,
                body=encode_events([event]),
                message_id=event.id,
            )
        ],
    )
