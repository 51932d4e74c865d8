"""The speed benchmark: our core and its peers on every corpus photo, in one run on one machine.

    python -m bench.speed [--corpus DIR] [--peers ours,pillow,pyvips,sharp] [--quick] [--out FILE]

Tools: ours (kiray_imaging.render), Pillow with draft() (libjpeg-turbo DCT scaling), pyvips' thumbnail and sharp,
the last two both single-threaded (VIPS_CONCURRENCY=1, sharp.concurrency(1)) and with their defaults. For each
photo and tool:

- median ms per rendition (each preset from its own decode, as the two Lambda functions do), per pair from own
  decodes, and per pair from one decode where the tool's API allows it; timed inside one long-lived process per
  tool with the tool's native API (bench/speed_runner.py, bench/peers/sharp_bench.mjs), after warm-up runs, so
  interpreter start-up is not measured;
- peak RSS of a fresh process that renders both presets of that photo once;
- output bytes, and SSIM against the common full-decode reference (bench/reference.py, cached) so that speed is
  never bought with blur.

Then the floor of a decode alone (``djpeg -scale 1/8`` on baseline JPEGs), the cold start of our package and of a
handler module, the layer zip size, and every target's ratio with PASS/MISS. The markdown goes to
bench/results/bench.md and stdout; progress to stderr. It is a report: it exits 0 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from bench import cli
from bench.measure import run
from bench.model import FULL, QUICK, Runs
from bench.peers.ours import Ours
from bench.peers.sharp import unavailable_reason as sharp_unavailable_reason
from bench.speed_report import report
from bench.tools import PEER_NAMES, TOOLS, pyvips_unavailable_reason
from kiray_imaging.presets import PRESETS

DEFAULT_OUT = cli.ROOT / "bench" / "results" / "bench.md"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = cli.parser("bench.speed", __doc__, PEER_NAMES, PEER_NAMES)
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK.warmup} warm-up + {QUICK.runs} timed runs per figure (default {FULL.warmup} + {FULL.runs})",
    )
    parser.add_argument("--runs", type=int, help="timed runs per figure (overrides the default and --quick)")
    parser.add_argument("--warmup", type=int, help="warm-up runs per figure (at least 1)")
    cli.add_report_options(parser, DEFAULT_OUT, "tool")
    return parser.parse_args(argv)


def runs_of(args: argparse.Namespace) -> Runs:
    base = QUICK if args.quick else FULL
    return Runs(
        warmup=base.warmup if args.warmup is None else args.warmup,
        runs=base.runs if args.runs is None else args.runs,
        cold_runs=base.cold_runs if args.runs is None else max(args.runs, 1),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.monotonic()
    log = cli.stderr_log("bench")
    runs = runs_of(args)
    prepared = cli.prepare(
        args,
        PEER_NAMES,
        log,
        check_arguments=lambda: "expected --warmup ≥ 1 and --runs ≥ 1" if runs.warmup < 1 or runs.runs < 1 else None,
        unavailable={"sharp": sharp_unavailable_reason, "pyvips": pyvips_unavailable_reason},
        advice="Run `make bench`, or leave {peer} out of --peers",
    )
    if prepared is None:
        return 2

    tools = [tool for name in PEER_NAMES if name in prepared.peers for tool in TOOLS[name]]
    presets = list(PRESETS.values())
    versions = Ours().versions() if "ours" in prepared.peers else {}
    with cli.workspace(args, "kiray-bench-") as (references, outputs):
        results = run(prepared.files, presets, tools, runs, references, outputs, log)
    results.versions = {**versions, **{k: v for k, v in results.versions.items() if k != "kiray_imaging"}}
    results.seconds = time.monotonic() - start
    cli.publish(report(results, args.corpus), args.out, log, start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
