"""Runs `kiray_imaging.render` in a fresh interpreter, fenced in, and reports what happened.

The child gets an address-space limit (so a runaway allocation fails inside it, not in the test run), a CPU-time
limit, a wall-clock kill and no core dumps. It reads the input from a file, renders once and prints one JSON line:
the outcome (a rendition's facts, or the `ImageError` subclass and message), the render's wall-clock and CPU time,
the read/write system calls it made, its peak resident set, and whether the input bytes were left intact. Anything
that is not an `ImageError` (PyO3's `PanicException`, a `ValueError`, a signal) is not caught in the child, so it
shows up here as a failed child rather than as an outcome.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# What the issue allows one render of one hostile upload.
MAX_RSS_BYTES = 256 << 20
MAX_RENDER_SECONDS = 2.0
# The fences around the child. Address space is virtual: the interpreter and the core map ~80 MB and every malloc
# arena reserves more, so the cap sits well above the resident ceiling (asserted separately, from VmHWM) and equals
# the Lambda's memory size: what would be an out-of-memory kill there is an allocation failure here. The CPU and
# wall-clock kills are generous so that a slow, loaded machine reports a time instead of a kill.
ADDRESS_SPACE_BYTES = 1 << 30
CPU_SECONDS = 30
KILL_AFTER_SECONDS = 60.0

# Helpers every child script starts with.
_PRELUDE = r"""
import hashlib, json, sys, time


def peak_rss_kb():
    # VmHWM, the resident high-water mark of this process image since exec. Not ru_maxrss: Linux carries the
    # parent's resident size at fork into the child's ru_maxrss, so a test run that had built a big image in the
    # parent would show up here.
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def io_calls():
    # /proc/self/io counts read- and write-family system calls on anything: files, sockets, pipes. Rendering bytes
    # already in memory needs none, so an increase means the core went looking for something (XXE, SSRF, a file).
    with open("/proc/self/io") as f:
        fields = dict(line.split(": ") for line in f.read().splitlines())
    return int(fields["syscr"]) + int(fields["syscw"])


# What reading /proc/self/io itself costs, so that it can be taken off.
_a = io_calls()
IO_OVERHEAD = io_calls() - _a
"""

_RENDER = r"""
import kiray_imaging

input_path, output_path, kwargs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
with open(input_path, "rb") as f:
    data = f.read()
digest = hashlib.sha256(data).digest()
baseline_rss_kb = peak_rss_kb()
io_before = io_calls()
cpu_started = time.process_time()
started = time.perf_counter()
try:
    r = kiray_imaging.render(data, **kwargs)
except kiray_imaging.ImageError as e:
    result = {"kind": type(e).__name__, "message": str(e)}
else:
    result = {
        "kind": "ok",
        "width": r.width,
        "height": r.height,
        "format": r.format,
        "source_format": r.source_format,
        "source_width": r.source_width,
        "source_height": r.source_height,
        "orientation": r.orientation,
        "shrink_on_load": r.shrink_on_load,
    }
    rendered = r.data
result["seconds"] = time.perf_counter() - started
result["cpu_seconds"] = time.process_time() - cpu_started
result["io_calls"] = io_calls() - io_before - IO_OVERHEAD
result["peak_rss_kb"] = peak_rss_kb()
result["baseline_rss_kb"] = baseline_rss_kb
result["input_intact"] = hashlib.sha256(data).digest() == digest
if result["kind"] == "ok":
    with open(output_path, "wb") as f:
        f.write(rendered)
print(json.dumps(result))
"""


@dataclass(frozen=True)
class Outcome:
    kind: str
    """``ok``, or the name of the `ImageError` subclass raised."""
    message: str
    seconds: float
    cpu_seconds: float
    io_calls: int
    peak_rss_bytes: int
    baseline_rss_bytes: int
    input_intact: bool
    facts: dict[str, Any] = field(default_factory=dict)
    """For ``ok``: width, height, format, source_format, source_width, source_height, orientation,
    shrink_on_load."""
    output: bytes = field(default=b"", repr=False)

    def __str__(self) -> str:
        what = self.message if self.kind != "ok" else str(self.facts)
        return (
            f"{self.kind}: {what} ({self.seconds * 1000:.0f} ms, cpu {self.cpu_seconds * 1000:.0f} ms, "
            f"peak RSS {self.peak_rss_bytes / 2**20:.1f} MiB, {self.io_calls} I/O calls)"
        )


class ChildFailedError(AssertionError):
    """The child did not report: it crashed (a signal), let a non-`ImageError` escape, or was killed."""


def _fence() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_BYTES, ADDRESS_SPACE_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _child_env() -> dict[str, str]:
    # Only what the interpreter needs: no AWS settings or proxies reach a render that must not use them.
    keep = ("PATH", "LANG", "LC_ALL", "HOME", "TMPDIR")
    return {k: v for k, v in os.environ.items() if k in keep}


def run_script(script: str, *args: str, kill_after: float = KILL_AFTER_SECONDS) -> dict[str, Any]:
    """Runs `script` (after the helpers above) in a fenced child with `args` as ``sys.argv[1:]`` and returns the
    JSON object it prints last. Raises `ChildFailedError` if it does not get that far."""
    command = [sys.executable, "-I", "-c", _PRELUDE + script, *args]
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_fence, env=_child_env()
    )
    try:
        stdout, stderr = child.communicate(timeout=kill_after)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        raise ChildFailedError(f"the child did not finish in {kill_after} s and was killed") from None
    tail = stderr.decode(errors="replace")[-3000:]
    if child.returncode < 0:
        raise ChildFailedError(f"the child died of signal {-child.returncode}; stderr:\n{tail}")
    if child.returncode != 0:
        raise ChildFailedError(f"the child exited with {child.returncode} (not an ImageError); stderr:\n{tail}")
    lines = stdout.decode().splitlines()
    if not lines:
        raise ChildFailedError(f"the child printed nothing; stderr:\n{tail}")
    report: dict[str, Any] = json.loads(lines[-1])
    return report


def run(
    data: bytes,
    preset: str = "thumbnail",
    *,
    format: str = "jpeg",
    max_pixels: int | None = None,
    filename: str = "upload.jpg",
) -> Outcome:
    """Renders `data` once in a fenced child. `filename` is what the input file is called there; the core never
    sees it (it sniffs the bytes), which is the point of giving an HTML file a ``.jpg`` name."""
    kwargs: dict[str, Any] = {"preset": preset, "format": format}
    if max_pixels is not None:
        kwargs["max_pixels"] = max_pixels
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        source, rendered = Path(tmp) / filename, Path(tmp) / "rendered.out"
        source.write_bytes(data)
        report = run_script(_RENDER, str(source), str(rendered), json.dumps(kwargs))
        output = rendered.read_bytes() if report["kind"] == "ok" else b""
        if source.read_bytes() != data:
            raise AssertionError("the input file was modified")
    common = ("kind", "message", "seconds", "cpu_seconds", "io_calls", "peak_rss_kb", "baseline_rss_kb")
    values = {k: report.pop(k, "") for k in common}
    intact = bool(report.pop("input_intact"))
    return Outcome(
        kind=values["kind"],
        message=values["message"],
        seconds=values["seconds"],
        cpu_seconds=values["cpu_seconds"],
        io_calls=values["io_calls"],
        peak_rss_bytes=values["peak_rss_kb"] * 1024,
        baseline_rss_bytes=values["baseline_rss_kb"] * 1024,
        input_intact=intact,
        facts=report,
        output=output,
    )
