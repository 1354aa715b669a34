"""`python -m simulators.carrier`: read settings, serve until SIGINT/SIGTERM, exit 0."""

from __future__ import annotations

from simulators.carrier.runner import configure_logging, run
from simulators.carrier.settings import parse_settings
from simulators.process import run_main


def main() -> None:
    """Entry point."""
    settings = parse_settings()
    configure_logging()
    run_main(run(settings))


if __name__ == "__main__":
    main()
