"""The gate on archives and folders: wheels and their tags, layer zips, folders, and the limits that keep a hostile
archive from turning it into a denial of service."""

from __future__ import annotations

import os
import stat
import threading
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.layer import elf_factory as ef
    from tests.layer.gate_support import (
        DASH,
        GLIBC_TOO_NEW,
        GOOD_KIND,
        MACOS_REASON,
        gate_module,
        good_members,
    )

    from kiray_imaging.tooling import layer_gate as gate
else:
    import elf_factory as ef
    import layer_gate as gate
    from gate_support import (
        DASH,
        GLIBC_TOO_NEW,
        GOOD_KIND,
        MACOS_REASON,
        gate_module,
        good_members,
    )


# --------------------------------------------------------------------------- wheels
def test_good_wheel_passes(tmp_path: Path) -> None:
    wheel = ef.make_wheel(tmp_path, good_members())
    expected = [gate.Finding("kiray_imaging/_core.abi3.so", GOOD_KIND, (2, 17), True, "")]
    assert gate.scan(wheel) == expected
    assert gate.verify(wheel) == expected


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("kiray_imaging-0.1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "abi tag cp312"),
        ("kiray_imaging-0.1.0-cp39-abi3-macosx_11_0_arm64.whl", "macOS"),
        ("kiray_imaging-0.1.0-cp39-abi3-linux_x86_64.whl", "plain linux tag"),
        ("kiray_imaging-0.1.0-cp39-abi3-win_amd64.whl", "Windows"),
    ],
)
def test_wheel_with_wrong_filename_tags_is_refused(tmp_path: Path, filename: str, expected: str) -> None:
    wheel = ef.make_wheel(tmp_path, good_members(), filename=filename)
    tag_findings = [f for f in gate.scan(wheel) if f.kind == "wheel tags"]
    assert tag_findings
    assert all(f.path == filename and not f.ok for f in tag_findings)
    assert any(expected in f.reason for f in tag_findings), tag_findings
    with pytest.raises(gate.GateError) as excinfo:
        gate.verify(wheel)
    assert f"REFUSED  {filename}: wheel tags {DASH}" in str(excinfo.value)


def test_wheel_metadata_tags_are_checked_too(tmp_path: Path) -> None:
    wheel = ef.make_wheel(
        tmp_path, good_members(), tags=("cp39-abi3-manylinux2014_x86_64", "cp39-abi3-macosx_11_0_arm64")
    )
    findings = gate.scan(wheel)
    tag_findings = [f for f in findings if f.kind == "wheel tags"]
    assert [f.path for f in tag_findings] == ["kiray_imaging-0.1.0.dist-info/WHEEL"]
    assert tag_findings[0].reason.startswith("Tag: cp39-abi3-macosx_11_0_arm64: platform tag macosx_11_0_arm64")
    with pytest.raises(gate.GateError):
        gate.verify(wheel)


def test_wheel_without_wheel_metadata_is_refused(tmp_path: Path) -> None:
    wheel = ef.make_wheel(tmp_path, good_members(), tags=None)
    problems = [f.reason for f in gate.scan(wheel) if f.kind == "wheel tags"]
    assert problems == ["the wheel has no *.dist-info/WHEEL file"]


def test_wheel_needing_new_glibc_is_refused(tmp_path: Path) -> None:
    members = good_members()
    members["kiray_imaging/_core.abi3.so"] = ef.elf_shared_object(("GLIBC_2.2.5", "GLIBC_2.28"))
    wheel = ef.make_wheel(tmp_path, members)
    with pytest.raises(gate.GateError) as excinfo:
        gate.verify(wheel)
    assert [f.path for f in excinfo.value.refused] == ["kiray_imaging/_core.abi3.so"]
    assert str(excinfo.value) == (
        f"REFUSED  kiray_imaging/_core.abi3.so: {GOOD_KIND} {DASH} needs GLIBC_2.28, {GLIBC_TOO_NEW}"
    )


def test_empty_wheel_is_refused(tmp_path: Path) -> None:
    wheel = ef.make_wheel(tmp_path, {"kiray_imaging/__init__.py": b"", "kiray_imaging/presets.py": b"X = 1\n"})
    assert gate.scan(wheel) == []
    with pytest.raises(gate.GateError) as excinfo:
        gate.verify(wheel)
    assert "the wheel contains no native binary at all" in str(excinfo.value)
    assert ef.GOOD_WHEEL_NAME in str(excinfo.value)


