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
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from PIL import Image

import kiray_imaging
from bench import cli, cost, quality
from bench.peers import Rendered, Skipped
from bench.peers.ours import Ours
from bench.peers.sharp import unavailable_reason as sharp_unavailable_reason
from bench.reference import ReferenceError, References
from kiray_imaging.presets import PRESETS, Preset

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
DEFAULT_OUT = BENCH_DIR / "results" / "bench.md"
SHARP_SCRIPT = BENCH_DIR / "peers" / "sharp_bench.mjs"
LAYER_ZIP = ROOT / "layer" / "dist" / "kiray-imaging-layer.zip"
HANDLER_MODULE = "py_handlers.generate_thumbnail"
# The handler reads its configuration at import; any bucket names do, nothing is called. Credentials in the
# environment, as Lambda provides them (without them the S3 client would look further, through botocore).
HANDLER_ENV = {
    "SOURCE_BUCKET": "bench-source",
    "DEST_BUCKET": "bench-dest",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
}

PEER_NAMES = ("ours", "pillow", "pyvips", "sharp")
THUMBNAIL, MEDIUM = "thumbnail", "medium"

# The targets (issue 4), each measured in this run.
TIME_VS_SHARP = 0.5
RSS_VS_SHARP = 0.5
DJPEG_FACTOR = 1.2
COLD_START_MS = 100.0
LAYER_BYTES = 3 * 1024 * 1024  # "3 MB" as the project counts it (README: 1,513,757 bytes = "1.44 MB")
SSIM_EPSILON = quality.SSIM_EPSILON
BYTES_SLACK = quality.BYTES_SLACK
LOAD_WARNING = 1.5

# Generous: each bounds a hung process, not a slow run.
REQUEST_TIMEOUT_S = 600.0
RSS_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Runs:
    warmup: int
    runs: int
    cold_runs: int


FULL = Runs(warmup=2, runs=5, cold_runs=7)
QUICK = Runs(warmup=1, runs=2, cold_runs=3)


# --- tools ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    key: str
    label: str
    peer: str
    single_thread: bool
    """True for the runs pinned to one thread; False for the library's defaults."""

    def command(self, mode: str) -> list[str]:
        if self.peer == "sharp":
            return ["node", str(SHARP_SCRIPT), f"--{mode}", "1" if self.single_thread else "default"]
        return [sys.executable, "-m", "bench.speed_runner", self.peer, mode]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "VIPS_CONCURRENCY"}
        if self.peer == "pyvips" and self.single_thread:
            # Read by libvips when pyvips is first imported, hence the child's environment rather than an API call.
            env["VIPS_CONCURRENCY"] = "1"
        return env

    def cwd(self) -> Path:
        return BENCH_DIR if self.peer == "sharp" else ROOT


TOOLS = {
    "ours": [Tool("ours", "ours", "ours", True)],
    "pillow": [Tool("pillow", "Pillow-draft", "pillow", True)],
    "pyvips": [
        Tool("pyvips-1t", "pyvips (1 thread)", "pyvips", True),
        Tool("pyvips", "pyvips (defaults)", "pyvips", False),
    ],
    "sharp": [
        Tool("sharp-1t", "sharp (1 thread)", "sharp", True),
        Tool("sharp", "sharp (defaults)", "sharp", False),
    ],
}


def pyvips_unavailable_reason() -> str | None:
    probe = subprocess.run(
        [sys.executable, "-c", "import pyvips"], capture_output=True, text=True, cwd=ROOT, check=False, timeout=120
    )
    if probe.returncode != 0:
        lines = probe.stderr.strip().splitlines()
        why = lines[-1] if lines else f"exit {probe.returncode}"
        return f"pyvips does not import ({why}); pip install -r bench/requirements.txt"
    return None


