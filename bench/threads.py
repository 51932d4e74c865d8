"""Do two renders in two threads scale? The core releases the GIL for the whole render, so a worker pool (the batch
CLI, a backfill with --local) should get close to twice the throughput of one thread on two cores.

    python -m bench.threads [--corpus DIR] [--rounds N] [--out FILE]

Each corpus photo is rendered with both presets, ``rounds`` times: once by one thread, then the same work shared by
two threads, then by as many threads as there are cores (when more than two). Reported: images per second and the
speed-up over one thread, with the machine's core count, because the ceiling is the cores, not the code.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import kiray_imaging
from bench.cli import DEFAULT_CORPUS
from kiray_imaging.presets import PRESETS

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "threads.md"
SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif")
REPEATS = 3


def photos(corpus: Path) -> list[bytes]:
    found = []
    for path in sorted(corpus.iterdir()):
        if path.suffix.lower() in SUFFIXES:
            data = path.read_bytes()
            try:
                kiray_imaging.render(data, "thumbnail")
            except kiray_imaging.ImageError:
                continue
            found.append(data)
    return found


def throughput(work: list[bytes], threads: int) -> float:
    """Images (both presets each) per second, `threads` at a time."""

    def one(data: bytes) -> None:
        for preset in PRESETS:
            kiray_imaging.render(data, preset)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, work))
    return len(work) / (time.perf_counter() - started)


def report(images: list[bytes], rounds: int) -> str:
    cores = os.cpu_count() or 1
    work = images * rounds
    throughput(images, 1)  # warm-up: page in the core and the photos
    counts = sorted({1, 2, cores})
    # Thread counts take turns, several times, and each rate is the median: a machine that speeds up or slows down
    # during the run then moves every count alike instead of favouring whichever went last.
    samples: dict[int, list[float]] = {n: [] for n in counts}
    for _ in range(REPEATS):
        for n in counts:
            samples[n].append(throughput(work, n))
    rates = {n: statistics.median(samples[n]) for n in counts}
    lines = [
        "# Two renders in two threads",
        "",
        f"{len(images)} corpus photos × both presets × {rounds} rounds ({len(work)} images per run), each thread"
        f" count run {REPEATS} times in turn, median; {cores} cores; core {kiray_imaging.__version__}, SIMD"
        f" {kiray_imaging.simd_level()}.",
        "",
        "| threads | images/s | speed-up over 1 thread |",
        "|---:|---:|---:|",
    ]
    lines += [f"| {n} | {rates[n]:.2f} | {rates[n] / rates[1]:.2f}× |" for n in counts]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.threads", description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="photos (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="times each photo is rendered per run")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown report (default: %(default)s)")
    args = parser.parse_args(argv)
    images = photos(args.corpus)
    if not images:
        print(f"threads: no photos the core reads in {args.corpus}", file=sys.stderr)
        return 1
    text = report(images, args.rounds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
