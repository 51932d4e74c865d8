"""The run of the speed benchmark: every tool on every photo, taking turns; then each tool's peak RSS, the SSIM of
every output and the cold starts, into one `Results`."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.cli import ROOT
from bench.coldstart import HANDLER_MODULE, cold_start
from bench.djpeg import find_djpeg, is_baseline_jpeg, wall_ms
from bench.machine import read_loadavg
from bench.model import THUMBNAIL, Cell, OneDecode, RenditionResult, Results, Runs, Timed
from bench.peers import Skipped
from bench.reference import References
from bench.scoring import Scorer
from bench.tools import (
    Runner,
    Tool,
    idle_rss_kb,
    peak_rss_kb,
    peer_plans,
    preset_json,
    sharp_default_concurrency,
    tool_versions,
)
from kiray_imaging.presets import Preset

LAYER_ZIP = ROOT / "layer" / "dist" / "kiray-imaging-layer.zip"


def _rotated(tools: Sequence[Tool], turn: int) -> list[Tool]:
    """The tools in another order each turn, so none always runs right after the same neighbour."""
    if not tools:
        return []
    k = turn % len(tools)
    return [*tools[k:], *tools[:k]]


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def measure_file(
    index: int,
    path: Path,
    presets: Sequence[Preset],
    runners: dict[str, Runner],
    runs: Runs,
    outputs: Path,
    results: Results,
) -> None:
    """Every tool on one photo, taking turns: each timed repetition of every tool (and of djpeg) runs before the
    next repetition of any, so all of them share whatever load the machine has during that stretch."""
    opened: dict[str, dict[str, Any]] = {}
    request: dict[str, Any] = {
        "op": "open",
        "file": str(path),
        "presets": [preset_json(p) for p in presets],
        "warmup": runs.warmup,
    }
    ours_shrink: dict[str, int] = {}
    for key, runner in runners.items():
        if key != "ours" and "plans" not in request:
            # Ours opens first: the peers are then given our core's plan with the shrink ours took for this photo.
            request = {**request, "plans": peer_plans(path, presets, ours_shrink)}
        answer = runner.ask(request)
        if key == "ours" and answer["ok"]:
            ours_shrink = {str(name): int(d) for name, d in answer["shrink"].items()}
        if answer["ok"]:
            opened[key] = answer
        else:
            results.cells[key][index].timed = Skipped(str(answer["reason"]), unsupported=bool(answer["unsupported"]))
    active = [runner.tool for key, runner in runners.items() if key in opened]

    djpeg: dict[int, list[str]] = {}
    if results.djpeg is not None and "ours" in opened and is_baseline_jpeg(path):
        thumbnail_shrink = ours_shrink.get(THUMBNAIL) or 8
        djpeg = {
            d: [results.djpeg.path, "-scale", f"1/{d}", "-outfile", os.devnull, str(path)]
            for d in sorted({8, thumbnail_shrink})
        }
        for command in djpeg.values():
            for _ in range(runs.warmup):
                wall_ms(command)

    ms: dict[str, dict[str, list[float]]] = {t.key: {p.name: [] for p in presets} for t in active}
    stages: dict[str, dict[str, dict[str, list[float]]]] = {t.key: {p.name: {} for p in presets} for t in active}
    pairs: dict[str, list[float]] = {t.key: [] for t in active}
    djpeg_ms: dict[int, list[float]] = {d: [] for d in djpeg}
    for turn in range(runs.runs):
        for tool in _rotated(active, turn):
            answer = runners[tool.key].ask({"op": "own"})
            for name, value in answer["ms"].items():
                ms[tool.key][name].append(float(value))
                for stage, stage_ms in answer["stages"][name].items():
                    stages[tool.key][name].setdefault(stage, []).append(float(stage_ms))
            pairs[tool.key].append(sum(float(v) for v in answer["ms"].values()))
        for d, command in djpeg.items():
            djpeg_ms[d].append(wall_ms(command))

    one_tools = [t for t in active if opened[t.key]["one_decode"]]
    one_ms: dict[str, list[float]] = {t.key: [] for t in one_tools}
    for turn in range(runs.runs):
        for tool in _rotated(one_tools, turn):
            one_ms[tool.key].append(float(runners[tool.key].ask({"op": "one"})["ms"]))

    for tool in active:
        saved = runners[tool.key].ask({"op": "save", "outputs": str(outputs / tool.key)})
        renditions = {
            name: RenditionResult(
                ms=_median(ms[tool.key][name]),
                width=int(r["width"]),
                height=int(r["height"]),
                bytes=int(r["bytes"]),
                shrink=None if r["shrink"] is None else int(r["shrink"]),
                stages={stage: _median(v) for stage, v in stages[tool.key][name].items()},
                output=Path(r["output"]),
            )
            for name, r in saved["renditions"].items()
        }
        one = None
        if tool.key in one_ms and saved["one"] is not None:
            one = OneDecode(
                ms=_median(one_ms[tool.key]),
                outputs={name: Path(o["output"]) for name, o in saved["one"].items()},
            )
        results.cells[tool.key][index].timed = Timed(
            renditions, _median(pairs[tool.key]), one, own_fastest_ms=min(pairs[tool.key])
        )
    if djpeg_ms:
        results.djpeg_ms[path.name] = {d: _median(v) for d, v in djpeg_ms.items()}


def run(
    files: Sequence[Path],
    presets: Sequence[Preset],
    tools: Sequence[Tool],
    runs: Runs,
    references: References,
    outputs: Path,
    log: Callable[[str], None],
) -> Results:
    tools = list(tools)
    notes: dict[str, str] = {}
    # sharp's default concurrency is 1 on glibc Linux without jemalloc: then "defaults" is the 1-thread run again,
    # and running it twice would only spend the time budget.
    if any(t.key == "sharp" for t in tools) and sharp_default_concurrency() == 1:
        tools = [t for t in tools if t.key != "sharp"]
        tools = [replace(t, label="sharp (1 thread = its default here)") if t.key == "sharp-1t" else t for t in tools]
        notes["sharp-1t"] = (
            "sharp's default concurrency is 1 on this machine (glibc Linux without jemalloc), so its defaults are"
            " the 1-thread configuration: measured once"
        )
    results = Results(
        files=list(files),
        presets=list(presets),
        tools=tools,
        cells={t.key: [Cell() for _ in files] for t in tools},
        idle_kb={},
        notes=notes,
        djpeg=None,
        djpeg_ms={},
        cold=[],
        layer_zip=LAYER_ZIP,
        layer_bytes=LAYER_ZIP.stat().st_size if LAYER_ZIP.is_file() else None,
        versions={},
        runs=runs,
        load_before=read_loadavg(),
    )
    for tool in tools:
        results.versions.update(tool_versions(tool))
    results.djpeg = find_djpeg(runs.warmup, runs.runs)

    runners: dict[str, Runner] = {}
    try:
        for tool in tools:
            runners[tool.key] = Runner(tool)
        for i, f in enumerate(files):
            start = time.monotonic()
            measure_file(i, f, presets, runners, runs, outputs, results)
            read = sum(isinstance(results.cells[t.key][i].timed, Timed) for t in tools)
            log(f"{f.name}: timed {read} of {len(tools)} tools in {time.monotonic() - start:.0f} s")
    finally:
        for runner in runners.values():
            runner.close()

    start = time.monotonic()
    for tool in tools:
        for i, (f, cell) in enumerate(zip(files, results.cells[tool.key])):
            if cell.ok:
                ours = results.timed("ours", i)
                shrink = {n: r.shrink for n, r in ours.renditions.items() if r.shrink} if ours else {}
                cell.rss_kb = peak_rss_kb(tool, f, presets, peer_plans(f, presets, shrink))
        results.idle_kb[tool.key] = idle_rss_kb(tool)
    log(f"peak RSS of a fresh process per tool and photo in {time.monotonic() - start:.0f} s")

    start = time.monotonic()
    scorer = Scorer(references)
    for i, f in enumerate(files):
        data = f.read_bytes()
        for cells in results.cells.values():
            timed = cells[i].timed
            if not isinstance(timed, Timed):
                continue
            for p in presets:
                r = timed.renditions[p.name]
                r.ssim = scorer.ssim(f, data, p, r.output)
                if timed.one is not None:
                    timed.one.ssim[p.name] = scorer.ssim(f, data, p, timed.one.outputs.get(p.name))
    log(f"SSIM of every output in {time.monotonic() - start:.0f} s")

    if "ours" in results.cells:
        results.cold = [cold_start(m, runs.warmup, runs.cold_runs) for m in ("kiray_imaging", HANDLER_MODULE)]
        log("cold starts measured")
    results.load_after = read_loadavg()
    return results
