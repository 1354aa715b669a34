"""The whole platform as separate processes on one machine: `make run`, the tests and the
benchmark all start it through this module, so they run exactly what production runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]

_CARRIERS = ("MTN", "AIRTEL")


@dataclass(frozen=True)
class Service:
    args: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)


# Start order: the simulators first (the senders bind to the carrier one), the gateway last.
# Two senders: one takes the priority lane (OTPs) first, the other takes bulk and takes
# OTPs only if the first is gone. The priority sender binds under an account of its own
# at each carrier (`<carrier>-priority`), and a carrier sends a receipt to the account that
# submitted its message: a campaign's submits and receipts never queue in front of a
# login code, neither in the priority sender's event loop nor in the carrier's receipt
# queue. (Sharing one account, it would have to hold no receiver binds, and every OTP's
# receipt would wait behind the campaign's.) The bulk sender runs at a lower CPU priority
# so that on a shared machine the OTP path goes first (webhook deliveries too). Nice 5
# measured best: at 10, OTP p99 and carrier throughput were both worse in make bench.
# The gateway admits small sends itself; `billing-bulk` admits large ones, and `billing`
# (top-ups, refunds, the reconciler, the relays of what any admission staged) takes them
# only while `billing-bulk` is gone or full.
SERVICES: dict[str, Service] = {
    "carrier-simulator": Service(("-m", "simulators.carrier")),
    "mobile-money-simulator": Service(("-m", "simulators.mobile_money")),
    "billing": Service(("-m", "services.billing"), {"WESENDALL_ADMISSION_PRIORITY": "-1"}),
    "billing-bulk": Service(
        ("-m", "services.billing"),
        {
            "WESENDALL_ADMISSION_PRIORITY": "0",
            "WESENDALL_BACKGROUND_WORK": "false",
            "WESENDALL_NICE": "5",
        },
    ),
    "sender": Service(
        ("-m", "services.sender"),
        {"WESENDALL_LANES": '{"bulk": 0, "priority": -1}', "WESENDALL_NICE": "5"},
    ),
    "sender-priority": Service(
        ("-m", "services.sender"),
        {
            "WESENDALL_LANES": '{"priority": 1}',
            **{
                f"WESENDALL_CARRIER_LINKS__{c}__SYSTEM_ID": f"{c.lower()}-priority"
                for c in _CARRIERS
            },
        },
    ),
    "webhooks": Service(("-m", "services.webhooks"), {"WESENDALL_NICE": "5"}),
    "api_gateway": Service(("-m", "services.api_gateway")),
}


@dataclass
class StackConfig:
    database_url: str
    amqp_url: str
    amqp_namespace: str = ""
    environment: str = "dev"
    http_port: int = 8080
    smpp_port: int = 2775
    simulator_http_port: int = 8091
    mobile_money_port: int = 8092
    log_format: str = "json"
    log_level: str = "INFO"
    # Extra environment for every process (settings overrides), and for single ones.
    extra_env: dict[str, str] = field(default_factory=dict)
    service_env: dict[str, dict[str, str]] = field(default_factory=dict)
    # Where each process's output goes; None streams it to this terminal with a prefix.
    log_dir: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def simulator_url(self) -> str:
        return f"http://127.0.0.1:{self.simulator_http_port}"

    @property
    def mobile_money_url(self) -> str:
        return f"http://127.0.0.1:{self.mobile_money_port}"

    def env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("SIM_", "MOMO_SIM_"))
        }
        env.update(
            {
                "WESENDALL_ENVIRONMENT": self.environment,
                "WESENDALL_DATABASE_URL": self.database_url,
                "WESENDALL_AMQP_URL": self.amqp_url,
                "WESENDALL_AMQP_NAMESPACE": self.amqp_namespace,
                "WESENDALL_HTTP_PORT": str(self.http_port),
                "WESENDALL_PUBLIC_URL": self.base_url,
                "WESENDALL_LOG_FORMAT": self.log_format,
                "WESENDALL_LOG_LEVEL": self.log_level,
                **{f"WESENDALL_CARRIER_LINKS__{c}__PORT": str(self.smpp_port) for c in _CARRIERS},
                "SIM_SMPP_PORT": str(self.smpp_port),
                "SIM_HTTP_PORT": str(self.simulator_http_port),
                # Both providers' APIs are served by the Mobile Money simulator; Airtel calls
                # back the one URL configured for the merchant app, MTN the URL we pass.
                "WESENDALL_MOBILE_MONEY__MTN__BASE_URL": self.mobile_money_url,
                "WESENDALL_MOBILE_MONEY__AIRTEL__BASE_URL": self.mobile_money_url,
                "WESENDALL_MOBILE_MONEY__CALLBACK_BASE_URL": self.base_url,
                "MOMO_SIM_PORT": str(self.mobile_money_port),
                "MOMO_SIM_AIRTEL_CALLBACK_URL": f"{self.base_url}/callbacks/airtel",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        return env


class Stack:
    """Starts, stops, kills and restarts the platform's processes."""

    def __init__(self, config: StackConfig, python: str = sys.executable) -> None:
        self.config = config
        self._python = python
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}
        self._service_of: dict[str, str] = {}  # a copy's label -> its service

    def start(self, names: Iterable[str] = SERVICES) -> None:
        for name in names:
            self._spawn(name)

    def start_copy(self, name: str) -> str:
        """One more process of a service (services scale by running copies); its label."""
        number = 2
        while f"{name}-{number}" in self.processes:
            number += 1
        label = f"{name}-{number}"
        self._service_of[label] = name
        self._spawn(label)
        return label

    def _spawn(self, name: str) -> None:
        if self.config.log_dir is not None:
            self.config.log_dir.mkdir(parents=True, exist_ok=True)
            log = self._logs.get(name) or (self.config.log_dir / f"{name}.log").open("ab")
            self._logs[name] = log
            stdout: int | IO[bytes] = log
        else:
            stdout = subprocess.PIPE
        kind = self._service_of.get(name, name)
        service = SERVICES[kind]
        process = subprocess.Popen(
            [self._python, *service.args],
            cwd=ROOT,
            env={**self.config.env(), **service.env, **self.config.service_env.get(kind, {})},
            stdout=stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = process
        if stdout is subprocess.PIPE:
            threading.Thread(target=_prefix, args=(name, process), daemon=True).start()

    def running(self, name: str) -> bool:
        process = self.processes.get(name)
        return process is not None and process.poll() is None

    def exited(self) -> dict[str, int]:
        """Processes that have stopped, with their exit codes."""
        return {name: code for name, p in self.processes.items() if (code := p.poll()) is not None}

    def kill(self, name: str) -> None:
        """SIGKILL: the process gets no chance to clean up, as in a crash."""
        process = self.processes[name]
        process.kill()
        process.wait(timeout=10)

    def restart(self, name: str) -> None:
        if self.running(name):
            self.stop([name])
        self._spawn(name)

    def stop(self, names: Iterable[str] | None = None, timeout: float = 20.0) -> None:
        """SIGTERM in reverse start order, then SIGKILL whatever is left after `timeout`."""
        chosen = list(names) if names is not None else list(reversed(list(self.processes)))
        for name in chosen:
            process = self.processes.get(name)
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name in chosen:
            process = self.processes.get(name)
            if process is None:
                continue
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if names is None:
            for log in self._logs.values():
                log.close()
            self._logs.clear()

    def log_tails(self, lines: int = 30) -> str:
        """The last lines of every process's log (with `log_dir`), for a failure report."""
        if self.config.log_dir is None:
            return ""
        out = []
        for path in sorted(self.config.log_dir.glob("*.log")):
            content = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(content))
        return "\n".join(out)

    def wait_healthy(self, timeout: float = 60.0) -> dict[str, object]:
        """Block until /healthz answers 200; raise with the last answer if it never does."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.exited():
                raise RuntimeError(f"processes exited during start: {self.exited()}")
            try:
                with urllib.request.urlopen(f"{self.config.base_url}/healthz", timeout=2) as r:
                    if r.status == 200:
                        return {"status": "ok"}
            except urllib.error.HTTPError as error:
                last = error.read().decode(errors="replace")
            except OSError as error:
                last = repr(error)
            time.sleep(0.2)
        raise TimeoutError(f"the platform did not become healthy: {last}")


def _prefix(name: str, process: subprocess.Popen[bytes]) -> None:
    assert process.stdout is not None
    width = max(len(n) for n in SERVICES)
    for line in iter(process.stdout.readline, b""):
        sys.stdout.write(f"{name:<{width}} | {line.decode(errors='replace')}")
        sys.stdout.flush()
