"""What every simulator's `__main__` does: run one coroutine on uvloop when it exists."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine
from typing import Any


def run_main(main: Coroutine[Any, Any, None]) -> None:
    """Run `main` to completion; it serves until SIGINT/SIGTERM and returns to exit 0.

    What is loaded by now never dies: frozen, the cycle collector never scans it again,
    so its full collections do not stall the simulator (and the latency it reports).
    """
    gc.collect()
    gc.freeze()
    try:
        import uvloop
    except ImportError:  # e.g. Windows, where uvloop does not exist
        asyncio.run(main)
    else:
        uvloop.run(main)
