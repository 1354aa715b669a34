"""Message delivery state: submits stored, never-sent outcomes, validity expiry.

Every transition is conditional on the state it leaves, so a replayed outcome changes
nothing and announces nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from libs.common.db import Connection
from services.sender.store.rows import QUEUED, RETURNED, Changed, changed_rows


async def message_states(connection: Connection, ids: Sequence[str]) -> dict[str, str]:
    rows = await connection.fetch(
        "SELECT id, status FROM messages WHERE id = ANY($1::text[])", list(ids)
    )
    return {row[0]: row[1] for row in rows}


async def mark_sent(
    connection: Connection,
    sent: Sequence[tuple[str, str, float]],
    finals: Sequence[tuple[str, str | None]] | None = None,
) -> list[Changed]:
    """queued → sent with the carrier's id of the first part: (id, carrier id, the Unix
    time the carrier took it). Times travel as seconds: asyncpg encodes an array of floats
    in a third of the CPU an array of datetimes takes, on a statement per flush of 1,000.

    `finals` (status, error code) per row, when the receipt came before this write:
    the message goes straight to its final status (its `sent` event is still due).
    """
    if not sent:
        return []
    ids, cids, ats = zip(*sent, strict=True)
    statuses, codes = (
        zip(*finals, strict=True) if finals else (["sent"] * len(ids), [None] * len(ids))
    )
    # Single-part messages get their carrier id in `message_refs` too, where receipts
    # look it up: no index of `messages` covers a column written here, so the update
    # stays HOT.
    rows = await connection.fetch(
        "WITH changed AS ("
        " UPDATE messages m SET status = u.status, carrier_message_id = u.cid,"
        " submitted_at = to_timestamp(u.at), updated_at = now(), error_code = u.code,"
        " done_at = CASE WHEN u.status = 'sent' THEN NULL ELSE now() END,"
        " parts_done = CASE WHEN u.status = 'sent' THEN 0 ELSE 1 END"
        " FROM unnest($1::text[], $2::text[], $3::float8[], $4::text[], $5::text[])"
        " AS u(id, cid, at, status, code)"
        f" WHERE m.id = u.id AND m.status = ANY($6::text[]) RETURNING {RETURNED}"
        "), refs AS ("
        " INSERT INTO message_refs (carrier, carrier_message_id, message_id)"
        " SELECT carrier, carrier_message_id, id FROM changed WHERE units = 1"
        " ON CONFLICT DO NOTHING"
        ") SELECT * FROM changed",
        list(ids),
        list(cids),
        list(ats),
        list(statuses),
        list(codes),
        QUEUED,
    )
    changed: list[Changed] = []
    for change in changed_rows(rows):
        if change.status != "sent":
            # One row write, but two status changes to announce, in order.
            changed.append(change._replace(status="sent", error_code=None))
        changed.append(change)
    return changed


async def insert_parts(connection: Connection, parts: Sequence[tuple[str, int, str, str]]) -> None:
    """Carrier ids of every part of multi-part messages: (message, part, carrier, id)."""
    if not parts:
        return
    message_ids, numbers, carriers, cids = zip(*parts, strict=True)
    await connection.execute(
        "INSERT INTO message_parts (message_id, part, carrier, carrier_message_id)"
        " SELECT * FROM unnest($1::text[], $2::smallint[], $3::text[], $4::text[])"
        " ON CONFLICT (message_id, part) DO UPDATE"
        " SET carrier_message_id = EXCLUDED.carrier_message_id",
        list(message_ids),
        list(numbers),
        list(carriers),
        list(cids),
    )


async def mark_unsent(
    connection: Connection, outcomes: Sequence[tuple[str, str, str | None]]
) -> list[Changed]:
    """queued → failed or expired (never handed to a carrier): (id, status, error_code)."""
    if not outcomes:
        return []
    ids, statuses, codes = zip(*outcomes, strict=True)
    rows = await connection.fetch(
        "UPDATE messages m SET status = u.status, error_code = u.code,"
        " done_at = now(), updated_at = now()"
        " FROM unnest($1::text[], $2::text[], $3::text[]) AS u(id, status, code)"
        f" WHERE m.id = u.id AND m.status = ANY($4::text[]) RETURNING {RETURNED}",
        list(ids),
        list(statuses),
        list(codes),
        QUEUED,
    )
    return changed_rows(rows)


async def expire_overdue(connection: Connection, grace: timedelta, limit: int) -> list[Changed]:
    """Queued messages past their validity (plus grace) end expired, for billing to refund.

    The sweep reads messages by expiry from its mark, which holds every message that
    expired before it was already looked at, and moves the mark on in the same
    transaction. The mark's row lock lets one sweeper at a time do this; another finds
    it taken and expires nothing this round.
    """
    upto = await connection.fetchval(
        "SELECT upto FROM sweep_marks WHERE name = 'expiry' FOR UPDATE SKIP LOCKED"
    )
    if upto is None:
        if not await connection.fetchval("SELECT 1 FROM sweep_marks WHERE name = 'expiry'"):
            raise RuntimeError("the expiry sweep has no mark: migration 0005 creates it")
        return []  # another sweeper holds it this round
    overdue = (
        "FROM messages WHERE expires_at >= $1 AND expires_at < now() - $2::interval"
        " AND submitted_at IS NULL AND status = 'queued'"
    )
    # Picked once, in a CTE: as a subquery the planner may run it again per row, each
    # run taking another `$3` rows.
    rows = await connection.fetch(
        f"WITH picked AS MATERIALIZED (SELECT id {overdue}"
        " ORDER BY expires_at LIMIT $3 FOR UPDATE SKIP LOCKED)"
        " UPDATE messages m SET status = 'expired', error_code = 'validity_expired',"
        " done_at = now(), updated_at = now()"
        f" FROM picked WHERE m.id = picked.id AND m.status = 'queued' RETURNING {RETURNED}",
        upto,
        grace,
        limit,
    )
    # On to the first message still waiting (beyond the limit, or held by a transaction
    # storing its outcome right now), or else to the end of what has expired.
    await connection.execute(
        f"UPDATE sweep_marks SET upto = COALESCE((SELECT min(expires_at) {overdue}),"
        " now() - $2::interval) WHERE name = 'expiry'",
        upto,
        grace,
    )
    return changed_rows(rows)
