"""Send admission: the debit, its ledger entry, the batch, its messages and their send jobs,
all in the caller's one transaction. No money moves without its messages; no message
exists without its charge.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.admission import Admission, AdmitResult
from libs.common.admission.accepted import Accepted
from libs.common.admission.settings import AdmissionSettings
from libs.common.admission.writes import INLINE_MESSAGES, write
from libs.common.amqp import Topology
from libs.common.db import Connection, autocommit, fetch_named, transaction
from libs.common.logging import get_logger
from libs.common.outbox import OutboxRelay, Staged, publish_committed
from libs.common.pricing import RECENT_UNITS, Quote, quote

log = get_logger(__name__)

_LOCK_WALLET = "SELECT balance, price_per_unit FROM wallets WHERE id = $1 FOR UPDATE"
# Read once the lock is held: a statement's snapshot is taken before it waits for a lock,
# so units read in the locking statement would miss those of the admission it waited for.
_RECENT_UNITS = f"SELECT {RECENT_UNITS} FROM wallets w WHERE w.id = :wallet_id"
# An admission still uncommitted this close to its caller's deadline is rolled back: the
# caller answers the customer an error at the deadline, and must not have charged them.
DEADLINE_MARGIN = 0.5


class PastDeadline(Exception):
    """The caller stops listening before this admission could commit; nothing was written."""


def _check_deadline(deadline: float | None) -> None:
    if deadline is not None and time.time() > deadline - DEADLINE_MARGIN:
        raise PastDeadline()


def message_ids_for(batch_id: str, count: int) -> list[str]:
    """Message ids derived from their batch id: unique, time-ordered, and cheap to make."""
    stem = "msg_" + batch_id.removeprefix("bat_")
    return [f"{stem}{index:06x}" for index in range(count)]


def _accept(
    admissions: Sequence[Admission],
    skip: Collection[str],
    price: int,
    balance: int | None,
    now: datetime,
) -> tuple[dict[str, AdmitResult], list[tuple[Admission, int]]]:
    """Each admission's result at `price`, in order, and the accepted ones with their
    cost: an admission is refused when what is left of `balance` does not cover it, and
    none is when `balance` is None (the debit checks the total). The results' balances
    are set once the debit is known (`_settle`); a batch in `skip` gets no result."""
    results: dict[str, AdmitResult] = {}
    accepted: list[tuple[Admission, int]] = []
    for admission in admissions:
        if admission.batch_id in skip or admission.batch_id in results:
            continue
        cost = admission.units * len(admission.recipients) * price
        if balance is not None and cost > balance:
            results[admission.batch_id] = AdmitResult(
                batch_id=admission.batch_id,
                ok=False,
                error="insufficient_balance",
                balance=balance,
                unit_price=price,
                cost=cost,
            )
            continue
        if balance is not None:
            balance -= cost
        accepted.append((admission, cost))
        results[admission.batch_id] = AdmitResult(
            batch_id=admission.batch_id,
            ok=True,
            unit_price=price,
            cost=cost,
            created_at=now,
            message_ids=message_ids_for(admission.batch_id, len(admission.recipients)),
        )
    return results, accepted


def _settle(accepted: Accepted, debited: int) -> None:
    """Give each accepted result the balance it left, from the balance after the debit."""
    running = debited + sum(cost for _, cost in accepted.admissions)
    for admission, cost in accepted.admissions:
        running -= cost
        accepted.results[admission.batch_id].balance = running


async def admit_for_wallet(
    connection: Connection,
    settings: AdmissionSettings,
    topology: Topology,
    wallet_id: str,
    admissions: Sequence[Admission],
    staged: list[Staged],
    *,
    check_existing: bool = False,
    deadline: float | None = None,
    quotes: Quotes | None = None,
) -> list[AdmitResult]:
    """Admit each request of one wallet in order, each fully or not at all.

    `connection` is the asyncpg driver inside the caller's transaction (`db.transaction`).
    Batches that may exist already (`check_existing`, or an admission marked `retry`)
    are looked up first and answered as they were. The send jobs are staged into
    `staged` for the caller to publish once it commits (a relay does if it cannot).
    PastDeadline is raised (the caller rolls back) when the wallet's lock or the writes
    take the admission too close to `deadline`, the time the requester stops waiting.
    The wallet's quote goes into `quotes` when every admission was accepted.
    """
    now = datetime.now(UTC)
    replayed = await _existing_batches(
        connection, [a for a in admissions if check_existing or a.retry]
    )
    row = await connection.fetchrow(_LOCK_WALLET, wallet_id)
    if row is None:
        return [
            AdmitResult(batch_id=a.batch_id, ok=False, error="wallet_not_found") for a in admissions
        ]
    _check_deadline(deadline)  # the lock may have been waited for behind other admissions
    balance, negotiated = row
    [(recent_units,)] = await fetch_named(
        connection, _RECENT_UNITS, {"wallet_id": wallet_id, "day": now.date()}
    )
    price = quote(settings, negotiated, recent_units)
    results, accepted = _accept(admissions, replayed, price.price, balance, now)
    if accepted:
        admitted = Accepted(wallet_id, accepted, results, price, now)
        debited = await write(connection, settings, topology, admitted, staged)
        if debited is None:
            raise RuntimeError(f"wallet {wallet_id}: the debit under its lock was refused")
        _settle(admitted, debited)
        balance = debited
        _check_deadline(deadline)
    for batch_id, result in replayed.items():
        results[batch_id] = result.model_copy(update={"balance": balance})
    if quotes is not None and all(r.ok for r in results.values()):
        quotes.remember(wallet_id, price)
    return [results[a.batch_id] for a in admissions]


async def _admit_at_quote(
    connection: Connection,
    settings: AdmissionSettings,
    topology: Topology,
    wallet_id: str,
    admissions: Sequence[Admission],
    price: Quote,
    staged: list[Staged],
) -> list[AdmitResult] | None:
    """Admit every request of one wallet in one statement, without taking its lock first:
    all of them at `price`, or none (None) when the wallet holds less than their total or
    its price is no longer `price`. `connection` is outside any transaction; the statement
    is one, and has committed when this returns."""
    now = datetime.now(UTC)
    results, accepted = _accept(admissions, (), price.price, None, now)
    admitted = Accepted(wallet_id, accepted, results, price, now)
    debited = await write(connection, settings, topology, admitted, staged)
    if debited is None:
        return None
    _settle(admitted, debited)
    return [results[a.batch_id] for a in admissions]


def _one_statement(admissions: Sequence[Admission]) -> bool:
    """Whether `_admit_at_quote` can take these: new batches, each once, whose messages
    fit in the charge's statement."""
    return (
        not any(a.retry for a in admissions)
        and len({a.batch_id for a in admissions}) == len(admissions)
        and sum(len(a.recipients) for a in admissions) <= INLINE_MESSAGES
    )


