"""The gate on ELF: GLIBC versions, the wrong kinds of ELF, and malformed or hostile files, which must be refused
quickly and never escape as an exception."""

from __future__ import annotations

import random
import re
import shutil
import struct
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.layer import elf_factory as ef
    from tests.layer.gate_support import (
        GLIBC_TOO_NEW,
        GOOD_KIND,
        assert_malformed,
        gate_module,
        judge,
        timed_judge,
    )

    from kiray_imaging.tooling import layer_gate as gate
else:
    import elf_factory as ef
    import layer_gate as gate
    from gate_support import (
        GLIBC_TOO_NEW,
        GOOD_KIND,
        assert_malformed,
        gate_module,
        judge,
        timed_judge,
    )

SYSTEM_LIBC = Path("/lib/x86_64-linux-gnu/libc.so.6")


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


# --------------------------------------------------------------------------- pyelftools' own errors
def _parser_errors() -> list[BaseException]:
    from elftools.common.exceptions import ELFError, ELFParseError
    from elftools.construct import FieldError

    return [ELFError("bad"), ELFParseError("bad"), FieldError("expected 64, found 3"), struct.error("bad")]


@pytest.mark.parametrize("error", _parser_errors(), ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("at_call", [1, 4, 12])  # the ELF header, a section header, a version-needs record
def test_every_pyelftools_error_is_a_refusal(monkeypatch: pytest.MonkeyPatch, error: Exception, at_call: int) -> None:
    elf = gate_module("elf")
    decode = elf.struct_parse
    calls = 0

    def failing(*args: object) -> object:
        nonlocal calls
        calls += 1
        if calls == at_call:
            raise error
        return decode(*args)

    monkeypatch.setattr(elf, "struct_parse", failing)
    finding = judge(ef.elf_shared_object())
    assert calls == at_call
    assert_malformed(finding, str(error))


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
