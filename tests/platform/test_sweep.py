"""The expiry sweep: every queued message that waited past its validity ends expired
exactly once, read by expiry from a mark that only moves past what was looked at."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from deploy.infra import asyncpg_dsn
from libs.common.db import create_engine, create_sessionmaker, transaction
from libs.common.settings import CommonSettings
from services.sender import store
from tests.infra import Servers, seeded_database

GRACE = timedelta(seconds=60)

_WALLET = """
INSERT INTO accounts (id, phone) VALUES ('acc_s', '+256772000400');
INSERT INTO wallets (id, account_id) VALUES ('wal_s', 'acc_s');
INSERT INTO batches (id, wallet_id, message, encoding, priority, recipients, units, cost,
                     unit_price)
     VALUES ('bat_s', 'wal_s', 'Swept', 'GSM-7', 'normal', 1, 1, 35, 35);
UPDATE sweep_marks SET upto = now() - interval '1 hour' WHERE name = 'expiry';
"""


@pytest.fixture
async def database(test_servers: Servers, template_database: str) -> AsyncIterator[str]:
    """A migrated database of its own: no sender sweeps it but the test."""
    async with seeded_database(
        test_servers.database_url, template_database, "wesendall_test_sweep_", _WALLET
    ) as url:
        yield url


@pytest.fixture
async def sessions(database: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(CommonSettings(database_url=database), "sweep-test")
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def other(database: str) -> AsyncIterator[Any]:
    """Another client's connection, for the locks it holds meanwhile."""
    connection = await asyncpg.connect(asyncpg_dsn(database))
    yield connection
    await connection.close()


async def _message(
    sessions: async_sessionmaker[AsyncSession], name: str, expired_ago: timedelta, **sent: Any
) -> None:
    async with transaction(sessions) as connection:
        await connection.execute(
            "INSERT INTO messages (id, batch_id, wallet_id, recipient, carrier, units, cost,"
            " status, parts_done, expires_at, submitted_at)"
            " VALUES ($1, 'bat_s', 'wal_s', '+256772000401', 'mtn', 1, 35, $2, 0,"
            " now() - $3::interval, $4)",
            name,
            "sent" if sent else "queued",
            expired_ago,
            datetime.now(UTC) if sent else None,
        )


async def _sweep(sessions: async_sessionmaker[AsyncSession], limit: int = 100) -> list[str]:
    async with transaction(sessions) as connection:
        return [change.id for change in await store.expire_overdue(connection, GRACE, limit)]


async def _statuses(sessions: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    async with transaction(sessions) as connection:
        return {
            r["id"]: r["status"] for r in await connection.fetch("SELECT id, status FROM messages")
        }


async def _mark(sessions: async_sessionmaker[AsyncSession]) -> datetime:
    async with transaction(sessions) as connection:
        return await connection.fetchval("SELECT upto FROM sweep_marks WHERE name = 'expiry'")


async def test_what_waited_past_its_validity_expires_once_and_the_mark_moves_on(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _message(sessions, "msg_overdue", timedelta(minutes=10))
    await _message(sessions, "msg_in_grace", timedelta(seconds=10))
    await _message(sessions, "msg_sent", timedelta(minutes=10), sent=True)
    # Before the mark: a sweep has looked at it already, and it is not read again.
    await _message(sessions, "msg_behind_mark", timedelta(hours=2))

    assert await _sweep(sessions) == ["msg_overdue"]
    assert await _statuses(sessions) == {
        "msg_overdue": "expired",
        "msg_in_grace": "queued",
        "msg_sent": "sent",
        "msg_behind_mark": "queued",
    }
    # Up to the end of the grace, which the message still in its grace has not reached.
    mark = await _mark(sessions)
    assert datetime.now(UTC) - GRACE - timedelta(seconds=5) < mark <= datetime.now(UTC) - GRACE
    assert await _sweep(sessions) == []


async def test_past_the_limit_the_next_round_goes_on_from_where_this_one_stopped(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _message(sessions, "msg_first", timedelta(minutes=30))
    await _message(sessions, "msg_second", timedelta(minutes=20))
    assert await _sweep(sessions, limit=1) == ["msg_first"]
    assert await _sweep(sessions, limit=1) == ["msg_second"]
    assert await _sweep(sessions, limit=1) == []


async def test_a_message_another_transaction_holds_keeps_the_mark_behind_it(
    sessions: async_sessionmaker[AsyncSession], other: Any
) -> None:
    await _message(sessions, "msg_held", timedelta(minutes=30))
    await _message(sessions, "msg_free", timedelta(minutes=20))
    held_until = await other.fetchval("SELECT expires_at FROM messages WHERE id = 'msg_held'")
    held = other.transaction()
    await held.start()
    # As a flush storing this message's outcome would, while the sweep runs.
    await other.execute("SELECT 1 FROM messages WHERE id = 'msg_held' FOR UPDATE")
    assert await _sweep(sessions) == ["msg_free"]
    assert await _mark(sessions) == held_until
    await held.rollback()  # the flush failed: the message is still queued, and overdue
    assert await _sweep(sessions) == ["msg_held"]
    assert await _mark(sessions) > held_until


async def test_while_one_sweeper_holds_the_mark_another_expires_nothing(
    sessions: async_sessionmaker[AsyncSession], other: Any
) -> None:
    await _message(sessions, "msg_overdue", timedelta(minutes=10))
    async with other.transaction():
        await other.execute("SELECT 1 FROM sweep_marks WHERE name = 'expiry' FOR UPDATE")
        assert await _sweep(sessions) == []
    assert await _sweep(sessions) == ["msg_overdue"]


async def test_a_missing_mark_is_an_error_not_a_sweep_that_never_runs(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with transaction(sessions) as connection:
        await connection.execute("DELETE FROM sweep_marks")
    with pytest.raises(RuntimeError, match="no mark"):
        await _sweep(sessions)
