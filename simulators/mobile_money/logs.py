"""One JSON object per line on stdout, the same shape the carrier simulator logs."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

LOGGER_NAME = "simulators.mobile_money"


class JsonLineFormatter(logging.Formatter):
    """`{"event": ..., "level": ..., "timestamp": ..., **fields}` per record."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record; key-values come from `extra={"fields": {...}}`."""
        line: dict[str, Any] = {
            "event": record.getMessage(),
            "level": record.levelname.lower(),
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    """Send the simulator's log lines to stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonLineFormatter())
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


class EventLog:
    """`log.info("payment.settled", reference=...)`: constant event names with key-values."""

    def __init__(self, name: str = LOGGER_NAME) -> None:
        self._logger = logging.getLogger(name)

    def info(self, event: str, **fields: Any) -> None:
        """Log an ordinary event."""
        self._logger.info(event, extra={"fields": fields})

    def warning(self, event: str, **fields: Any) -> None:
        """Log something the operator should look at."""
        self._logger.warning(event, extra={"fields": fields})

    def exception(self, event: str, **fields: Any) -> None:
        """Log an unexpected error with its traceback."""
        self._logger.exception(event, extra={"fields": fields})


log = EventLog()
