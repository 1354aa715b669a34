"""Send admission: the debit, its ledger entry, the batch, its messages and their send jobs,
all in the caller's one transaction. No money moves without its messages; no message
exists without its charge.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.admission import Admission, AdmitResult
from libs.common.admission.accepted import Accepted, AcceptedMessage, validity
from libs.common.admission.jobs import send_jobs
from libs.common.admission.settings import AdmissionSettings
from libs.common.amqp import Topology
from libs.common.db import Connection, fetch_named, transaction
from libs.common.logging import get_logger
from libs.common.models import MessageStatus
from libs.common.outbox import (
    OutboxRelay,
    Staged,
    publish_committed,
    stage_parameters,
    stage_sql,
    staged_rows,
)
from libs.common.pricing import unit_price

log = get_logger(__name__)

MESSAGE_COLUMNS = (
    "id",
    "batch_id",
    "wallet_id",
    "recipient",
    "carrier",
    "units",
    "cost",
    "status",
    "parts_done",
    "expires_at",
    "created_at",
    "updated_at",
)

_LOCK_WALLET = """
    SELECT w.balance, w.price_per_unit,
           (SELECT COALESCE(SUM(u.units), 0) FROM wallet_usage_daily u
             WHERE u.wallet_id = w.id AND u.day > $2::date - 30) AS recent_units
      FROM wallets w
     WHERE w.id = $1
       FOR UPDATE OF w
    """
# The debit, the day's usage, one charge per batch in the ledger and the batch rows, in one
# round trip; with them, when asked, the message rows of a small admission and the staged
# send jobs (`_charge`). The debit is conditional even under the row lock: whatever was
# computed, a wallet never pays more than it holds (the CHECK constraint stands behind
# this too), and the other rows are written only FROM the debit, so a refused debit
# writes nothing.
_CHARGE_CTES = """
    WITH debit AS (
        UPDATE wallets SET balance = balance - :total
         WHERE id = :wallet_id AND balance >= :total RETURNING balance
    ), usage AS (
        INSERT INTO wallet_usage_daily (wallet_id, day, units)
        SELECT :wallet_id, :day, :units FROM debit
        ON CONFLICT (wallet_id, day)
        DO UPDATE SET units = wallet_usage_daily.units + EXCLUDED.units
    ), charges AS (
        INSERT INTO ledger_entries (wallet_id, kind, amount, balance_after, batch_id, description)
        SELECT :wallet_id, 'charge', -c.cost, c.after, c.id, c.description
          FROM debit, unnest(CAST(:ids AS text[]), CAST(:costs AS bigint[]),
                             CAST(:afters AS bigint[]), CAST(:descriptions AS text[]))
               AS c(id, cost, after, description)
    ), batches AS (
        INSERT INTO batches (id, wallet_id, api_key_id, group_id, message, encoding, priority,
                             recipients, units, cost, unit_price, request_id, created_at)
        SELECT b.id, :wallet_id, b.key, b.grp, b.message, b.encoding, b.priority, b.count,
               b.units, b.cost, :price, b.request, :now
          FROM debit, unnest(CAST(:ids AS text[]), CAST(:keys AS text[]),
                             CAST(:groups AS text[]), CAST(:messages AS text[]),
                             CAST(:encodings AS text[]), CAST(:priorities AS text[]),
                             CAST(:counts AS int[]), CAST(:batch_units AS bigint[]),
                             CAST(:costs AS bigint[]), CAST(:requests AS text[]))
               AS b(id, key, grp, message, encoding, priority, count, units, cost, request)
    )"""
# The foreign key from a message to its batch is checked at the end of the statement,
# when the batch row of the sibling CTE is there.
_MESSAGES_CTE = """, new_messages AS (
        INSERT INTO messages (id, batch_id, wallet_id, recipient, carrier, units, cost,
                              status, parts_done, expires_at, created_at, updated_at)
        SELECT m.id, m.batch, :wallet_id, m.recipient, m.carrier, m.units, m.cost,
               'queued', 0, m.expires, :now, :now
          FROM debit, unnest(CAST(:m_ids AS text[]), CAST(:m_batches AS text[]),
                             CAST(:m_recipients AS text[]), CAST(:m_carriers AS text[]),
                             CAST(:m_units AS smallint[]), CAST(:m_costs AS int[]),
                             CAST(:m_expires AS timestamptz[]))
               AS m(id, batch, recipient, carrier, units, cost, expires)
    )"""
# Admissions of up to this many messages write them in the charge's statement; larger ones
# COPY them afterwards, which costs round trips but less per row.
INLINE_MESSAGES = 100


@functools.cache
def _charge(*, inline_messages: bool) -> str:
    """The charge statement: the new balance and the (id, message_id) of each staged send
    job, a row each (the balance repeated)."""
    sql = _CHARGE_CTES + (_MESSAGES_CTE if inline_messages else "")
    sql += f", jobs AS ({stage_sql('debit, ')})"
    return sql + " SELECT d.balance, j.id, j.message_id FROM debit d LEFT JOIN jobs j ON true"


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
) -> list[AdmitResult]:
    """Admit each request of one wallet in order, each fully or not at all.

    `connection` is the asyncpg driver inside the caller's transaction (`db.transaction`).
    Batches that may exist already (`check_existing`, or an admission marked `retry`)
    are looked up first and answered as they were. The send jobs are staged into
    `staged` for the caller to publish once it commits (a relay does if it cannot).
    PastDeadline is raised (the caller rolls back) when the wallet's lock or the writes
    take the admission too close to `deadline`, the time the requester stops waiting.
    """
    now = datetime.now(UTC)
    replayed = await _existing_batches(
        connection, [a for a in admissions if check_existing or a.retry]
    )
    row = await connection.fetchrow(_LOCK_WALLET, wallet_id, now.date())
    if row is None:
        return [
            AdmitResult(batch_id=a.batch_id, ok=False, error="wallet_not_found") for a in admissions
        ]
    _check_deadline(deadline)  # the lock may have been waited for behind other admissions
    balance, negotiated, recent_units = row
    price = unit_price(settings, negotiated, recent_units)

    results: dict[str, AdmitResult] = {}
    accepted: list[tuple[Admission, int]] = []
    for admission in admissions:
        if admission.batch_id in replayed or admission.batch_id in results:
            continue
        cost = admission.units * len(admission.recipients) * price
        if cost > balance:
            results[admission.batch_id] = AdmitResult(
                batch_id=admission.batch_id,
                ok=False,
                error="insufficient_balance",
                balance=balance,
                unit_price=price,
                cost=cost,
            )
            continue
        balance -= cost
        accepted.append((admission, cost))
        results[admission.batch_id] = AdmitResult(
            batch_id=admission.batch_id,
            ok=True,
            balance=balance,
            unit_price=price,
            cost=cost,
            created_at=now,
            message_ids=message_ids_for(admission.batch_id, len(admission.recipients)),
        )
    if accepted:
        await _write(
            connection,
            settings,
            topology,
            Accepted(wallet_id, accepted, results, price, now),
            balance,
            staged,
        )
        _check_deadline(deadline)
    for batch_id, result in replayed.items():
        results[batch_id] = result.model_copy(update={"balance": balance})
    return [results[a.batch_id] for a in admissions]


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
) -> list[AdmitResult]:
    """`admit_for_wallet` in a transaction of its own; once it commits, the send jobs go
    to `relays` to publish while the caller answers. Raises what the transaction raised
    (PastDeadline among others): then nothing was written."""
    staged: list[Staged] = []
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


async def _write(
    connection: Connection,
    settings: AdmissionSettings,
    topology: Topology,
    accepted: Accepted,
    balance: int,
    staged: list[Staged],
) -> None:
    admissions = [a for a, _ in accepted.admissions]
    costs = [cost for _, cost in accepted.admissions]
    total = sum(costs)
    afters, running = [], balance + total
    for cost in costs:
        running -= cost
        afters.append(running)
    messages = list(accepted.messages(settings))
    inline = len(messages) <= INLINE_MESSAGES
    jobs = send_jobs(settings, topology, accepted, messages)
    parameters: dict[str, Any] = {
        "wallet_id": accepted.wallet_id,
        "total": total,
        "day": accepted.now.date(),
        "units": sum(a.units * len(a.recipients) for a in admissions),
        "now": accepted.now,
        "price": accepted.price,
        "ids": [a.batch_id for a in admissions],
        "costs": costs,
        "afters": afters,
        "descriptions": [f"{len(a.recipients)} recipients x {a.units} units" for a in admissions],
        "keys": [a.api_key_id for a in admissions],
        "groups": [a.group_id for a in admissions],
        "messages": [a.message for a in admissions],
        "encodings": [a.encoding for a in admissions],
        "priorities": [a.priority for a in admissions],
        "counts": [len(a.recipients) for a in admissions],
        "batch_units": [a.units * len(a.recipients) for a in admissions],
        "requests": [a.request_id for a in admissions],
    }
    if inline:
        parameters |= _message_columns(settings, accepted, messages)
    parameters |= stage_parameters(jobs)
    rows = await fetch_named(connection, _charge(inline_messages=inline), parameters)
    debited = rows[0][0] if rows else None
    if debited != balance:
        raise RuntimeError(f"wallet {accepted.wallet_id}: debit left {debited}, expected {balance}")
    if not inline:
        await _copy_messages(connection, settings, accepted, messages)
    staged += staged_rows(jobs, [(row[1], row[2]) for row in rows])


def _message_columns(
    settings: AdmissionSettings, accepted: Accepted, messages: Sequence[AcceptedMessage]
) -> dict[str, list[Any]]:
    """What differs between the new message rows, a list per column, by the charge
    statement's parameter names (in this order: id, batch, recipient, carrier, units, cost,
    expiry). The rest of each row (wallet, status, times) is the admission's."""
    expiry = {lane: accepted.now + validity(settings, lane) for lane in ("priority", "bulk")}
    return {
        "m_ids": [m.message_id for m in messages],
        "m_batches": [m.admission.batch_id for m in messages],
        "m_recipients": [m.recipient for m in messages],
        "m_carriers": [m.carrier for m in messages],
        "m_units": [m.admission.units for m in messages],
        "m_costs": [m.cost for m in messages],
        "m_expires": [expiry[m.lane] for m in messages],
    }


async def _copy_messages(
    connection: Connection,
    settings: AdmissionSettings,
    accepted: Accepted,
    messages: Sequence[AcceptedMessage],
) -> None:
    """COPY the message rows of a large admission: the write that grows with its recipients."""
    queued, now, wallet_id = MessageStatus.QUEUED.value, accepted.now, accepted.wallet_id
    columns = _message_columns(settings, accepted, messages).values()
    records = [
        (id_, batch, wallet_id, recipient, carrier, units, cost, queued, 0, expires, now, now)
        for id_, batch, recipient, carrier, units, cost, expires in zip(*columns, strict=True)
    ]
    await connection.copy_records_to_table("messages", records=records, columns=MESSAGE_COLUMNS)
