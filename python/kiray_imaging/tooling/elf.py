"""ELF: what the Linux loader will make of a file, judged for a Lambda target.

pyelftools decodes: the header and every record (section and program headers, dynamic entries, version needs), for
either class and byte order. The walking is ours, because the input may be hostile: each table is checked against
the file before it is read, each count against a cap, each chain against a record budget, and the version needs are
read from both places they live (the section table that tools show, the dynamic segment that ld.so enforces).
pyelftools' own walkers (ELFFile.iter_sections, DynamicSegment, GNUVerNeedSection.iter_versions) are left alone:
they follow counts and links as the file states them (a version-needs count of 2^32 whose vn_next is 0 reads the
same record 2^32 times), build every typed section on the way (so a broken .symtab link, which the loader never
reads, would refuse a library), and ELFFile rebuilds its record definitions for every file it opens.
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Iterable
from functools import cache
from typing import Any

from elftools.common.exceptions import ELFError
from elftools.common.utils import struct_parse
from elftools.construct import ConstructError
from elftools.elf.structs import ELFStructs

from .policy import MAX_GLIBC, Budget, Finding, Target, dotted, refused

# Real libraries have a few dozen version records and a few dozen sections; the caps are only
# there so a crafted file cannot make the walkers spin.
MAX_VERSION_RECORDS: int = 10_000
MAX_SECTIONS: int = 65_536
MAX_DYNAMIC_ENTRIES: int = 100_000
MAX_NAME_BYTES: int = 4096

MAGIC = b"\x7fELF"
# What pyelftools raises on bytes it cannot decode. The walkers check every range first, so none is expected; each
# still becomes a "malformed ELF" refusal, never an escaped exception.
PARSER_ERRORS = (ELFError, ConstructError, struct.error)

_ET_NAMES = {
    0: "object of no type",
    1: "relocatable object",
    2: "executable",
    3: "shared object",
    4: "core dump",
}
_LOADABLE_TYPES = (2, 3)  # ET_EXEC, ET_DYN
_ELF_MACHINES = {
    2: "sparc",
    3: "i386",
    8: "mips",
    20: "ppc",
    21: "ppc64",
    22: "s390",
    40: "arm",
    43: "sparcv9",
    50: "ia64",
    62: "x86-64",
    183: "aarch64",
    243: "riscv",
    258: "loongarch",
}
_ELF_OSABIS = {
    0: "System V",
    1: "HP-UX",
    2: "NetBSD",
    3: "GNU/Linux",
    6: "Solaris",
    9: "FreeBSD",
    12: "OpenBSD",
}
# glibc's loader only accepts these two; anything else fails with "ELF file OS ABI invalid".
_LINUX_OSABIS = (0, 3)
_PN_XNUM = 0xFFFF
_GLIBC_VERSION = re.compile(r"GLIBC_(\d{1,9}(?:\.\d{1,9}){1,3})")


class _MalformedError(Exception):
    """The bytes contradict themselves. Always turned into a refused Finding."""


class _BudgetSpentError(Exception):
    """The scan's ELF record budget is spent. Always turned into a refused Finding."""


@cache  # one per class and byte order: four at most
def _structs(bits: int, little: bool) -> ELFStructs:
    structs = ELFStructs(little_endian=little, elfclass=bits)
    structs.create_basic_structs()
    # No machine given: the generic definitions, whose names for what is read here (SHT_STRTAB, SHT_GNU_verneed,
    # PT_LOAD, PT_DYNAMIC, DT_STRTAB, DT_STRSZ, DT_VERNEED, DT_VERNEEDNUM) are those of every machine.
    structs.create_advanced_structs()
    return structs


