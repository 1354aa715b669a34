"""The platform under test: every service and the carrier simulator as real processes,
on a fresh database and a fresh AMQP namespace, shared by the tests of one run.
Tests that break things (kill a process, cut the broker) start a private one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from deploy.stack import Stack, StackConfig
from libs.common.amqp import Topology, connect, delete_topology
from libs.common.db import create_engine, create_sessionmaker, session_scope
from libs.common.migrations import upgrade
from libs.common.settings import CommonSettings
from services.admin import service
from services.billing.ledger import ledger_mismatches, unbatched_messages
from tests.infra import (
    Servers,
    create_database,
    drop_database,
    drop_stale_databases,
    free_port,
    servers,
    unique,
)
from tests.platform.client import Customer
from tests.platform.receiver import Receiver

# Settings that make failure paths observable within a test's patience.
TEST_ENV = {
    "WESENDALL_AMBIGUOUS_HOLD": "PT3S",
    "WESENDALL_SWEEP_INTERVAL": "1",
    "WESENDALL_EXPIRY_GRACE": "PT1S",
    "WESENDALL_RETRY_BACKOFF": "0.2",
    "WESENDALL_LAST_USED_FLUSH_INTERVAL": "PT1S",
    "WESENDALL_REPORT_INTERVAL": "1",
    "WESENDALL_VOLUME_TIER_UNITS": "1000",
    "SIM_RECEIPT_DELAY": "0.1",
    # Top-ups: payers approve fast, silent deposits are polled every second, and one the
    # payer never answers expires after a few seconds instead of fifteen minutes.
    "MOMO_SIM_APPROVAL_DELAY": "0.3",
    "WESENDALL_DEPOSIT_EXPIRY": "PT6S",
    "WESENDALL_DEPOSIT_FIRST_CHECK": "PT1S",
    "WESENDALL_DEPOSIT_MAX_CHECK_INTERVAL": "PT1S",
    "WESENDALL_DEPOSIT_RETRY_AFTER": "PT1S",
    "WESENDALL_RECONCILE_INTERVAL": "0.3",
    # Webhooks: short timeouts and retries within seconds instead of over a day.
    "WESENDALL_WEBHOOK_TIMEOUT": "2",
    "WESENDALL_WEBHOOK_RETRY_SCHEDULE": '["PT0.3S", "PT0.6S", "PT1S"]',
    "WESENDALL_WEBHOOK_BREAKER_COOLDOWN": "PT1S",
    "WESENDALL_WEBHOOK_POLL_INTERVAL": "0.2",
}


@dataclass
class Platform:
    stack: Stack
    config: StackConfig
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    http: aiohttp.ClientSession
    logs: Path
    customers: list[Customer] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return self.config.base_url

    async def customer(self, credit: int = 10_000, rate_limit: int | None = None) -> Customer:
        """A new account with its own wallet (so tests never share a balance) and a key."""
        async with session_scope(self.sessions) as session:
            creds = await service.create_account(
                session,
                phone="+256772000100",
                email=None,
                credit_ugx=credit,
                bcrypt_rounds=4,
                rate_limit=rate_limit,
            )
        customer = Customer(
            self.http,
            self.base_url,
            creds.account_id,
            creds.wallet_id,
            creds.api_key,
            creds.api_secret,
        )
        self.customers.append(customer)
        return customer

    async def simulator(self, path: str, **params: Any) -> Any:
        async with self.http.get(self.config.simulator_url + path, params=params) as response:
            return await response.json()

    async def mobile_money(self, method: str, path: str, body: Any = None) -> Any:
        """Call the Mobile Money simulator's inspection and control endpoints."""
        url = self.config.mobile_money_url + path
        async with self.http.request(method, url, json=body) as response:
            assert response.status < 300, await response.text()
            return await response.json() if response.content_length != 0 else None

    async def simulator_messages(self, recipient: str) -> list[dict[str, Any]]:
        return (await self.simulator("/messages", recipient=recipient))["data"]

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with session_scope(self.sessions) as session:
            return await session.scalar(text(sql), params)

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        async with session_scope(self.sessions) as session:
            return list((await session.execute(text(sql), params)).all())

    async def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the admin CLI against this platform; with `check`, it must exit 0."""
        return await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "services.admin.cli", *args],
            env={**os.environ, **self.config.env()},
            capture_output=True,
            text=True,
            timeout=60,
            check=check,
        )

    async def ledger_mismatches(self) -> list[tuple[str, int, int]]:
        """Wallets that do not balance; fails at once if a message lacks its batch."""
        async with session_scope(self.sessions) as session:
            assert await unbatched_messages(session) == []
            return await ledger_mismatches(session)

    @contextmanager
    def frozen(self, name: str) -> Iterator[None]:
        """The process stops running but keeps its connections: its consumers stay, so
        the broker goes on handing it requests that wait until the block ends."""
        process = self.stack.processes[name]
        os.kill(process.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(process.pid, signal.SIGCONT)


@pytest.fixture(scope="session")
def test_servers() -> Iterator[Servers]:
    with servers() as found:
        yield found


@pytest.fixture(scope="session")
async def template_database(test_servers: Servers) -> AsyncIterator[str]:
    """A migrated, never-connected database that each platform's database is copied from."""
    await drop_stale_databases(test_servers.database_url, "wesendall_test_")
    name = unique("wesendall_test_tpl_")
    url = await create_database(test_servers.database_url, name)
    await asyncio.to_thread(upgrade, url)
    yield name
    await drop_database(test_servers.database_url, name)


