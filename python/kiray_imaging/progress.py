"""What the `batch` and `backfill --local` commands share: a bounded pool of worker threads and a one-line progress
bar on stderr.

Threads, not processes: the core releases the GIL for the whole decode-resize-encode, and S3 calls wait on the
network, so threads use every core without pickling images between processes.

The progress bar is a dozen lines of stdlib rather than tqdm: this package ships in the Lambda layer, where a
dependency costs bytes and a supply-chain review for something Lambda never draws. It draws only when stderr is a
terminal, so logs, pipes and CI output stay clean.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TextIO, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_REDRAW_SECONDS = 0.1
_BAR_WIDTH = 30


def default_workers() -> int:
    """One thread per core: rendering is CPU-bound once the bytes are in."""
    return max(1, os.cpu_count() or 1)


def add_workers_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--workers N``, the size of the pool `bounded_map` runs, for every command that renders many images."""
    parser.add_argument("--workers", type=_positive, default=default_workers(), help="threads (default: one per core)")


def _positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected ≥ 1, got {n}")
    return n


def bounded_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[tuple[T, R]]:
    """``(item, fn(item))`` in completion order, running ``workers`` at a time. At most ``2 × workers`` items are
    in flight, so a long input (a bucket listing) is never all submitted, and all held in memory, at once. An
    exception from ``fn`` propagates: ``fn`` is expected to turn per-item failures into results."""
    if workers < 1:
        raise ValueError(f"expected at least 1 worker, got {workers}")
    pending: dict[Future[R], T] = {}
    source = iter(items)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kiray") as pool:

        def submit(count: int) -> None:
            for item in itertools.islice(source, count):
                pending[pool.submit(fn, item)] = item

        submit(2 * workers)
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                item = pending.pop(future)
                submit(1)
                yield item, future.result()


class Progress:
    """``[#####-----]  12/40 files  3.1/s  0:04 left`` on one line of ``stream`` (stderr), redrawn at most every
    0.1 s; nothing at all unless ``stream`` is a terminal. Call from one thread only."""

    def __init__(self, total: int, unit: str, stream: TextIO | None = None) -> None:
        self.total, self.unit, self.done = total, unit, 0
        self.stream = sys.stderr if stream is None else stream
        self.enabled = self.stream.isatty()
        self.started = time.monotonic()
        self._drawn_at = 0.0

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and (now - self._drawn_at >= _REDRAW_SECONDS or self.done >= self.total):
            self._drawn_at = now
            self.stream.write("\r" + self.line(now))
            self.stream.flush()

    def note(self, text: str) -> None:
        """A line of its own (a failure, say) above the bar; the bar is redrawn on the next ``advance``."""
        self.stream.write(("\r\x1b[K" if self.enabled else "") + text + "\n")
        self.stream.flush()
        self._drawn_at = 0.0

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        fraction = self.done / self.total if self.total else 1.0
        filled = int(_BAR_WIDTH * fraction)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        return (
            f"[{'#' * filled}{'-' * (_BAR_WIDTH - filled)}] {self.done:>{len(str(self.total))}}/{self.total} "
            f"{self.unit}  {rate:.1f}/s  {_clock(left)} left "
        )

    def close(self) -> None:
        if self.enabled and self.done:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"
