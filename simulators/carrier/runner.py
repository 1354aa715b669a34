"""Starts the SMPP server and the inspection API, logs traffic, and shuts down on a signal."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
import time

import structlog
from aiohttp import web

from simulators.carrier.http_api import create_app
from simulators.carrier.settings import SimulatorSettings
from simulators.carrier.smsc import CarrierSmsc

log = structlog.get_logger("simulators.carrier")
# How often the simulator freezes what it has accumulated (see _freeze_stored).
FREEZE_INTERVAL = 2.0


def configure_logging() -> None:
    """One JSON object per line on stdout."""
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        cache_logger_on_first_use=True,
    )


async def log_traffic(smsc: CarrierSmsc, interval: float) -> None:
    """Every `interval` seconds with traffic, one line with totals and rates (never per message)."""
    counters = smsc.counters
    last_submits, last_receipts, last_at = (
        counters.submits,
        counters.receipts_sent,
        time.monotonic(),
    )
    while True:
        await asyncio.sleep(interval)
        now = time.monotonic()
        submits, receipts = counters.submits, counters.receipts_sent
        if (submits, receipts) != (last_submits, last_receipts):
            elapsed = now - last_at
            log.info(
                "traffic",
                submits_per_s=round(max(submits - last_submits, 0) / elapsed, 1),
                receipts_per_s=round(max(receipts - last_receipts, 0) / elapsed, 1),
                **smsc.stats(),
            )
        last_submits, last_receipts, last_at = submits, receipts, now


async def run(settings: SimulatorSettings) -> None:
    """Serve until SIGINT or SIGTERM, then close the SMPP port cleanly."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)

    smsc = CarrierSmsc(settings)
    await smsc.start()
    runner = web.AppRunner(create_app(smsc), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.http_host, settings.http_port).start()
    except BaseException:
        await _shut_down(smsc, runner)
        raise
    traffic = asyncio.ensure_future(log_traffic(smsc, settings.stats_interval))
    freezing = asyncio.ensure_future(_freeze_stored(FREEZE_INTERVAL))
    log.info(
        "simulator.started",
        smpp=f"{settings.smpp_host}:{settings.smpp_port}",
        http=f"{settings.http_host}:{settings.http_port}",
        accounts=dict(settings.accounts),
        receipt_delay=settings.receipt_delay,
        id_format=settings.id_format,
        receipt_id_format=settings.receipt_id_format,
    )
    await stopping.wait()
    log.info("simulator.stopping", **smsc.stats())
    traffic.cancel()
    freezing.cancel()
    await _shut_down(smsc, runner)
    log.info("simulator.stopped")


async def _freeze_stored(interval: float) -> None:
    """Freeze what survived the young collections, again and again.

    The simulator keeps every message it received: under a 100k-recipient campaign its
    heap grows by hundreds of thousands of objects, and each full collection scanned them
    all, stalling it for up to seconds. Stored messages hold no cycles, so freezing them
    hides them from the collector without keeping anything alive that reference counting
    would free.
    """
    while True:
        await asyncio.sleep(interval)
        gc.collect(1)
        gc.freeze()


async def _shut_down(smsc: CarrierSmsc, runner: web.AppRunner) -> None:
    await smsc.stop()
    await runner.cleanup()
