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
    tune_garbage_collection()

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


# Tracked objects allocated (net of those freed) before a young collection runs; CPython's
# default is 700. Under load a service allocates short-lived containers by the hundred
# thousand (jobs, outcomes, events, asyncpg records), and at 700 the collector ran every
# few hundred microseconds of work, scanning whatever happened to be alive. In make bench
# the gateway spent 1.1 s collecting during one run, the bulk sender 1.0-3.0 s of a 100k
# campaign (a fifth to half of its CPU), each pause stalling its SMPP window. At 50,000
# the same run collected 0-3 times per process, 30-38 ms each; over four alternating
# runs the campaign reached the carrier ~20% faster and the bulk sender used ~15% less
# CPU. Garbage without cycles is freed by reference counting as before; only cyclic
# garbage waits longer. (The simulators keep CPython's default: the carrier simulator
# freezes what it stores every few seconds, and a larger threshold measured no better.)
YOUNG_COLLECTION_THRESHOLD = 50_000


def tune_garbage_collection() -> None:
    """Put what exists now (imported modules, their classes and constants) out of the
    cycle collector's sight for good, and collect the young generation less often.

    Every full collection scans every tracked object; with SQLAlchemy, pydantic and
    aio-pika loaded that is ~200k objects that never die, and under load each full
    collection stalled the event loop 100-500 ms, a whole OTP latency budget, several
    times a minute. Frozen, they are never scanned again; what the service allocates
    from here on is collected as usual, at `YOUNG_COLLECTION_THRESHOLD`.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, older, oldest)
