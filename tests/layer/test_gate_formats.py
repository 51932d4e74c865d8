"""The gate on what is not ELF (Mach-O, PE, files named like a library that are not one) and on wheel file names."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.layer import elf_factory as ef
    from tests.layer.gate_support import (
        MACOS_REASON,
        WINDOWS_REASON,
        judge,
    )

    from kiray_imaging.tooling import layer_gate as gate
else:
    import elf_factory as ef
    import layer_gate as gate
    from gate_support import (
        MACOS_REASON,
        WINDOWS_REASON,
        judge,
    )


# --------------------------------------------------------------------------- other formats
@pytest.mark.parametrize(
    ("cputype", "bits", "little", "kind"),
    [
        (ef.CPU_TYPE_ARM64, 64, True, "Mach-O 64-bit arm64"),
        (ef.CPU_TYPE_X86_64, 64, True, "Mach-O 64-bit x86_64"),
        (ef.CPU_TYPE_X86_64, 64, False, "Mach-O 64-bit x86_64"),
        (ef.CPU_TYPE_X86, 32, True, "Mach-O 32-bit i386"),
        (ef.CPU_TYPE_POWERPC, 32, False, "Mach-O 32-bit ppc"),
    ],
)
def test_macho_is_refused_and_named(cputype: int, bits: int, little: bool, kind: str) -> None:
    finding = judge(ef.macho(cputype, bits=bits, little=little), "pkg/_core.abi3.so")
    assert finding == gate.Finding(path="pkg/_core.abi3.so", kind=kind, max_glibc=None, ok=False, reason=MACOS_REASON)


def test_truncated_macho_is_still_refused() -> None:
    finding = judge(ef.macho(ef.CPU_TYPE_ARM64)[:6])
    assert finding.kind == "Mach-O 64-bit (truncated)"
    assert not finding.ok


def test_universal_macho_lists_its_architectures() -> None:
    finding = judge(ef.fat_macho([ef.CPU_TYPE_X86_64, ef.CPU_TYPE_ARM64]), "libvips.dylib")
    assert finding.kind == "Mach-O universal (x86_64, arm64)"
    assert finding.reason == MACOS_REASON


def test_java_class_is_not_a_native_binary() -> None:
    assert gate.inspect_binary("org/example/Main.class", ef.java_class()) is None


def test_cafebabe_named_like_a_library_is_refused() -> None:
    finding = judge(ef.java_class(), "x.so")
    assert finding.kind == "Mach-O universal or Java class"
    assert not finding.ok


@pytest.mark.parametrize(
    ("machine", "plus", "kind"),
    [(ef.PE_AMD64, True, "PE32+ AMD64"), (ef.PE_ARM64, True, "PE32+ ARM64"), (ef.PE_I386, False, "PE32 i386")],
)
def test_pe_is_refused_and_named(machine: int, plus: bool, kind: str) -> None:
    finding = judge(ef.pe(machine, pe32_plus=plus), "_core.pyd")
    assert finding == gate.Finding(path="_core.pyd", kind=kind, max_glibc=None, ok=False, reason=WINDOWS_REASON)


def test_mz_without_pe_header() -> None:
    stub = b"MZ" + bytes(100)
    assert gate.inspect_binary("notes.txt", stub) is None
    finding = judge(stub, "helper.dll")
    assert finding.kind == "MS-DOS/PE executable (PE header unreadable)"
    assert finding.reason == WINDOWS_REASON


@pytest.mark.parametrize("name", ["x.so", "libfoo.so.1.2", "addon.node", "libfoo.dylib", "_core.pyd", "FOO.DLL"])
def test_native_name_without_binary_magic_is_refused(name: str) -> None:
    finding = judge(ef.random_bytes(), name)
    assert finding.kind == "not a binary"
    assert not finding.ok
    assert "named like a native library but is not ELF, Mach-O or PE" in finding.reason
    assert "invalid ELF header" in finding.reason


def test_empty_library_is_refused() -> None:
    finding = judge(b"", "x.so")
    assert finding.kind == "not a binary"
    assert finding.reason == "empty file named like a native library"


@pytest.mark.parametrize(
    ("name", "data"),
    [("x.dat", ef.random_bytes()), ("README.md", b"# kiray\n"), ("pkg/__init__.py", b"import os\n"), ("x.so.txt", b"")],
)
def test_ordinary_files_are_not_findings(name: str, data: bytes) -> None:
    assert gate.inspect_binary(name, data) is None


# --------------------------------------------------------------------------- wheel names
@pytest.mark.parametrize(
    "filename",
    [
        ef.GOOD_WHEEL_NAME,
        "kiray_imaging-0.1.0-cp39-abi3-manylinux2014_x86_64.whl",
        "kiray_imaging-0.1.0-cp39-abi3-manylinux_2_17_x86_64.whl",
        "kiray_imaging-0.1.0-cp312-abi3-manylinux_2_12_x86_64.manylinux2010_x86_64.whl",
        "kiray_imaging-0.1.0-1-cp39-abi3-manylinux1_x86_64.whl",
        "dist/kiray_imaging-0.1.0-cp39-abi3-manylinux_2_5_x86_64.whl",
    ],
)
def test_good_wheel_names(filename: str) -> None:
    assert gate.inspect_wheel_name(filename) == []


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("kiray_imaging-0.1.0-cp312-cp312-manylinux_2_17_x86_64.whl", "abi tag cp312 is not abi3"),
        ("kiray_imaging-0.1.0-cp39-abi3-macosx_11_0_arm64.whl", "platform tag macosx_11_0_arm64 is for macOS"),
        ("kiray_imaging-0.1.0-cp39-abi3-linux_x86_64.whl", "linux_x86_64 is a plain linux tag"),
        ("kiray_imaging-0.1.0-cp39-abi3-win_amd64.whl", "platform tag win_amd64 is for Windows"),
        ("kiray_imaging-0.1.0-cp39-abi3-manylinux2014_aarch64.whl", "manylinux2014_aarch64 is for aarch64"),
        ("kiray_imaging-0.1.0-cp39-abi3-manylinux_2_28_x86_64.whl", "promises only glibc 2.28"),
        ("kiray_imaging-0.1.0-cp39-abi3-musllinux_1_2_x86_64.whl", "is for musl libc"),
        ("kiray_imaging-0.1.0-py3-none-any.whl", "python tag py3 is not cp3X"),
        ("kiray_imaging-0.1.0-cp39-abi3-manylinux2014_x86_64.macosx_11_0_arm64.whl", "is for macOS"),
        ("kiray_imaging.whl", "is not a valid wheel file name"),
        ("kiray_imaging-0.1.0-cp39-abi3-manylinux2014_x86_64.zip", "no .whl suffix"),
    ],
)
def test_bad_wheel_names(filename: str, expected: str) -> None:
    problems = gate.inspect_wheel_name(filename)
    assert any(expected in p for p in problems), problems


def test_wheel_without_a_usable_platform_says_what_is_wanted() -> None:
    problems = gate.inspect_wheel_name("kiray_imaging-0.1.0-cp39-abi3-macosx_11_0_arm64.whl")
    assert problems == [
        "platform tag macosx_11_0_arm64 is for macOS, Lambda runs Linux "
        "(manylinux2014_x86_64 / manylinux_2_17_x86_64 wanted)"
    ]
