"""The image-fidelity report: every corpus photo, every preset, our core and sharp, each scored against a reference.

    python -m bench.quality [--corpus DIR] [--peers ours,sharp] [--presets thumbnail,thumbnail@2x,medium] [--strict]

For each photo and preset, each peer's JPEG is decoded with Pillow and compared with `bench.reference` at the
JPEG's own size: SSIM on luma and PSNR on RGB (`bench.metrics`), next to its size in bytes. The verdict applies the
goal "our SSIM ≥ sharp's, and our bytes ≤ sharp's at that SSIM", with the tolerances stated in the report header.
The markdown table goes to bench/results/quality.md and to stdout; progress goes to stderr.

It is a report: it exits 0 even when a row misses the goal, unless --strict is given.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Union

import numpy as np
import PIL
from PIL import features

from bench import cli
from bench.machine import cpu_model
from bench.peers import Job, Outcome, Peer, Skipped
from bench.peers.ours import HIGH_DENSITY, Ours
from bench.peers.sharp import Sharp, unavailable_reason
from bench.reference import ReferenceError, References, RGBArray
from bench.scoring import BYTES_SLACK, SSIM_EPSILON, Score, score
from kiray_imaging.presets import PRESETS, Preset

DEFAULT_OUT = cli.ROOT / "bench" / "results" / "quality.md"

OURS = "ours"
BASELINE = "sharp"
PEERS: dict[str, Callable[[], Peer]] = {"ours": Ours, "sharp": Sharp}


Result = Union[Score, Skipped]


def with_high_density(presets: dict[str, Preset]) -> dict[str, Preset]:
    """`presets` and, for each that writes an @2x file, that file as a job of its own ("thumbnail@2x", twice the box,
    at the preset's quality): sharp renders it from its own decode, ours as the function makes it."""
    out = dict(presets)
    for p in presets.values():
        if 2 in p.scales:
            name = p.name + HIGH_DENSITY
            out[name] = replace(p, name=name, width=p.width * 2, height=p.height * 2, scales=(1,), facts=False)
    return out


JOBS = with_high_density(PRESETS)


@dataclass(frozen=True)
class IsoPoint:
    """Our rendition re-encoded at the lowest JPEG quality whose SSIM reaches sharp's: bytes at equal fidelity."""

    quality: int
    bytes: int
    ssim: float
    reached: bool
    """False when even quality 100 stays below the target (then this is the quality-100 point)."""


def lowest_quality_reaching(
    target: float, measure: Callable[[int], tuple[float, int]], known: dict[int, tuple[float, int]] | None = None
) -> IsoPoint:
    """Bisection over JPEG quality 1..100 for the lowest quality whose (SSIM, bytes) = measure(q) has SSIM ≥ target.

    Assumes SSIM rises with quality, true of one encoder up to rounding noise; `known` seeds points already
    measured (the preset's own quality), which halves the range before the first new encode.
    """
    seen = dict(known or {})

    def at(q: int) -> tuple[float, int]:
        if q not in seen:
            seen[q] = measure(q)
        return seen[q]

    lo, hi = 1, 100
    for q in sorted(seen):
        if seen[q][0] >= target:
            hi = min(hi, q)
        else:
            lo = max(lo, q + 1)
    if lo > hi or at(hi)[0] < target:
        ssim, size = at(100)
        if ssim < target:
            return IsoPoint(quality=100, bytes=size, ssim=ssim, reached=False)
        lo, hi = 1, 100
    while lo < hi:
        mid = (lo + hi) // 2
        if at(mid)[0] >= target:
            hi = mid
        else:
            lo = mid + 1
    ssim, size = at(hi)
    return IsoPoint(quality=hi, bytes=size, ssim=ssim, reached=True)


@dataclass
class Row:
    file: str
    preset: str
    results: dict[str, Result] = field(default_factory=dict)
    reference_error: str | None = None
    iso: IsoPoint | None = None
    verdict: str = ""
    miss: bool = False


def judge(row: Row) -> tuple[str, bool]:
    """The verdict for one row and whether it misses the goal (only a miss fails --strict)."""
    ours = row.results.get(OURS)
    base = row.results.get(BASELINE)
    if ours is None or base is None:
        return "—", False
    if row.reference_error is not None and not (isinstance(ours, Skipped) and isinstance(base, Skipped)):
        return "not scored: no reference", False
    if isinstance(ours, Skipped):
        if isinstance(base, Skipped):
            return "not compared: neither reads it", False
        if ours.not_made:
            return f"not compared: {ours.reason}", False
        if ours.unsupported:
            return "not compared: format outside our scope", False
        return "MISS: ours failed where sharp rendered", True
    if isinstance(base, Skipped):
        return "not compared: sharp cannot read it", False
    misses = []
    if ours.ssim < base.ssim - SSIM_EPSILON:
        misses.append("SSIM")
    if ours.bytes > base.bytes * BYTES_SLACK:
        misses.append("bytes")
    if misses:
        return "MISS: " + ", ".join(misses), True
    return "pass", False


def evaluate(
    files: Sequence[Path],
    presets: Sequence[Preset],
    peers: Sequence[Peer],
    references: References,
    outputs: Path,
    log: Callable[[str], None] = lambda _: None,
    *,
    iso: bool = True,
) -> list[Row]:
    jobs_by_peer: dict[str, list[Job]] = {
        peer.name: [Job(f, p, outputs / peer.name / f"{f.name}.{p.name}.jpg") for f in files for p in presets]
        for peer in peers
    }
    outcomes: dict[str, list[Outcome]] = {}
    for peer in peers:
        start = time.monotonic()
        outcomes[peer.name] = peer.render_all(jobs_by_peer[peer.name])
        log(f"{peer.name}: rendered {len(files) * len(presets)} jobs in {time.monotonic() - start:.1f} s")

    rows: list[Row] = []
    index = 0
    for f in files:
        data = f.read_bytes()
        log(f"scoring {f.name}")
        for p in presets:
            row = Row(file=f.name, preset=p.name)
            for peer in peers:
                outcome = outcomes[peer.name][index]
                if isinstance(outcome, Skipped):
                    row.results[peer.name] = outcome
                    continue
                try:
                    row.results[peer.name] = score(outcome, _reference_of(references, data, p))
                except ReferenceError as e:
                    row.reference_error = str(e)
            ours, base = row.results.get(OURS), row.results.get(BASELINE)
            ours_peer = next((peer for peer in peers if isinstance(peer, Ours)), None)
            if iso and ours_peer is not None and isinstance(ours, Score) and isinstance(base, Score):
                row.iso = iso_point(ours_peer, f, p, ours, base.ssim, _reference_of(references, data, p), outputs)
            row.verdict, row.miss = judge(row)
            rows.append(row)
            index += 1
    return rows


def _reference_of(references: References, data: bytes, preset: Preset) -> Callable[[int, int], RGBArray]:
    return lambda width, height: references.get(data, preset, width, height)


def iso_point(
    ours: Ours,
    source: Path,
    preset: Preset,
    at_preset: Score,
    target: float,
    reference: Callable[[int, int], RGBArray],
    outputs: Path,
) -> IsoPoint:
    """Where our encoder lands at sharp's SSIM: the preset is only re-encoded at other qualities here, to measure,
    never changed."""

    def measure(quality: int) -> tuple[float, int]:
        job = Job(
            source,
            replace(preset, quality=quality),
            outputs / "ours-iso" / f"{source.name}.{preset.name}.q{quality}.jpg",
        )
        outcome = ours.render(job)
        if isinstance(outcome, Skipped):
            raise RuntimeError(
                f"ours rendered {source.name} at the preset's quality but not at {quality}: {outcome.reason}"
            )
        s = score(outcome, reference)
        return s.ssim, s.bytes

    return lowest_quality_reaching(target, measure, {preset.quality: (at_preset.ssim, at_preset.bytes)})


def environment(peers: Sequence[Peer]) -> str:
    versions: dict[str, str] = {}
    for peer in peers:
        versions.update(peer.versions())
    versions["Pillow"] = f"{PIL.__version__} (LittleCMS {features.version('littlecms2')})"
    versions["numpy"] = np.__version__
    versions["Python"] = platform.python_version()
    return ", ".join(f"{name} {version}" for name, version in versions.items())


def _fmt_ssim(value: float) -> str:
    return f"{value:.4f}"


def _fmt_psnr(value: float) -> str:
    return "∞" if value == float("inf") else f"{value:.2f}"


def table(rows: Sequence[Row], peer_names: Sequence[str]) -> str:
    compare = OURS in peer_names and BASELINE in peer_names
    head = ["file", "preset"]
    for name in peer_names:
        head += [f"{name} size", f"{name} bytes", f"{name} SSIM", f"{name} PSNR dB"]
    iso = compare and any(row.iso is not None for row in rows)
    if compare:
        head += ["ΔSSIM", "bytes ratio"]
        if iso:
            head += ["ours q @ sharp SSIM", "bytes ratio @ sharp SSIM"]
        head.append("verdict")
    align = ["---", "---"] + ["---:"] * (4 * len(peer_names))
    if compare:
        align += ["---:"] * (4 if iso else 2) + ["---"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    for row in rows:
        cells = [f"`{row.file}`", row.preset]
        for name in peer_names:
            result = row.results.get(name)
            if isinstance(result, Score):
                cells += [
                    f"{result.width}×{result.height}",
                    str(result.bytes),
                    _fmt_ssim(result.ssim),
                    _fmt_psnr(result.psnr),
                ]
            else:
                cells += ["—", "—", "—", "—"]
        if compare:
            ours, base = row.results.get(OURS), row.results.get(BASELINE)
            if isinstance(ours, Score) and isinstance(base, Score):
                cells += [f"{ours.ssim - base.ssim:+.4f}", f"{ours.bytes / base.bytes:.2f}"]
            else:
                cells += ["—", "—"]
            if iso:
                if row.iso is None or not isinstance(base, Score):
                    cells += ["—", "—"]
                elif row.iso.reached:
                    cells += [f"q{row.iso.quality}", f"{row.iso.bytes / base.bytes:.2f}"]
                else:
                    cells += [f"> q100 ({_fmt_ssim(row.iso.ssim)})", "—"]
            cells.append(f"**{row.verdict}**" if row.miss else row.verdict)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(
    rows: Sequence[Row],
    peer_names: Sequence[str],
    *,
    environment_line: str,
    corpus: Path,
    notes: dict[str, tuple[str, ...]],
    seconds: float,
) -> str:
    compared = [
        r for r in rows if isinstance(r.results.get(OURS), Score) and isinstance(r.results.get(BASELINE), Score)
    ]
    passed = [r for r in compared if not r.miss]
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        "# Image fidelity: kiray-imaging vs sharp",
        "",
        f"Generated {generated} by `make quality` (`python -m bench.quality`) in {seconds:.0f} s on {cpu_model()}"
        f" ({os.cpu_count()} cores).",
        f"Versions: {environment_line}.",
        f"Corpus: `{cli.shown(corpus)}`, {len({r.file for r in rows})} files × {len({r.preset for r in rows})}"
        " presets.",
        "",
        "Each rendition is decoded with Pillow and compared with a reference at its own size: full decode, EXIF"
        " orientation, embedded ICC profile → sRGB (LittleCMS), alpha flattened onto white, 16-bit kept, float"
        " Lanczos per channel, no quantisation (`bench/reference.py`). SSIM: Wang et al. 2004 (Gaussian 11×11,"
        " σ 1.5, K1 0.01, K2 0.03) on BT.601 luma; PSNR over RGB.",
        "",
        f"Goal on every file: our SSIM ≥ sharp's and our bytes ≤ sharp's at that SSIM. A row **passes** when"
        f" ours SSIM ≥ sharp SSIM − {SSIM_EPSILON} (a tolerance below encoder rounding noise) and ours bytes ≤"
        f" sharp bytes × {BYTES_SLACK} (bytes within 3 % count as equal). ΔSSIM = ours − sharp; bytes ratio ="
        " ours / sharp.",
        "",
        "The JPEG quality numbers of two encoders are different scales, so equal presets need not mean equal fidelity."
        " The last two numeric columns re-encode ours (same preset, other JPEG qualities, for measurement only) at"
        " the lowest quality whose SSIM reaches sharp's, and give our bytes there: the iso-SSIM size comparison.",
        "",
    ]
    if compared:
        out += [
            f"**{len(passed)} of {len(compared)} compared rows pass**; {len(rows) - len(compared)} not compared.",
            "",
        ]
    out += [table(rows, peer_names), ""]

    skipped = [
        (row, name, result) for row in rows for name, result in row.results.items() if isinstance(result, Skipped)
    ]
    unreferenced = [row for row in rows if row.reference_error is not None]
    if skipped or unreferenced:
        out += ["## Not rendered or not scored", ""]
        seen: set[tuple[str, str, str]] = set()
        for row, name, result in skipped:
            key = (row.file, name, result.reason)
            if key not in seen:
                seen.add(key)
                kind = "makes none" if result.not_made else "declines the format" if result.unsupported else "failed"
                out.append(f"- `{row.file}` — {name} {kind}: {result.reason}")
        for row in unreferenced:
            key = (row.file, "reference", row.reference_error or "")
            if key not in seen:
                seen.add(key)
                out.append(f"- `{row.file}` — no reference: {row.reference_error}")
        out.append("")
    noted = {name: n for name, n in notes.items() if n}
    if noted:
        out += ["## Reference notes", ""]
        out += [f"- `{name}`: {'; '.join(n)}" for name, n in sorted(noted.items())]
        out.append("")
    return "\n".join(out)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = cli.parser("bench.quality", __doc__, sorted(PEERS), (OURS, BASELINE))
    parser.add_argument("--presets", default=",".join(JOBS), help="comma-separated preset names (default: %(default)s)")
    cli.add_report_options(parser, DEFAULT_OUT, "peer")
    parser.add_argument("--no-iso", action="store_true", help="skip the iso-SSIM re-encodes of our renditions")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any row misses the goal")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.monotonic()
    log = cli.stderr_log("quality")
    preset_names = cli.names(args.presets)

    def check_presets() -> str | None:
        if not preset_names or any(n not in JOBS for n in preset_names):
            return f"expected presets from {sorted(JOBS)}, got {args.presets!r}"
        return None

    prepared = cli.prepare(
        args,
        sorted(PEERS),
        log,
        check_arguments=check_presets,
        unavailable={BASELINE: unavailable_reason},
        advice="Run `make quality`, or pass --peers ours",
    )
    if prepared is None:
        return 2
    peers = [PEERS[name]() for name in prepared.peers]
    presets = [JOBS[name] for name in preset_names]
    with cli.workspace(args, "kiray-quality-") as (references, outputs):
        rows = evaluate(prepared.files, presets, peers, references, outputs, log, iso=not args.no_iso)
        notes = {}
        for f in prepared.files:
            try:
                notes[f.name] = references.notes(f.read_bytes())
            except ReferenceError:
                notes[f.name] = ()
    text = report(
        rows,
        prepared.peers,
        environment_line=environment(peers),
        corpus=args.corpus,
        notes=notes,
        seconds=time.monotonic() - start,
    )
    cli.publish(text, args.out, log, start)
    misses = [r for r in rows if r.miss]
    if misses and args.strict:
        log(f"{len(misses)} rows miss the goal (--strict)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
