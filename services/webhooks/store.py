"""Deliveries in Postgres: created from events, claimed when due, and their outcomes."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.db import rows_affected
from libs.common.events import Event
from libs.common.ids import new_id
from libs.common.webhooks import PING, payload, wants


def _wallet(data: dict[str, Any]) -> str | None:
    wallet = data.get("wallet_id") or data.get("walletId")
    return wallet if isinstance(wallet, str) else None


@dataclass(frozen=True, slots=True)
class Outcome:
    started_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    response_body: str | None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


_ENDPOINTS_OF = (
    "SELECT id, wallet_id, events FROM webhook_endpoints"
    " WHERE wallet_id = ANY($1::text[]) AND status = 'enabled'"
)
_INSERT_DELIVERIES = (
    "INSERT INTO webhook_deliveries"
    " (id, endpoint_id, wallet_id, event_id, event_type, payload, next_attempt_at)"
    " SELECT *, now() FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
    "   $6::bytea[])"
    " ON CONFLICT (endpoint_id, event_id) DO NOTHING"
)


async def create_deliveries(connection: Any, raw: Sequence[dict[str, Any]]) -> int:
    """One delivery per event and enabled endpoint that wants it; returns how many are new.

    `connection` is an asyncpg connection outside a transaction (`db.autocommit`): the
    lookup and the insert are a statement each, and the insert is atomic by itself and
    idempotent, so a redelivered event adds nothing. `raw` are decoded envelopes: most
    events belong to wallets without webhooks, so they are turned into `Event`s only when
    some endpoint will receive them.
    """
    wallets = sorted({w for e in raw if (w := _wallet(e.get("data") or {}))})
    if not wallets:
        return 0
    endpoints = await connection.fetch(_ENDPOINTS_OF, wallets)
    if not endpoints:
        return 0
    by_wallet: dict[str, list[Any]] = {}
    for endpoint in endpoints:
        by_wallet.setdefault(endpoint["wallet_id"], []).append(endpoint)
    rows = []
    for item in raw:
        wallet = _wallet(item.get("data") or {})
        if wallet not in by_wallet:
            continue
        event = Event.model_validate(item)
        body: bytes | None = None
        for endpoint in by_wallet[wallet]:
            if event.type == PING and event.data.get("endpointId") != endpoint["id"]:
                continue
            if wants(endpoint["events"], event.type):
                body = body or payload(event)
                rows.append((new_id("whd"), endpoint["id"], wallet, event.id, event.type, body))
    if not rows:
        return 0
    columns = map(list, zip(*rows, strict=True))
    status = await connection.execute(_INSERT_DELIVERIES, *columns)
    return rows_affected(status)


async def claim_due(
    session: AsyncSession,
    *,
    skip_endpoints: Sequence[str],
    in_flight: dict[str, int],
    per_endpoint: int,
    limit: int,
    lease: timedelta,
) -> list[RowMapping]:
    """Due deliveries of enabled endpoints, each endpoint up to its free slots, leased to us.

    Endpoints are visited in random order, each with one index probe for its oldest due
    deliveries, so a claim costs the same with a backlog of millions (one hanging endpoint
    may hold most of it) as with none, and no endpoint is always served last.
    """
    busy = sorted(in_flight)
    result = await session.execute(
        text(
            "WITH taken AS ("
            "  SELECT d.id FROM (SELECT id FROM webhook_endpoints WHERE status = 'enabled'"
            "      AND id <> ALL(CAST(:skip AS text[])) ORDER BY random()) e"
            "  LEFT JOIN unnest(CAST(:busy AS text[]), CAST(:counts AS int[])) AS b(id, n)"
            "    ON b.id = e.id"
            "  CROSS JOIN LATERAL (SELECT id FROM webhook_deliveries"
            "      WHERE endpoint_id = e.id AND status = 'pending' AND next_attempt_at <= now()"
            "      ORDER BY next_attempt_at LIMIT greatest(:cap - coalesce(b.n, 0), 0)"
            "      FOR UPDATE SKIP LOCKED) d"
            "  LIMIT :limit)"
            " UPDATE webhook_deliveries d SET next_attempt_at = now() + :lease"
            " FROM taken, webhook_endpoints e"
            " WHERE d.id = taken.id AND e.id = d.endpoint_id"
            " RETURNING d.id, d.endpoint_id, d.event_id, d.event_type, d.payload, d.attempts,"
            "   e.url, e.secret, e.previous_secret, e.previous_secret_expires_at"
        ),
        {
            "skip": list(skip_endpoints),
            "busy": busy,
            "counts": [in_flight[e] for e in busy],
            "cap": per_endpoint,
            "limit": limit,
            "lease": lease,
        },
    )
    return list(result.mappings().all())


async def record(
    session: AsyncSession,
    delivery: RowMapping,
    outcome: Outcome,
    *,
    schedule: Sequence[timedelta],
    jitter: float,
    disable_after: timedelta,
) -> str:
    """Store one attempt and what follows from it; returns the delivery's new status."""
    attempt = int(delivery["attempts"]) + 1
    await session.execute(
        text(
            "INSERT INTO webhook_attempts (delivery_id, attempt, started_at, status_code,"
            " latency_ms, error, response_body)"
            " VALUES (:d, :a, :started, :code, :latency, :error, :body)"
        ),
        {
            "d": delivery["id"],
            "a": attempt,
            "started": outcome.started_at,
            "code": outcome.status_code,
            "latency": outcome.latency_ms,
            "error": outcome.error,
            "body": outcome.response_body,
        },
    )
    if outcome.ok:
        status, next_at = "succeeded", None
    elif attempt > len(schedule):
        status, next_at = "dead", None
    else:
        wait = schedule[attempt - 1].total_seconds() * (1 + random.uniform(-jitter, jitter))
        status, next_at = "pending", datetime.now(UTC) + timedelta(seconds=wait)
    await session.execute(
        text(
            "UPDATE webhook_deliveries SET status = :status, attempts = :a,"
            " next_attempt_at = :next, last_attempt_at = :started, last_status_code = :code,"
            " last_error = :error, last_latency_ms = :latency,"
            " completed_at = CASE WHEN :status = 'pending' THEN NULL ELSE now() END"
            " WHERE id = :d"
        ),
        {
            "d": delivery["id"],
            "status": status,
            "a": attempt,
            "next": next_at,
            "started": outcome.started_at,
            "code": outcome.status_code,
            "error": outcome.error,
            "latency": outcome.latency_ms,
        },
    )
    if outcome.ok:
        await session.execute(
            text(
                "UPDATE webhook_endpoints SET failing_since = NULL"
                " WHERE id = :e AND failing_since IS NOT NULL"
            ),
            {"e": delivery["endpoint_id"]},
        )
    else:
        await _note_failure(session, delivery["endpoint_id"], outcome, disable_after)
    return status


