"""Runs the Mobile Money simulator as a real process, with a real callback receiver beside it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.infra import free_port, serve_locally
from tests.simulators.harness import REPO_ROOT, stop_process, wait_healthy

# The simulator's documented defaults, spelled out so the tests do not import it.
MTN_SUBSCRIPTION_KEY = "sim-mtn-subscription-key"
MTN_API_USER = "2a0f2b6e-4c2f-4b8e-9d57-3f8c0d1e5a11"
MTN_API_KEY = "sim-mtn-api-key"
AIRTEL_CLIENT_ID = "sim-airtel-client-id"
AIRTEL_CLIENT_SECRET = "sim-airtel-client-secret"
DECLINER = "256700000999"  # sandbox payer who declines
SILENT = "256700000888"  # sandbox payer who never answers


@dataclass
class RunningMobileMoney:
    """A simulator subprocess and where to reach it."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_mobile_money(log_path: Path, *args: str, timeout: float = 20.0) -> RunningMobileMoney:
    """Start `python -m simulators.mobile_money` on a free port and wait until /healthz answers."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "simulators.mobile_money", "--port", str(port), *args],
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    simulator = RunningMobileMoney(process, port, log_path)
    wait_healthy(process, simulator.base_url, simulator.log, timeout)
    return simulator


def stop_mobile_money(simulator: RunningMobileMoney, timeout: float = 10.0) -> int:
    """SIGTERM, as a deployment would; kill it if it does not exit in time. Return its code."""
    return stop_process(simulator.process, timeout)


@dataclass
class Received:
    """One callback as the merchant's endpoint saw it."""

    method: str
    path: str
    headers: dict[str, str]
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.raw)


@dataclass
class CallbackReceiver:
    """A merchant's callback endpoint: 200 everywhere, 500 under `/fail/`."""

    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._runner = await serve_locally(self._handle, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.received.append(Received(request.method, request.path, dict(request.headers), raw))
        return web.Response(status=500 if request.path.startswith("/fail/") else 200)

    def at(self, path: str) -> list[Received]:
        """Callbacks received on `path`, oldest first."""
        return [callback for callback in self.received if callback.path == path]

    def airtel(self, transaction_id: str) -> list[Received]:
        """Airtel callbacks about this transaction id."""
        return [
            callback
            for callback in self.at("/airtel")
            if callback.json().get("transaction", {}).get("id") == transaction_id
        ]


def new_reference() -> str:
    """An MTN X-Reference-Id."""
    return str(uuid.uuid4())


def new_transaction_id() -> str:
    """An Airtel transaction.id, unique like a merchant's own."""
    return f"wsd-{uuid.uuid4().hex[:16]}"


def expected_hash(transaction: dict[str, Any]) -> str:
    """Airtel's callback hash, computed independently of the simulator."""
    compact = json.dumps(transaction, separators=(",", ":"), ensure_ascii=False).encode()
    digest = hmac.new(AIRTEL_CLIENT_SECRET.encode(), compact, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()
