"""The platform under benchmark, started the way the platform tests start theirs: every
service and the carrier simulator as real processes, on a fresh migrated database and a
unique AMQP namespace, on free ports, with logs in a temporary directory.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson

from deploy.infra import asyncpg_dsn
from deploy.stack import Stack, StackConfig
from libs.common.amqp import Topology, connect, delete_topology
from libs.common.db import create_engine, create_sessionmaker, session_scope
from libs.common.migrations import upgrade
from libs.common.settings import CommonSettings
from services.admin import service
from tests.infra import (
    create_database,
    drop_database,
    drop_stale_databases,
    free_port,
    unique,
)
from tests.platform.client import basic

_APPLICATION = "wesendall-bench"


@dataclass(frozen=True)
class Customer:
    wallet_id: str
    authorization: str  # the whole Authorization header value


@dataclass
class BenchPlatform:
    stack: Stack
    server_url: str  # the Postgres server the benchmark database lives on
    amqp_url: str
    database: str
    namespace: str
    logs: Path
    http: aiohttp.ClientSession

    @property
    def base_url(self) -> str:
        return self.stack.config.base_url

    @property
    def simulator_url(self) -> str:
        return self.stack.config.simulator_url

    @property
    def database_url(self) -> str:
        return self.stack.config.database_url

    def pids(self) -> dict[str, int]:
        """The pid of each service and of the carrier simulator."""
        return {name: process.pid for name, process in self.stack.processes.items()}

    async def create_customer(self, credit: int, rate_limit: int) -> Customer:
        """An account with one credited wallet and a key allowed `rate_limit` requests/s."""
        settings = CommonSettings(database_url=self.database_url, db_pool_size=1)
        engine = create_engine(settings, _APPLICATION)
        try:
            async with session_scope(create_sessionmaker(engine)) as session:
                creds = await service.create_account(
                    session,
                    phone="+256772000100",
                    email="bench@example.com",
                    credit_ugx=credit,
                    bcrypt_rounds=settings.bcrypt_rounds,
                    rate_limit=rate_limit,
                )
        finally:
            await engine.dispose()
        return Customer(creds.wallet_id, basic(creds.api_key, creds.api_secret))

    @asynccontextmanager
    async def _database(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection of the benchmark's own to the platform's database."""
        connection = await asyncpg.connect(asyncpg_dsn(self.database_url))
        try:
            yield connection
        finally:
            await connection.close()

    async def prime_history(self, messages: int) -> None:
        """Give the database the history a running platform has, and its statistics.

        On empty, never-analysed tables Postgres caches sequential-scan plans for the
        first minute or so; a platform in service has messages and fresh statistics.
        """
        async with self._database() as connection:
            await connection.execute(_HISTORY, messages)
            await connection.execute("ANALYZE")

    async def settled(self, recipients: list[str]) -> dict[str, float]:
        """When the platform stored each recipient's final status (Unix time), if it has.

        A message's `done_at` is written with its delivery receipt (or its failure), so
        this is the moment its status webhook could be sent.
        """
        async with self._database() as connection:
            rows = await connection.fetch(
                "SELECT recipient, done_at FROM messages"
                " WHERE recipient = ANY($1::text[]) AND done_at IS NOT NULL",
                recipients,
            )
        return {row["recipient"]: row["done_at"].timestamp() for row in rows}

    async def balance(self, customer: Customer) -> int:
        """The wallet's balance, as the public API reports it."""
        async with self.http.get(
            self.base_url + "/api/v1/account/balance",
            params={"walletId": customer.wallet_id},
            headers={"Authorization": customer.authorization},
        ) as response:
            response.raise_for_status()
            return int((await response.json())["balance"])

    async def simulator(self, method: str, path: str, **params: Any) -> Any:
        """A call to the carrier simulator's inspection API."""
        async with self.http.request(
            method, self.simulator_url + path, params=params or None
        ) as response:
            response.raise_for_status()
            return orjson.loads(await response.read())

    async def wait_quiet(self, timeout: float = 60.0) -> bool:
        """Wait until the simulator has no receipts left to push, so phases do not overlap."""
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if (await self.simulator("GET", "/stats"))["receipts_pending"] == 0:
                return True
            await asyncio.sleep(0.2)
        return False

    def log_tails(self, lines: int = 30) -> str:
        """The last lines of every process's log."""
        return self.stack.log_tails(lines)


