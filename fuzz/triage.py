"""After a fuzzing run: which of the inputs it found are the hardest for the shipping core?

    python -m fuzz.triage target/fuzz/corpus [--keep N --into tests/fuzz/regressions]

Renders every corpus file once with both presets (in this process: the corpus is thousands of small files) and
ranks them by render time. `--into` copies the N slowest there, named by content: `make test` replays that folder in
the hostile-input sandbox (tests/fuzz/test_regressions.py), so what the fuzzer found hardest stays within the
budget of a hostile upload — as do crashes, which belong in the same folder.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import kiray_imaging


def render_ms(data: bytes) -> tuple[float, str]:
    """Milliseconds for both presets, and what came out (``ok`` or the error class)."""
    started = time.perf_counter()
    outcome = "ok"
    for preset in kiray_imaging.PRESETS:
        try:
            kiray_imaging.render(data, preset)
        except kiray_imaging.ImageError as e:
            outcome = type(e).__name__
    return (time.perf_counter() - started) * 1000, outcome


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz.triage", description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--keep", type=int, default=10, help="how many of the slowest to list or keep")
    parser.add_argument("--into", type=Path, help="copy the slowest here (regression inputs)")
    args = parser.parse_args(argv)
    files = sorted(p for p in args.corpus.iterdir() if p.is_file())
    if not files:
        print(f"triage: no files in {args.corpus}", file=sys.stderr)
        return 1
    timed = sorted(((*render_ms(p.read_bytes()), p) for p in files), key=lambda t: t[0], reverse=True)
    outcomes: dict[str, int] = {}
    for _, outcome, _ in timed:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    print(f"triage: {len(files)} inputs; outcomes " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    for ms, outcome, path in timed[: args.keep]:
        print(f"{ms:8.1f} ms  {outcome:24s} {path.stat().st_size:7d} B  {path.name}")
        if args.into:
            args.into.mkdir(parents=True, exist_ok=True)
            data = path.read_bytes()
            shutil.copyfile(path, args.into / f"slow-{hashlib.sha1(data).hexdigest()[:16]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