# --------------------------------------------------------------------------- layer zips and folders
def test_layer_zip_with_macos_extension_is_the_classic_crash(tmp_path: Path) -> None:
    layer = ef.make_zip(
        tmp_path / "layer.zip",
        {
            "python/pkg/__init__.py": b"",
            "python/pkg/_core.abi3.so": ef.macho(ef.CPU_TYPE_ARM64),
            "python/other/_speedups.so": ef.elf_shared_object(),
        },
    )
    findings = {f.path: f for f in gate.scan(layer)}
    assert set(findings) == {"python/pkg/_core.abi3.so", "python/other/_speedups.so"}
    assert findings["python/other/_speedups.so"].ok
    with pytest.raises(gate.GateError) as excinfo:
        gate.verify(layer)
    assert str(excinfo.value) == f"REFUSED  python/pkg/_core.abi3.so: Mach-O 64-bit arm64 {DASH} {MACOS_REASON}"
    assert excinfo.value.refused == (findings["python/pkg/_core.abi3.so"],)


def test_layer_zip_with_macos_node_addon(tmp_path: Path) -> None:
    node = "nodejs/node_modules/@img/sharp-darwin-arm64/lib/sharp-darwin-arm64.node"
    layer = ef.make_zip(tmp_path / "sharp-layer.zip", {node: ef.macho(ef.CPU_TYPE_ARM64, filetype=ef.MH_BUNDLE)})
    assert gate.scan(layer) == [gate.Finding(node, "Mach-O 64-bit arm64", None, False, MACOS_REASON)]


def test_magic_is_sniffed_whatever_the_extension(tmp_path: Path) -> None:
    layer = ef.make_zip(
        tmp_path / "layer.zip",
        {
            "bin/tool": ef.macho(ef.CPU_TYPE_X86_64, filetype=2),
            "python/data.bin": ef.build_elf(machine=ef.EM_AARCH64).data,
            "python/plain.dat": ef.random_bytes(),
        },
    )
    kinds = {f.path: f.kind for f in gate.scan(layer)}
    assert kinds == {"bin/tool": "Mach-O 64-bit x86_64", "python/data.bin": "ELF64 aarch64 shared object"}


@pytest.mark.parametrize(
    ("name", "detail"),
    [
        ("../evil.so", "'..'"),
        ("python/../../evil.so", "'..'"),
        ("/opt/python/evil.so", "absolute path"),
        ("C:/evil.so", "absolute path"),
        ("python\\..\\evil.so", "backslashes"),
    ],
)
def test_path_traversal_members_are_refused_not_extracted(tmp_path: Path, name: str, detail: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    layer = ef.make_zip(work / "layer.zip", {name: ef.elf_shared_object(), "python/ok.py": b""})
    findings = gate.scan(layer)
    assert len(findings) == 1
    assert findings[0].path == name
    assert findings[0].kind == "unsafe path"
    assert not findings[0].ok
    assert detail in findings[0].reason
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["layer.zip", "work"]


def test_symlink_members_are_not_judged_by_their_target_text(tmp_path: Path) -> None:
    path = tmp_path / "layer.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("python/lib/libfoo.so.1", ef.elf_shared_object())
        link = zipfile.ZipInfo("python/lib/libfoo.so")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "libfoo.so.1")
    assert [f.path for f in gate.scan(path)] == ["python/lib/libfoo.so.1"]


def test_corrupt_zip_is_refused_not_raised(tmp_path: Path) -> None:
    layer = tmp_path / "layer.zip"
    layer.write_bytes(ef.random_bytes(4096))
    [finding] = gate.scan(layer)
    assert finding.path == "layer.zip"
    assert finding.kind == "unreadable"
    assert finding.reason.startswith("not a readable zip archive")
    with pytest.raises(gate.GateError):
        gate.verify(layer)


def test_member_count_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gate, "MAX_MEMBERS", 3)
    layer = ef.make_zip(tmp_path / "layer.zip", {f"python/m{i}.py": b"" for i in range(5)})
    [finding] = gate.scan(layer)
    assert finding.reason == "archive lists 5 members, more than the 3 this gate inspects"


