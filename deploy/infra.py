"""Finding Postgres and RabbitMQ for development: the configured ones, or Docker's."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

COMPOSE_FILE = Path(__file__).resolve().parent / "docker-compose.yml"


def asyncpg_dsn(database_url: str, database: str | None = None) -> str:
    """The plain libpq DSN of a SQLAlchemy URL, optionally for another database."""
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    if database is None:
        return dsn
    parts = urlsplit(dsn)
    return parts._replace(path=f"/{database}").geturl()


def database_name(database_url: str) -> str:
    return urlsplit(asyncpg_dsn(database_url)).path.lstrip("/") or "postgres"


def reachable(url: str, default_port: int) -> bool:
    """Whether something listens at the URL's host and port."""
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0


def compose_up(timeout: float = 90.0) -> None:
    """Start Postgres and RabbitMQ from deploy/docker-compose.yml and wait for both."""
    subprocess.run(["docker", "compose", "-f", str(COMPOSE_FILE), "up", "-d"], check=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reachable("postgresql://127.0.0.1:5432", 5432) and reachable(
            "amqp://127.0.0.1:5672", 5672
        ):
            time.sleep(2)  # both accept connections a moment before they answer them
            return
        time.sleep(1)
    raise TimeoutError("docker compose services did not come up")


async def _ensure_database(database_url: str) -> None:
    name = database_name(database_url)
    connection = await asyncpg.connect(asyncpg_dsn(database_url, "postgres"))
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


def ensure_database(database_url: str) -> None:
    """Create the database named in the URL if the server does not have it yet."""
    asyncio.run(_ensure_database(database_url))