class _Elf:
    """One file's bytes, decoded by pyelftools only after each range is checked against the file."""

    def __init__(self, data: bytes, bits: int, little: bool, budget: Budget) -> None:
        self.data = data
        self.bits = bits
        self.structs = _structs(bits, little)
        self.stream = io.BytesIO(data)
        self.budget = budget

    def record(self, definition: Any, offset: int, what: str) -> Any:
        size = definition.sizeof()
        if offset < 0 or offset + size > len(self.data):
            raise _MalformedError(
                f"{what} at offset {offset:#x} lies past the end of the file ({len(self.data)} bytes)"
            )
        self.budget.records_left -= 1
        if self.budget.records_left < 0:
            raise _BudgetSpentError(
                f"more than {self.budget.records_cap} ELF records in this scan, more than this gate decodes"
            )
        return struct_parse(definition, self.stream, offset)

    def check_range(self, offset: int, size: int, what: str) -> None:
        if offset < 0 or size < 0 or offset + size > len(self.data):
            raise _MalformedError(
                f"{what} ({size} bytes at offset {offset:#x}) lies past the end of the file "
                f"({len(self.data)} bytes): the file is truncated or corrupt"
            )

    def cstring(self, table_offset: int, table_size: int, index: int, what: str) -> str:
        if index >= table_size:
            raise _MalformedError(f"{what} name index {index} is outside its {table_size}-byte string table")
        start = table_offset + index
        stop = min(table_offset + table_size, start + MAX_NAME_BYTES)
        nul = self.data.find(b"\0", start, stop)
        if nul < 0:
            raise _MalformedError(f"{what} name at string table index {index} is not NUL-terminated")
        return self.data[start:nul].decode("ascii", "replace")


def _sections(elf: _Elf, h: Any) -> list[Any]:
    if h.e_shoff == 0:
        return []
    shdr = elf.structs.Elf_Shdr
    if h.e_shentsize < shdr.sizeof():
        raise _MalformedError(f"section header entries claim {h.e_shentsize} bytes, too small to be real")
    count = h.e_shnum
    if count == 0:
        # More than 0xff00 sections: the real count lives in section 0's sh_size (gABI).
        count = elf.record(shdr, h.e_shoff, "section header").sh_size
    if count > MAX_SECTIONS:
        raise _MalformedError(f"claims {count} sections, more than the {MAX_SECTIONS} this gate will walk")
    elf.check_range(h.e_shoff, count * h.e_shentsize, "section header table")
    return [elf.record(shdr, h.e_shoff + i * h.e_shentsize, "section header") for i in range(count)]


def _walk_verneed(
    elf: _Elf, start: int, size: int, count: int, str_offset: int, str_size: int
) -> list[tuple[str, str]]:
    """(library, version) pairs of an Elf_Verneed chain."""
    elf.check_range(start, size, "version-needs table")
    elf.check_range(str_offset, str_size, "version-needs string table")
    verneed, vernaux = elf.structs.Elf_Verneed, elf.structs.Elf_Vernaux
    end = start + size
    needs: list[tuple[str, str]] = []
    records = 0
    entry = start
    # The count (sh_info / DT_VERNEEDNUM) and vn_next == 0 both end the chain, as in glibc;
    # the record budget is what guarantees termination whatever the file says.
    for _ in range(count if count > 0 else MAX_VERSION_RECORDS + 1):
        records += 1
        if records > MAX_VERSION_RECORDS:
            raise _MalformedError(f"more than {MAX_VERSION_RECORDS} version-needs records")
        if entry + verneed.sizeof() > end:
            raise _MalformedError(f"version-needs record at offset {entry:#x} runs past its table")
        vn = elf.record(verneed, entry, "version-needs record")
        if vn.vn_version != 1:
            raise _MalformedError(f"version-needs record at offset {entry:#x} has unknown version {vn.vn_version}")
        library = elf.cstring(str_offset, str_size, vn.vn_file, "version-needs library")
        aux = entry + vn.vn_aux
        for _ in range(vn.vn_cnt):
            records += 1
            if records > MAX_VERSION_RECORDS:
                raise _MalformedError(f"more than {MAX_VERSION_RECORDS} version-needs records")
            if aux < start or aux + vernaux.sizeof() > end:
                raise _MalformedError(f"version-needs auxiliary record at offset {aux:#x} lies outside its table")
            vna = elf.record(vernaux, aux, "version-needs aux record")
            needs.append((library, elf.cstring(str_offset, str_size, vna.vna_name, "version-needs version")))
            if vna.vna_next == 0:
                break
            aux += vna.vna_next
        if vn.vn_next == 0:
            break
        entry += vn.vn_next
    return needs