def _run_json_lines(tool: Tool, mode: str, request: dict[str, Any] | None, timeout: float) -> list[dict[str, Any]]:
    """One fresh process of `tool` in `mode` (rss, idle, versions) and its JSON answer lines."""
    proc = subprocess.run(
        tool.command(mode),
        input=None if request is None else json.dumps(request),
        capture_output=True,
        text=True,
        cwd=tool.cwd(),
        env=tool.env(),
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{tool.label} {mode} exited {proc.returncode}: {proc.stderr.strip()}")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


class Runner:
    """A long-lived timing process of one tool (``serve`` mode): one JSON request a line, one answer a line."""

    def __init__(self, tool: Tool) -> None:
        self.tool = tool
        # stderr to a file, not a pipe nobody reads: a chatty library must not block the runner. It lives as long as
        # the process, so close() closes it rather than a with block.
        self.stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            tool.command("serve"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            cwd=tool.cwd(),
            env=tool.env(),
        )

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        # A hung runner is killed rather than hanging the benchmark; the readline then returns empty.
        watchdog = threading.Timer(REQUEST_TIMEOUT_S, self.proc.kill)
        watchdog.start()
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except BrokenPipeError:
            line = ""
        finally:
            watchdog.cancel()
        if not line:
            self.proc.wait(timeout=30)
            self.stderr.seek(0)
            raise RuntimeError(
                f"{self.tool.label} runner ended (exit {self.proc.returncode}) on {request['op']}:"
                f" {self.stderr.read().strip()}"
            )
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()


# --- per (tool, file) results -----------------------------------------------------------------------------------


@dataclass
class RenditionResult:
    ms: float
    width: int
    height: int
    bytes: int
    shrink: int | None
    stages: dict[str, float]
    output: Path | None
    ssim: float | None = None


@dataclass
class OneDecode:
    ms: float
    outputs: dict[str, Path | None]
    ssim: dict[str, float | None] = field(default_factory=dict)


@dataclass
class Timed:
    renditions: dict[str, RenditionResult]
    own_ms: float
    one: OneDecode | None
    own_fastest_ms: float = 0.0
    """The fastest pair: on a busy machine the least disturbed one, a check on the median."""


@dataclass
class Cell:
    """One tool on one file."""

    timed: Timed | Skipped | None = None
    rss_kb: int | None = None

    @property
    def ok(self) -> bool:
        return isinstance(self.timed, Timed)


def preset_json(preset: Preset) -> dict[str, Any]:
    return {
        "name": preset.name,
        "width": preset.width,
        "height": preset.height,
        "fit": preset.fit,
        "quality": preset.quality,
    }


def peak_rss_kb(tool: Tool, file: Path, presets: Sequence[Preset], shrink: dict[str, int]) -> int | None:
    """Peak RSS of a fresh process rendering `file` with every preset once; None where the tool cannot read it."""
    request = {"file": str(file), "presets": [preset_json(p) for p in presets], "shrink": shrink}
    (line,) = _run_json_lines(tool, "rss", request, RSS_TIMEOUT_S)
    return int(line["peak_kb"]) if line["ok"] else None


def idle_rss_kb(tool: Tool) -> int:
    (line,) = _run_json_lines(tool, "idle", None, RSS_TIMEOUT_S)
    return int(line["peak_kb"])


def tool_versions(tool: Tool) -> dict[str, str]:
    (line,) = _run_json_lines(tool, "versions", None, RSS_TIMEOUT_S)
    if tool.peer == "sharp":
        return {
            "sharp": f"{line['sharp']} (libvips {line['libvips']}, default concurrency {line['defaultConcurrency']})",
            "Node": str(line["node"]),
        }
    return {str(k): str(v) for k, v in line.items()}


def sharp_default_concurrency() -> int:
    (line,) = _run_json_lines(TOOLS["sharp"][0], "versions", None, RSS_TIMEOUT_S)
    return int(line["defaultConcurrency"])


# --- SSIM -------------------------------------------------------------------------------------------------------


class Scorer:
    """SSIM of an output file against the reference of its source, memoised by content: the 1-thread and default
    runs of a library write the same bytes, and one reference serves every tool."""

    def __init__(self, references: References) -> None:
        self.references = references
        self._seen: dict[tuple[str, bytes], float | None] = {}

    def ssim(self, source: Path, data: bytes, preset: Preset, output: Path | None) -> float | None:
        if output is None:
            return None
        rendition = output.read_bytes()
        key = (f"{source}:{preset.name}", rendition)
        if key not in self._seen:
            try:
                reference = self.references.get
                s = quality.score(
                    Rendered(data=rendition, width=0, height=0, ms=0.0),
                    lambda w, h: reference(data, preset, w, h),
                )
                self._seen[key] = s.ssim
            except ReferenceError:
                self._seen[key] = None
        return self._seen[key]


# --- the floors: djpeg, cold start, layer -----------------------------------------------------------------------


@dataclass(frozen=True)
class Djpeg:
    path: str
    version: str
    spawn_ms: float
    """Median wall time of ``djpeg -version``: starting the process, no decoding."""


def find_djpeg(runs: Runs) -> Djpeg | None:
    path = shutil.which("djpeg")
    if path is None:
        return None
    probe = subprocess.run([path, "-version"], capture_output=True, text=True, check=False, timeout=60)
    version = (probe.stderr.strip() or probe.stdout.strip()).splitlines()
    return Djpeg(path, version[0] if version else "unknown", median_wall([path, "-version"], runs))


def wall_ms(command: Sequence[str]) -> float:
    """Wall ms of running `command` to completion, process start included."""
    start = time.perf_counter_ns()
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return (time.perf_counter_ns() - start) / 1e6


def median_wall(command: Sequence[str], runs: Runs) -> float:
    for _ in range(runs.warmup):
        wall_ms(command)
    return float(statistics.median(wall_ms(command) for _ in range(runs.runs)))


def is_baseline_jpeg(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            return image.format == "JPEG" and not image.info.get("progressive")
    except (OSError, ValueError):
        return False


@dataclass(frozen=True)
class ColdStart:
    module: str
    import_ms: float
    process_ms: float
    largest: list[tuple[str, float]] = field(default_factory=list)
    """The largest imports under `module` by cumulative ms (-X importtime): packages, and `module`'s own siblings."""
    body_ms: float = 0.0
    """`module`'s own self time: what its top-level code runs at import."""
    rss_kb: float = 0.0
    """Resident memory of the process once `module` is imported (median): the floor every invocation starts from."""
    error: str | None = None


_IMPORTTIME = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)")


def importtime_largest(stderr: str, module: str, count: int = 5) -> tuple[list[tuple[str, float]], float]:
    """From ``-X importtime`` output: the `count` largest top-level packages and modules of `module`'s own package
    by cumulative ms (nested ones are also counted in their importer), and `module`'s self ms."""
    root = module.split(".")[0]
    candidates: dict[str, float] = {}
    body = 0.0
    for line in stderr.splitlines():
        m = _IMPORTTIME.match(line)
        if not m:
            continue
        name, self_ms, cumulative_ms = m.group(4), int(m.group(1)) / 1000.0, int(m.group(2)) / 1000.0
        if name == module:
            body = self_ms
        elif "." not in name or name.startswith(f"{root}."):
            candidates[name] = max(candidates.get(name, 0.0), cumulative_ms)
    return sorted(candidates.items(), key=lambda kv: -kv[1])[:count], body


def cold_start(module: str, runs: Runs) -> ColdStart:
    """Import time of `module` in fresh interpreters (median), measured inside the process so interpreter
    start-up is apart; the whole process's wall time beside it."""
    code = (
        f"import time; t = time.perf_counter(); import {module}; print('IMPORT_MS', (time.perf_counter() - t) * 1000);"
        " print('RSS_KB', open('/proc/self/status').read().split('VmRSS:')[1].split()[0])"
    )
    env = {**os.environ, **HANDLER_ENV}
    imports, walls, rss = [], [], []
    for i in range(runs.warmup + runs.cold_runs):
        start = time.perf_counter_ns()
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120, check=False
        )
        wall = (time.perf_counter_ns() - start) / 1e6
        if proc.returncode != 0:
            lines = proc.stderr.strip().splitlines()
            return ColdStart(module, float("nan"), float("nan"), error=lines[-1] if lines else str(proc.returncode))
        if i >= runs.warmup:
            # The handler logs a line of its own at import; ours is the last.
            (value,) = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("IMPORT_MS ")]
            (kb,) = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("RSS_KB ")]
            imports.append(float(value))
            rss.append(float(kb))
            walls.append(wall)
    profile = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    largest, body = importtime_largest(profile.stderr, module)
    return ColdStart(
        module,
        float(statistics.median(imports)),
        float(statistics.median(walls)),
        largest,
        body,
        float(statistics.median(rss)),
    )


