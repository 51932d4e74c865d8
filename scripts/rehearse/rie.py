"""The Runtime Interface Emulator driving one sandbox: invocations in, responses and Lambda's REPORT lines out.

The emulator starts the runtime on the first invocation (so its own REPORT puts the init into that invocation's
Duration and shows ~0 ms of Init Duration), reports a fixed Max Memory Used (its own comment says it cannot know),
and bills Duration only. The REPORT lines here are Lambda's instead, from the emulator's own phase timings (its
`INIT REPORT` and `INVOKE RTDONE` log lines), the sandbox's memory cgroup, and Lambda's billing since August 2025
(a cold start's init is billed with its invocation: Billed Duration = ⌈Init Duration + Duration⌉).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from scripts.rehearse.sandbox import MemoryCgroup, megabytes

INVOKE_PATH = "/2015-03-31/functions/function/invocations"
_START = re.compile(r"^START RequestId: (\S+) ")
_INIT = re.compile(r"\(rapid\) INIT REPORT\(durationMs: ([\d.]+)\)")
_DONE = re.compile(r"\(rapid\) INVOKE RTDONE\(status: \w+, produced bytes: \d+, duration: ([\d.]+)ms\)")
_RIE_REPORT = re.compile(r"^REPORT RequestId: (\S+)\t.*?Duration: ([\d.]+) ms\tBilled")
_RESET = re.compile(r"\(rapid\) Reset initiated: (\w+)")
_TIMED_OUT = re.compile(r"^Task timed out after [\d.]+ seconds$")
_FATAL = re.compile(r"\(rapid\) First fatal error stored in appctx: (\S+)")
_FAILED = re.compile(r"\(rapid\) (?:Init|Invoke) failed (?:InvokeID=\S* )?error=(.*?)(?: InvokeID=\S*)?$")


@dataclass
class Report:
    """One invocation as Lambda's REPORT line gives it."""

    request_id: str
    duration_ms: float
    memory_size_mb: int
    max_memory_used_mb: int
    init_ms: float | None
    status: str = "success"
    """``success``, ``error`` or ``timeout``."""
    error_type: str | None = None

    @property
    def billed_ms(self) -> int:
        return math.ceil(self.duration_ms + (self.init_ms or 0.0))

    def line(self) -> str:
        parts = [
            f"REPORT RequestId: {self.request_id}",
            f"Duration: {self.duration_ms:.2f} ms",
            f"Billed Duration: {self.billed_ms} ms",
            f"Memory Size: {self.memory_size_mb} MB",
            f"Max Memory Used: {self.max_memory_used_mb} MB",
        ]
        if self.init_ms is not None:
            parts.append(f"Init Duration: {self.init_ms:.2f} ms")
        if self.status != "success":
            parts.append(f"Status: {self.status}")
        if self.error_type:
            parts.append(f"Error Type: {self.error_type}")
        return "\t".join(parts)


