"""`kiray-imaging batch SRC_DIR DEST_DIR`: every image under SRC_DIR rendered as the deployed functions render an
upload — thumbnail (JPEG, and its @2x file) and medium (JPEG + WebP) — into DEST_DIR laid out like the bucket's
``renditions/`` (``DEST_DIR/thumbnail/l42/front.jpg/<token>.jpg``, output_keys.py), by a bounded pool of threads,
with a progress bar and a summary.

Exit status: 0 when every file rendered, 1 when any failed (each failure is one ``error:`` line on stderr), 2 for
bad arguments.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from kiray_imaging._core import ImageError
from kiray_imaging.files import file_mode, write_atomically
from kiray_imaging.output_keys import rendition_key, scale_variant, version_token
from kiray_imaging.presets import DEPLOYED_FORMATS
from kiray_imaging.progress import Progress, add_workers_option, bounded_map
from kiray_imaging.rendering import render_upload

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".webp", ".gif", ".mpo", ".avif"}
    # Images the core refuses: taken, so that the summary counts them (UnsupportedFormatError) instead of them
    # silently missing from DEST_DIR.
    | {".heic", ".heif", ".tif", ".tiff", ".bmp"}
)
"""Which files are images, by name; the format itself is always sniffed from the bytes."""

EXIT_FAILURES = 1


@dataclass(frozen=True)
class FileResult:
    path: Path
    """Relative to SRC_DIR."""
    input_bytes: int = 0
    output_bytes: int = 0
    outputs: int = 0
    error_class: str = ""
    message: str = ""


@dataclass
class Summary:
    files: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    input_bytes: int = 0
    output_bytes: int = 0
    outputs: int = 0
    seconds: float = 0.0
    workers: int = 1

    def add(self, r: FileResult) -> None:
        self.files += 1
        self.input_bytes += r.input_bytes
        self.output_bytes += r.output_bytes
        self.outputs += r.outputs
        if r.error_class:
            self.failed[r.error_class] += 1

    def lines(self) -> list[str]:
        failed = sum(self.failed.values())
        by_class = ", ".join(f"{name} {n}" for name, n in sorted(self.failed.items(), key=lambda kv: (-kv[1], kv[0])))
        rate = self.files / self.seconds if self.seconds > 0 else 0.0
        return [
            f"files: {self.files}, rendered {self.files - failed}, failed {failed}",
            f"failures: {by_class or 'none'}",
            f"bytes: in {self.input_bytes} ({_mib(self.input_bytes)}), out {self.output_bytes} "
            f"({_mib(self.output_bytes)}) in {self.outputs} renditions",
            f"time: {self.seconds:.2f} s wall, {self.workers} workers, {rate:.1f} files/s",
        ]


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def find_images(src: Path, dest: Path) -> list[Path]:
    """Image files under ``src``, sorted; hidden files and folders, and ``dest`` when it lies inside ``src`` (a
    second run would render the renditions), are left out."""
    dest = dest.resolve()
    found = []
    for root, dirs, files in os.walk(src):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (here / d).resolve() != dest)
        found += [here / f for f in files if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_SUFFIXES]
    return sorted(found)


def render_file(path: Path, src: Path, dest: Path, mode: int) -> FileResult:
    """Every deployed rendition of one file. A bad image fails the file (once, whatever the rendition)."""
    relative = path.relative_to(src)
    try:
        data = path.read_bytes()
    except OSError as e:
        return FileResult(relative, error_class=type(e).__name__, message=str(e))
    written = out_bytes = 0
    # The token S3 would give these bytes uploaded in one part (the MD5 is their ETag): the bucket's layout, locally.
    token = version_token(hashlib.md5(data, usedforsecurity=False).hexdigest())
    try:
        for preset, formats in DEPLOYED_FORMATS.items():
            for (scale, fmt), rendition in render_upload(data, preset, formats).files.items():
                key = rendition_key(relative.as_posix(), source_prefix="", dest_prefix="", rendition=preset, fmt=fmt,
                                    token=token, variant=scale_variant(scale))  # fmt: skip
                out = dest / key
                out.parent.mkdir(parents=True, exist_ok=True)
                write_atomically(out, rendition.data, mode)
                written += 1
                out_bytes += len(rendition.data)
    except (ImageError, OSError, ValueError) as e:
        return FileResult(relative, len(data), out_bytes, written, type(e).__name__, str(e))
    return FileResult(relative, len(data), out_bytes, written)


def run(
    src: Path, dest: Path, workers: int, progress_stream: TextIO | None = None, shown_as: Path | None = None
) -> tuple[Summary, list[FileResult]]:
    """Renders every image under ``src`` into ``dest`` (both absolute); failures are reported on
    ``progress_stream`` (stderr) as ``error: <shown_as>/<file>: <ErrorClass>: <reason>`` as they happen."""
    started = time.perf_counter()
    files = find_images(src, dest)
    mode = file_mode()  # once, before the threads start
    summary, failures = Summary(workers=workers), []
    progress = Progress(len(files), "files", progress_stream)
    try:
        for _, result in bounded_map(lambda p: render_file(p, src, dest, mode), files, workers):
            summary.add(result)
            if result.error_class:
                failures.append(result)
                progress.note(f"error: {(shown_as or src) / result.path}: {result.error_class}: {result.message}")
            progress.advance()
    finally:
        progress.close()
    summary.seconds = time.perf_counter() - started
    return summary, failures


def _main(args: argparse.Namespace) -> int:
    src, dest = args.src, args.dest
    if not src.is_dir():
        print(f"error: NotADirectoryError: SRC_DIR {src} is not a directory", file=sys.stderr)
        return 2
    if dest.exists() and not dest.is_dir():
        print(f"error: NotADirectoryError: DEST_DIR {dest} is not a directory", file=sys.stderr)
        return 2
    dest.mkdir(parents=True, exist_ok=True)
    summary, failures = run(src.resolve(), dest.resolve(), args.workers, shown_as=src)
    for line in summary.lines():
        print(line)
    return EXIT_FAILURES if failures else 0


def register(commands: Any) -> None:
    """Adds the ``batch`` subcommand to the CLI's subparsers."""
    p: argparse.ArgumentParser = commands.add_parser(
        "batch",
        help="render every image in a folder (recursively) as thumbnail + medium, in parallel",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("src", type=Path, metavar="SRC_DIR")
    p.add_argument("dest", type=Path, metavar="DEST_DIR", help="created if missing; renditions are overwritten")
    add_workers_option(p)
    p.set_defaults(run=_main)
