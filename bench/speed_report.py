"""The markdown report of the speed benchmark (bench/results/bench.md): the header, the targets' verdicts, the
totals, the cost table, the per-file, stage and djpeg tables, the cold starts and how each figure was obtained."""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import kiray_imaging
from bench import cli, cost
from bench.coldstart import HANDLER_ENV
from bench.machine import cpu_flags, cpu_model
from bench.model import MEDIUM, THUMBNAIL, Results, Timed, common_indices
from bench.peers import Skipped
from bench.scoring import BYTES_SLACK, SSIM_EPSILON
from bench.verdicts import as_ratio, verdicts

LOAD_WARNING = 1.5


def _cost_rows(results: Results, common: list[int]) -> dict[str, list[float]]:
    """Tool label → mean CPU ms per invocation over the common files: two invocations (own decodes) per tool, and
    one for ours making both from one decode."""
    rows: dict[str, list[float]] = {}
    for tool in results.tools:
        timed = [t for i in common if (t := results.timed(tool.key, i)) is not None]
        if timed:
            rows[tool.label] = [sum(t.renditions[p].ms for t in timed) / len(timed) for p in (THUMBNAIL, MEDIUM)]
        ones = [t.one.ms for t in timed if t.one is not None]
        if tool.key == "ours" and timed and len(ones) == len(timed):
            rows["ours, one function, both from one decode"] = [sum(ones) / len(ones)]
    return rows


def _ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _mb(kb: float | None) -> str:
    return "—" if kb is None else f"{kb / 1024:.1f}"


