"""The command-line preamble of the bench reports (`python -m bench.quality`, `python -m bench.speed`): the corpus and
which of its files are tried, the options they share, the checks made before anything runs, the reference cache and
the renditions' folder, and writing the report."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.reference import DEFAULT_CACHE_DIR, References

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"

# The corpus folder also holds its documentation and checksums; everything else is tried and accounted for, so a
# new format dropped in is reported rather than silently left out.
_NOT_IMAGES = ("README", "SHA256SUMS", "LICENSE")
_TEXT_SUFFIXES = (".md", ".txt", ".json", ".sha256")

Log = Callable[[str], None]


def corpus_files(corpus: Path) -> list[Path]:
    return sorted(
        p
        for p in corpus.iterdir()
        if p.is_file()
        and not p.name.startswith(".")
        and not p.name.upper().startswith(_NOT_IMAGES)
        and p.suffix.lower() not in _TEXT_SUFFIXES
    )


def names(text: str) -> list[str]:
    """A comma-separated option (`--peers ours,sharp`), blanks dropped."""
    return [n.strip() for n in text.split(",") if n.strip()]


def shown(path: Path) -> str:
    """`path` as the report names it: relative to the repository where it can be."""
    try:
        return os.path.relpath(path, ROOT)
    except ValueError:
        return str(path)


def stderr_log(prog: str) -> Log:
    """Progress and refusals go to stderr, the report to stdout."""

    def log(message: str) -> None:
        print(f"{prog}: {message}", file=sys.stderr, flush=True)

    return log


def parser(module: str, doc: str | None, peers: Sequence[str], default_peers: Sequence[str]) -> argparse.ArgumentParser:
    """The parser of `python -m <module>`, described by the first paragraph of its docstring, with --corpus and
    --peers; the command adds its own options, then `add_report_options`."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=(doc or "").split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="folder of photos (default: %(default)s)")
    parser.add_argument(
        "--peers", default=",".join(default_peers), help=f"comma-separated, from {list(peers)} (default: %(default)s)"
    )
    return parser


def add_report_options(parser: argparse.ArgumentParser, default_out: Path, what: str) -> None:
    """Where the report and the renditions go, and the reference cache: the same for every bench tool."""
    parser.add_argument("--out", type=Path, default=default_out, help="markdown report path (default: %(default)s)")
    parser.add_argument("--outputs", type=Path, help=f"keep every {what}'s renditions here (default: a temp dir)")
    parser.add_argument(
        "--cache-dir", type=Path, default=DEFAULT_CACHE_DIR, help="reference cache (default: %(default)s)"
    )
    parser.add_argument("--no-cache", action="store_true", help="recompute every reference, store none")


@dataclass(frozen=True)
class Prepared:
    peers: list[str]
    """The peers asked for, in the order given."""
    files: list[Path]
    """The corpus files to try."""


def prepare(
    args: argparse.Namespace,
    known_peers: Sequence[str],
    log: Log,
    *,
    check_arguments: Callable[[], str | None] = lambda: None,
    unavailable: Mapping[str, Callable[[], str | None]],
    advice: str,
) -> Prepared | None:
    """The checks every report makes before it runs anything, or None after logging the first that fails (the
    command then exits 2). Arguments first, then the environment, so a typo is reported as a typo wherever a peer is
    missing: the --peers names, the command's own `check_arguments` (an error message or None), each chosen peer's
    `unavailable` reason (`advice` follows it, with `{peer}` for its name), then the corpus."""
    peers = names(args.peers)
    unknown = sorted(set(peers) - set(known_peers))
    if unknown or not peers:
        log(f"unknown peers {unknown}; choose from {list(known_peers)}")
        return None
    if (problem := check_arguments()) is not None:
        log(problem)
        return None
    for peer, reason_of in unavailable.items():
        if peer in peers and (reason := reason_of()) is not None:
            log(f"{peer} cannot run: {reason}. {advice.format(peer=peer)}")
            return None
    corpus: Path = args.corpus
    if not corpus.is_dir():
        log(f"no corpus folder at {corpus}")
        return None
    files = corpus_files(corpus)
    if not files:
        log(f"no files in {corpus}")
        return None
    return Prepared(peers, files)


@contextmanager
def workspace(args: argparse.Namespace, prefix: str) -> Iterator[tuple[References, Path]]:
    """The reference cache the options ask for, and the folder the renditions go to: --outputs, or a temporary one
    removed afterwards."""
    references = References(None if args.no_cache else args.cache_dir)
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield references, args.outputs if args.outputs is not None else Path(tmp)


def write_atomically(path: Path, text: str) -> None:
    """A reader of `path` sees the old report or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def publish(text: str, out: Path, log: Log, started: float) -> None:
    """The report to `out` and stdout; `started` is the command's time.monotonic() at its start."""
    write_atomically(out, text)
    print(text)
    log(f"wrote {shown(out)} in {time.monotonic() - started:.0f} s")
