"""`make rehearse`: the packaged functions in Lambda's runtime interface emulator, and the broken artifacts it
catches with the runtime's own error (scripts/rehearse/, docs/deploying.md "Rehearse before deploying")."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from tests.contract.validate import as_eventbridge_delivers, validate_event
from tests.layer import elf_factory

if TYPE_CHECKING:
    from tests.rehearse.rehearse_helpers import PACKAGE, THUMBNAIL, Run, craft_package, rehearse, rewrite_zip
else:
    from rehearse_helpers import PACKAGE, THUMBNAIL, Run, craft_package, rehearse, rewrite_zip

CORE = "python/kiray_imaging/_core.abi3.so"
# Lambda's REPORT line, field by field (docs: "Monitoring Lambda functions": the REPORT log line).
REPORT = re.compile(
    r"^  REPORT RequestId: [0-9a-f-]{36}\tDuration: \d+\.\d\d ms\tBilled Duration: (\d+) ms\tMemory Size: 1024 MB\t"
    r"Max Memory Used: (\d+) MB(\tInit Duration: \d+\.\d\d ms)?$",
    re.MULTILINE,
)
EVENTS = [
    "EventBridge Object Created",
    "S3 notification records",
    "Batch Operations task (schema 2.0)",
    "Batch Operations task (schema 1.0)",
    "broken upload (HTML named .jpg)",
    "EventBridge Object Deleted (the photo is still there)",
    "S3 ObjectRemoved:Delete (nothing was ever rendered)",
]


def test_the_packaged_functions_pass_the_rehearsal(rehearsal: Run) -> None:
    assert rehearsal.returncode == 0, rehearsal.output[-6000:]
    assert "rehearse: passed (14 invocations)" in rehearsal.stdout
    # Every invocation printed its REPORT line; only each function's first one is a cold start.
    lines = REPORT.findall(rehearsal.stdout)
    assert len(lines) == 14
    assert [bool(init) for _, _, init in lines] == [True] + [False] * 6 + [True] + [False] * 6
    for name in (THUMBNAIL, "generate-medium"):
        invocations = rehearsal.report["functions"][name]
        assert [i["event"] for i in invocations] == EVENTS
        assert all(i["status_code"] == 200 and i["error"] is None for i in invocations)
        reports = [i["report"] for i in invocations]
        cold = reports[0]
        assert cold["init_ms"] > 0
        # Billed as Lambda bills a cold start since August 2025: init and invocation together, rounded up.
        assert cold["billed_ms"] == -(-(cold["init_ms"] + cold["duration_ms"]) // 1)
        # Read from the sandbox's memory cgroup: a real peak (the interpreter, the core, a 13 MP decode), not the
        # memory size the emulator would print.
        assert all(20 < r["max_memory_used_mb"] < 1024 for r in reports)
        assert [r["max_memory_used_mb"] for r in reports] == sorted(r["max_memory_used_mb"] for r in reports)
    # What landed in the bucket: both functions' renditions of the five photos, and nothing else.
    assert "renditions in the bucket (20):" in rehearsal.stdout  # 5 uploads: thumbnail 1x + 2x, medium JPEG + WebP
    assert re.search(r"renditions/thumbnail/rehearsal/s3/küche.png/[0-9a-f]{16}.jpg: JPEG 400x300", rehearsal.stdout)
    assert re.search(r"renditions/medium/rehearsal/eventbridge/living room.jpg/[0-9a-f]{16}.webp: WEBP 1280x",
                     rehearsal.stdout)  # fmt: skip
    in_bucket = rehearsal.stdout.split("renditions in the bucket")[1].split("events for the backend")[0]
    assert "rehearsal/broken/" not in in_bucket
    # And what the backend was told, through the layer's own EventBridge client: one event per function and case.
    assert "events for the backend (14):" in rehearsal.stdout
    assert len(rehearsal.report["events"]) == 14
    for envelope in rehearsal.report["events"]:
        validate_event(as_eventbridge_delivers(envelope))
    assert "  Rendition Failed (thumbnail) uploads/rehearsal/broken/notes.jpg" in rehearsal.stdout
    assert "  Renditions Deleted (medium) uploads/rehearsal/never/rendered.jpg" in rehearsal.stdout
    figures = [line for line in rehearsal.stdout.splitlines() if "REPORT" in line or "Init Duration" in line]
    print("\n" + "\n".join(figures))


def _broken_layer(layer_zip: Path, tmp_path: Path, name: str, core: tuple[str, bytes] | None) -> Run:
    """The real layer with its native module replaced by ``core`` (None: left out), rehearsed as a downloaded layer
    would be: through the runtime, without the build's gate."""
    broken = rewrite_zip(layer_zip, tmp_path / name, lambda member, data: (member, data) if member != CORE else core)
    return broken_run(broken, tmp_path)


