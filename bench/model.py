"""What one run of the speed benchmark measured: per tool and photo a `Cell`, and the run's `Results`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.coldstart import ColdStart
from bench.djpeg import Djpeg
from bench.peers import Skipped
from bench.tools import Tool
from kiray_imaging.presets import Preset

THUMBNAIL, MEDIUM = "thumbnail", "medium"


@dataclass(frozen=True)
class Runs:
    warmup: int
    """Untimed renders (and cold starts) before the timed ones."""
    runs: int
    """Timed repetitions per figure, whose median is reported."""
    cold_runs: int
    """Fresh interpreters per cold-start figure."""


FULL = Runs(warmup=2, runs=5, cold_runs=7)
QUICK = Runs(warmup=1, runs=2, cold_runs=3)


@dataclass
class RenditionResult:
    ms: float
    width: int
    height: int
    bytes: int
    shrink: int | None
    stages: dict[str, float]
    output: Path | None
    ssim: float | None = None


@dataclass
class OneDecode:
    ms: float
    outputs: dict[str, Path | None]
    ssim: dict[str, float | None] = field(default_factory=dict)


@dataclass
class Timed:
    renditions: dict[str, RenditionResult]
    own_ms: float
    one: OneDecode | None
    own_fastest_ms: float = 0.0
    """The fastest pair: on a busy machine the least disturbed one, a check on the median."""


@dataclass
class Cell:
    """One tool on one file."""

    timed: Timed | Skipped | None = None
    rss_kb: int | None = None

    @property
    def ok(self) -> bool:
        return isinstance(self.timed, Timed)


@dataclass
class Results:
    files: list[Path]
    presets: list[Preset]
    tools: list[Tool]
    cells: dict[str, list[Cell]]
    idle_kb: dict[str, int]
    notes: dict[str, str]
    """Tool key → a note on how its figures were obtained (e.g. copied from an identical configuration)."""
    djpeg: Djpeg | None
    djpeg_ms: dict[str, dict[int, float]]
    """File name → DCT scale denominator → median ms."""
    cold: list[ColdStart]
    layer_zip: Path
    layer_bytes: int | None
    """The size of `layer_zip`; None where it is not built."""
    versions: dict[str, str]
    runs: Runs
    load_before: str
    load_after: str = ""
    seconds: float = 0.0

    def cell(self, tool: str, index: int) -> Cell:
        return self.cells[tool][index]

    def timed(self, tool: str, index: int) -> Timed | None:
        t = self.cells[tool][index].timed if tool in self.cells else None
        return t if isinstance(t, Timed) else None


def common_indices(results: Results, keys: Sequence[str]) -> list[int]:
    """Files every one of `keys` rendered: totals and ratios compare like with like."""
    return [i for i in range(len(results.files)) if all(results.timed(k, i) is not None for k in keys)]
