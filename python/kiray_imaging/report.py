"""Reporting an outcome: the object's one log line and metric, so that every caller says the same thing the same
way (the vocabulary is outcomes.py's)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kiray_imaging import metrics
from kiray_imaging.logs import log
from kiray_imaging.outcomes import Outcome


def report(outcome: Outcome, rendition: str, where: Mapping[str, Any]) -> None:
    """The object's one log line and metric for a removal, a skip or a failure. (A rendition written logs its own
    ``rendered`` line, with its stage timings, where it is written.)"""
    if outcome.status == "removed":
        count = len(outcome.output_keys)
        message = f"removed: {count} renditions" if count else "removed: no renditions to remove"
        log(logging.INFO, message, **where, removed_keys=list(outcome.output_keys))
    elif outcome.skip is not None:
        log(outcome.skip.level, f"skipped: {outcome.skip.message}", **where, reason=outcome.skip.value,
            **outcome.facts)  # fmt: skip
        metrics.skipped()
    elif outcome.status == "failed":
        log(logging.ERROR, f"failed: {outcome.message}", **where, error_class=outcome.error_class, **outcome.facts)
        metrics.failed(rendition, outcome.error_class)


def report_retry(error_class: str, error: BaseException, rendition: str, where: Mapping[str, Any]) -> None:
    """A transient failure handed back for a retry (Lambda's, or S3 Batch Operations')."""
    log(logging.WARNING, f"retrying: {error}", **where, error_class=error_class)
    metrics.failed(rendition, error_class, transient=True)
