"""Optional structured logs: corral's log records as one JSON object a line."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import IO, Any

_STANDARD = set(vars(logging.makeLogRecord({})))


class JsonFormatter(logging.Formatter):
    """A log record as JSON: time, level, logger, message, and any extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        data |= {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def log_json(level: int = logging.INFO, stream: IO[str] | None = None) -> logging.Handler:
    """Send the ``corral`` loggers' records to ``stream`` (stderr) as JSON lines."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("corral")
    logger.addHandler(handler)
    logger.setLevel(level)
    return handler
