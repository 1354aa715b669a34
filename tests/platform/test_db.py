"""`libs.common.db.autocommit`: single statements outside any transaction, on a pooled
connection that is never handed out again once it broke under them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.db import autocommit, create_engine, create_sessionmaker
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


async def test_each_statement_commits_on_its_own(
    platform: Platform, one_connection: async_sessionmaker[AsyncSession]
) -> None:
    table = "autocommit_probe"
    async with autocommit(one_connection) as connection:
        await connection.execute(f"CREATE TABLE IF NOT EXISTS {table} (n int)")
        await connection.execute(f"INSERT INTO {table} VALUES (1)")
        assert not connection.is_in_transaction()
        # Seen from another connection before the block ends: nothing waits for a COMMIT.
        assert await platform.scalar(f"SELECT count(*) FROM {table}") == 1
    async with autocommit(one_connection) as connection:
        await connection.execute(f"DROP TABLE {table}")


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
