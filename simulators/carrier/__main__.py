"""`python -m simulators.carrier`: read settings, serve until SIGINT/SIGTERM, exit 0."""

from __future__ import annotations

import asyncio

from simulators.carrier.runner import configure_logging, run
from simulators.carrier.settings import parse_settings


def main() -> None:
    """Entry point."""
    settings = parse_settings()
    configure_logging()
    try:
        import uvloop
    except ImportError:  # e.g. Windows, where uvloop does not exist
        asyncio.run(run(settings))
    else:
        uvloop.run(run(settings))


if __name__ == "__main__":
    main()
