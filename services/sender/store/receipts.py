"""Delivery receipts in the database: applied by carrier message id, or parked until their
message's submit is stored, then matched again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from libs.common.db import Connection, rows_affected
from services.sender.receipts import Receipt, id_candidates
from services.sender.store.rows import RETURNED, Changed, ReceiptUpdate, changed_rows

# The receipts named by (carrier, carrier id, index among the receipts): $1, $2, $3.
_KEYS = "unnest($1::text[], $2::text[], $3::int[]) AS u(carrier, cid, idx)"


async def apply_receipts(
    connection: Connection, updates: Sequence[ReceiptUpdate]
) -> tuple[list[Changed], list[ReceiptUpdate]]:
    """Apply final receipts; returns (changed messages, receipts that matched nothing)."""
    if not updates:
        return [], []
    changed: list[Changed] = []
    unmatched: list[ReceiptUpdate] = []
    remaining = list(updates)
    # Exact ids first; then the hex/decimal spellings some SMSCs mix up (protocols §5).
    for attempt in range(2):
        if not remaining:
            break
        keys: list[tuple[str, str, int]] = []
        for index, update in enumerate(remaining):
            spellings = (
                [update.receipt.carrier_message_id]
                if attempt == 0
                else id_candidates(update.receipt.carrier_message_id)[1:]
            )
            keys.extend((update.carrier, spelling, index) for spelling in spellings)
        matched, done = await _apply_by_ids(connection, remaining, keys)
        changed.extend(done)
        still = [u for i, u in enumerate(remaining) if i not in matched]
        if attempt == 1:
            unmatched = still
        remaining = still
    return changed, unmatched


# Receipts of single-part messages, matched through `message_refs` and applied in one
# statement: the indexes (into the keys) it matched, and the messages it changed. The
# receipts $1..$5 are (carrier, carrier id, index among the receipts, status, error code).
_APPLY_SINGLES = (
    "WITH hits AS MATERIALIZED ("
    " SELECT u.idx, r.message_id, u.status, u.code"
    " FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[])"
    " AS u(carrier, cid, idx, status, code)"
    " JOIN message_refs r ON r.carrier = u.carrier AND r.carrier_message_id = u.cid"
    "), changed AS ("
    " UPDATE messages m SET status = h.status, error_code = h.code,"
    " done_at = now(), updated_at = now(), parts_done = 1"
    f" FROM hits h WHERE m.id = h.message_id AND m.status = 'sent' RETURNING {RETURNED}"
    ")"
    " SELECT f.found, c.* FROM (SELECT array_agg(idx) AS found FROM hits) f"
    " LEFT JOIN changed c ON true"
)


async def _apply_by_ids(
    connection: Connection, updates: list[ReceiptUpdate], keys: list[tuple[str, str, int]]
) -> tuple[set[int], list[Changed]]:
    if not keys:
        return set(), []
    # Most receipts are for single-part messages: matched and applied in one round trip;
    # only the rest are looked up as parts.
    rows = await connection.fetch(
        _APPLY_SINGLES,
        *_key_columns(keys),
        [updates[index].status for _, _, index in keys],
        [receipt_error(updates[index]) for _, _, index in keys],
    )
    found = set(rows[0][0] or ())
    changed = changed_rows(row[1:] for row in rows if row[1] is not None)
    rest = [key for key in keys if key[2] not in found]
    parts: Sequence[Any] = []
    if rest:
        parts = await connection.fetch(
            f"SELECT u.idx, p.message_id, p.part FROM {_KEYS} JOIN message_parts p"
            " ON p.carrier = u.carrier AND p.carrier_message_id = u.cid",
            *_key_columns(rest),
        )
    matched = found | {row[0] for row in parts}
    if parts:
        changed += await _apply_parts(connection, updates, parts)
    return matched, changed


def _key_columns(keys: Sequence[tuple[str, str, int]]) -> list[list[Any]]:
    """The (carrier, carrier id, receipt index) keys as the columns `_KEYS` unnests."""
    return [list(column) for column in zip(*keys, strict=True)]


async def _apply_parts(
    connection: Connection, updates: list[ReceiptUpdate], parts: Sequence[Any]
) -> list[Changed]:
    """One receipt per part; the message is final when every part's receipt is in, with
    the error code of a part that was not delivered (set in the same write, so that its
    event says it too)."""
    await connection.execute(
        "UPDATE message_parts p SET status = u.status"
        " FROM unnest($1::text[], $2::smallint[], $3::text[]) AS u(id, part, status)"
        " WHERE p.message_id = u.id AND p.part = u.part AND p.status IS NULL",
        [row[1] for row in parts],
        [row[2] for row in parts],
        [updates[row[0]].status for row in parts],
    )
    codes = {row[1]: code for row in parts if (code := receipt_error(updates[row[0]]))}
    rows = await connection.fetch(
        "WITH done AS (SELECT p.message_id, count(*) AS n,"
        "   bool_and(p.status = 'delivered') AS all_delivered"
        "   FROM message_parts p WHERE p.message_id = ANY($1::text[])"
        "   AND p.status IS NOT NULL GROUP BY p.message_id),"
        " codes AS (SELECT * FROM unnest($2::text[], $3::text[]) AS c(id, code))"
        " UPDATE messages m SET parts_done = d.n, updated_at = now(), done_at = now(),"
        "   status = CASE WHEN d.all_delivered THEN 'delivered' ELSE 'undelivered' END,"
        "   error_code = CASE WHEN d.all_delivered THEN NULL ELSE c.code END"
        " FROM done d LEFT JOIN codes c ON c.id = d.message_id"
        " WHERE m.id = d.message_id AND m.status = 'sent' AND d.n >= m.units"
        f" RETURNING {RETURNED}",
        sorted({row[1] for row in parts}),
        list(codes),
        list(codes.values()),
    )
    return changed_rows(rows)


def receipt_error(update: ReceiptUpdate) -> str | None:
    """The error code a receipt leaves on its message: none when delivered."""
    if update.status == "delivered":
        return None
    code = update.receipt.error_code
    return f"{update.receipt.state}:{code}" if code else update.receipt.state


async def park_receipts(connection: Connection, updates: Sequence[ReceiptUpdate]) -> None:
    """Keep receipts that matched nothing: their submit_sm_resp may not be stored yet."""
    if not updates:
        return
    await connection.execute(
        "INSERT INTO pending_receipts (carrier, carrier_message_id, recipient, state,"
        " status, error_code, raw, retry_at) SELECT *, now() + interval '0.5 seconds'"
        " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
        " $6::text[], $7::bytea[])",
        [u.carrier for u in updates],
        [u.receipt.carrier_message_id for u in updates],
        [_e164(u.receipt.recipient) for u in updates],
        [u.receipt.state for u in updates],
        [u.status for u in updates],
        [u.receipt.error_code for u in updates],
        [u.receipt.raw for u in updates],
    )


def _e164(digits: str | None) -> str | None:
    if not digits:
        return None
    return digits if digits.startswith("+") else "+" + digits


def _parked(rows: Any) -> list[tuple[int, ReceiptUpdate]]:
    return [
        (
            row_id,
            ReceiptUpdate(
                carrier,
                Receipt(
                    carrier_message_id=cid,
                    state=state,
                    error_code=error_code,
                    recipient=recipient,
                    submit_date=None,
                    done_date=None,
                    text=None,
                    raw=raw,
                ),
                status,
            ),
        )
        for row_id, carrier, cid, recipient, state, status, error_code, raw in rows
    ]


_PARKED = (
    "p.id, p.carrier, p.carrier_message_id, p.recipient, p.state, p.status, p.error_code, p.raw"
)


async def due_parked(connection: Connection, limit: int) -> list[tuple[int, ReceiptUpdate]]:
    """Parked receipts whose next matching attempt is due, locked for this transaction."""
    rows = await connection.fetch(
        f"SELECT {_PARKED} FROM pending_receipts p WHERE p.retry_at <= now()"
        " ORDER BY p.retry_at LIMIT $1 FOR UPDATE SKIP LOCKED",
        limit,
    )
    return _parked(rows)


async def settle_parked(connection: Connection, matched: list[int], waiting: list[int]) -> None:
    """Forget matched receipts; try the others again later, backing off to a minute."""
    if matched:
        await connection.execute(
            "DELETE FROM pending_receipts WHERE id = ANY($1::bigint[])", matched
        )
    if waiting:
        await connection.execute(
            "UPDATE pending_receipts SET attempts = attempts + 1,"
            " retry_at = now() + LEAST(60, 0.5 * power(2, attempts)) * interval '1 second'"
            " WHERE id = ANY($1::bigint[])",
            waiting,
        )


async def take_parked_for(
    connection: Connection, recipients: Sequence[tuple[str, str]]
) -> list[ReceiptUpdate]:
    """Remove and return parked receipts from these (carrier, recipient) handsets."""
    if not recipients:
        return []
    rows = await connection.fetch(
        "DELETE FROM pending_receipts p USING ("
        "  SELECT id FROM pending_receipts q WHERE (q.carrier, q.recipient) IN"
        "   (SELECT * FROM unnest($1::text[], $2::text[]))"
        f"  FOR UPDATE SKIP LOCKED) AS hit WHERE p.id = hit.id RETURNING {_PARKED}",
        [c for c, _ in recipients],
        [r for _, r in recipients],
    )
    return [update for _, update in _parked(rows)]


async def prune_parked(connection: Connection, ttl: timedelta) -> int:
    status = await connection.execute(
        "DELETE FROM pending_receipts WHERE received_at < now() - $1::interval", ttl
    )
    return rows_affected(status)
