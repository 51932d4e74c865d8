"""One JSON object per line on stdout, through Powertools for AWS Lambda's Logger: the structure CloudWatch Logs
Insights, the Powertools docs and the on-call runbooks all expect (``level``, ``message``, ``service``,
``timestamp``, ``location``, plus our fields at the top level)."""

from __future__ import annotations

import logging
import sys
from typing import Any

from aws_lambda_powertools import Logger

from kiray_imaging.config import service_name

SERVICE = service_name()


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stdout is at the time (Lambda's capture, a test's), not the one seen at set-up."""

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


_logger = Logger(service=SERVICE, logger_handler=_StdoutHandler(), level="INFO")


def configure(level: str) -> None:
    _logger.setLevel(level)


def append_keys(**fields: Any) -> None:
    """Fields every following line carries (e.g. the invocation's request id)."""
    _logger.append_keys(**fields)


def log(level: int, message: str, **fields: Any) -> None:
    # stacklevel 3: the ``location`` field names our caller, not this function.
    if level >= logging.ERROR:
        _logger.error(message, stacklevel=3, extra=fields)
    elif level >= logging.WARNING:
        _logger.warning(message, stacklevel=3, extra=fields)
    elif level >= logging.INFO:
        _logger.info(message, stacklevel=3, extra=fields)
    else:
        _logger.debug(message, stacklevel=3, extra=fields)
