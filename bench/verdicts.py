"""The targets of the speed benchmark (issue 4) and each one's verdict, PASS or MISS, from one run's `Results`."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from bench import cli
from bench.model import THUMBNAIL, Results, Timed, common_indices
from bench.scoring import BYTES_SLACK, SSIM_EPSILON

# The targets (issue 4), each measured in this run.
TIME_VS_SHARP = 0.5
RSS_VS_SHARP = 0.5
DJPEG_FACTOR = 1.2
COLD_START_MS = 100.0
LAYER_BYTES = 3 * 1024 * 1024  # "3 MB" as the project counts it: MiB, like the README's layer size


def as_ratio(value: float) -> str:
    return f"{value:.2f}×"


@dataclass(frozen=True)
class Verdict:
    target: str
    measured: str
    verdict: str


def _pass_by(ratio: float, limit: float) -> str:
    """PASS/MISS of `ratio` ≤ `limit`, with the margin as a share of the limit."""
    if ratio <= limit:
        return f"PASS ({(1 - ratio / limit) * 100:.0f} % to spare)"
    return f"**MISS** (over by {(ratio / limit - 1) * 100:.0f} %)"


def _spread(pairs: Sequence[tuple[str, float]]) -> str:
    return f"per file {as_ratio(min(r for _, r in pairs))}–{as_ratio(max(r for _, r in pairs))}"


def _each(pairs: Sequence[tuple[str, float]], limit: float, unit: str = "files") -> str:
    """The per-item half of a verdict: every item within `limit`, or how many miss and the worst one."""
    missing = [(name, r) for name, r in pairs if r > limit]
    worst_name, worst = max(pairs, key=lambda kv: kv[1])
    if not missing:
        return f"PASS on all {len(pairs)} {unit} (worst `{worst_name}` {as_ratio(worst)})"
    return (
        f"**MISS** on {len(missing)} of {len(pairs)} {unit}"
        f" (worst `{worst_name}` {as_ratio(worst)}, over by {(worst / limit - 1) * 100:.0f} %)"
    )


def _total_and_own(results: Results, key: str) -> tuple[list[tuple[str, float]], float, int, float]:
    """Per-file and total ratio ours ÷ `key` of the time for both renditions from own decodes (medians), and the
    total ratio of the fastest pairs."""
    idx = common_indices(results, ["ours", key])
    if not idx:
        return [], 0.0, 0, 0.0
    pairs = [(results.files[i].name, _own(results, "ours", i) / _own(results, key, i)) for i in idx]
    total = sum(_own(results, "ours", i) for i in idx) / sum(_own(results, key, i) for i in idx)
    fastest = sum(_timed(results, "ours", i).own_fastest_ms for i in idx) / sum(
        _timed(results, key, i).own_fastest_ms for i in idx
    )
    return pairs, total, len(idx), fastest


def verdicts(results: Results) -> list[Verdict]:
    out: list[Verdict] = []
    if "ours" not in results.cells:
        return out
    labels = {t.key: t.label for t in results.tools}
    sharps: list[str] = [k for k in ("sharp-1t", "sharp") if k in results.cells]

    for key in sharps:
        pairs, total, n, fastest = _total_and_own(results, key)
        if n:
            out.append(
                Verdict(
                    f"time per image, both renditions from own decodes: ours ≤ {TIME_VS_SHARP}× {labels[key]}",
                    f"total {as_ratio(total)} over {n} files (fastest pairs: {as_ratio(fastest)}); {_spread(pairs)}",
                    f"total {_pass_by(total, TIME_VS_SHARP)}; {_each(pairs, TIME_VS_SHARP)}",
                )
            )
    others: list[str] = [k for k in ("pillow", "pyvips-1t", "pyvips") if k in results.cells]
    for key in others:
        pairs, total, n, fastest = _total_and_own(results, key)
        if n:
            behind = sum(r >= 1.0 for _, r in pairs)
            out.append(
                Verdict(
                    f"time per image, both from own decodes: ours ahead of {labels[key]}",
                    f"total {as_ratio(total)} over {n} files (fastest pairs: {as_ratio(fastest)}); {_spread(pairs)}",
                    ("PASS" if total < 1.0 else "**MISS**")
                    + f" in total ({abs(1 - total) * 100:.0f} % {'faster' if total < 1 else 'slower'}); "
                    + ("ahead on every file" if not behind else f"behind on {behind} of {n} files"),
                )
            )
    for key in sharps:
        idx = [
            i
            for i in common_indices(results, ["ours", key])
            if results.cell("ours", i).rss_kb and results.cell(key, i).rss_kb
        ]
        if idx:
            pairs = [(results.files[i].name, _rss(results, "ours", i) / _rss(results, key, i)) for i in idx]
            out.append(
                Verdict(
                    f"peak RSS per image (fresh process, both presets): ours ≤ {RSS_VS_SHARP}× {labels[key]}",
                    f"median {as_ratio(statistics.median(r for _, r in pairs))}; {_spread(pairs)}",
                    _each(pairs, RSS_VS_SHARP),
                )
            )
    if sharps:
        out += _fidelity_verdicts(results, sharps[0])
    out.append(_djpeg_verdict(results))
    for cold in results.cold:
        if cold.error is not None:
            out.append(Verdict(f"cold start: `import {cold.module}`", f"failed: {cold.error}", "**MISS**"))
            continue
        out.append(
            Verdict(
                f"cold start: `import {cold.module}` ≤ {COLD_START_MS:.0f} ms",
                f"median {cold.import_ms:.0f} ms (whole fresh process {cold.process_ms:.0f} ms)",
                _pass_by(cold.import_ms, COLD_START_MS),
            )
        )
    if results.layer_bytes is None:
        not_built = f"`{cli.shown(results.layer_zip)}` not built (make layer)"
        out.append(Verdict("layer zip ≤ 3 MB", not_built, "not measured"))
    else:
        out.append(
            Verdict(
                "layer zip ≤ 3 MB (MiB, as the README counts)",
                f"{results.layer_bytes:,} bytes = {results.layer_bytes / 1024 / 1024:.2f} MB",
                _pass_by(results.layer_bytes / LAYER_BYTES, 1.0),
            )
        )
    return out


def _fidelity_verdicts(results: Results, base: str) -> list[Verdict]:
    """SSIM and bytes against sharp, per rendition, with the tolerances of `make quality` (bench/scoring.py)."""
    deltas: list[tuple[str, float]] = []
    byte_ratios: list[tuple[str, float]] = []
    idx = common_indices(results, ["ours", base])
    for i in idx:
        ours, theirs = _timed(results, "ours", i), _timed(results, base, i)
        for p in results.presets:
            o, b = ours.renditions[p.name], theirs.renditions[p.name]
            name = f"{results.files[i].name} {p.name}"
            if o.ssim is not None and b.ssim is not None:
                deltas.append((name, o.ssim - b.ssim))
            byte_ratios.append((name, o.bytes / b.bytes))
    out = []
    if deltas:
        missing = sum(d < -SSIM_EPSILON for _, d in deltas)
        worst_name, worst = min(deltas, key=lambda kv: kv[1])
        out.append(
            Verdict(
                f"SSIM ≥ sharp's, per rendition (tolerance {SSIM_EPSILON})",
                f"ΔSSIM (ours − sharp) from {worst:+.4f} (`{worst_name}`) to {max(d for _, d in deltas):+.4f};"
                f" mean {statistics.fmean(d for _, d in deltas):+.4f}",
                f"PASS on all {len(deltas)} renditions"
                if not missing
                else f"**MISS** on {missing} of {len(deltas)} renditions",
            )
        )
    if byte_ratios:
        total = sum(r.bytes for i in idx for r in _timed(results, "ours", i).renditions.values()) / sum(
            r.bytes for i in idx for r in _timed(results, base, i).renditions.values()
        )
        out.append(
            Verdict(
                f"bytes ≤ sharp's (within {round((BYTES_SLACK - 1) * 100)} %), per rendition",
                f"total {as_ratio(total)}; per rendition {as_ratio(min(r for _, r in byte_ratios))}"
                f"–{as_ratio(max(r for _, r in byte_ratios))}",
                _each(byte_ratios, BYTES_SLACK, "renditions"),
            )
        )
    return out


def _djpeg_verdict(results: Results) -> Verdict:
    target = f"baseline JPEGs: thumbnail ≤ {DJPEG_FACTOR}× `djpeg -scale 1/8` (a decode-only floor)"
    if results.djpeg is None:
        return Verdict(target, "djpeg not installed (Debian: libjpeg-turbo-progs; `make bench` tries)", "not measured")
    pairs = []
    for i, f in enumerate(results.files):
        floor = results.djpeg_ms.get(f.name, {}).get(8)
        ours = results.timed("ours", i)
        if floor is not None and ours is not None:
            pairs.append((f.name, ours.renditions[THUMBNAIL].ms / floor))
    if not pairs:
        return Verdict(target, "no baseline JPEG in the corpus that ours read", "not measured")
    return Verdict(target, ", ".join(f"`{n}` {as_ratio(r)}" for n, r in pairs), _each(pairs, DJPEG_FACTOR))


def _timed(results: Results, key: str, index: int) -> Timed:
    timed = results.timed(key, index)
    assert timed is not None, f"{key} has no result for file {index}, which was taken as common"
    return timed


def _own(results: Results, key: str, index: int) -> float:
    return _timed(results, key, index).own_ms


def _rss(results: Results, key: str, index: int) -> float:
    kb = results.cell(key, index).rss_kb
    assert kb is not None
    return float(kb)
