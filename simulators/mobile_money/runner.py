"""Serves the simulator until SIGINT or SIGTERM, then stops cleanly."""

from __future__ import annotations

import asyncio
import signal

from aiohttp import web

from simulators.mobile_money.app import create_app
from simulators.mobile_money.logs import log
from simulators.mobile_money.platform import WalletPlatform
from simulators.mobile_money.settings import SimulatorSettings


async def run(settings: SimulatorSettings) -> None:
    """Serve until SIGINT or SIGTERM, then abandon pending answers and callbacks and return."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)

    platform = WalletPlatform(settings)
    runner = web.AppRunner(create_app(platform), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.host, settings.port).start()
    except BaseException:
        await runner.cleanup()
        raise
    log.info(
        "simulator.started",
        http=f"{settings.host}:{settings.port}",
        mtn_target_environment=settings.mtn_target_environment,
        mtn_callback_host=settings.mtn_callback_host,
        airtel_callback_url=settings.airtel_callback_url,
        airtel_authenticated_callbacks=settings.airtel_authenticated_callbacks,
        approval_delay=settings.approval_delay,
        callback_copies=settings.callback_copies,
    )
    await stopping.wait()
    log.info("simulator.stopping", **platform.stats())
    await runner.cleanup()
    log.info("simulator.stopped")