StartPlatform = Callable[..., Awaitable[Platform]]


@dataclass
class Platforms:
    """Starts platforms (each with its own database and AMQP namespace) and stops them."""

    servers: Servers
    template: str
    tmp: pytest.TempPathFactory
    running: list[tuple[Platform, str, str]] = field(default_factory=list)

    async def start(
        self,
        *,
        amqp_url: str | None = None,
        extra_env: dict[str, str] | None = None,
        service_env: dict[str, dict[str, str]] | None = None,
    ) -> Platform:
        name = unique("wesendall_test_")
        url = await create_database(self.servers.database_url, name, template=self.template)
        namespace = unique("t") + "."
        logs = self.tmp.mktemp("platform")
        config = StackConfig(
            database_url=url,
            amqp_url=amqp_url or self.servers.amqp_url,
            amqp_namespace=namespace,
            environment="test",
            http_port=free_port(),
            smpp_port=free_port(),
            simulator_http_port=free_port(),
            mobile_money_port=free_port(),
            log_dir=logs,
            extra_env={**TEST_ENV, **(extra_env or {})},
            service_env=service_env or {},
        )
        stack = Stack(config)
        engine = create_engine(CommonSettings(database_url=url, db_pool_size=4), "wesendall-tests")
        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        platform = Platform(stack, config, engine, create_sessionmaker(engine), http, logs)
        self.running.append((platform, name, namespace))
        stack.start()
        try:
            await asyncio.to_thread(stack.wait_healthy, 60)
        except Exception as error:
            raise RuntimeError(f"{error}\n{platform.stack.log_tails(40)}") from error
        return platform

    async def stop(self, platform: Platform) -> None:
        """Stop its processes and drop its database and namespace."""
        for entry in list(self.running):
            if entry[0] is platform:
                self.running.remove(entry)
                _, name, namespace = entry
                await asyncio.to_thread(platform.stack.stop)
                await platform.http.close()
                await platform.engine.dispose()
                await drop_database(self.servers.database_url, name)
                await _delete_namespace(self.servers.amqp_url, namespace)


@pytest.fixture(scope="session")
async def platforms(
    test_servers: Servers, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Platforms]:
    found = Platforms(test_servers, template_database, tmp_path_factory)
    yield found
    for platform, _, _ in reversed(list(found.running)):
        await found.stop(platform)


@pytest.fixture
async def start_platform(platforms: Platforms) -> AsyncIterator[StartPlatform]:
    """Platforms of the test's own, stopped when it ends: each holds up to ~60 database
    connections, so they must not pile up for the whole run (Postgres allows 100).
    """
    started: list[Platform] = []

    async def start(**options: Any) -> Platform:
        platform = await platforms.start(**options)
        started.append(platform)
        return platform

    yield start
    for platform in reversed(started):
        await platforms.stop(platform)


async def _delete_namespace(amqp_url: str, namespace: str) -> None:
    settings = CommonSettings(amqp_url=amqp_url)
    connection = await connect(settings, "wesendall-tests")
    try:
        channel = await connection.channel()
        await delete_topology(channel, Topology(namespace), settings.carriers)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
async def platform(platforms: Platforms) -> Platform:
    """The shared platform; tests isolate themselves by each using their own wallets."""
    return await platforms.start()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A customer's webhook receiver on a free port of this machine."""
    found = Receiver()
    await found.start()
    yield found
    await found.stop()


@pytest.fixture
async def customer(platform: Platform) -> Customer:
    return await platform.customer()