async def start_platform(
    server_url: str, amqp_url: str, extra_env: dict[str, str], log_level: str
) -> BenchPlatform:
    """Create the database and namespace, start every process, wait until healthy."""
    await drop_stale_databases(server_url, "wesendall_bench_")
    database = unique("wesendall_bench_")
    url = await create_database(server_url, database)
    namespace = unique("bench") + "."
    logs = Path(tempfile.mkdtemp(prefix="wesendall-bench-"))
    config = StackConfig(
        database_url=url,
        amqp_url=amqp_url,
        amqp_namespace=namespace,
        environment="test",
        http_port=free_port(),
        smpp_port=free_port(),
        simulator_http_port=free_port(),
        mobile_money_port=free_port(),
        log_level=log_level,
        log_dir=logs,
        extra_env=extra_env,
    )
    stack = Stack(config)
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
    platform = BenchPlatform(stack, server_url, amqp_url, database, namespace, logs, http)
    try:
        await asyncio.to_thread(upgrade, url)
        stack.start()
        await asyncio.to_thread(stack.wait_healthy, 90)
    except BaseException:
        print(f"bench: the platform did not start; logs in {logs}:", file=sys.stderr)
        print(platform.log_tails(), file=sys.stderr)
        await stop_platform(platform, keep_logs=True)
        raise
    return platform


async def stop_platform(platform: BenchPlatform, keep_logs: bool) -> None:
    """Stop every process, drop the database, delete the namespace's queues and exchanges."""
    await asyncio.to_thread(platform.stack.stop)
    await platform.http.close()
    await drop_database(platform.server_url, platform.database)
    settings = CommonSettings(amqp_url=platform.amqp_url)
    connection = await connect(settings, _APPLICATION)
    try:
        channel = await connection.channel()
        await delete_topology(channel, Topology(platform.namespace), settings.carriers)
    finally:
        await connection.close()
    if not keep_logs:
        shutil.rmtree(platform.logs, ignore_errors=True)


# An account with past campaigns: batches of 1,000 delivered messages over the last 30 days.
_HISTORY = """
WITH account AS (
    INSERT INTO accounts (id, phone) VALUES ('acc_history', '+256772000200') RETURNING id
), wallet AS (
    INSERT INTO wallets (id, account_id) SELECT 'wal_history', id FROM account RETURNING id
), batch AS (
    INSERT INTO batches (id, wallet_id, message, encoding, priority, recipients, units, cost,
                         unit_price, created_at)
    SELECT 'bat_history' || b, w.id, 'A past campaign', 'GSM-7', 'normal', 1000, 1000, 35000,
           35, now() - (b % 30) * interval '1 day'
      FROM wallet w, generate_series(0, ($1::int - 1) / 1000) AS b
    RETURNING id, wallet_id, created_at
), message AS (
    INSERT INTO messages (id, batch_id, wallet_id, recipient, carrier, units, cost, status,
                          carrier_message_id, parts_done, expires_at, created_at, updated_at,
                          submitted_at, done_at)
    SELECT b.id || '_' || m, b.id, b.wallet_id,
           '+25677' || lpad((m * 7919 % 10000000)::text, 7, '0'),
           CASE WHEN m % 2 = 0 THEN 'mtn' ELSE 'airtel' END, 1, 35, 'delivered',
           'H' || b.id || m, 1, b.created_at + interval '1 day', b.created_at, b.created_at,
           b.created_at, b.created_at
      FROM batch b, generate_series(0, 999) AS m
    RETURNING id, carrier, carrier_message_id
)
INSERT INTO message_refs (carrier, carrier_message_id, message_id)
SELECT carrier, carrier_message_id, id FROM message
"""