def _needs_from_sections(elf: _Elf, sections: list[Any]) -> list[tuple[str, str]]:
    needs: list[tuple[str, str]] = []
    for section in sections:
        if section.sh_type != "SHT_GNU_verneed":
            continue
        if section.sh_link >= len(sections):
            raise _MalformedError(
                f"version-needs section links to string table {section.sh_link}, which does not exist"
            )
        strtab = sections[section.sh_link]
        if strtab.sh_type != "SHT_STRTAB":
            raise _MalformedError(f"version-needs section links to section {section.sh_link}, which is no string table")
        needs += _walk_verneed(
            elf, section.sh_offset, section.sh_size, section.sh_info, strtab.sh_offset, strtab.sh_size
        )
    return needs


def _program_headers(elf: _Elf, h: Any, sections: list[Any]) -> list[Any]:
    if h.e_phoff == 0 or h.e_phnum == 0:
        return []
    count = h.e_phnum
    if count == _PN_XNUM:
        # Too many segments for e_phnum: the real count lives in section 0's sh_info (gABI).
        if not sections:
            raise _MalformedError("e_phnum says 'see section 0' but there is no section header table")
        count = sections[0].sh_info
    phdr = elf.structs.Elf_Phdr
    if h.e_phentsize < phdr.sizeof():
        raise _MalformedError(f"program header entries claim {h.e_phentsize} bytes, too small to be real")
    if count > MAX_SECTIONS:
        raise _MalformedError(f"claims {count} program headers, more than the {MAX_SECTIONS} this gate will walk")
    elf.check_range(h.e_phoff, count * h.e_phentsize, "program header table")
    return [elf.record(phdr, h.e_phoff + i * h.e_phentsize, "program header") for i in range(count)]