def test_oversized_binary_member_is_refused_without_reading_it_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gate, "MAX_MEMBER_BYTES", 1024 * 1024)
    bomb = ef.elf_shared_object() + bytes(16 * 1024 * 1024)  # compresses to a few KiB
    layer = ef.make_zip(tmp_path / "layer.zip", {"python/bomb.so": bomb, "python/big.dat": bytes(4 * 1024 * 1024)})
    assert layer.stat().st_size < 200_000
    start = time.perf_counter()
    findings = gate.scan(layer)
    assert time.perf_counter() - start < 5
    assert [(f.path, f.kind, f.ok) for f in findings] == [("python/bomb.so", "unreadable", False)]
    assert "too large to inspect" in findings[0].reason


def test_total_read_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = ef.elf_shared_object()
    monkeypatch.setattr(gate, "MAX_TOTAL_BYTES", len(good) + len(good) // 2)
    layer = ef.make_zip(tmp_path / "layer.zip", {"python/a.so": good, "python/b.so": good})
    findings = gate.scan(layer)
    assert [(f.path, f.ok) for f in findings] == [("python/a.so", True), ("python/b.so", False)]
    assert "total budget" in findings[1].reason


def _records_to_judge(data: bytes) -> int:
    policy = gate_module("policy")
    budget = policy.Budget(bytes_left=len(data), records_left=10**6, records_cap=10**6)
    assert gate_module("binaries").inspect_binary("x.so", data, policy.TARGETS["x86_64"], budget).ok
    left: int = budget.records_left
    return 10**6 - left


def test_total_elf_record_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Decoding a record costs far more than reading its bytes: the scan's records are capped as its bytes are.
    good = ef.elf_shared_object()
    cap = _records_to_judge(good) * 3 // 2
    monkeypatch.setattr(gate, "MAX_ELF_RECORDS", cap)
    folder = tmp_path / "folder" / "python"
    folder.mkdir(parents=True)
    (folder / "a.so").write_bytes(good)
    (folder / "b.so").write_bytes(good)
    zipped = ef.make_zip(tmp_path / "layer.zip", {"python/a.so": good, "python/b.so": good})
    for layer in (zipped, folder.parent):
        findings = gate.scan(layer)
        assert [(f.path, f.kind, f.ok) for f in findings] == [
            ("python/a.so", GOOD_KIND, True),
            ("python/b.so", GOOD_KIND, False),
        ]
        assert findings[1].reason == f"more than {cap} ELF records in this scan, more than this gate decodes"


def test_folder_scan(tmp_path: Path) -> None:
    root = tmp_path / "build"
    files = {
        "python/kiray_imaging/_core.abi3.so": ef.elf_shared_object(),
        "python/kiray_imaging/__init__.py": b"",
        "python/lib/libvips.dylib": ef.macho(ef.CPU_TYPE_X86_64, filetype=6),
        "python/lib/libold.so.1": ef.elf_shared_object(("GLIBC_2.34",)),
        "README.md": b"hello\n",
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    findings = gate.scan(root)
    assert [(f.path, f.kind, f.ok) for f in findings] == [
        ("python/kiray_imaging/_core.abi3.so", GOOD_KIND, True),
        ("python/lib/libold.so.1", GOOD_KIND, False),
        ("python/lib/libvips.dylib", "Mach-O 64-bit x86_64", False),
    ]
    with pytest.raises(gate.GateError) as excinfo:
        gate.verify(root)
    assert [f.path for f in excinfo.value.refused] == ["python/lib/libold.so.1", "python/lib/libvips.dylib"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_folder_scan_skips_fifos_instead_of_blocking(tmp_path: Path) -> None:
    (tmp_path / "good.so").write_bytes(ef.elf_shared_object())
    fifo = tmp_path / "pipe.so"
    os.mkfifo(fifo)
    results: list[list[gate.Finding]] = []
    worker = threading.Thread(target=lambda: results.append(gate.scan(tmp_path)), daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # hand the stuck reader an EOF
        worker.join(5)
        pytest.fail("scan() blocked reading a FIFO")
    assert [[f.path for f in findings] for findings in results] == [["good.so"]]


def test_single_file_scan(tmp_path: Path) -> None:
    path = tmp_path / "_core.abi3.so"
    path.write_bytes(ef.macho(ef.CPU_TYPE_ARM64))
    assert gate.scan(path) == [gate.Finding("_core.abi3.so", "Mach-O 64-bit arm64", None, False, MACOS_REASON)]


def test_missing_path_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        gate.scan(tmp_path / "nope.zip")
