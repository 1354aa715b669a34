"""Process entry points: uvloop when present, a stop event set by SIGINT/SIGTERM, and
what every service sets up first."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from collections.abc import Awaitable, Callable

from libs.common.logging import configure_logging
from libs.common.settings import CommonSettings


def start_service(service: str, settings: CommonSettings) -> None:
    """JSON logs under the service's name, and the CPU niceness it is configured with."""
    configure_logging(service, settings.log_level, settings.log_format)
    if settings.nice:
        os.nice(settings.nice)


def run(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run `main(stop)` until it returns; a signal sets `stop` so it can shut down cleanly."""
    freeze_imports()

    async def wrapper() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    try:
        import uvloop

        uvloop.run(wrapper())
    except ImportError:
        asyncio.run(wrapper())


def freeze_imports() -> None:
    """Put what exists now (imported modules, their classes and constants) out of the
    cycle collector's sight, for good.

    Every full collection scans every tracked object; with SQLAlchemy, pydantic and
    aio-pika loaded that is ~200k objects that never die, and under load each full
    collection stalled the event loop 100-500 ms, a whole OTP latency budget, several
    times a minute. Frozen, they are never scanned again; what the service allocates
    from here on is collected as usual.
    """
    gc.collect()
    gc.freeze()
