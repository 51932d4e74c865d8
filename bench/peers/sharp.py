"""sharp (libvips), the production pipeline being replaced, run by peers/sharp_render.mjs in one Node process."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.peers import Job, Outcome, Rendered, Skipped

BENCH_DIR = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve().with_name("sharp_render.mjs")
# Generous: it bounds a hung Node process, not a slow run (the whole corpus takes seconds).
TIMEOUT_S = 600.0


class SharpUnavailableError(RuntimeError):
    """Node or the bench's sharp install is missing."""


def unavailable_reason() -> str | None:
    """Why sharp cannot run here (None when it can): the report and the tests both need to say so plainly."""
    if shutil.which("node") is None:
        return "node is not on PATH"
    if not (BENCH_DIR / "node_modules" / "sharp" / "package.json").is_file():
        return "sharp is not installed (npm ci --prefix bench)"
    return None


def _run(args: list[str], stdin: str | None = None) -> str:
    reason = unavailable_reason()
    if reason is not None:
        raise SharpUnavailableError(reason)
    proc = subprocess.run(
        ["node", str(SCRIPT), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=BENCH_DIR,
        timeout=TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"sharp_render.mjs exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def job_json(job: Job) -> dict[str, Any]:
    """The preset travels as numbers, from our presets.py, so sharp cannot be configured differently by accident."""
    p = job.preset
    return {
        "input": str(job.source),
        "output": str(job.output),
        "preset": p.name,
        "width": p.width,
        "height": p.height,
        "fit": p.fit,
        "quality": p.quality,
    }


class Sharp:
    name = "sharp"

    def versions(self) -> dict[str, str]:
        found = json.loads(_run(["--versions"]))
        return {"sharp": str(found["sharp"]), "libvips": str(found["libvips"])}

    def render_all(self, jobs: Sequence[Job]) -> list[Outcome]:
        if not jobs:
            return []
        for job in jobs:
            job.output.parent.mkdir(parents=True, exist_ok=True)
        lines = _run(["-"], stdin=json.dumps([job_json(job) for job in jobs])).splitlines()
        if len(lines) != len(jobs):
            raise RuntimeError(f"sharp_render.mjs answered {len(lines)} lines for {len(jobs)} jobs")
        outcomes: list[Outcome] = []
        for job, line in zip(jobs, lines):
            answer = json.loads(line)
            if answer["input"] != str(job.source) or answer["preset"] != job.preset.name:
                raise RuntimeError(f"sharp_render.mjs answered out of order: {line}")
            if answer["ok"]:
                data = job.output.read_bytes()
                outcomes.append(Rendered(data=data, width=answer["width"], height=answer["height"], ms=answer["ms"]))
            else:
                outcomes.append(Skipped(str(answer["reason"]), unsupported=bool(answer["unsupported"])))
        return outcomes
