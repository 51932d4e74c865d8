"""Tests for the layer's binary gate (python/kiray_imaging/layer_gate.py).

conftest.py loads the gate by file path (never through the kiray_imaging package, whose
__init__ needs the native extension), so here it is a plain top-level module.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import random
import re
import shutil
import stat
import struct
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.layer import elf_factory as ef

    from kiray_imaging import layer_gate as gate
else:
    import elf_factory as ef
    import layer_gate as gate

DASH = "\u2014"
GOOD_KIND = "ELF64 x86-64 shared object"
MACOS_REASON = "built for macOS, Lambda runs Linux: this is the 'invalid ELF header' crash"
WINDOWS_REASON = "built for Windows, Lambda runs Linux: this is the 'invalid ELF header' crash"
GLIBC_TOO_NEW = "newer than the 2.17 that manylinux2014 / every Lambda runtime provides"
SYSTEM_LIBC = Path("/lib/x86_64-linux-gnu/libc.so.6")


def judge(data: bytes, name: str = "x.so") -> gate.Finding:
    """inspect_binary() for cases that must produce a finding."""
    finding = gate.inspect_binary(name, data)
    assert finding is not None, f"{name} was not recognised as a binary"
    return finding


def timed_judge(data: bytes, name: str = "x.so") -> gate.Finding:
    start = time.perf_counter()
    finding = judge(data, name)
    assert time.perf_counter() - start < 1.0, "the parser must not crawl on hostile input"
    return finding


def assert_malformed(finding: gate.Finding, detail: str) -> None:
    assert not finding.ok
    assert finding.kind == GOOD_KIND
    assert "malformed ELF" in finding.reason
    assert detail in finding.reason, finding.reason


# --------------------------------------------------------------------------- module contract
def test_public_api_names_and_policy_constants() -> None:
    assert gate.MAX_GLIBC == (2, 17)
    assert gate.ARCH == "x86_64"
    assert [f.name for f in dataclasses.fields(gate.Finding)] == ["path", "kind", "max_glibc", "ok", "reason"]
    assert issubclass(gate.GateError, Exception)
    for name in ("inspect_binary", "inspect_wheel_name", "scan", "verify", "main"):
        assert callable(getattr(gate, name)), name
    finding = gate.Finding(path="a.so", kind=GOOD_KIND, max_glibc=(2, 17), ok=True, reason="")
    with pytest.raises(dataclasses.FrozenInstanceError):
        finding.ok = False  # type: ignore[misc]


def test_gate_imports_only_the_standard_library() -> None:
    tree = ast.parse(Path(gate.__file__).read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative imports would pull in the kiray_imaging package"
            assert node.module is not None
            imported.add(node.module.split(".")[0])
    assert "kiray_imaging" not in imported
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported - set(sys.stdlib_module_names)


def test_gate_source_is_python39_syntax() -> None:
    source = Path(gate.__file__).read_text(encoding="utf-8")
    ast.parse(source, feature_version=(3, 9))
    assert "from __future__ import annotations" in source
    assert "slots=True" not in source


# --------------------------------------------------------------------------- Finding.line
def test_line_for_an_accepted_object() -> None:
    finding = gate.Finding(path="kiray_imaging/_core.abi3.so", kind=GOOD_KIND, max_glibc=(2, 17), ok=True, reason="")
    assert finding.line() == "ok       kiray_imaging/_core.abi3.so: ELF64 x86-64 shared object, max GLIBC_2.17"


def test_line_for_a_refused_object() -> None:
    finding = judge(ef.macho(ef.CPU_TYPE_ARM64), "foo.so")
    assert finding.line() == f"REFUSED  foo.so: Mach-O 64-bit arm64 {DASH} {MACOS_REASON}"


def test_line_for_an_object_without_glibc_needs() -> None:
    finding = judge(ef.elf_shared_object(glibc=()))
    assert finding.line() == "ok       x.so: ELF64 x86-64 shared object, no versioned GLIBC symbols"


# --------------------------------------------------------------------------- ELF: GLIBC versions
def test_manylinux2014_object_is_accepted() -> None:
    finding = judge(ef.elf_shared_object(("GLIBC_2.2.5", "GLIBC_2.14", "GLIBC_2.17")), "pkg/_core.abi3.so")
    assert finding == gate.Finding(path="pkg/_core.abi3.so", kind=GOOD_KIND, max_glibc=(2, 17), ok=True, reason="")


@pytest.mark.parametrize(("newest", "expected"), [("GLIBC_2.28", (2, 28)), ("GLIBC_2.34", (2, 34))])
def test_newer_glibc_is_refused_and_named(newest: str, expected: tuple[int, int]) -> None:
    finding = judge(ef.elf_shared_object(("GLIBC_2.2.5", "GLIBC_2.14", "GLIBC_2.17", newest)))
    assert not finding.ok
    assert finding.kind == GOOD_KIND
    assert finding.max_glibc == expected
    assert finding.reason == f"needs {newest}, {GLIBC_TOO_NEW}"


@pytest.mark.parametrize(
    ("versions", "expected"),
    [
        (("GLIBC_2.34", "GLIBC_2.2.5"), (2, 34)),  # the maximum, not the last one listed
        (("GLIBC_2.3.4", "GLIBC_2.14"), (2, 14)),  # numeric, not string, comparison
        (("GLIBC_2.17", "GLIBC_2.2.5", "GLIBC_2.3"), (2, 17)),
        (("GLIBC_2.2.5",), (2, 2, 5)),
    ],
)
def test_max_glibc_is_the_numeric_maximum(versions: tuple[str, ...], expected: tuple[int, ...]) -> None:
    finding = judge(ef.elf_shared_object(versions))
    assert finding.max_glibc == expected
    assert finding.ok is (expected <= (2, 17))


def test_versions_from_every_needed_library_count() -> None:
    image = ef.build_elf(("GLIBC_2.17",), other_needs=[("libm.so.6", ("GLIBC_2.2.5", "GLIBC_2.29"))])
    finding = judge(image.data)
    assert finding.max_glibc == (2, 29)
    assert "needs GLIBC_2.29" in finding.reason


def test_libstdcxx_and_libgcc_versions_are_not_glibc() -> None:
    image = ef.build_elf(
        ("GLIBC_2.14",),
        other_needs=[("libstdc++.so.6", ("GLIBCXX_3.4.30", "CXXABI_1.3.13")), ("libgcc_s.so.1", ("GCC_4.2.0",))],
    )
    finding = judge(image.data)
    assert finding.max_glibc == (2, 14)
    assert finding.ok, finding.reason


@pytest.mark.parametrize("special", ["GLIBC_PRIVATE", "GLIBC_ABI_DT_RELR"])
def test_non_numeric_glibc_versions_are_refused(special: str) -> None:
    finding = judge(ef.elf_shared_object(("GLIBC_2.2.5", special)))
    assert not finding.ok
    assert finding.max_glibc == (2, 2, 5)
    assert finding.reason == f"needs {special}, which glibc 2.17 does not provide"


def test_version_needs_found_through_the_dynamic_segment_alone() -> None:
    # No section headers at all (sstrip-style): ld.so still enforces DT_VERNEED.
    finding = judge(ef.build_elf(("GLIBC_2.2.5", "GLIBC_2.28"), sections=False).data)
    assert finding.max_glibc == (2, 28)
    assert not finding.ok


def test_version_needs_found_through_the_section_table_alone() -> None:
    finding = judge(ef.build_elf(("GLIBC_2.2.5", "GLIBC_2.28"), dynamic=False).data)
    assert finding.max_glibc == (2, 28)
    assert not finding.ok


def test_executables_are_accepted_too() -> None:
    finding = judge(ef.build_elf(e_type=ef.ET_EXEC).data, "bin/tool")
    assert finding.kind == "ELF64 x86-64 executable"
    assert finding.ok


# --------------------------------------------------------------------------- ELF: wrong kinds
@pytest.mark.parametrize(
    ("machine", "bits", "little", "kind"),
    [
        (ef.EM_AARCH64, 64, True, "ELF64 aarch64 shared object"),
        (ef.EM_RISCV, 64, True, "ELF64 riscv shared object"),
        (ef.EM_PPC64, 64, False, "ELF64 big-endian ppc64 shared object"),
        (ef.EM_S390, 64, False, "ELF64 big-endian s390 shared object"),
        (ef.EM_386, 32, True, "ELF32 i386 shared object"),
        (ef.EM_ARM, 32, True, "ELF32 arm shared object"),
    ],
)
def test_elf_for_other_machines_is_refused_and_named(machine: int, bits: int, little: bool, kind: str) -> None:
    finding = judge(ef.build_elf(bits=bits, little=little, machine=machine).data)
    assert finding.kind == kind
    assert not finding.ok
    name = kind.split()[-3]
    assert f"built for {name}, but this layer targets Lambda x86_64" in finding.reason
    # the versions are still read correctly in every class and byte order
    assert finding.max_glibc == (2, 17)


def test_elf32_is_refused_for_its_class() -> None:
    finding = judge(ef.build_elf(bits=32, machine=ef.EM_386).data)
    assert finding.reason.startswith("32-bit ELF: Lambda x86_64 loads only 64-bit objects")


def test_big_endian_elf_is_refused_and_still_parsed() -> None:
    finding = judge(ef.build_elf(("GLIBC_2.34",), little=False).data)
    assert finding.kind == "ELF64 big-endian x86-64 shared object"
    assert finding.reason.startswith("big-endian ELF: Lambda x86_64 is little-endian")
    assert finding.max_glibc == (2, 34)


def test_relocatable_object_is_refused() -> None:
    finding = judge(ef.build_elf(e_type=ef.ET_REL).data, "x.o.so")
    assert finding.kind == "ELF64 x86-64 relocatable object"
    assert "not a loadable shared object" in finding.reason


def test_non_linux_osabi_is_refused() -> None:
    finding = judge(ef.build_elf(osabi=9).data)
    assert not finding.ok
    assert finding.reason == "ELF OS/ABI is FreeBSD, which the Linux loader rejects"


@pytest.mark.parametrize(
    ("length", "kind", "detail"),
    [
        (3, "truncated ELF", "ends after 3 bytes"),
        (16, "truncated ELF", "ends after 16 bytes, inside the ELF header"),
        (40, "truncated ELF", "truncated ELF64 x86-64: the file ends after 40 bytes, inside the 64-byte ELF header"),
    ],
)
def test_truncated_elf_header(length: int, kind: str, detail: str) -> None:
    finding = judge(ef.elf_shared_object()[:length])
    assert finding.kind == kind
    assert not finding.ok
    assert detail in finding.reason


def test_every_truncation_is_refused_without_exceptions() -> None:
    data = ef.elf_shared_object()
    for length in range(1, len(data)):
        finding = judge(data[:length])
        assert not finding.ok, length
        assert finding.kind != "unparseable binary", (length, finding.reason)


def test_truncation_inside_the_tables_names_the_cause() -> None:
    data = ef.elf_shared_object()
    finding = judge(data[: len(data) - 10])
    assert_malformed(finding, "section header table")
    assert "truncated or corrupt" in finding.reason


def test_bad_elf_version_is_refused() -> None:
    finding = judge(ef.patch(ef.elf_shared_object(), 6, "<B", 0))
    assert not finding.ok
    assert finding.reason == "ELF version is not 1, which the Linux loader rejects"


def test_object_without_loadable_segments_is_refused() -> None:
    image = ef.build_elf(dynamic=False)
    finding = judge(ef.patch(image.data, 64, "<I", 0))  # the only PT_LOAD becomes PT_NULL
    assert not finding.ok
    assert finding.reason == "has no loadable segments, so the loader cannot map it"


def test_overstated_vernaux_count_ends_at_the_last_record() -> None:
    # vn_cnt larger than the chain: a zero vna_next still ends it, as in glibc's own walker.
    image = ef.build_elf()
    finding = judge(ef.patch(image.data, image.verneed_offset + 2, "<H", 0xFFFF))
    assert finding.ok, finding.reason
    assert finding.max_glibc == (2, 17)


# --------------------------------------------------------------------------- ELF: hostile input
def _verneed_header_offset(image: ef.ElfImage) -> int:
    return image.section_header_offset(image.verneed_section_index)


def test_verneed_next_that_would_wrap_back_is_refused_fast() -> None:
    # 0xFFFFFFF0 is "-16" to 32-bit pointer arithmetic: a naive walker would revisit this record forever.
    image = ef.build_elf(verneed_count=0xFFFFFFFF)
    data = ef.patch(image.data, image.verneed_offset + 12, "<I", 0xFFFFFFF0)
    assert_malformed(timed_judge(data), "runs past its table")


def test_vernaux_next_that_would_wrap_back_is_refused_fast() -> None:
    image = ef.build_elf()
    first_aux = image.verneed_offset + 16
    data = ef.patch(image.data, first_aux + 12, "<I", 0xFFFFFFF0)
    data = ef.patch(data, image.verneed_offset + 2, "<H", 0xFFFF)  # vn_cnt: "keep going"
    assert_malformed(timed_judge(data), "lies outside its table")


def test_endless_chain_of_records_hits_the_record_cap() -> None:
    record = struct.pack("<HHIII", 1, 0, 1, 0, 16)  # vn_file=1 is "libc.so.6" in .dynstr
    image = ef.build_elf(raw_verneed=record * 12_000, verneed_count=0xFFFFFFFF)
    assert_malformed(timed_judge(image.data), "more than 10000 version-needs records")


def test_verneed_aux_offset_out_of_bounds() -> None:
    image = ef.build_elf()
    data = ef.patch(image.data, image.verneed_offset + 8, "<I", 0x7FFFFFFF)
    assert_malformed(timed_judge(data), "auxiliary record")


def test_version_name_index_outside_the_string_table() -> None:
    image = ef.build_elf()
    data = ef.patch(image.data, image.verneed_offset + 16 + 8, "<I", 0x00FFFFFF)
    assert_malformed(timed_judge(data), "outside its")


def test_unknown_verneed_record_version() -> None:
    image = ef.build_elf()
    data = ef.patch(image.data, image.verneed_offset, "<H", 2)
    assert_malformed(timed_judge(data), "unknown version 2")


def test_verneed_string_table_link_out_of_range() -> None:
    image = ef.build_elf()
    data = ef.patch(image.data, _verneed_header_offset(image) + 40, "<I", 999)
    assert_malformed(timed_judge(data), "string table 999, which does not exist")


def test_verneed_section_offset_past_the_end_of_the_file() -> None:
    image = ef.build_elf()
    data = ef.patch(image.data, _verneed_header_offset(image) + 24, "<Q", 0x7FFFFFFFFFFF)
    assert_malformed(timed_judge(data), "version-needs table")


def test_unterminated_version_string() -> None:
    image = ef.build_elf(("GLIBC_2.17",))
    # Shrink .dynstr (section and DT_STRSZ) so the last name loses its NUL.
    dynstr_header = image.section_header_offset(1)
    (size,) = struct.unpack_from("<Q", image.data, dynstr_header + 32)
    data = ef.patch(image.data, dynstr_header + 32, "<Q", size - 1)
    data = ef.patch(data, image.dynamic_offset + 16 + 8, "<Q", size - 1)
    assert_malformed(timed_judge(data), "not NUL-terminated")


def test_section_header_table_past_the_end_of_the_file() -> None:
    data = ef.patch(ef.elf_shared_object(), 0x28, "<Q", 0xFFFFFFFF00)
    assert_malformed(timed_judge(data), "section header table")


def test_absurd_extended_section_count() -> None:
    image = ef.build_elf()
    data = ef.patch(image.data, 0x3C, "<H", 0)  # e_shnum = 0: "the count is in section 0"
    data = ef.patch(data, image.section_header_offset(0) + 32, "<Q", 2**40)
    assert_malformed(timed_judge(data), f"claims {2**40} sections")


def test_dynamic_verneed_address_outside_every_segment() -> None:
    image = ef.build_elf(sections=False)
    data = ef.patch(image.data, image.dynamic_offset + 2 * 16 + 8, "<Q", 0x7FFF0000)
    assert_malformed(timed_judge(data), "not inside any loaded segment")


def test_random_corruption_never_escapes_as_an_exception() -> None:
    rng = random.Random(1729)
    good = ef.build_elf(("GLIBC_2.2.5", "GLIBC_2.28"), other_needs=[("libm.so.6", ("GLIBC_2.27",))]).data
    start = time.perf_counter()
    for _ in range(3000):
        data = bytearray(good)
        for _ in range(rng.randint(1, 8)):
            # Half the hits land in the ELF header, where a single byte changes the most.
            where = rng.randrange(64) if rng.random() < 0.5 else rng.randrange(len(data))
            data[where] = rng.randrange(256)
        finding = gate.inspect_binary("fuzz.so", bytes(data))
        assert finding is not None
        assert finding.kind != "unparseable binary", finding.reason
        assert finding.ok == (finding.reason == "")
    assert time.perf_counter() - start < 30


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


def test_arch_is_one_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gate, "ARCH", "aarch64")
    assert judge(ef.build_elf(machine=ef.EM_AARCH64).data).ok
    x86 = judge(ef.elf_shared_object())
    assert not x86.ok
    assert "built for x86-64, but this layer targets Lambda arm64" in x86.reason
    assert gate.inspect_wheel_name("k-0.1.0-cp39-abi3-manylinux_2_17_aarch64.manylinux2014_aarch64.whl") == []
    assert gate.inspect_wheel_name(ef.GOOD_WHEEL_NAME) != []


# --------------------------------------------------------------------------- wheels
def _good_members() -> dict[str, bytes]:
    return {
        "kiray_imaging/__init__.py": b"from kiray_imaging._core import *\n",
        "kiray_imaging/_core.abi3.so": ef.elf_shared_object(),
        "kiray_imaging/py.typed": b"",
    }


def test_good_wheel_passes(tmp_path: Path) -> None:
    wheel = ef.make_wheel(tmp_path, _good_members())
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
    wheel = ef.make_wheel(tmp_path, _good_members(), filename=filename)
    tag_findings = [f for f in gate.scan(wheel) if f.kind == "wheel tags"]
    assert tag_findings
    assert all(f.path == filename and not f.ok for f in tag_findings)
    assert any(expected in f.reason for f in tag_findings), tag_findings
    with pytest.raises(gate.GateError) as excinfo:
        gate.verify(wheel)
    assert f"REFUSED  {filename}: wheel tags {DASH}" in str(excinfo.value)


def test_wheel_metadata_tags_are_checked_too(tmp_path: Path) -> None:
    wheel = ef.make_wheel(
        tmp_path, _good_members(), tags=("cp39-abi3-manylinux2014_x86_64", "cp39-abi3-macosx_11_0_arm64")
    )
    findings = gate.scan(wheel)
    tag_findings = [f for f in findings if f.kind == "wheel tags"]
    assert [f.path for f in tag_findings] == ["kiray_imaging-0.1.0.dist-info/WHEEL"]
    assert tag_findings[0].reason.startswith("Tag: cp39-abi3-macosx_11_0_arm64: platform tag macosx_11_0_arm64")
    with pytest.raises(gate.GateError):
        gate.verify(wheel)


def test_wheel_without_wheel_metadata_is_refused(tmp_path: Path) -> None:
    wheel = ef.make_wheel(tmp_path, _good_members(), tags=None)
    problems = [f.reason for f in gate.scan(wheel) if f.kind == "wheel tags"]
    assert problems == ["the wheel has no *.dist-info/WHEEL file"]


def test_wheel_needing_new_glibc_is_refused(tmp_path: Path) -> None:
    members = _good_members()
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


# --------------------------------------------------------------------------- a real binary
def _readelf_max_glibc(path: Path) -> tuple[int, ...] | None:
    readelf = shutil.which("readelf")
    if readelf is None:
        return None
    output = subprocess.run([readelf, "-V", "-W", str(path)], capture_output=True, text=True, check=True).stdout
    needs = output.split("Version needs", 1)[1] if "Version needs" in output else ""
    found = [tuple(int(p) for p in v.split(".")) for v in re.findall(r"Name: GLIBC_(\d+(?:\.\d+)+)", needs)]
    return max(found) if found else None


@pytest.mark.skipif(not SYSTEM_LIBC.exists(), reason=f"{SYSTEM_LIBC} is absent on this machine")
def test_real_system_libc_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "layer" / "python"
    root.mkdir(parents=True)
    copy = root / "libc.so.6"
    shutil.copyfile(SYSTEM_LIBC, copy)
    [finding] = gate.scan(tmp_path / "layer")
    assert finding.path == "python/libc.so.6"
    assert finding.kind == GOOD_KIND
    assert finding.max_glibc is not None
    assert finding.max_glibc > (2, 17)
    assert not finding.ok
    version = ".".join(str(p) for p in finding.max_glibc)
    assert f"needs GLIBC_{version}, {GLIBC_TOO_NEW}" in finding.reason
    from_readelf = _readelf_max_glibc(copy)
    if from_readelf is not None:  # when binutils is around, agree with it exactly
        assert finding.max_glibc == from_readelf


# --------------------------------------------------------------------------- CLI
def test_cli_passes_a_good_wheel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wheel = ef.make_wheel(tmp_path, _good_members())
    assert gate.main([str(wheel)]) == 0
    out, err = capsys.readouterr()
    assert out == "ok       kiray_imaging/_core.abi3.so: ELF64 x86-64 shared object, max GLIBC_2.17\n"
    assert err == "gate: passed (1 shared object)\n"


def test_cli_refuses_the_classic_crash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = ef.make_wheel(tmp_path, _good_members())
    layer = ef.make_zip(tmp_path / "layer.zip", {"python/pkg/_core.abi3.so": ef.macho(ef.CPU_TYPE_ARM64)})
    assert gate.main([str(good), str(layer)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "ok       kiray_imaging/_core.abi3.so: ELF64 x86-64 shared object, max GLIBC_2.17",
        f"REFUSED  python/pkg/_core.abi3.so: Mach-O 64-bit arm64 {DASH} {MACOS_REASON}",
    ]
    assert err == "gate: REFUSED 1 finding(s) Lambda would fail on, see the REFUSED lines above\n"


def test_cli_refuses_an_empty_wheel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wheel = ef.make_wheel(tmp_path, {"kiray_imaging/__init__.py": b""})
    assert gate.main([str(wheel)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"gate: REFUSED {ef.GOOD_WHEEL_NAME}: the wheel contains no native binary at all, so the build went wrong\n"
    )


def test_cli_missing_path_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gate.main([str(tmp_path / "missing.whl")]) == 2
    _out, err = capsys.readouterr()
    assert "gate: no such file or folder" in err
    assert gate.main([]) == 2


def test_cli_runs_as_a_standalone_script(tmp_path: Path, gate_path: Path) -> None:
    layer = ef.make_zip(tmp_path / "layer.zip", {"python/pkg/_core.abi3.so": ef.macho(ef.CPU_TYPE_ARM64)})
    wheel = ef.make_wheel(tmp_path, _good_members())
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    refused = subprocess.run(
        [sys.executable, str(gate_path), str(layer)], capture_output=True, text=True, encoding="utf-8", env=env
    )
    assert refused.returncode == 1, refused.stderr
    assert refused.stdout.startswith("REFUSED  python/pkg/_core.abi3.so: Mach-O 64-bit arm64")
    passed = subprocess.run([sys.executable, str(gate_path), str(wheel)], capture_output=True, text=True, env=env)
    assert passed.returncode == 0, passed.stderr
    assert passed.stderr == "gate: passed (1 shared object)\n"
    missing = subprocess.run([sys.executable, str(gate_path), str(tmp_path / "x")], capture_output=True, env=env)
    assert missing.returncode == 2