# --- the run ----------------------------------------------------------------------------------------------------


@dataclass
class Results:
    files: list[Path]
    presets: list[Preset]
    tools: list[Tool]
    cells: dict[str, list[Cell]]
    idle_kb: dict[str, int]
    notes: dict[str, str]
    """Tool key → a note on how its figures were obtained (e.g. copied from an identical configuration)."""
    djpeg: Djpeg | None
    djpeg_ms: dict[str, dict[int, float]]
    """File name → DCT scale denominator → median ms."""
    cold: list[ColdStart]
    layer_bytes: int | None
    versions: dict[str, str]
    runs: Runs
    load_before: str
    load_after: str = ""
    seconds: float = 0.0

    def cell(self, tool: str, index: int) -> Cell:
        return self.cells[tool][index]

    def timed(self, tool: str, index: int) -> Timed | None:
        t = self.cells[tool][index].timed if tool in self.cells else None
        return t if isinstance(t, Timed) else None


def read_loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                wanted = ("sse4_2", "avx", "avx2", "avx512f", "avx512bw", "avx512vnni")
                return " ".join(f for f in wanted if f in flags) or "none of sse4_2/avx*"
    except OSError:
        pass
    return "unknown"


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
    for key, runner in runners.items():
        answer = runner.ask(request)
        if key == "ours" and answer["ok"]:
            # Ours opens first: the peers that pick a DCT shrink themselves are then given ours for this photo.
            request = {**request, "shrink": answer["shrink"]}
        if answer["ok"]:
            opened[key] = answer
        else:
            results.cells[key][index].timed = Skipped(str(answer["reason"]), unsupported=bool(answer["unsupported"]))
    active = [runner.tool for key, runner in runners.items() if key in opened]

    djpeg: dict[int, list[str]] = {}
    if results.djpeg is not None and "ours" in opened and is_baseline_jpeg(path):
        ours_shrink = opened["ours"]["shrink"].get(THUMBNAIL) or 8
        djpeg = {
            d: [results.djpeg.path, "-scale", f"1/{d}", "-outfile", os.devnull, str(path)]
            for d in sorted({8, ours_shrink})
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
        layer_bytes=LAYER_ZIP.stat().st_size if LAYER_ZIP.is_file() else None,
        versions={},
        runs=runs,
        load_before=read_loadavg(),
    )
    for tool in tools:
        results.versions.update(tool_versions(tool))
    results.djpeg = find_djpeg(runs)

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
                cell.rss_kb = peak_rss_kb(tool, f, presets, shrink)
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
        results.cold = [cold_start("kiray_imaging", runs), cold_start(HANDLER_MODULE, runs)]
        log("cold starts measured")
    results.load_after = read_loadavg()
    return results


