"""One JSON object per line on stdout: CloudWatch Logs Insights can filter on every field."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

_logger = logging.getLogger("kiray_imaging")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"level": record.levelname, "message": record.getMessage()}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        return json.dumps(line, ensure_ascii=False, default=str)


class _StdoutHandler(logging.Handler):
    """Writes to whatever sys.stdout is at the time (Lambda's capture, a test's), not the one seen at set-up."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record) + "\n")
            sys.stdout.flush()
        except Exception:
            self.handleError(record)


def configure(level: str) -> None:
    if not any(isinstance(h, _StdoutHandler) for h in _logger.handlers):
        handler = _StdoutHandler()
        handler.setFormatter(_JsonFormatter())
        _logger.addHandler(handler)
    # Our lines only: Lambda's root handler would print them a second time, in plain text.
    _logger.propagate = False
    _logger.setLevel(level)


def log(level: int, message: str, **fields: Any) -> None:
    _logger.log(level, message, extra={"fields": fields})
