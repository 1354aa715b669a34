"""What every simulator's `__main__` does: run one coroutine on uvloop when it exists."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


def run_main(main: Coroutine[Any, Any, None]) -> None:
    """Run `main` to completion; it serves until SIGINT/SIGTERM and returns to exit 0."""
    try:
        import uvloop
    except ImportError:  # e.g. Windows, where uvloop does not exist
        asyncio.run(main)
    else:
        uvloop.run(main)
