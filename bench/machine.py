"""What the figures were measured on: cores, load, Python and the servers' versions."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg

from deploy.infra import asyncpg_dsn
from libs.common.amqp import connect
from libs.common.settings import CommonSettings

# Anything can go wrong asking a server for its version; the benchmark goes on without it.
_VERSION_ERRORS = (OSError, asyncpg.PostgresError, TimeoutError, KeyError, AttributeError)


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _package(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


async def _postgres_version(server_url: str) -> str | None:
    try:
        connection = await asyncpg.connect(asyncpg_dsn(server_url, "postgres"), timeout=5)
    except _VERSION_ERRORS:
        return None
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


async def _rabbitmq_version(amqp_url: str) -> str | None:
    try:
        connection = await connect(CommonSettings(amqp_url=amqp_url), "wesendall-bench")
    except _VERSION_ERRORS:
        return None
    try:
        transport = connection.transport
        if transport is None:
            return None
        version = transport.connection.server_properties["version"]
        return version.decode() if isinstance(version, bytes) else str(version)
    except _VERSION_ERRORS:
        return None
    finally:
        await connection.close()


async def describe(server_url: str, amqp_url: str) -> dict[str, Any]:
    """The machine and software the run is measured on."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 0
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "cpu": _cpu_model(),
        "load_average_at_start": [round(v, 2) for v in load] if load else None,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "aiohttp": _package("aiohttp"),
        "uvloop": _package("uvloop"),
        "postgres": await _postgres_version(server_url),
        "rabbitmq": await _rabbitmq_version(amqp_url),
    }