def broken_run(layer: Path, tmp_path: Path) -> Run:
    return rehearse("--package-dir", str(PACKAGE), "--layer", str(layer), "--function", THUMBNAIL, tmp=tmp_path)


def assert_runtime_error(run: Run, error: str) -> None:
    assert run.returncode == 1, run.output[-4000:]
    assert f"the runtime reported {error}" in run.stderr, run.output[-4000:]
    (invocation,) = run.report["functions"][THUMBNAIL]
    assert invocation["report"]["status"] == "error"
    assert invocation["report"]["line"].endswith(f"Error Type: {error.split(':')[0]}")


def test_a_layer_without_its_native_module_fails_with_import_module_error(package: Path, layer_zip: Path,
                                                                         tmp_path: Path) -> None:  # fmt: skip
    run = _broken_layer(layer_zip, tmp_path, "no-core.zip", None)
    assert_runtime_error(run, "Runtime.ImportModuleError: Unable to import module 'py_handlers/generate_thumbnail': "
                         "No module named 'kiray_imaging._core'")  # fmt: skip


def test_a_mach_o_native_module_fails_with_invalid_elf_header(package: Path, layer_zip: Path, tmp_path: Path) -> None:
    run = _broken_layer(layer_zip, tmp_path, "mach-o.zip", (CORE, elf_factory.macho(elf_factory.CPU_TYPE_X86_64)))
    assert_runtime_error(run, "Runtime.ImportModuleError: Unable to import module 'py_handlers/generate_thumbnail': "
                         "/opt/python/kiray_imaging/_core.abi3.so: invalid ELF header")  # fmt: skip


def test_a_cpython_311_only_wheel_is_not_imported_by_python_3_12(package: Path, layer_zip: Path,
                                                                 tmp_path: Path) -> None:  # fmt: skip
    """A layer unpacked from a wheel built for CPython 3.11 (not abi3): its extension's name carries its version,
    and 3.12 looks for it under its own names only."""

    def cp311(member: str, data: bytes) -> tuple[str, bytes]:
        if member == CORE:
            return member.replace(".abi3.so", ".cpython-311-x86_64-linux-gnu.so"), data
        if member.endswith(".dist-info/WHEEL"):
            return member, re.sub(rb"Tag: .*", b"Tag: cp311-cp311-manylinux_2_17_x86_64", data)
        return member, data

    run = broken_run(rewrite_zip(layer_zip, tmp_path / "cp311.zip", cp311), tmp_path)
    assert_runtime_error(run, "Runtime.ImportModuleError: Unable to import module 'py_handlers/generate_thumbnail': "
                         "No module named 'kiray_imaging._core'")  # fmt: skip


def test_a_function_zip_without_the_handler_path_fails_with_import_module_error(package: Path,
                                                                                tmp_path: Path) -> None:  # fmt: skip
    """The handler file zipped at another path than `handler:` names (a packaging pattern that moved it)."""
    handler = (Path(__file__).resolve().parents[2] / "py_handlers" / "generate_thumbnail.py").read_bytes()
    crafted = craft_package(package, tmp_path / "package", code={"handlers/generate_thumbnail.py": handler})
    run = rehearse("--package-dir", str(crafted), tmp=tmp_path)
    assert_runtime_error(run, "Runtime.ImportModuleError: Unable to import module 'py_handlers/generate_thumbnail': "
                         "No module named 'py_handlers'")  # fmt: skip