def _needs_from_dynamic(elf: _Elf, phdrs: list[Any]) -> list[tuple[str, str]]:
    """The loader reads version needs through PT_DYNAMIC, not the section table, so a file whose
    sections are stripped or lie is still judged by what will actually be enforced at load time."""
    dynamic = next((p for p in phdrs if p.p_type == "PT_DYNAMIC"), None)
    if dynamic is None:
        return []
    elf.check_range(dynamic.p_offset, dynamic.p_filesz, "dynamic segment")
    entry = elf.structs.Elf_Dyn
    values: dict[str | int, int] = {}
    for i in range(min(dynamic.p_filesz // entry.sizeof(), MAX_DYNAMIC_ENTRIES)):
        dyn = elf.record(entry, dynamic.p_offset + i * entry.sizeof(), "dynamic entry")
        if dyn.d_tag == "DT_NULL":
            break
        values.setdefault(dyn.d_tag, dyn.d_val)
    if "DT_VERNEED" not in values:
        return []
    if "DT_STRTAB" not in values or "DT_STRSZ" not in values:
        raise _MalformedError("dynamic segment has version needs but no string table")
    loads = [p for p in phdrs if p.p_type == "PT_LOAD"]

    def file_range(address: int, what: str) -> tuple[int, int]:
        for p in loads:
            if p.p_vaddr <= address < p.p_vaddr + p.p_filesz:
                return p.p_offset + (address - p.p_vaddr), p.p_vaddr + p.p_filesz - address
        raise _MalformedError(f"{what} address {address:#x} is not inside any loaded segment")

    str_offset, str_room = file_range(values["DT_STRTAB"], "dynamic string table")
    if values["DT_STRSZ"] > str_room:
        raise _MalformedError("dynamic string table runs past the end of its segment")
    vn_offset, vn_room = file_range(values["DT_VERNEED"], "version-needs table")
    return _walk_verneed(elf, vn_offset, vn_room, values.get("DT_VERNEEDNUM", 0), str_offset, values["DT_STRSZ"])


def _glibc_verdict(needs: Iterable[tuple[str, str]]) -> tuple[tuple[int, ...] | None, list[str]]:
    versions: set[tuple[int, ...]] = set()
    special: set[str] = set()
    for _library, name in needs:
        if not name.startswith("GLIBC_"):
            continue  # GLIBCXX_, CXXABI_, GCC_ belong to libstdc++/libgcc, not to this policy
        match = _GLIBC_VERSION.fullmatch(name)
        if match:
            versions.add(tuple(int(part) for part in match.group(1).split(".")))
        else:
            special.add(name)
    highest = max(versions) if versions else None
    reasons = []
    if highest is not None and highest > MAX_GLIBC:
        reasons.append(
            f"needs GLIBC_{dotted(highest)}, newer than the {dotted(MAX_GLIBC)} "
            "that manylinux2014 / every Lambda runtime provides"
        )
    if special:
        # GLIBC_PRIVATE ties a binary to one exact glibc build; GLIBC_ABI_DT_RELR and friends
        # only exist in glibc releases far newer than the policy.
        reasons.append(f"needs {', '.join(sorted(special))}, which glibc {dotted(MAX_GLIBC)} does not provide")
    return highest, reasons


def inspect_elf(path: str, data: bytes, target: Target, budget: Budget) -> Finding:
    """The verdict on bytes that start with the ELF magic."""
    if len(data) < 20:
        return refused(
            path,
            "truncated ELF",
            f"truncated ELF: the file ends after {len(data)} bytes, inside the ELF header",
        )
    bits = {1: 32, 2: 64}.get(data[4])
    little = {1: True, 2: False}.get(data[5])
    if bits is None or little is None:
        return refused(path, "ELF (invalid)", f"ELF header has invalid class/encoding bytes {data[4]}/{data[5]}")
    # e_type and e_machine sit at the same place in both classes; read here, before the full header, so that a
    # truncated header still names its machine.
    e_type, e_machine = struct.unpack_from("<HH" if little else ">HH", data, 16)
    machine = _ELF_MACHINES.get(e_machine, f"machine {e_machine}")
    elf = _Elf(data, bits, little, budget)
    header_size = elf.structs.Elf_Ehdr.sizeof()
    if len(data) < header_size:
        return refused(
            path,
            "truncated ELF",
            f"truncated ELF{bits} {machine}: the file ends after {len(data)} bytes, "
            f"inside the {header_size}-byte ELF header",
        )
    endian = "" if little else " big-endian"
    kind = f"ELF{bits}{endian} {machine} {_ET_NAMES.get(e_type, f'type {e_type:#x}')}"

    # What the file *is* comes first: a wrong class or machine explains the crash on its own.
    reasons: list[str] = []
    if bits != 64:
        reasons.append(f"32-bit ELF: Lambda {target.lambda_name} loads only 64-bit objects ('wrong ELF class')")
    if not little:
        reasons.append(f"big-endian ELF: Lambda {target.lambda_name} is little-endian")
    if e_machine != target.elf_machine:
        reasons.append(f"built for {machine}, but this layer targets Lambda {target.lambda_name} ({target.elf_name})")
    if e_type not in _LOADABLE_TYPES:
        reasons.append(f"is a {_ET_NAMES.get(e_type, 'file of unknown type')}, not a loadable shared object")
    osabi = data[7]
    if osabi not in _LINUX_OSABIS:
        reasons.append(f"ELF OS/ABI is {_ELF_OSABIS.get(osabi, str(osabi))}, which the Linux loader rejects")

    highest: tuple[int, ...] | None = None
    try:
        h = elf.record(elf.structs.Elf_Ehdr, 0, "ELF header")
        if data[6] != 1 or h.e_version != "EV_CURRENT":
            reasons.append("ELF version is not 1, which the Linux loader rejects")
        sections = _sections(elf, h)
        phdrs = _program_headers(elf, h, sections)
        if e_type in _LOADABLE_TYPES and not any(p.p_type == "PT_LOAD" for p in phdrs):
            reasons.append("has no loadable segments, so the loader cannot map it")
        # Union of both views: the section table is what tools show, the dynamic segment is
        # what ld.so enforces; a requirement hidden from either must not slip through.
        needs = _needs_from_sections(elf, sections) + _needs_from_dynamic(elf, phdrs)
        highest, glibc_reasons = _glibc_verdict(needs)
        reasons += glibc_reasons
    except _BudgetSpentError as exc:
        reasons.append(str(exc))
    except (_MalformedError, *PARSER_ERRORS) as exc:
        reasons.append(f"malformed ELF: {exc}")
    return Finding(path=path, kind=kind, max_glibc=highest, ok=not reasons, reason="; ".join(reasons))
