"""Where the tests find Postgres and RabbitMQ, and how each run gets its own of both.

WESENDALL_DATABASE_URL / WESENDALL_AMQP_URL when set; otherwise testcontainers starts
them (on a machine with Docker). Each run creates a fresh database and uses a unique
AMQP namespace, so runs never see each other's data.
"""

from __future__ import annotations

import os
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy.engine import make_url

from deploy.infra import asyncpg_dsn
from libs.common.settings import DEFAULT_AMQP_URL, DEFAULT_DATABASE_URL

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Servers:
    database_url: str  # any database on the server; tests create their own beside it
    amqp_url: str


@contextmanager
def servers() -> Iterator[Servers]:
    database_url = os.environ.get("WESENDALL_DATABASE_URL")
    amqp_url = os.environ.get("WESENDALL_AMQP_URL")
    if database_url and amqp_url:
        yield Servers(database_url, amqp_url)
        return
    if _docker():
        from testcontainers.postgres import PostgresContainer
        from testcontainers.rabbitmq import RabbitMqContainer

        with (
            PostgresContainer("postgres:15", driver="asyncpg") as pg,
            RabbitMqContainer("rabbitmq:3.13") as mq,
        ):
            params = mq.get_connection_params()
            yield Servers(
                database_url or pg.get_connection_url(),
                amqp_url or f"amqp://guest:guest@{params.host}:{params.port}/",
            )
        return
    # No Docker: the conventional local services, as on a developer machine.
    yield Servers(database_url or DEFAULT_DATABASE_URL, amqp_url or DEFAULT_AMQP_URL)


def _docker() -> bool:
    from deploy.infra import docker_available

    try:
        return docker_available()
    except Exception:  # noqa: BLE001 — no Docker, however it fails
        return False


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique(prefix: str) -> str:
    """A name no other run uses, stamped with its creation time (see drop_stale_databases)."""
    return f"{prefix}{int(time.time())}_{uuid.uuid4().hex[:8]}"


async def drop_stale_databases(server_url: str, prefix: str, older_than: float = 6 * 3600) -> None:
    """Drop databases a killed run left behind: `prefix` + a creation time long past."""
    connection = await asyncpg.connect(asyncpg_dsn(server_url, "postgres"))
    try:
        names = await connection.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1",
            prefix.replace("_", r"\_") + "%",
        )
        for (name,) in names:
            stamp = re.search(r"_(\d{10})_", name)
            if stamp and int(stamp.group(1)) < time.time() - older_than:
                await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def create_database(server_url: str, name: str, template: str | None = None) -> str:
    """A new database on the same server (a copy of `template`); returns its SQLAlchemy URL."""
    connection = await asyncpg.connect(asyncpg_dsn(server_url, "postgres"))
    try:
        copy = f' TEMPLATE "{template}"' if template else ""
        await connection.execute(f'CREATE DATABASE "{name}"{copy}')
    finally:
        await connection.close()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(server_url: str, name: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(server_url, "postgres"))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@asynccontextmanager
async def seeded_database(
    server_url: str, template: str, prefix: str, sql: str
) -> AsyncIterator[str]:
    """A database of its own made from `template`, `sql` run in it first; dropped after."""
    name = unique(prefix)
    url = await create_database(server_url, name, template=template)
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()
    try:
        yield url
    finally:
        await drop_database(server_url, name)


async def serve_locally(handler: Handler, port: int) -> web.AppRunner:
    """Answer every method and path on 127.0.0.1:`port` with `handler` (a stand-in for a
    customer's or merchant's endpoint); `cleanup()` on the runner stops it."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    # A handler that hangs on purpose must not hold up the test's teardown.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[TestServer]:
    """`app` served on a free port of 127.0.0.1 for the block; `make_url` gives its URLs."""
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()
