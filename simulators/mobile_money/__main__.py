"""`python -m simulators.mobile_money`: read settings, serve until SIGINT/SIGTERM, exit 0."""

from __future__ import annotations

from simulators.mobile_money.logs import configure_logging
from simulators.mobile_money.runner import run
from simulators.mobile_money.settings import parse_settings
from simulators.process import run_main


def main() -> None:
    """Entry point."""
    settings = parse_settings()
    configure_logging()
    run_main(run(settings))


if __name__ == "__main__":
    main()
