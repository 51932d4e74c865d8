"""Helpers of the rehearsal tests: run the rehearsal, and craft the broken layers and functions it is given."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "target" / "rehearse" / "package"
TEMPLATE = "cloudformation-template-update-stack.json"
THUMBNAIL = "generate-thumbnail"


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str
    report: dict[str, Any]

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def rehearse(*args: str, tmp: Path, timeout: float = 600) -> Run:
    """`python -m scripts.rehearse ARGS` (what `make rehearse` runs after its prerequisites), with a JSON report."""
    report = tmp / f"report-{len(list(tmp.glob('report-*')))}.json"
    command = [sys.executable, "-m", "scripts.rehearse", *args, "--json-report", str(report)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    loaded = json.loads(report.read_text()) if report.is_file() else {}
    return Run(result.returncode, result.stdout, result.stderr, loaded)


def rewrite_zip(source: Path, dest: Path, change: Callable[[str, bytes], tuple[str, bytes] | None]) -> Path:
    """``source`` copied member by member through ``change`` (None drops a member), permissions kept."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            changed = change(info.filename, src.read(info))
            if changed is None:
                continue
            member = zipfile.ZipInfo(changed[0], info.date_time)
            member.external_attr = info.external_attr
            out.writestr(member, changed[1])
    return dest


def write_zip(dest: Path, members: Mapping[str, bytes]) -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as out:
        for name, data in members.items():
            member = zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0))
            member.external_attr = 0o644 << 16
            out.writestr(member, data)
    return dest


def craft_package(package: Path, dest: Path, *, code: Mapping[str, bytes] | None = None, handler: str | None = None,
                  memory_mb: int | None = None, timeout_s: int | None = None) -> Path:  # fmt: skip
    """A copy of ``package`` with the thumbnail function only, its zip, handler, memory size or timeout replaced, as a
    changed serverless.yml would package it."""
    dest.mkdir(parents=True)
    for name in ("serverless-state.json", f"{THUMBNAIL}.zip"):
        shutil.copy2(package / name, dest / name)
    template = json.loads((package / TEMPLATE).read_text())
    resources = template["Resources"]
    for logical_id in [k for k, v in resources.items() if v["Type"] == "AWS::Lambda::Function"]:
        props = resources[logical_id]["Properties"]
        if not props["Code"]["S3Key"].endswith(f"/{THUMBNAIL}.zip"):
            del resources[logical_id]
            continue
        if handler is not None:
            props["Handler"] = handler
        if memory_mb is not None:
            props["MemorySize"] = memory_mb
        if timeout_s is not None:
            props["Timeout"] = timeout_s
    if code is not None:
        write_zip(dest / f"{THUMBNAIL}.zip", code)
    (dest / TEMPLATE).write_text(json.dumps(template))
    return dest
