"""`make run`: the whole platform with its carrier simulator, and a demo account to try it.

Postgres and RabbitMQ come from WESENDALL_DATABASE_URL / WESENDALL_AMQP_URL (default: the
local ones); if nothing answers there and Docker is available, deploy/docker-compose.yml
starts them. Ctrl-C stops every process.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time

from deploy.infra import compose_up, docker_available, ensure_database, reachable
from deploy.stack import ROOT, Stack, StackConfig
from libs.common.db import create_engine, create_sessionmaker, session_scope
from libs.common.migrations import upgrade
from libs.common.settings import DEFAULT_AMQP_URL, DEFAULT_DATABASE_URL, CommonSettings
from services.admin import service

DEMO_FILE = ROOT / ".wesendall" / "demo.json"
DEMO_CREDIT = 100_000


def _infrastructure(database_url: str, amqp_url: str) -> None:
    missing = [
        name
        for name, url, port in (("Postgres", database_url, 5432), ("RabbitMQ", amqp_url, 5672))
        if not reachable(url, port)
    ]
    if not missing:
        return
    if docker_available():
        print(f"{' and '.join(missing)} not answering: starting deploy/docker-compose.yml")
        compose_up()
        return
    sys.exit(
        f"{' and '.join(missing)} not reachable and Docker is not available.\n"
        "Start them, or point WESENDALL_DATABASE_URL / WESENDALL_AMQP_URL at running ones."
    )


async def _demo_credentials(settings: CommonSettings) -> dict[str, str]:
    """The demo account's credentials: kept from an earlier run if its key still works."""
    from sqlalchemy import text

    engine = create_engine(settings, "wesendall-run")
    try:
        sessions = create_sessionmaker(engine)
        if DEMO_FILE.exists():
            saved = json.loads(DEMO_FILE.read_text())
            async with session_scope(sessions) as session:
                alive = await session.scalar(
                    text("SELECT 1 FROM api_keys WHERE id = :k AND revoked_at IS NULL"),
                    {"k": saved.get("apiKey")},
                )
            if alive:
                return saved
        async with session_scope(sessions) as session:
            creds = await service.create_account(
                session,
                phone="+256772000001",
                email="demo@wesendall.local",
                credit_ugx=DEMO_CREDIT,
                bcrypt_rounds=settings.bcrypt_rounds,
            )
        DEMO_FILE.parent.mkdir(exist_ok=True)
        DEMO_FILE.write_text(json.dumps(creds.as_json(), indent=2))
        DEMO_FILE.chmod(0o600)
        return creds.as_json()
    finally:
        await engine.dispose()


def _banner(config: StackConfig, creds: dict[str, str]) -> str:
    base, wallet = config.base_url, creds["walletId"]
    auth = f"{creds['apiKey']}:{creds['apiSecret']}"
    saved = DEMO_FILE.relative_to(ROOT)
    body = json.dumps(
        {"walletId": wallet, "message": "Hello from Wesendall", "recipient": "0772123456"}
    )
    topup = json.dumps({"walletId": wallet, "amount": 5000, "phone_number": "0772123456"})
    return f"""
Wesendall is running.
  API             {base}   (OpenAPI: {base}/api/v1/openapi.json, health: {base}/healthz)
  SMSC simulator  smpp://127.0.0.1:{config.smpp_port}   inspect: {config.simulator_url}/messages
  Mobile Money    {config.mobile_money_url}   (MTN MoMo and Airtel Money simulator;
                  inspect: {config.mobile_money_url}/_sim/requests)
  Demo wallet     {wallet} (UGX {DEMO_CREDIT:,} opening credit; saved in {saved})

Try it:
  curl -s -u {auth} -H 'Content-Type: application/json' \\
       -d '{body}' \\
       {base}/api/v1/sms/send
  curl -s -u {auth} '{base}/api/v1/account/balance?walletId={wallet}'
  curl -s -u {auth} -H 'Content-Type: application/json' \\
       -d '{topup}' \\
       {base}/api/v1/account/topup
  curl -s -u {auth} '{base}/api/v1/account/transactions?walletId={wallet}'
  curl -s -u {auth} '{base}/api/v1/sms/history?walletId={wallet}'
  curl -s '{config.simulator_url}/messages?recipient=%2B256772123456'

Ctrl-C stops everything.
"""


def main() -> int:
    database_url = os.environ.get("WESENDALL_DATABASE_URL", DEFAULT_DATABASE_URL)
    amqp_url = os.environ.get("WESENDALL_AMQP_URL", DEFAULT_AMQP_URL)
    _infrastructure(database_url, amqp_url)
    ensure_database(database_url)
    upgrade(database_url)
    settings = CommonSettings(database_url=database_url, amqp_url=amqp_url)
    creds = asyncio.run(_demo_credentials(settings))
    config = StackConfig(
        database_url=database_url,
        amqp_url=amqp_url,
        amqp_namespace=os.environ.get("WESENDALL_AMQP_NAMESPACE", ""),
        http_port=int(os.environ.get("WESENDALL_HTTP_PORT", "8080")),
        log_format=os.environ.get("WESENDALL_LOG_FORMAT", "console"),
    )
    stack = Stack(config)
    stopping = False

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    stack.start()
    try:
        stack.wait_healthy(timeout=60)
        print(_banner(config, creds), flush=True)
        while not stopping:
            if stack.exited():
                print(f"stopped unexpectedly: {stack.exited()}", file=sys.stderr)
                return 1
            time.sleep(0.5)
        return 0
    finally:
        print("stopping…", flush=True)
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