# --- the report -------------------------------------------------------------------------------------------------


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


def _ratio(value: float) -> str:
    return f"{value:.2f}×"


def common_indices(results: Results, keys: Sequence[str]) -> list[int]:
    """Files every one of `keys` rendered: totals and ratios compare like with like."""
    return [i for i in range(len(results.files)) if all(results.timed(k, i) is not None for k in keys)]


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
    return f"per file {_ratio(min(r for _, r in pairs))}–{_ratio(max(r for _, r in pairs))}"


def _each(pairs: Sequence[tuple[str, float]], limit: float, unit: str = "files") -> str:
    """The per-item half of a verdict: every item within `limit`, or how many miss and the worst one."""
    missing = [(name, r) for name, r in pairs if r > limit]
    worst_name, worst = max(pairs, key=lambda kv: kv[1])
    if not missing:
        return f"PASS on all {len(pairs)} {unit} (worst `{worst_name}` {_ratio(worst)})"
    return (
        f"**MISS** on {len(missing)} of {len(pairs)} {unit}"
        f" (worst `{worst_name}` {_ratio(worst)}, over by {(worst / limit - 1) * 100:.0f} %)"
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
                    f"total {_ratio(total)} over {n} files (fastest pairs: {_ratio(fastest)}); {_spread(pairs)}",
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
                    f"total {_ratio(total)} over {n} files (fastest pairs: {_ratio(fastest)}); {_spread(pairs)}",
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
                    f"median {_ratio(statistics.median(r for _, r in pairs))}; {_spread(pairs)}",
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
        out.append(Verdict("layer zip ≤ 3 MB", f"`{_shown(LAYER_ZIP)}` not built (make layer)", "not measured"))
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
    """SSIM and bytes against sharp, per rendition, with quality.py's tolerances."""
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
                f"total {_ratio(total)}; per rendition {_ratio(min(r for _, r in byte_ratios))}"
                f"–{_ratio(max(r for _, r in byte_ratios))}",
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
    return Verdict(target, ", ".join(f"`{n}` {_ratio(r)}" for n, r in pairs), _each(pairs, DJPEG_FACTOR))


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
            f"| `{f.name}` | {_ms(thumb.ms)} (1/{thumb.shrink}) | {_ms(scales[8])} | {_ratio(thumb.ms / scales[8])} | "
            + (f"{_ms(at_ours)} | {_ratio(thumb.ms / at_ours)} |" if at_ours else "— | — |")
        )
    return "\n".join(lines)


