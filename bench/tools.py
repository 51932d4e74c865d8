"""The tools the speed benchmark times, and the protocol it speaks with their child processes.

Each tool runs in processes of its own, with its native API: bench/speed_runner.py for ours, Pillow-draft and pyvips,
bench/peers/sharp_bench.mjs for sharp. A ``serve`` process lives for the whole run and answers one JSON request a
line (`Runner`); ``rss``, ``idle`` and ``versions`` are one fresh process each. Presets travel as numbers from
kiray_imaging.presets, and with each photo our core's plan for it (`peer_plans`), so no child re-derives either.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

import kiray_imaging
from bench import speed_runner
from bench.cli import ROOT
from kiray_imaging.presets import Preset

BENCH_DIR = ROOT / "bench"
SHARP_SCRIPT = BENCH_DIR / "peers" / "sharp_bench.mjs"

PEER_NAMES = ("ours", "pillow", "pyvips", "sharp")

# Generous: each bounds a hung process, not a slow run.
REQUEST_TIMEOUT_S = 600.0
RSS_TIMEOUT_S = 300.0


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


# --- what travels to the children -------------------------------------------------------------------------------


def preset_json(preset: Preset) -> dict[str, Any]:
    return {
        "name": preset.name,
        "width": preset.width,
        "height": preset.height,
        "fit": preset.fit,
        "quality": preset.quality,
    }


def peer_plans(path: Path, presets: Sequence[Preset], shrink: Mapping[str, int]) -> dict[str, dict[str, Any]]:
    """Our core's plan (`kiray_imaging.plan`) of the photo at `path` for each preset, as numbers for the children
    (`speed_runner.PlanSpec`): Pillow-draft crops by it, and the peers that shrink a JPEG on load themselves take its
    shrink, so they decode and crop as our core does.

    `shrink` is our core's actual choice for this photo, where it read it: it wins over the plan's, which cannot know
    whether the decoder makes an eighth cheaply (that depends on the JPEG's scans, `eighth_is_cheap`). The plan's
    own, with the core's margin, serves where ours did not read the photo. Empty where Pillow cannot read the
    header; then neither can the Pillow child, the one peer that needs a plan to render at all.
    """
    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = speed_runner.exif_orientation(image)
    except (OSError, ValueError, Image.DecompressionBombError):
        return {}
    plans: dict[str, dict[str, Any]] = {}
    for preset in presets:
        plan = kiray_imaging.plan(width, height, preset, orientation=orientation)
        plans[preset.name] = {
            "crop_left": plan.crop_left,
            "crop_top": plan.crop_top,
            "crop_width": plan.crop_width,
            "crop_height": plan.crop_height,
            "out_width": plan.out_width,
            "out_height": plan.out_height,
            "shrink_on_load": shrink.get(preset.name, plan.shrink_on_load),
        }
    return plans


# --- the processes ----------------------------------------------------------------------------------------------


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


def peak_rss_kb(tool: Tool, file: Path, presets: Sequence[Preset], plans: dict[str, dict[str, Any]]) -> int | None:
    """Peak RSS of a fresh process rendering `file` with every preset once; None where the tool cannot read it."""
    request = {"file": str(file), "presets": [preset_json(p) for p in presets], "plans": plans}
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