class Quotes:
    """The price each wallet was last admitted at in full, by wallet: with it, the next
    admission of the wallet is one statement, which checks that the price still holds."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._quotes: dict[str, Quote] = {}

    def get(self, wallet_id: str) -> Quote | None:
        return self._quotes.get(wallet_id)

    def remember(self, wallet_id: str, price: Quote) -> None:
        if len(self._quotes) >= self._capacity and wallet_id not in self._quotes:
            self._quotes.clear()  # wallets active again are quoted again on their next round
        self._quotes[wallet_id] = price

    def forget(self, wallet_id: str) -> None:
        self._quotes.pop(wallet_id, None)


async def admit_and_publish(
    sessions: async_sessionmaker[AsyncSession],
    relays: Sequence[OutboxRelay],
    settings: AdmissionSettings,
    topology: Topology,
    wallet_id: str,
    admissions: Sequence[Admission],
    *,
    check_existing: bool = False,
    deadline: float | None = None,
    quotes: Quotes | None = None,
) -> list[AdmitResult]:
    """`admit_for_wallet` in a transaction of its own; once it commits, the send jobs go
    to `relays` to publish while the caller answers. Raises what the transaction raised
    (PastDeadline among others): then nothing was written.

    With `quotes`, a wallet admitted in full before is admitted first in one statement at
    its last price (no deadline applies: the statement cannot be rolled back once it
    returns); only when that debit is refused does the locked transaction decide, request
    by request.
    """
    staged: list[Staged] = []
    results: list[AdmitResult] | None = None
    known = quotes.get(wallet_id) if quotes is not None and deadline is None else None
    if known is not None and not check_existing and _one_statement(admissions):
        async with autocommit(sessions) as connection:
            results = await _admit_at_quote(
                connection, settings, topology, wallet_id, admissions, known, staged
            )
        if results is None and quotes is not None:
            quotes.forget(wallet_id)
    if results is None:
        async with transaction(sessions) as connection:
            results = await admit_for_wallet(
                connection,
                settings,
                topology,
                wallet_id,
                admissions,
                staged,
                check_existing=check_existing,
                deadline=deadline,
                quotes=quotes,
            )
    publish_committed(relays, staged)
    for admission, result in zip(admissions, results, strict=True):
        log.info(
            "admission.admitted" if result.ok else "admission.refused",
            request_id=admission.request_id,
            wallet_id=wallet_id,
            batch_id=result.batch_id,
            cost=result.cost,
            messages=len(result.message_ids),
            error=result.error,
        )
    return results


async def _existing_batches(
    connection: Connection, admissions: Sequence[Admission]
) -> dict[str, AdmitResult]:
    """Batches an earlier attempt already admitted, answered as they were.

    A retried request (an Idempotency-Key replay, or an RPC redelivered after a crash
    between commit and ack) carries the same batch id and must not be charged twice.
    """
    ids = [a.batch_id for a in admissions]
    if not ids:
        return {}
    rows = await connection.fetch(
        "SELECT b.id, b.cost, b.unit_price, b.created_at,"
        " array_agg(m.id ORDER BY m.id) AS message_ids"
        " FROM batches b JOIN messages m ON m.batch_id = b.id"
        " WHERE b.id = ANY($1::text[]) GROUP BY b.id",
        ids,
    )
    return {
        r["id"]: AdmitResult(
            batch_id=r["id"],
            ok=True,
            unit_price=r["unit_price"],
            cost=r["cost"],
            created_at=r["created_at"],
            message_ids=list(r["message_ids"]),
        )
        for r in rows
    }
