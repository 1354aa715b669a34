"""Async SQLAlchemy engine and session scopes; the edge (request, message) owns the transaction."""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import greenlet_spawn

from libs.common.settings import CommonSettings

# The asyncpg driver of a pooled connection, as `autocommit` and `transaction` yield it.
Connection = Any


def create_engine(
    settings: CommonSettings,
    application_name: str,
    server_settings: dict[str, str] | None = None,
) -> AsyncEngine:
    """An engine whose connections name themselves in `pg_stat_activity`."""
    return create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        # No ping per checkout: it costs a round trip on every transaction. A connection
        # found dead fails its statement, SQLAlchemy then discards the whole pool, and every
        # caller here retries or answers a retryable error.
        pool_pre_ping=False,
        pool_recycle=1800,
        connect_args={
            "server_settings": {"application_name": application_name, **(server_settings or {})},
            # Statements that can hang (locks, a dying server) must not hold a request forever.
            "command_timeout": 30,
        },
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def session_scope(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One transaction: commit when the block succeeds, roll back when it raises."""
    async with sessions() as session, session.begin():
        yield session


@asynccontextmanager
async def autocommit(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Connection]:
    """A pooled connection's asyncpg driver, outside any transaction: each statement
    commits on its own.

    For work of single statements on hot paths: no BEGIN and COMMIT round trips, and no
    session. The connection comes straight from the sessions' engine pool (a session, its
    transaction and its connection object cost as much CPU as a small flush's statements),
    and goes back to it when the block ends: SQLAlchemy's rollback on return does nothing,
    as its adapter never began a transaction on it. SQLAlchemy never sees this driver's
    errors, so a connection left closed, broken or cut off mid-statement is invalidated
    here rather than handed to the next caller.
    """
    engine: AsyncEngine = sessions.kw["bind"]
    pooled = await engine.raw_connection()
    driver = pooled.driver_connection
    assert driver is not None  # a checked-out connection has its driver
    try:
        yield driver
    except BaseException as error:
        if driver.is_closed() or _connection_suspect(error):
            await greenlet_spawn(pooled.invalidate)
        raise
    finally:
        await greenlet_spawn(pooled.close)


@asynccontextmanager
async def transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Connection]:
    """The pooled connection's asyncpg driver inside one transaction: committed when the
    block succeeds, rolled back when it raises.

    For the hot paths that write in sets (admissions, the sender's outcome flushes): a
    transaction of three statements costs about half the CPU it costs through a session,
    which on a flush per 50 ms of every sender is most of what the session adds.
    Statements take asyncpg's `$n` parameters and return its records.
    """
    async with autocommit(sessions) as driver, driver.transaction():
        yield driver


# A `:name` parameter, not the second colon of a `::type` cast nor a time like '12:30'.
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@functools.lru_cache(maxsize=256)
def positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """`sql` with its `:name` parameters as asyncpg's `$n`, and the names in `$n` order.

    For statements shared with code that runs them through a session, or too long to
    number by hand; a name used twice is one parameter.
    """
    names: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        return f"${names.setdefault(match.group(1), len(names) + 1)}"

    return _NAMED.sub(number, sql), tuple(names)


async def fetch_named(connection: Connection, sql: str, parameters: Mapping[str, Any]) -> list[Any]:
    """Run `sql`, written with `:name` parameters, on an asyncpg connection; its records."""
    statement, names = positional(sql)
    return await connection.fetch(statement, *(parameters[name] for name in names))


def rows_affected(status: str) -> int:
    """The row count of an asyncpg command status: "DELETE 3", "INSERT 0 5", "UPDATE 2"."""
    return int(status.rsplit(" ", 1)[-1])


def _connection_suspect(error: BaseException) -> bool:
    """Whether the connection may be unusable after `error`: lost, shut down by the server,
    or cut off mid-statement (cancelled, timed out). A statement the server refused, or a
    failure of the caller's own code, leaves it as good as before."""
    return not isinstance(error, Exception) or isinstance(
        error,
        (
            OSError,
            TimeoutError,
            asyncpg.InterfaceError,
            asyncpg.exceptions.InternalClientError,  # the driver lost track of the protocol
            asyncpg.PostgresConnectionError,
            asyncpg.exceptions.OperatorInterventionError,
        ),
    )
