"""Cold start: the import time of our package and of a handler module in fresh interpreters, and what the largest
imports under them are (``-X importtime``)."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

from bench.cli import ROOT

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


def cold_start(module: str, warmup: int, runs: int) -> ColdStart:
    """Import time of `module` in `runs` fresh interpreters after `warmup` more (median), measured inside the process
    so interpreter start-up is apart; the whole process's wall time beside it."""
    code = (
        f"import time; t = time.perf_counter(); import {module}; print('IMPORT_MS', (time.perf_counter() - t) * 1000);"
        " print('RSS_KB', open('/proc/self/status').read().split('VmRSS:')[1].split()[0])"
    )
    env = {**os.environ, **HANDLER_ENV}
    imports, walls, rss = [], [], []
    for i in range(warmup + runs):
        start = time.perf_counter_ns()
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120, check=False
        )
        wall = (time.perf_counter_ns() - start) / 1e6
        if proc.returncode != 0:
            lines = proc.stderr.strip().splitlines()
            return ColdStart(module, float("nan"), float("nan"), error=lines[-1] if lines else str(proc.returncode))
        if i >= warmup:
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
