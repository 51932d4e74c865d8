"""What became of one object, as data: rendered, skipped (and why) or failed (and how), in one vocabulary shared by
the functions, S3 Batch Operations results and the backfill tools, and reported — log line and metric — in one
place (report.py).

The failure policy itself (what is permanent, what is retried) is ``failures.py``'s; README "Failures, retries and
recursion" explains it to people.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from kiray_imaging.events import Event

Status = Literal["rendered", "removed", "skipped", "failed"]


class Skip(enum.Enum):
    """Why there was nothing to do for an object. The value is the ``reason`` of the log line, of a Batch
    Operations ``skipped: <reason>`` result and of a backfill's "left out" count — the one spelling on-call queries
    and tools match."""

    RECURSION_GUARD = "recursion-guard"
    OUTSIDE_SOURCE = "outside-source"
    EMPTY = "empty"
    DELETED = "deleted"
    SUPERSEDED = "superseded"

    @property
    def level(self) -> int:
        return _SKIPS[self][0]

    @property
    def message(self) -> str:
        """What it means, for a person: the log line's message after ``skipped: ``."""
        return _SKIPS[self][1]


_SKIPS: dict[Skip, tuple[int, str]] = {
    # Never read our own output, whatever the trigger delivers: a warning, because the rule should not have sent it.
    Skip.RECURSION_GUARD: (logging.WARNING, "key is under the destination prefix"),
    Skip.OUTSIDE_SOURCE: (logging.WARNING, "key is outside the source prefix"),
    Skip.EMPTY: (logging.INFO, "folder marker or empty object"),
    Skip.DELETED: (logging.INFO, "the upload was deleted before it was rendered"),
    Skip.SUPERSEDED: (logging.INFO, "superseded, a newer upload of the key is rendered by its own event"),
}


@dataclass(frozen=True)
class Outcome:
    status: Status
    key: str
    skip: Skip | None = None
    """Why skipped (``status == "skipped"``)."""
    error_class: str = ""
    """The failure's class (``status == "failed"``): an ``ImageError`` subclass, an S3 code, ``EventShapeError``."""
    message: str = ""
    """What went wrong, for a person: the line an operator reads in a log or a Batch Operations report."""
    output_keys: tuple[str, ...] = ()
    """``rendered``: the files written; ``removed``: the files deleted (none when the upload had no renditions)."""
    facts: Mapping[str, Any] = field(default_factory=dict)
    """Extra fields for the log line (e.g. the ETag of a superseded event)."""
    event: Event | None = None
    """What the backend is told of it (events.py), if anything."""


def rendered(key: str, output_keys: tuple[str, ...], event: Event | None = None) -> Outcome:
    return Outcome("rendered", key, output_keys=output_keys, event=event)


def removed(key: str, keys: tuple[str, ...], event: Event | None = None) -> Outcome:
    return Outcome("removed", key, output_keys=keys, event=event)


def skipped(key: str, skip: Skip, **facts: Any) -> Outcome:
    return Outcome("skipped", key, skip=skip, facts=facts)


def failed(key: str, error_class: str, message: str, **facts: Any) -> Outcome:
    return Outcome("failed", key, error_class=error_class, message=message, facts=facts)