def _ssim(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def per_file_table(results: Results) -> str:
    head = [
        "file",
        "tool",
        f"{THUMBNAIL} ms",
        f"{MEDIUM} ms",
        "both, own decodes ms",
        "both, one decode ms",
        "peak RSS MB",
        "bytes (thumb / medium)",
        "SSIM (thumb / medium)",
    ]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    for i, f in enumerate(results.files):
        for tool in results.tools:
            timed = results.cells[tool.key][i].timed
            if isinstance(timed, Skipped):
                kind = "declines the format" if timed.unsupported else "failed"
                cells = [f"not read ({kind})"] + ["—"] * 6
            elif isinstance(timed, Timed):
                r = timed.renditions
                cells = [
                    _ms(r[THUMBNAIL].ms) if THUMBNAIL in r else "—",
                    _ms(r[MEDIUM].ms) if MEDIUM in r else "—",
                    _ms(timed.own_ms),
                    _ms(timed.one.ms if timed.one else None),
                    _mb(results.cells[tool.key][i].rss_kb),
                    " / ".join(str(r[p.name].bytes) for p in results.presets),
                    " / ".join(_ssim(r[p.name].ssim) for p in results.presets),
                ]
            else:
                continue
            lines.append(f"| `{f.name}` | {tool.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def totals_table(results: Results, indices: Sequence[int]) -> str:
    head = [
        "tool",
        f"{THUMBNAIL} ms",
        f"{MEDIUM} ms",
        "both, own decodes ms",
        "fastest pair ms",
        "both, one decode ms",
        "peak RSS MB (max / median)",
        "idle process MB",
        "bytes",
        "mean SSIM (thumb / medium)",
        "one-decode mean SSIM (thumb / medium)",
    ]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for tool in results.tools:
        rows = [t for i in indices if (t := results.timed(tool.key, i)) is not None]
        rss = [kb for i in indices if (kb := results.cells[tool.key][i].rss_kb) is not None]
        ones = [t.one for t in rows if t.one is not None]
        cells = [
            _ms(sum(t.renditions[THUMBNAIL].ms for t in rows)),
            _ms(sum(t.renditions[MEDIUM].ms for t in rows)),
            _ms(sum(t.own_ms for t in rows)),
            _ms(sum(t.own_fastest_ms for t in rows)),
            _ms(sum(o.ms for o in ones)) if len(ones) == len(rows) and rows else "n/a",
            f"{_mb(max(rss))} / {_mb(statistics.median(rss))}" if rss else "—",
            _mb(results.idle_kb.get(tool.key)),
            str(sum(r.bytes for t in rows for r in t.renditions.values())),
            " / ".join(_mean_ssim([t.renditions[p.name].ssim for t in rows]) for p in results.presets),
            " / ".join(_mean_ssim([o.ssim.get(p.name) for o in ones]) for p in results.presets)
            if len(ones) == len(rows) and rows
            else "n/a",
        ]
        lines.append(f"| {tool.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _mean_ssim(values: Sequence[float | None]) -> str:
    known = [v for v in values if v is not None]
    return _ssim(statistics.fmean(known)) if known and len(known) == len(values) else "—"


def stage_table(results: Results, keys: Sequence[str]) -> str:
    stages = ("decode", "colour", "resize", "orient", "encode")
    head = ["file", "preset", "tool", "DCT shrink", *stages, "stages Σ", "call"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|---|" + "---:|" * (len(head) - 3)]
    sums: dict[tuple[str, str], dict[str, float]] = {}
    indices = common_indices(results, keys)
    for i, f in enumerate(results.files):
        for p in results.presets:
            for key in keys:
                timed = results.timed(key, i)
                if timed is None:
                    continue
                r = timed.renditions[p.name]
                label = next(t.label for t in results.tools if t.key == key)
                cells = [f"1/{r.shrink}" if r.shrink else "—"]
                cells += [_ms(r.stages.get(s)) for s in stages]
                cells += [_ms(sum(r.stages.values())), _ms(r.ms)]
                lines.append(f"| `{f.name}` | {p.name} | {label} | " + " | ".join(cells) + " |")
                if i in indices:
                    acc = sums.setdefault((p.name, label), {})
                    for s in (*stages, "call"):
                        acc[s] = acc.get(s, 0.0) + (r.ms if s == "call" else r.stages.get(s, 0.0))
    for (preset, label), acc in sums.items():
        cells = ["", *(_ms(acc[s]) for s in stages), _ms(sum(acc[s] for s in stages)), _ms(acc["call"])]
        lines.append(f"| **Σ common files** | {preset} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def djpeg_table(results: Results) -> str:
    lines = [
        "| file | ours thumbnail ms (DCT shrink) | djpeg -scale 1/8 ms | ours ÷ djpeg 1/8 | djpeg at our shrink ms |"
        " ours ÷ that |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for i, f in enumerate(results.files):
        scales = results.djpeg_ms.get(f.name)
        ours = results.timed("ours", i)
        if scales is None or ours is None:
            continue
        thumb = ours.renditions[THUMBNAIL]
        at_ours = scales.get(thumb.shrink or 0)
        lines.append(
            f"| `{f.name}` | {_ms(thumb.ms)} (1/{thumb.shrink}) | {_ms(scales[8])} |"
            f" {as_ratio(thumb.ms / scales[8])} | "
            + (f"{_ms(at_ours)} | {as_ratio(thumb.ms / at_ours)} |" if at_ours else "— | — |")
        )
    return "\n".join(lines)


def report(results: Results, corpus: Path) -> str:
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    loads = [results.load_before, results.load_after]
    busy = any(_first_load(load) > LOAD_WARNING for load in loads)
    labels = {t.key: t.label for t in results.tools}
    all_keys = list(results.cells)
    common = common_indices(results, all_keys)
    out = [
        "# Speed: kiray-imaging vs sharp, Pillow-draft and pyvips",
        "",
        f"Generated {generated} by `make bench` (`python -m bench.speed`) in {results.seconds:.0f} s.",
        "",
        f"**Machine**: {cpu_model()}, {os.cpu_count()} cores (CPU flags: {cpu_flags()});"
        f" our SIMD level: **{kiray_imaging.simd_level()}**. Load average (1, 5, 15 min) before: {results.load_before};"
        f" after: {results.load_after}.",
        "",
    ]
    if busy:
        out += [
            f"> **Warning: the 1-minute load average was above {LOAD_WARNING} on this {os.cpu_count()}-core machine"
            f" ({' → '.join(loads)}): other work ran during the benchmark, so every timing is inflated and noisier"
            " than on an idle machine.** The tools took turns on each photo (every timed repetition of every tool"
            " before the next repetition of any), so they shared that load: the ratios between tools hold up better"
            " than the absolute milliseconds.",
            "",
        ]
    out += [
        f"**Versions**: {', '.join(f'{k} {v}' for k, v in results.versions.items())}"
        + (f", {results.djpeg.version} (djpeg)" if results.djpeg else ", djpeg not installed")
        + f", Python {sys.version.split()[0]}.",
        "",
        f"**Corpus**: `{cli.shown(corpus)}`, {len(results.files)} files × presets "
        + ", ".join(f"{p.name} {p.width}×{p.height} {p.fit} q{p.quality}" for p in results.presets)
        + f". **Runs**: {results.runs.warmup} warm-up + {results.runs.runs} timed per figure (median);"
        f" cold start {results.runs.warmup} + {results.runs.cold_runs}.",
        "",
        "## Targets",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
    ]
    out += [f"| {v.target} | {v.measured} | {v.verdict} |" for v in verdicts(results)]
    out += [
        "",
        "Ratios are ours ÷ the other tool, over the files both read. Time is the median pair (thumbnail + medium,"
        " each from its own decode, as the two Lambda functions do); the verdicts use medians, and the ratio of the"
        " fastest pairs beside them shows how much the machine's load could have moved them.",
        "",
        f"## Totals over the {len(common)} files every tool read",
        "",
        ", ".join(f"`{results.files[i].name}`" for i in common) + ".",
        "",
        totals_table(results, common),
        "",
        "## Lambda cost per million uploads, on paper",
        "",
        "From the median times above, averaged per file over the common files; the model and its assumptions are in"
        f" `bench/cost.py` and docs/cost.md ({cost.IO_MS:.0f} ms of S3 and handler work per invocation, 1 vCPU at"
        f" {cost.FULL_VCPU_MB} MB, x86_64 us-east-1 prices). The medium here is JPEG only; production's medium also"
        " writes WebP. The last row prices a design we do not deploy: one function making both renditions from one"
        " decode (`render_presets`), one invocation per upload.",
        "",
        cost.cost_table(_cost_rows(results, common)),
        "",
        "## Per file",
        "",
        per_file_table(results),
        "",
    ]
    stage_keys = [k for k in ("ours", "pillow") if k in results.cells]
    if stage_keys:
        out += [
            "## Stages: ours and Pillow-draft (median ms per render)",
            "",
            "Ours from `Rendition.timings_ms` (inside the native call); Pillow's from the peer's own clock around each"
            " step. `call` is the whole render call's median, so `call − stages Σ` is the binding's overhead (bytes"
            " in, bytes out). libvips and sharp evaluate lazily, decode, resize and encode interleaved, so they have"
            " no stage split.",
            "",
            stage_table(results, stage_keys),
            "",
        ]
    if results.djpeg_ms:
        assert results.djpeg is not None
        out += [
            "## Floor: libjpeg-turbo's own scaled decode on the baseline JPEGs",
            "",
            f"`djpeg -scale 1/N -outfile /dev/null FILE`, timed as a whole process the same way (median of"
            f" {results.runs.runs} after {results.runs.warmup} warm-up): a decode-only floor, with no resize and no"
            f" encode, and it includes starting the process (`djpeg -version` alone: {results.djpeg.spawn_ms:.1f} ms)."
            " The target's scale is 1/8; our core shrinks less wherever 1/8 would leave too few pixels for the output"
            " (its tuned margin), so the floor at our own shrink is given too.",
            "",
            djpeg_table(results),
            "",
        ]
    if results.cold:
        out += ["## Cold start", ""]
        for cold in results.cold:
            if cold.error is not None:
                out.append(f"- `import {cold.module}`: failed ({cold.error})")
                continue
            largest = ", ".join(f"`{name}` {ms:.0f}" for name, ms in cold.largest)
            out.append(
                f"- `import {cold.module}`: median {cold.import_ms:.1f} ms inside a fresh interpreter"
                f" ({cold.process_ms:.0f} ms for the whole process, interpreter start-up included). Largest imports"
                f" under it, cumulative ms from `-X importtime` (which inflates them; nested ones are also inside"
                f" their importer): {largest}; the module's own top-level code: {cold.body_ms:.0f} ms. Resident"
                f" afterwards: {cold.rss_kb / 1024:.1f} MB."
            )
        out += [
            "",
            f"The handler reads its settings at import; it was given {', '.join(sorted(HANDLER_ENV))} with dummy"
            " values (credentials in the environment, as Lambda provides them). Nothing is sent anywhere: creating"
            " the S3 client makes no request.",
            "",
        ]
    not_read: dict[str, dict[str, list[str]]] = {}
    for key, cells in results.cells.items():
        for i, cell in enumerate(cells):
            if isinstance(cell.timed, Skipped):
                kind = "declines the format" if cell.timed.unsupported else "failed"
                by_reason = not_read.setdefault(results.files[i].name, {})
                by_reason.setdefault(f"{kind}: {cell.timed.reason}", []).append(labels[key])
    if not_read:
        out += ["## Not read", ""]
        for name, by_reason in not_read.items():
            out.append(f"- `{name}`: " + "; ".join(f"{', '.join(who)} {why}" for why, who in by_reason.items()))
        out.append("")
    out += ["## How", ""]
    out += [f"- {labels[key]}: {note}." for key, note in results.notes.items()]
    out += [
        "- Timing: one long-lived process per tool, its native API on bytes already in memory, output kept in"
        " memory; the clock runs around the render call alone, so interpreter start-up is not in it. Never two"
        " tools at once: on each photo the tools take turns, one timed repetition each (in a rotating order), after"
        " their warm-up renders; every figure is the median of the repetitions. djpeg takes its turn the same way.",
        '- "Both, own decodes": each timed run renders the thumbnail then the medium from the original bytes; the'
        ' figure is the median of those pairs. "Both, one decode": one decode made to cover the larger preset,'
        " then both outputs from its pixels: ours (`render_presets`: one decode shrunk as far as both presets"
        " allow), Pillow (one draft) and pyvips (`copy_memory` of the image shrunk on load as our core shrinks for"
        " the medium, then `thumbnail_image` per preset). n/a for sharp:"
        " it runs one libvips pipeline per output (`clone()` shares the input stream, not decoded pixels).",
        "- Peak RSS: VmHWM that a fresh process reads from /proc/self/status after rendering both presets of one"
        " photo once (getrusage in the parent would also count the pages a child inherits before exec). It includes"
        " the runtime itself; the idle column is that floor (the library imported, nothing rendered), Python's for"
        " ours, Pillow and pyvips, Node's for sharp, as each would run on Lambda. No AWS SDK is loaded.",
        "- Pillow-draft: `Image.open`, `draft('RGB', size)` to the DCT scale our core chose for that photo and"
        " preset (where ours did not read the photo, the one our core's plan gives, `kiray_imaging.plan`), Lanczos"
        " with that plan's crop, then on the small image EXIF orientation, alpha onto"
        " white, the embedded ICC profile → sRGB with LittleCMS (its cost is the `colour` stage), 3-channel"
        " JPEG at the preset's quality with `optimize=True`.",
        "- pyvips: `thumbnail_buffer(size='down', crop='centre' for cover)`, then on the small image the embedded"
        " profile → sRGB (`icc_transform`), grey or 16-bit → 8-bit sRGB, alpha onto white, and"
        " `jpegsave_buffer(Q, optimize_coding=True, keep='none')` (sharp's encoder defaults). Not thumbnail's"
        " `export_profile='srgb'`: it also transforms untagged images sRGB → sRGB, 150–200 ms a render for the same"
        " pixels, a cost sharp (the same libvips) does not pay. libvips' thumbnail leaves a factor of two for its"
        " final resize when it shrinks a JPEG on load, where sharp (`fastShrinkOnLoad`, its default) shrinks down to"
        " the output size and our core to within its tuned margin, so pyvips often decodes more pixels than either."
        " sharp, pyvips and our core also shrink still WebP on load (libwebp's scaled decode); Pillow decodes WebP at"
        " full size.",
        "- sharp: the pipeline of `bench/peers/sharp_render.mjs` (the production one), `concurrency(1)` for one"
        " thread. The libvips operation cache is off for sharp and pyvips: a loop over the same bytes would hit it,"
        " and a Lambda rendering each upload once never does.",
        f"- SSIM: on BT.601 luma against the reference of `bench/reference.py` at each output's own size (the"
        f" `make quality` method and cache); the target allows {SSIM_EPSILON} of encoder noise and bytes within"
        f" {round((BYTES_SLACK - 1) * 100)} %, as there.",
        "",
    ]
    return "\n".join(out)


def _first_load(load: str) -> float:
    try:
        return float(load.split()[0])
    except (ValueError, IndexError):
        return 0.0
