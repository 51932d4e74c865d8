"""The floor of a decode alone: libjpeg-turbo's own ``djpeg -scale 1/N``, timed as a whole process."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image


@dataclass(frozen=True)
class Djpeg:
    path: str
    version: str
    spawn_ms: float
    """Median wall time of ``djpeg -version``: starting the process, no decoding."""


def find_djpeg(warmup: int, runs: int) -> Djpeg | None:
    path = shutil.which("djpeg")
    if path is None:
        return None
    probe = subprocess.run([path, "-version"], capture_output=True, text=True, check=False, timeout=60)
    version = (probe.stderr.strip() or probe.stdout.strip()).splitlines()
    return Djpeg(path, version[0] if version else "unknown", median_wall([path, "-version"], warmup, runs))


def wall_ms(command: Sequence[str]) -> float:
    """Wall ms of running `command` to completion, process start included."""
    start = time.perf_counter_ns()
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return (time.perf_counter_ns() - start) / 1e6


def median_wall(command: Sequence[str], warmup: int, runs: int) -> float:
    for _ in range(warmup):
        wall_ms(command)
    return float(statistics.median(wall_ms(command) for _ in range(runs)))


def is_baseline_jpeg(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            return image.format == "JPEG" and not image.info.get("progressive")
    except (OSError, ValueError):
        return False