@dataclass
class Invocation:
    event_name: str
    status_code: int
    body: bytes
    report: Report
    lines: list[str] = field(default_factory=list)
    """What the emulator printed for it: the runtime's own output and the emulator's (rapid) log lines."""
    error_message: str = ""

    @property
    def result(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return self.body.decode(errors="replace")

    @property
    def error(self) -> str | None:
        """The error the runtime reported, as ``Type: message``; None when the handler returned normally."""
        if self.report.error_type:
            return f"{self.report.error_type}: {self.error_message}".rstrip(": ")
        return None

    @property
    def runtime_output(self) -> list[str]:
        return [line for line in self.lines if "(rapid)" not in line and not re.match(r"(START|END|REPORT) ", line)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Emulator:
    """`aws-lambda-rie` running ``bootstrap`` (which starts the sandboxed runtime) for one function."""

    def __init__(self, rie: Path, bootstrap: Path, handler: str, env: dict[str, str], cgroup: MemoryCgroup,
                 memory_mb: int, timeout_s: int, log: Path) -> None:  # fmt: skip
        self.cgroup, self.memory_mb, self.timeout_s = cgroup, memory_mb, timeout_s
        self.port = _free_port()
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._log = log.open("w")
        # --log-level: the function's LOG_LEVEL variable is the emulator's too; keep its own at info, whose phase
        # lines the reports are read from.
        command = [str(rie), "--log-level", "info", "--runtime-interface-emulator-address", f"127.0.0.1:{self.port}",
                   str(bootstrap), handler]  # fmt: skip
        self._process = subprocess.Popen(command, cwd="/", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)  # fmt: skip
        assert self._process.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self._process.stdout,), daemon=True)
        self._reader.start()
        self._wait_listening()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            line = raw.decode(errors="replace").rstrip("\r\n")
            self._log.write(line + "\n")
            self._log.flush()
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()

    def _wait_listening(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the emulator exited with {self._process.returncode}: {self._lines[-5:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return
            time.sleep(0.05)
        raise RuntimeError(f"the emulator did not listen on 127.0.0.1:{self.port} within {timeout:.0f} s")

    def _await_line(self, start: int, pattern: re.Pattern[str], timeout: float) -> re.Match[str] | None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self._lines[start:]:
                    match = pattern.search(line)
                    if match:
                        return match
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(remaining)

    def invoke(self, event_name: str, event: Any) -> Invocation:
        with self._changed:
            start = len(self._lines)
        kills = self.cgroup.oom_kills()
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{INVOKE_PATH}", data=json.dumps(event).encode(),
                                         method="POST")  # fmt: skip
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s + 30) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read()
        wall_ms = (time.monotonic() - started) * 1000
        timed_out = bool(_TIMED_OUT.match(body.decode(errors="replace").strip()))
        failed = status >= 400
        # What ends an invocation in the emulator's log: its REPORT line, or for a failed one the reset it starts.
        self._await_line(start, _RESET if failed else _RIE_REPORT, timeout=10.0)
        with self._changed:
            lines = self._lines[start:]
        report, message = self._report(lines, status, body, wall_ms, timed_out, kills)
        return Invocation(event_name, status, body, report, lines, message)

    def _report(self, lines: list[str], status: int, body: bytes, wall_ms: float, timed_out: bool,
                kills_before: int) -> tuple[Report, str]:  # fmt: skip
        """The REPORT, and the error's message when the runtime reported one."""
        text = "\n".join(lines)
        request_id = next((m.group(1) for m in map(_START.match, lines) if m), "-")
        inits = [float(m.group(1)) for m in _INIT.finditer(text)]
        done = _DONE.search(text)
        rie_report = next((m for m in map(_RIE_REPORT.match, lines) if m), None)
        init_ms = inits[0] if inits else None
        if done:
            duration = float(done.group(1))
        elif timed_out and rie_report:
            duration = float(rie_report.group(2))
        else:
            duration = max(wall_ms - (init_ms or 0.0), 0.0)
        report = Report(request_id, duration, self.memory_mb, megabytes(self.cgroup.peak_bytes()), init_ms)
        try:
            result = json.loads(body)
        except ValueError:
            result = None
        failed = next((m.group(1) for m in map(_FAILED.search, lines) if m), "")
        if self.cgroup.oom_kills() > kills_before:
            # What Lambda names it; the emulator only sees the runtime killed (Runtime.ExitError, signal 9).
            report.status, report.error_type = "error", "Runtime.OutOfMemory"
            return report, f"{failed or 'killed'} (the sandbox reached its {self.memory_mb} MB)"
        if timed_out:
            report.status, report.error_type = "timeout", "Sandbox.Timedout"
            return report, body.decode(errors="replace").strip()
        if isinstance(result, dict) and {"errorType", "errorMessage"} <= set(result):
            report.status, report.error_type = "error", str(result["errorType"])
            return report, str(result["errorMessage"])
        if status >= 400:  # the runtime died before it could report anything itself
            fatal = next((m.group(1) for m in map(_FATAL.search, lines) if m), f"HTTP {status}")
            report.status, report.error_type = "error", fatal
            return report, failed or body.decode(errors="replace").strip()
        return report, ""

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._reader.join(timeout=5)
        self._log.close()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
