"""python -m services.api_gateway: the public HTTP API."""

from __future__ import annotations

import asyncio

from aiohttp import web

from libs.common.logging import get_logger
from libs.common.runtime import run, start_service
from services.api_gateway.app import create_app
from services.api_gateway.settings import GatewaySettings

log = get_logger(__name__)


async def main(settings: GatewaySettings, stop: asyncio.Event) -> None:
    start_service("api_gateway", settings)
    runner = web.AppRunner(create_app(settings), access_log=None, handle_signals=False)
    await runner.setup()
    # reuse_port lets several gateway processes share the port on one machine.
    site = web.TCPSite(runner, settings.http_host, settings.http_port, reuse_port=True)
    await site.start()
    log.info("api_gateway.listening", url=f"http://{settings.http_host}:{settings.http_port}")
    await stop.wait()
    log.info("api_gateway.stopping")
    await runner.cleanup()


if __name__ == "__main__":
    run(lambda stop: main(GatewaySettings(), stop))