def _shown(path: Path) -> str:
    try:
        return os.path.relpath(path, ROOT)
    except ValueError:
        return str(path)


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
        f"**Machine**: {quality.cpu_model()}, {os.cpu_count()} cores (CPU flags: {cpu_flags()});"
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
        f"**Corpus**: `{_shown(corpus)}`, {len(results.files)} files × presets "
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
        " preset (the smallest one that still covers the output where ours did not read the photo), Lanczos with"
        " our crop rule, then on the small image EXIF orientation, alpha onto"
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


# --- command line -----------------------------------------------------------------------------------------------


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(prog="python -m bench.speed", description=doc.split("\n\n")[0])
    parser.add_argument(
        "--corpus", type=Path, default=quality.DEFAULT_CORPUS, help="folder of photos (default: %(default)s)"
    )
    parser.add_argument(
        "--peers", default=",".join(PEER_NAMES), help=f"comma-separated, from {list(PEER_NAMES)} (default: all)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK.warmup} warm-up + {QUICK.runs} timed runs per figure (default {FULL.warmup} + {FULL.runs})",
    )
    parser.add_argument("--runs", type=int, help="timed runs per figure (overrides the default and --quick)")
    parser.add_argument("--warmup", type=int, help="warm-up runs per figure (at least 1)")
    cli.add_report_options(parser, DEFAULT_OUT, "tool")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.monotonic()

    def log(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    peers = cli.names(args.peers)
    unknown = sorted(set(peers) - set(PEER_NAMES))
    if unknown or not peers:
        log(f"unknown peers {unknown}; choose from {list(PEER_NAMES)}")
        return 2
    base = QUICK if args.quick else FULL
    runs = Runs(
        warmup=base.warmup if args.warmup is None else args.warmup,
        runs=base.runs if args.runs is None else args.runs,
        cold_runs=base.cold_runs if args.runs is None else max(args.runs, 1),
    )
    if runs.warmup < 1 or runs.runs < 1:
        log("expected --warmup ≥ 1 and --runs ≥ 1")
        return 2
    # Arguments first, then the environment: a typo is reported as a typo wherever a peer is missing.
    if "sharp" in peers and (reason := sharp_unavailable_reason()) is not None:
        log(f"sharp cannot run: {reason}. Run `make bench`, or leave sharp out of --peers")
        return 2
    if "pyvips" in peers and (reason := pyvips_unavailable_reason()) is not None:
        log(f"pyvips cannot run: {reason}. Run `make bench`, or leave pyvips out of --peers")
        return 2
    if not args.corpus.is_dir():
        log(f"no corpus folder at {args.corpus}")
        return 2
    files = quality.corpus_files(args.corpus)
    if not files:
        log(f"no files in {args.corpus}")
        return 2

    tools = [tool for name in PEER_NAMES if name in peers for tool in TOOLS[name]]
    presets = list(PRESETS.values())
    references = References(None if args.no_cache else args.cache_dir)
    versions = Ours().versions() if "ours" in peers else {}
    with tempfile.TemporaryDirectory(prefix="kiray-bench-") as tmp:
        outputs = args.outputs if args.outputs is not None else Path(tmp)
        results = run(files, presets, tools, runs, references, outputs, log)
    results.versions = {**versions, **{k: v for k, v in results.versions.items() if k != "kiray_imaging"}}
    results.seconds = time.monotonic() - start
    text = report(results, args.corpus)
    _write_atomic(args.out, text)
    print(text)
    log(f"wrote {_shown(args.out)} in {results.seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
