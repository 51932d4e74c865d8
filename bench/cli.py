"""Command-line pieces shared by `python -m bench.quality` and `python -m bench.speed`."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.reference import DEFAULT_CACHE_DIR


def names(text: str) -> list[str]:
    """A comma-separated option (`--peers ours,sharp`), blanks dropped."""
    return [n.strip() for n in text.split(",") if n.strip()]


def add_report_options(parser: argparse.ArgumentParser, default_out: Path, what: str) -> None:
    """Where the report and the renditions go, and the reference cache: the same for every bench tool."""
    parser.add_argument("--out", type=Path, default=default_out, help="markdown report path (default: %(default)s)")
    parser.add_argument("--outputs", type=Path, help=f"keep every {what}'s renditions here (default: a temp dir)")
    parser.add_argument(
        "--cache-dir", type=Path, default=DEFAULT_CACHE_DIR, help="reference cache (default: %(default)s)"
    )
    parser.add_argument("--no-cache", action="store_true", help="recompute every reference, store none")
