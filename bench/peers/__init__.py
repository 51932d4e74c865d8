"""Peers: the libraries a benchmark renders the same jobs with. Each takes a batch of jobs and returns one outcome per
job, in order, so a peer that pays a start-up cost (a Node process) pays it once per run, not per image."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Union

from kiray_imaging.presets import Preset


@dataclass(frozen=True)
class Job:
    source: Path
    preset: Preset
    output: Path
    """Where the peer writes its rendition, so a person can look at what was scored."""


@dataclass(frozen=True)
class Rendered:
    data: bytes = field(repr=False)
    width: int
    height: int
    ms: float
    """Wall time of the render call alone (input already in memory, output not yet written)."""


@dataclass(frozen=True)
class Skipped:
    reason: str
    unsupported: bool = False
    """True when the peer declines the format by design; False when it failed on an input it claims to read."""
    not_made: bool = False
    """True when the pipeline makes no such file for this input by design (no @2x file for a photo smaller than twice
    the box); the reason is then the report's verdict."""


Outcome = Union[Rendered, Skipped]


class Peer(Protocol):
    name: str

    def versions(self) -> dict[str, str]:
        """Library name → version, for the report header."""
        ...

    def render_all(self, jobs: Sequence[Job]) -> list[Outcome]: ...
