"""Message delivery state: submits stored, never-sent outcomes, validity expiry.

Every transition is conditional on the state it leaves, so a replayed outcome changes
nothing and announces nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.sender.store.rows import QUEUED, RETURNED, Changed, changed_rows


async def message_states(session: AsyncSession, ids: Sequence[str]) -> dict[str, str]:
    rows = await session.execute(
        text("SELECT id, status FROM messages WHERE id = ANY(CAST(:ids AS text[]))"),
        {"ids": list(ids)},
    )
    return {row[0]: row[1] for row in rows}


async def mark_sent(
    session: AsyncSession,
    sent: Sequence[tuple[str, str, datetime]],
    finals: Sequence[tuple[str, str | None]] | None = None,
) -> list[Changed]:
    """queued → sent with the carrier's id of the first part.

    `finals` (status, error code) per row, when the receipt came before this write:
    the message goes straight to its final status (its `sent` event is still due).
    """
    if not sent:
        return []
    ids, cids, ats = zip(*sent, strict=True)
    statuses, codes = (
        zip(*finals, strict=True) if finals else (["sent"] * len(ids), [None] * len(ids))
    )
    rows = await session.execute(
        text(
            "UPDATE messages m SET status = u.status, carrier_message_id = u.cid,"
            " submitted_at = u.at, updated_at = now(), error_code = u.code,"
            " done_at = CASE WHEN u.status = 'sent' THEN NULL ELSE now() END,"
            " parts_done = CASE WHEN u.status = 'sent' THEN 0 ELSE 1 END"
            " FROM unnest(CAST(:ids AS text[]), CAST(:cids AS text[]),"
            "             CAST(:ats AS timestamptz[]), CAST(:statuses AS text[]),"
            "             CAST(:codes AS text[])) AS u(id, cid, at, status, code)"
            f" WHERE m.id = u.id AND m.status = ANY(CAST(:was AS text[])) RETURNING {RETURNED}"
        ),
        {
            "ids": list(ids),
            "cids": list(cids),
            "ats": list(ats),
            "statuses": list(statuses),
            "codes": list(codes),
            "was": QUEUED,
        },
    )
    changed: list[Changed] = []
    for change in changed_rows(rows):
        if change.status != "sent":
            # One row write, but two status changes to announce, in order.
            changed.append(change._replace(status="sent", error_code=None))
        changed.append(change)
    return changed


async def insert_parts(session: AsyncSession, parts: Sequence[tuple[str, int, str, str]]) -> None:
    """Carrier ids of every part of multi-part messages: (message, part, carrier, id)."""
    if not parts:
        return
    message_ids, numbers, carriers, cids = zip(*parts, strict=True)
    await session.execute(
        text(
            "INSERT INTO message_parts (message_id, part, carrier, carrier_message_id)"
            " SELECT * FROM unnest(CAST(:m AS text[]), CAST(:n AS smallint[]),"
            "                      CAST(:c AS text[]), CAST(:i AS text[]))"
            " ON CONFLICT (message_id, part) DO UPDATE"
            " SET carrier_message_id = EXCLUDED.carrier_message_id"
        ),
        {"m": list(message_ids), "n": list(numbers), "c": list(carriers), "i": list(cids)},
    )


async def mark_unsent(
    session: AsyncSession, outcomes: Sequence[tuple[str, str, str | None]]
) -> list[Changed]:
    """queued → failed or expired (never handed to a carrier): (id, status, error_code)."""
    if not outcomes:
        return []
    ids, statuses, codes = zip(*outcomes, strict=True)
    rows = await session.execute(
        text(
            "UPDATE messages m SET status = u.status, error_code = u.code,"
            " done_at = now(), updated_at = now()"
            " FROM unnest(CAST(:ids AS text[]), CAST(:statuses AS text[]),"
            "             CAST(:codes AS text[])) AS u(id, status, code)"
            f" WHERE m.id = u.id AND m.status = ANY(CAST(:was AS text[])) RETURNING {RETURNED}"
        ),
        {"ids": list(ids), "statuses": list(statuses), "codes": list(codes), "was": QUEUED},
    )
    return changed_rows(rows)


async def expire_overdue(session: AsyncSession, grace: timedelta, limit: int) -> list[Changed]:
    """Queued messages past their validity (plus grace) end expired, for billing to refund."""
    rows = await session.execute(
        text(
            "UPDATE messages m SET status = 'expired', error_code = 'validity_expired',"
            " done_at = now(), updated_at = now()"
            " WHERE m.id IN (SELECT id FROM messages WHERE submitted_at IS NULL"
            "   AND status = 'queued' AND expires_at < now() - CAST(:grace AS interval)"
            "   ORDER BY expires_at LIMIT :limit FOR UPDATE SKIP LOCKED)"
            f" AND m.status = 'queued' RETURNING {RETURNED}"
        ),
        {"grace": grace, "limit": limit},
    )
    return changed_rows(rows)
