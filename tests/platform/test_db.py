"""`libs.common.db.autocommit`: single statements outside any transaction, on a pooled
connection that is never handed out again once it broke under them; `transaction`: the
same connection inside one transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.db import autocommit, create_engine, create_sessionmaker, transaction
from libs.common.ids import new_id
from libs.common.settings import CommonSettings
from tests.platform.conftest import Platform


@pytest.fixture
async def one_connection(platform: Platform) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions over a pool of exactly one connection, so a reused connection shows."""
    settings = CommonSettings(
        database_url=platform.config.database_url, db_pool_size=1, db_max_overflow=0
    )
    engine = create_engine(settings, "wesendall-db-test")
    yield create_sessionmaker(engine)
    await engine.dispose()


async def _backend(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with autocommit(sessions) as connection:
        assert not connection.is_in_transaction()
        return int(await connection.fetchval("SELECT pg_backend_pid()"))


@pytest.fixture
async def probe(platform: Platform) -> AsyncIterator[str]:
    """An empty table of one int column, dropped afterwards."""
    table = new_id("probe")
    async with autocommit(platform.sessions) as connection:
        await connection.execute(f"CREATE TABLE {table} (n int)")
    yield table
    async with autocommit(platform.sessions) as connection:
        await connection.execute(f"DROP TABLE {table}")


async def test_each_statement_commits_on_its_own(
    platform: Platform, one_connection: async_sessionmaker[AsyncSession], probe: str
) -> None:
    async with autocommit(one_connection) as connection:
        await connection.execute(f"INSERT INTO {probe} VALUES (1)")
        assert not connection.is_in_transaction()
        # Seen from another connection before the block ends: nothing waits for a COMMIT.
        assert await platform.scalar(f"SELECT count(*) FROM {probe}") == 1


async def test_a_transaction_commits_when_its_block_succeeds_and_not_when_it_raises(
    platform: Platform, one_connection: async_sessionmaker[AsyncSession], probe: str
) -> None:
    async with transaction(one_connection) as connection:
        await connection.execute(f"INSERT INTO {probe} VALUES (1)")
        assert connection.is_in_transaction()
        assert await platform.scalar(f"SELECT count(*) FROM {probe}") == 0
    assert await platform.scalar(f"SELECT count(*) FROM {probe}") == 1
    with pytest.raises(RuntimeError):
        async with transaction(one_connection) as connection:
            await connection.execute(f"INSERT INTO {probe} VALUES (2)")
            raise RuntimeError("the caller's own failure")
    assert await platform.scalar(f"SELECT count(*) FROM {probe}") == 1
    # The pool's one connection came back, outside any transaction.
    async with autocommit(one_connection) as connection:
        assert not connection.is_in_transaction()


async def test_a_refused_statement_keeps_the_connection(
    one_connection: async_sessionmaker[AsyncSession],
) -> None:
    backend = await _backend(one_connection)
    with pytest.raises(asyncpg.exceptions.UndefinedTableError):
        async with autocommit(one_connection) as connection:
            await connection.execute("SELECT * FROM no_such_table")
    assert await _backend(one_connection) == backend


async def test_a_connection_killed_under_it_is_not_handed_out_again(
    platform: Platform, one_connection: async_sessionmaker[AsyncSession]
) -> None:
    backend = await _backend(one_connection)
    # As a database restart or failover would: the server ends the pooled connection.
    assert await platform.scalar("SELECT pg_terminate_backend(:pid)", pid=backend)
    with pytest.raises(
        (
            asyncpg.PostgresConnectionError,
            asyncpg.exceptions.OperatorInterventionError,
            asyncpg.InterfaceError,
            asyncpg.exceptions.InternalClientError,
            OSError,
        )
    ):
        async with autocommit(one_connection) as connection:
            await connection.fetchval("SELECT 1")
    assert await _backend(one_connection) != backend