async def _note_failure(
    session: AsyncSession, endpoint_id: str, outcome: Outcome, disable_after: timedelta
) -> None:
    failing_since = (
        await session.execute(
            text(
                "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, now())"
                " WHERE id = :e RETURNING failing_since"
            ),
            {"e": endpoint_id},
        )
    ).scalar_one()
    if datetime.now(UTC) - failing_since < disable_after:
        return
    why = outcome.error or f"HTTP {outcome.status_code}"
    reason = f"every delivery failed since {failing_since.isoformat()}; the last: {why}"
    disabled = (
        await session.execute(
            text(
                "UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = :r,"
                " updated_at = now() WHERE id = :e AND status = 'enabled' RETURNING id"
            ),
            {"e": endpoint_id, "r": reason},
        )
    ).scalar_one_or_none()
    if disabled is not None:
        # Nothing more will be attempted: say so on each delivery still waiting.
        await session.execute(
            text(
                "UPDATE webhook_deliveries SET status = 'dead', completed_at = now(),"
                " last_error = COALESCE(last_error, '') || ' (endpoint disabled)'"
                " WHERE endpoint_id = :e AND status = 'pending'"
            ),
            {"e": endpoint_id},
        )


async def replay(session: AsyncSession, delivery_id: str) -> bool:
    """Send a delivery again from its first attempt (same event id: receivers dedupe)."""
    result = await session.execute(
        text(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0,"
            " next_attempt_at = now(), completed_at = NULL WHERE id = :d RETURNING id"
        ),
        {"d": delivery_id},
    )
    return result.scalar_one_or_none() is not None


async def purge_finished(session: AsyncSession, older_than: timedelta, batch: int = 5000) -> int:
    """Delete up to `batch` deliveries finished before `older_than` ago; returns how many."""
    result = await session.execute(
        text(
            "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries"
            " WHERE status <> 'pending' AND completed_at < now() - CAST(:keep AS interval)"
            " ORDER BY completed_at LIMIT :batch)"
        ),
        {"keep": older_than, "batch": batch},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
