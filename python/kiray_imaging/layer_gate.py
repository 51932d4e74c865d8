"""The Lambda layer's binary gate: refuse native code that Lambda cannot load.

The build script loads this file by path (importlib) on machines where the package's
native extension cannot be imported -- a Mac building the Linux wheel is the usual
case -- so it imports the standard library only and nothing from kiray_imaging.

Usage: ``python layer_gate.py PATH [PATH...]`` where PATH is a .whl, a layer .zip or
a folder. Exit status 0 = passed, 1 = refused, 2 = bad invocation / missing path.
"""

from __future__ import annotations

import os
import re
import stat
import struct
import sys
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import IO

# --------------------------------------------------------------------------- policy
# manylinux2014 is glibc 2.17; the oldest Lambda runtimes (Amazon Linux 1) had exactly that,
# so anything needing more can fail on some runtime even if it happens to load on AL2023.
MAX_GLIBC: tuple[int, int] = (2, 17)
# The one architecture setting. Lambda calls aarch64 "arm64"; both spellings select the same row
# of _ARCHES, so switching the layer to Graviton is a one-word change here.
ARCH: str = "x86_64"

# Limits that keep a hostile or broken archive from turning the gate into a denial of service.
# A Lambda layer may unpack to 250 MB at most, so these are generous for honest input.
MAX_MEMBER_BYTES: int = 512 * 1024 * 1024
MAX_TOTAL_BYTES: int = 2 * 1024 * 1024 * 1024
MAX_MEMBERS: int = 200_000
# Real libraries have a few dozen version records and a few dozen sections; the caps are only
# there so a crafted file cannot make the walkers spin.
MAX_VERSION_RECORDS: int = 10_000
MAX_SECTIONS: int = 65_536
MAX_DYNAMIC_ENTRIES: int = 100_000
MAX_NAME_BYTES: int = 4096
# Every magic we recognise fits in the first 8 bytes; a little more costs nothing.
SNIFF_BYTES: int = 64


@dataclass(frozen=True)
class _ArchSpec:
    elf_machine: int
    elf_name: str  # as it appears in Finding.kind
    wheel_arch: str  # as it appears in wheel platform tags
    lambda_name: str  # as the Lambda console spells it


_ARCHES: dict[str, _ArchSpec] = {
    "x86_64": _ArchSpec(62, "x86-64", "x86_64", "x86_64"),
    "aarch64": _ArchSpec(183, "aarch64", "aarch64", "arm64"),
    "arm64": _ArchSpec(183, "aarch64", "aarch64", "arm64"),
}


def _arch() -> _ArchSpec:
    # Looked up on each call rather than at import so tests (and a future arm64 build) can
    # change ARCH without reloading the module.
    return _ARCHES[ARCH]


# --------------------------------------------------------------------------- formats
_ELF_MAGIC = b"\x7fELF"
_ET_NAMES = {
    0: "object of no type",
    1: "relocatable object",
    2: "executable",
    3: "shared object",
    4: "core dump",
}
_ET_EXEC = 2
_ET_DYN = 3
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
_SHT_STRTAB = 3
_SHT_GNU_VERNEED = 0x6FFFFFFE
_PT_LOAD = 1
_PT_DYNAMIC = 2
_PN_XNUM = 0xFFFF
_DT_NULL = 0
_DT_STRTAB = 5
_DT_STRSZ = 10
_DT_VERNEED = 0x6FFFFFFE
_DT_VERNEEDNUM = 0x6FFFFFFF
_GLIBC_VERSION = re.compile(r"GLIBC_(\d{1,9}(?:\.\d{1,9}){1,3})")

# Thin Mach-O magics as they appear on disk: (bits, little-endian).
_MACHO_THIN = {
    b"\xfe\xed\xfa\xce": (32, False),
    b"\xce\xfa\xed\xfe": (32, True),
    b"\xfe\xed\xfa\xcf": (64, False),
    b"\xcf\xfa\xed\xfe": (64, True),
}
_FAT_MAGICS = {b"\xca\xfe\xba\xbe": 20, b"\xca\xfe\xba\xbf": 32}  # fat_arch record size
# Java class files also start with CAFEBABE, followed by minor/major version; major >= 45, so a
# count this small can only be a universal binary (the heuristic file(1) uses too).
_MAX_FAT_ARCHES = 29
_MACHO_CPUS = {
    7: "i386",
    0x01000007: "x86_64",
    12: "arm",
    0x0100000C: "arm64",
    0x0200000C: "arm64_32",
    18: "ppc",
    0x01000012: "ppc64",
}
_PE_MACHINES = {
    0x014C: "i386",
    0x01C0: "ARM",
    0x01C4: "ARMNT",
    0x0200: "IA64",
    0x8664: "AMD64",
    0xA641: "ARM64EC",
    0xAA64: "ARM64",
}

# Only names that a loader would actually open count as "native library" names; a data file
# that happens to be random bytes is none of our business.
_NATIVE_NAME = re.compile(r"\.(?:so(?:\.\d+)*|node|dylib|pyd|dll)$", re.IGNORECASE)

_MACOS_REASON = "built for macOS, Lambda runs Linux: this is the 'invalid ELF header' crash"
_WINDOWS_REASON = "built for Windows, Lambda runs Linux: this is the 'invalid ELF header' crash"

# Kinds of findings that are not about a binary's contents; they do not count as "a native
# binary was found" when deciding whether a wheel is suspiciously empty.
_KIND_WHEEL_TAGS = "wheel tags"
_KIND_NOT_BINARY = "not a binary"
_KIND_UNSAFE_PATH = "unsafe path"
_KIND_UNREADABLE = "unreadable"
_NON_BINARY_KINDS = frozenset({_KIND_WHEEL_TAGS, _KIND_NOT_BINARY, _KIND_UNSAFE_PATH, _KIND_UNREADABLE})


# --------------------------------------------------------------------------- public types
@dataclass(frozen=True)
class Finding:
    path: str
    kind: str
    max_glibc: tuple[int, ...] | None
    ok: bool
    reason: str

    def line(self) -> str:
        if self.ok:
            if self.max_glibc is not None:
                detail = f", max GLIBC_{_dotted(self.max_glibc)}"
            elif self.kind in _NON_BINARY_KINDS:
                detail = ""
            else:
                detail = ", no versioned GLIBC symbols"
            return f"{'ok':<9}{self.path}: {self.kind}{detail}"
        return f"{'REFUSED':<9}{self.path}: {self.kind} \u2014 {self.reason}"


class GateError(Exception):
    """Raised by verify() when something would not load on Lambda; str() is the report."""

    def __init__(self, refused: Sequence[Finding] = (), notes: Sequence[str] = ()) -> None:
        self.refused: tuple[Finding, ...] = tuple(refused)
        self.notes: tuple[str, ...] = tuple(notes)
        super().__init__("\n".join([f.line() for f in self.refused] + list(self.notes)))


# --------------------------------------------------------------------------- helpers
class _MalformedError(Exception):
    """Internal: the bytes contradict themselves. Always turned into a refused Finding."""


def _dotted(version: Sequence[int]) -> str:
    return ".".join(str(part) for part in version)


def _refused(path: str, kind: str, reason: str, max_glibc: tuple[int, ...] | None = None) -> Finding:
    return Finding(path=path, kind=kind, max_glibc=max_glibc, ok=False, reason=reason)


def _looks_native(name: str) -> bool:
    """True for names a loader would open: .so (also versioned .so.N), .node, .dylib, .pyd, .dll."""
    return bool(_NATIVE_NAME.search(name))


def _has_binary_magic(head: bytes) -> bool:
    return head[:4] == _ELF_MAGIC or head[:4] in _MACHO_THIN or head[:4] in _FAT_MAGICS or head[:2] == b"MZ"


class _Reader:
    """Bounds-checked struct access; every failure is a _MalformedError, never an IndexError."""

    def __init__(self, data: bytes, little: bool) -> None:
        self.data = data
        self.prefix = "<" if little else ">"

    def unpack(self, fmt: str, offset: int, what: str) -> tuple[int, ...]:
        full = self.prefix + fmt
        size = struct.calcsize(full)
        if offset < 0 or offset + size > len(self.data):
            raise _MalformedError(
                f"{what} at offset {offset:#x} lies past the end of the file ({len(self.data)} bytes)"
            )
        return struct.unpack_from(full, self.data, offset)

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


# --------------------------------------------------------------------------- ELF
@dataclass(frozen=True)
class _ElfHeader:
    bits: int
    e_type: int
    e_machine: int
    e_version: int
    e_phoff: int
    e_shoff: int
    e_phentsize: int
    e_phnum: int
    e_shentsize: int
    e_shnum: int


@dataclass(frozen=True)
class _Section:
    sh_type: int
    sh_offset: int
    sh_size: int
    sh_link: int
    sh_info: int


def _parse_elf_header(r: _Reader, bits: int) -> _ElfHeader:
    if bits == 64:
        e_type, e_machine, e_version, _entry, phoff, shoff, _flags, _ehsize, phes, phnum, shes, shnum, _ = r.unpack(
            "HHIQQQIHHHHHH", 16, "ELF header"
        )
    else:
        e_type, e_machine, e_version, _entry, phoff, shoff, _flags, _ehsize, phes, phnum, shes, shnum, _ = r.unpack(
            "HHIIIIIHHHHHH", 16, "ELF header"
        )
    return _ElfHeader(bits, e_type, e_machine, e_version, phoff, shoff, phes, phnum, shes, shnum)


def _read_section(r: _Reader, h: _ElfHeader, index: int) -> _Section:
    offset = h.e_shoff + index * h.e_shentsize
    if h.bits == 64:
        _name, sh_type, _flags, _addr, sh_off, sh_size, link, info, _align, _entsize = r.unpack(
            "IIQQQQIIQQ", offset, "section header"
        )
    else:
        _name, sh_type, _flags, _addr, sh_off, sh_size, link, info, _align, _entsize = r.unpack(
            "IIIIIIIIII", offset, "section header"
        )
    return _Section(sh_type, sh_off, sh_size, link, info)


def _sections(r: _Reader, h: _ElfHeader) -> list[_Section]:
    if h.e_shoff == 0:
        return []
    if h.e_shentsize < (64 if h.bits == 64 else 40):
        raise _MalformedError(f"section header entries claim {h.e_shentsize} bytes, too small to be real")
    count = h.e_shnum
    if count == 0:
        # More than 0xff00 sections: the real count lives in section 0's sh_size (gABI).
        count = _read_section(r, h, 0).sh_size
    if count > MAX_SECTIONS:
        raise _MalformedError(f"claims {count} sections, more than the {MAX_SECTIONS} this gate will walk")
    r.check_range(h.e_shoff, count * h.e_shentsize, "section header table")
    return [_read_section(r, h, i) for i in range(count)]


def _walk_verneed(
    r: _Reader, start: int, size: int, count: int, str_offset: int, str_size: int
) -> list[tuple[str, str]]:
    """(library, version) pairs of an Elf_Verneed chain; the layout is the same for 32 and 64 bit."""
    r.check_range(start, size, "version-needs table")
    r.check_range(str_offset, str_size, "version-needs string table")
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
        if entry + 16 > end:
            raise _MalformedError(f"version-needs record at offset {entry:#x} runs past its table")
        vn_version, vn_cnt, vn_file, vn_aux, vn_next = r.unpack("HHIII", entry, "version-needs record")
        if vn_version != 1:
            raise _MalformedError(f"version-needs record at offset {entry:#x} has unknown version {vn_version}")
        library = r.cstring(str_offset, str_size, vn_file, "version-needs library")
        aux = entry + vn_aux
        for _ in range(vn_cnt):
            records += 1
            if records > MAX_VERSION_RECORDS:
                raise _MalformedError(f"more than {MAX_VERSION_RECORDS} version-needs records")
            if aux < start or aux + 16 > end:
                raise _MalformedError(f"version-needs auxiliary record at offset {aux:#x} lies outside its table")
            _hash, _flags, _other, vna_name, vna_next = r.unpack("IHHII", aux, "version-needs aux record")
            needs.append((library, r.cstring(str_offset, str_size, vna_name, "version-needs version")))
            if vna_next == 0:
                break
            aux += vna_next
        if vn_next == 0:
            break
        entry += vn_next
    return needs


def _needs_from_sections(r: _Reader, sections: list[_Section]) -> list[tuple[str, str]]:
    needs: list[tuple[str, str]] = []
    for section in sections:
        if section.sh_type != _SHT_GNU_VERNEED:
            continue
        if section.sh_link >= len(sections):
            raise _MalformedError(
                f"version-needs section links to string table {section.sh_link}, which does not exist"
            )
        strtab = sections[section.sh_link]
        if strtab.sh_type != _SHT_STRTAB:
            raise _MalformedError(f"version-needs section links to section {section.sh_link}, which is no string table")
        needs += _walk_verneed(r, section.sh_offset, section.sh_size, section.sh_info, strtab.sh_offset, strtab.sh_size)
    return needs


def _program_headers(r: _Reader, h: _ElfHeader, sections: list[_Section]) -> list[tuple[int, int, int, int]]:
    """(p_type, p_offset, p_vaddr, p_filesz) for every program header."""
    if h.e_phoff == 0 or h.e_phnum == 0:
        return []
    count = h.e_phnum
    if count == _PN_XNUM:
        # Too many segments for e_phnum: the real count lives in section 0's sh_info (gABI).
        if not sections:
            raise _MalformedError("e_phnum says 'see section 0' but there is no section header table")
        count = sections[0].sh_info
    if h.e_phentsize < (56 if h.bits == 64 else 32):
        raise _MalformedError(f"program header entries claim {h.e_phentsize} bytes, too small to be real")
    if count > MAX_SECTIONS:
        raise _MalformedError(f"claims {count} program headers, more than the {MAX_SECTIONS} this gate will walk")
    r.check_range(h.e_phoff, count * h.e_phentsize, "program header table")
    headers = []
    for i in range(count):
        offset = h.e_phoff + i * h.e_phentsize
        if h.bits == 64:
            p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz, _memsz, _align = r.unpack(
                "IIQQQQQQ", offset, "program header"
            )
        else:
            p_type, p_offset, p_vaddr, _paddr, p_filesz, _memsz, _flags, _align = r.unpack(
                "IIIIIIII", offset, "program header"
            )
        headers.append((p_type, p_offset, p_vaddr, p_filesz))
    return headers


def _needs_from_dynamic(r: _Reader, h: _ElfHeader, phdrs: list[tuple[int, int, int, int]]) -> list[tuple[str, str]]:
    """The loader reads version needs through PT_DYNAMIC, not the section table, so a file whose
    sections are stripped or lie is still judged by what will actually be enforced at load time."""
    dynamic = [p for p in phdrs if p[0] == _PT_DYNAMIC]
    if not dynamic:
        return []
    _type, dyn_offset, _vaddr, dyn_size = dynamic[0]
    r.check_range(dyn_offset, dyn_size, "dynamic segment")
    entry_size, fmt = (16, "qQ") if h.bits == 64 else (8, "iI")
    values: dict[int, int] = {}
    for i in range(min(dyn_size // entry_size, MAX_DYNAMIC_ENTRIES)):
        tag, value = r.unpack(fmt, dyn_offset + i * entry_size, "dynamic entry")
        if tag == _DT_NULL:
            break
        values.setdefault(tag, value)
    if _DT_VERNEED not in values:
        return []
    if _DT_STRTAB not in values or _DT_STRSZ not in values:
        raise _MalformedError("dynamic segment has version needs but no string table")
    loads = [p for p in phdrs if p[0] == _PT_LOAD]

    def file_range(address: int, what: str) -> tuple[int, int]:
        for _t, p_offset, p_vaddr, p_filesz in loads:
            if p_vaddr <= address < p_vaddr + p_filesz:
                return p_offset + (address - p_vaddr), p_vaddr + p_filesz - address
        raise _MalformedError(f"{what} address {address:#x} is not inside any loaded segment")

    str_offset, str_room = file_range(values[_DT_STRTAB], "dynamic string table")
    if values[_DT_STRSZ] > str_room:
        raise _MalformedError("dynamic string table runs past the end of its segment")
    vn_offset, vn_room = file_range(values[_DT_VERNEED], "version-needs table")
    return _walk_verneed(r, vn_offset, vn_room, values.get(_DT_VERNEEDNUM, 0), str_offset, values[_DT_STRSZ])


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
            f"needs GLIBC_{_dotted(highest)}, newer than the {_dotted(MAX_GLIBC)} "
            "that manylinux2014 / every Lambda runtime provides"
        )
    if special:
        # GLIBC_PRIVATE ties a binary to one exact glibc build; GLIBC_ABI_DT_RELR and friends
        # only exist in glibc releases far newer than the policy.
        reasons.append(f"needs {', '.join(sorted(special))}, which glibc {_dotted(MAX_GLIBC)} does not provide")
    return highest, reasons


def _inspect_elf(path: str, data: bytes) -> Finding:
    if len(data) < 20:
        return _refused(
            path,
            "truncated ELF",
            f"truncated ELF: the file ends after {len(data)} bytes, inside the ELF header",
        )
    bits = {1: 32, 2: 64}.get(data[4])
    little = {1: True, 2: False}.get(data[5])
    if bits is None or little is None:
        return _refused(path, "ELF (invalid)", f"ELF header has invalid class/encoding bytes {data[4]}/{data[5]}")
    r = _Reader(data, little)
    (e_machine,) = r.unpack("H", 18, "ELF machine")
    machine = _ELF_MACHINES.get(e_machine, f"machine {e_machine}")
    endian = "" if little else " big-endian"
    header_size = 64 if bits == 64 else 52
    if len(data) < header_size:
        return _refused(
            path,
            "truncated ELF",
            f"truncated ELF{bits} {machine}: the file ends after {len(data)} bytes, "
            f"inside the {header_size}-byte ELF header",
        )
    h = _parse_elf_header(r, bits)
    kind = f"ELF{bits}{endian} {machine} {_ET_NAMES.get(h.e_type, f'type {h.e_type:#x}')}"
    arch = _arch()

    # What the file *is* comes first: a wrong class or machine explains the crash on its own.
    reasons: list[str] = []
    if bits != 64:
        reasons.append(f"32-bit ELF: Lambda {arch.lambda_name} loads only 64-bit objects ('wrong ELF class')")
    if not little:
        reasons.append(f"big-endian ELF: Lambda {arch.lambda_name} is little-endian")
    if e_machine != arch.elf_machine:
        reasons.append(f"built for {machine}, but this layer targets Lambda {arch.lambda_name} ({arch.elf_name})")
    if h.e_type not in (_ET_DYN, _ET_EXEC):
        reasons.append(f"is a {_ET_NAMES.get(h.e_type, 'file of unknown type')}, not a loadable shared object")
    osabi = data[7]
    if osabi not in _LINUX_OSABIS:
        reasons.append(f"ELF OS/ABI is {_ELF_OSABIS.get(osabi, str(osabi))}, which the Linux loader rejects")
    if data[6] != 1 or h.e_version != 1:
        reasons.append("ELF version is not 1, which the Linux loader rejects")

    highest: tuple[int, ...] | None = None
    try:
        sections = _sections(r, h)
        phdrs = _program_headers(r, h, sections)
        if h.e_type in (_ET_DYN, _ET_EXEC) and not any(p[0] == _PT_LOAD for p in phdrs):
            reasons.append("has no loadable segments, so the loader cannot map it")
        # Union of both views: the section table is what tools show, the dynamic segment is
        # what ld.so enforces; a requirement hidden from either must not slip through.
        needs = _needs_from_sections(r, sections) + _needs_from_dynamic(r, h, phdrs)
        highest, glibc_reasons = _glibc_verdict(needs)
        reasons += glibc_reasons
    except _MalformedError as exc:
        reasons.append(f"malformed ELF: {exc}")
    return Finding(path=path, kind=kind, max_glibc=highest, ok=not reasons, reason="; ".join(reasons))


# --------------------------------------------------------------------------- Mach-O / PE
def _macho_cpu(cputype: int, cpusubtype: int) -> str:
    name = _MACHO_CPUS.get(cputype, f"cputype {cputype:#x}")
    if name == "arm64" and cpusubtype & 0xFF == 2:
        return "arm64e"
    return name


def _inspect_macho(path: str, data: bytes) -> Finding:
    bits, little = _MACHO_THIN[data[:4]]
    if len(data) < 12:
        return _refused(path, f"Mach-O {bits}-bit (truncated)", _MACOS_REASON)
    cputype, cpusubtype = struct.unpack_from("<ii" if little else ">ii", data, 4)
    return _refused(path, f"Mach-O {bits}-bit {_macho_cpu(cputype & 0xFFFFFFFF, cpusubtype)}", _MACOS_REASON)


def _inspect_fat(path: str, data: bytes) -> Finding | None:
    record = _FAT_MAGICS[data[:4]]
    count = struct.unpack_from(">I", data, 4)[0] if len(data) >= 8 else 0
    if 0 < count <= _MAX_FAT_ARCHES:
        cpus = []
        for i in range(count):
            offset = 8 + i * record
            if offset + 8 > len(data):
                cpus.append("?")
                break
            cputype, cpusubtype = struct.unpack_from(">Ii", data, offset)
            cpus.append(_macho_cpu(cputype, cpusubtype))
        return _refused(path, f"Mach-O universal ({', '.join(cpus)})", _MACOS_REASON)
    if path.lower().endswith(".class") and not _looks_native(path):
        return None  # a Java class file: not native code at all
    return _refused(
        path,
        "Mach-O universal or Java class",
        "starts with CAFEBABE: a macOS universal binary or a Java class, neither loadable as a Linux library",
    )


def _inspect_pe(path: str, data: bytes) -> Finding | None:
    if len(data) >= 0x40:
        (pe_offset,) = struct.unpack_from("<I", data, 0x3C)
        if pe_offset + 24 <= len(data) and data[pe_offset : pe_offset + 4] == b"PE\0\0":
            machine, _nsections, _stamp, _symtab, _nsyms, optional_size, _chars = struct.unpack_from(
                "<HHIIIHH", data, pe_offset + 4
            )
            flavour = "PE"
            if optional_size >= 2 and pe_offset + 26 <= len(data):
                (magic,) = struct.unpack_from("<H", data, pe_offset + 24)
                flavour = {0x10B: "PE32", 0x20B: "PE32+"}.get(magic, "PE")
            name = _PE_MACHINES.get(machine, f"machine {machine:#06x}")
            return _refused(path, f"{flavour} {name}", _WINDOWS_REASON)
    # "MZ" alone is too weak a signal to judge arbitrary data files by.
    if _looks_native(path) or path.lower().endswith(".exe"):
        return _refused(path, "MS-DOS/PE executable (PE header unreadable)", _WINDOWS_REASON)
    return None


def inspect_binary(path: str, data: bytes) -> Finding | None:
    """Judge one file's bytes. None when it is not a binary and its name is not a native library's."""
    try:
        magic = data[:4]
        if magic == _ELF_MAGIC:
            return _inspect_elf(path, data)
        if magic in _MACHO_THIN:
            return _inspect_macho(path, data)
        if magic in _FAT_MAGICS:
            return _inspect_fat(path, data)
        if data[:2] == b"MZ":
            return _inspect_pe(path, data)
        if not _looks_native(path):
            return None
        if 0 < len(data) < 4 and _ELF_MAGIC.startswith(data):
            return _refused(path, "truncated ELF", f"truncated ELF: the file ends after {len(data)} bytes")
        if not data:
            return _refused(path, _KIND_NOT_BINARY, "empty file named like a native library")
        return _refused(
            path,
            _KIND_NOT_BINARY,
            f"named like a native library but is not ELF, Mach-O or PE (starts with {data[:8].hex(' ')}); "
            "loading it fails with 'invalid ELF header'",
        )
    except Exception as exc:  # the gate must report, never crash, whatever the bytes are
        return _refused(path, "unparseable binary", f"could not be parsed ({type(exc).__name__}: {exc})")


# --------------------------------------------------------------------------- wheel tags
_LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
_MANYLINUX = re.compile(r"manylinux_(\d{1,4})_(\d{1,4})_(\w+)")
_LEGACY = re.compile(r"(manylinux1|manylinux2010|manylinux2014)_(\w+)")


def _platform_problem(tag: str) -> str | None:
    """Why one platform tag is unacceptable, or None when it is an old-enough manylinux tag."""
    arch = _arch()
    wanted = f"manylinux2014_{arch.wheel_arch} / manylinux_{MAX_GLIBC[0]}_{MAX_GLIBC[1]}_{arch.wheel_arch}"
    glibc: tuple[int, int] | None = None
    tag_arch = ""
    modern = _MANYLINUX.fullmatch(tag)
    legacy = _LEGACY.fullmatch(tag)
    if modern:
        glibc, tag_arch = (int(modern.group(1)), int(modern.group(2))), modern.group(3)
    elif legacy:
        glibc, tag_arch = _LEGACY_MANYLINUX[legacy.group(1)], legacy.group(2)
    if glibc is not None:
        if tag_arch != arch.wheel_arch:
            return f"platform tag {tag} is for {tag_arch}, not Lambda {arch.lambda_name} ({wanted} wanted)"
        if glibc > MAX_GLIBC:
            return (
                f"platform tag {tag} promises only glibc {_dotted(glibc)}, newer than the "
                f"{_dotted(MAX_GLIBC)} of manylinux2014 / every Lambda runtime ({wanted} wanted)"
            )
        return None
    if tag.startswith("macosx_"):
        return f"platform tag {tag} is for macOS, Lambda runs Linux ({wanted} wanted)"
    if tag.startswith("win"):
        return f"platform tag {tag} is for Windows, Lambda runs Linux ({wanted} wanted)"
    if tag.startswith("musllinux_"):
        return f"platform tag {tag} is for musl libc, Lambda's Linux uses glibc ({wanted} wanted)"
    if tag.startswith("linux_"):
        return (
            f"platform tag {tag} is a plain linux tag: the wheel was not repaired for manylinux, "
            f"so it may need libraries or a glibc that Lambda lacks ({wanted} wanted)"
        )
    if tag == "any":
        return f"platform tag any on a wheel that should carry native code ({wanted} wanted)"
    return f"platform tag {tag} is not one Lambda {arch.lambda_name} can use ({wanted} wanted)"


def _tag_problems(python: str, abi: str, platform: str) -> list[str]:
    problems = []
    for tag in python.split("."):
        if not re.fullmatch(r"cp3\d{1,3}", tag):
            problems.append(f"python tag {tag} is not cp3X: an abi3 wheel is built for CPython 3 (e.g. cp39)")
    if abi != "abi3":
        problems.append(
            f"abi tag {abi} is not abi3: the wheel would load on one CPython version only, "
            "not on every Lambda python3.x runtime"
        )
    # Every tag that is not an acceptable manylinux one yields a problem naming what is wanted,
    # so "must include one acceptable tag" and "must carry no foreign tag" both follow from this.
    for tag in platform.split("."):
        problem = _platform_problem(tag)
        if problem:
            problems.append(problem)
    return problems


def inspect_wheel_name(filename: str) -> list[str]:
    """Problems with a wheel filename's tags; [] when it is an abi3 manylinux2014-compatible wheel."""
    name = PurePosixPath(filename.replace("\\", "/")).name
    if not name.endswith(".whl"):
        return [f"{name} is not a wheel file name (no .whl suffix)"]
    parts = name[: -len(".whl")].split("-")
    if len(parts) not in (5, 6) or not all(parts):
        return [f"{name} is not a valid wheel file name (name-version[-build]-python-abi-platform.whl)"]
    return _tag_problems(*parts[-3:])


def _wheel_metadata_problems(text: str) -> list[str]:
    tags = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Tag:")]
    if not tags:
        return ["the WHEEL file has no Tag: lines"]
    problems = []
    for tag in tags:
        parts = tag.split("-")
        if len(parts) != 3 or not all(parts):
            problems.append(f"Tag: {tag} is not python-abi-platform")
            continue
        problems += [f"Tag: {tag}: {problem}" for problem in _tag_problems(*parts)]
    return problems


# The file name of a Python extension module says which interpreters will import it (PEP 3149):
# `_core.abi3.so` any CPython 3 from the build's minimum on (PEP 384), `_core.cpython-312-x86_64-linux-gnu.so`
# CPython 3.12 only. A layer serves every python3.x runtime, so only abi3 (or untagged) names pass.
_EXTENSION_TAG = re.compile(r"\.(?P<tag>(?:cpython|cp|pypy|graalpy)[^./]*)\.(?:so|pyd)$", re.IGNORECASE)
_CPYTHON_VERSION = re.compile(r"(?:cpython-|cp)3(\d{1,3})", re.IGNORECASE)


def extension_tag_problem(path: str) -> str | None:
    """Why an extension module's file name ties it to one interpreter, or None (abi3, untagged, or a plain library)."""
    match = _EXTENSION_TAG.search(PurePosixPath(path).name)
    if match is None:
        return None
    tag = match.group("tag")
    version = _CPYTHON_VERSION.match(tag)
    if version is None:
        return f"extension module tag {tag} is not CPython: Lambda's python3.x runtimes are CPython"
    return (
        f"extension module tag {tag} is not abi3: only CPython 3.{version.group(1)} imports it, not every "
        "Lambda python3.x runtime (a stable-ABI build is named *.abi3.so)"
    )


# --------------------------------------------------------------------------- scanning
_WHEEL_METADATA = re.compile(r"[^/]+\.dist-info/WHEEL")


def _unsafe_name(name: str) -> str | None:
    # Never extracted by this gate, but a layer zip is unpacked by Lambda and by people: a member
    # that can land outside its folder is refused whatever it contains.
    if "\0" in name:
        return "member name contains a NUL byte"
    if "\\" in name:
        return "member name uses backslashes, which some unzip tools treat as folder separators"
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return "member name is an absolute path (path traversal)"
    if ".." in name.split("/"):
        return "member name climbs out of the extraction folder with '..' (path traversal)"
    return None


@dataclass
class _Budget:
    """Running total of bytes read fully, so a thousand mid-sized binaries cannot add up to a bomb."""

    remaining: int


def _read_capped(stream: IO[bytes], budget: _Budget) -> bytes | None:
    """The whole stream, or None when it is larger than the per-member or remaining budget."""
    cap = min(MAX_MEMBER_BYTES, budget.remaining)
    data = stream.read(cap + 1)
    if len(data) > cap:
        return None
    budget.remaining -= len(data)
    return data


def _too_large(path: str) -> Finding:
    return _refused(
        path,
        _KIND_UNREADABLE,
        f"binary too large to inspect (over {MAX_MEMBER_BYTES // (1024 * 1024)} MiB, or the "
        f"{MAX_TOTAL_BYTES // (1024 * 1024)} MiB total budget is spent): a Lambda layer cannot hold it",
    )


def _judge(path: str, head: bytes, read_all: Callable[[], bytes | None]) -> Finding | None:
    """Decide from the first bytes whether the full contents are worth reading, then judge them.

    read_all is only called when needed, so the (possibly large) read is skipped for data files.
    """
    if not _has_binary_magic(head):
        # Non-binaries are judged by name and first bytes alone; reading them fully would let a
        # zip bomb disguised as data cost us the full decompression.
        return inspect_binary(path, head) if _looks_native(path) else None
    data = read_all()
    if data is None:
        return _too_large(path)
    return _with_name_check(inspect_binary(path, data))


def _with_name_check(finding: Finding | None) -> Finding | None:
    if finding is None or not _is_native(finding):
        return finding
    problem = extension_tag_problem(finding.path)
    if problem is None:
        return finding
    reason = f"{finding.reason}; {problem}" if finding.reason else problem
    return replace(finding, ok=False, reason=reason)


def _scan_zip(archive: Path, display: str) -> list[Finding]:
    findings: list[Finding] = []
    is_wheel = archive.suffix.lower() == ".whl"
    if is_wheel:
        findings += [_refused(display, _KIND_WHEEL_TAGS, p) for p in inspect_wheel_name(archive.name)]
    budget = _Budget(MAX_TOTAL_BYTES)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        return [*findings, _refused(display, _KIND_UNREADABLE, f"not a readable zip archive ({exc})")]
    with zf:
        members = zf.infolist()
        if len(members) > MAX_MEMBERS:
            return [
                *findings,
                _refused(
                    display,
                    _KIND_UNREADABLE,
                    f"archive lists {len(members)} members, more than the {MAX_MEMBERS} this gate inspects",
                ),
            ]
        metadata_seen = False
        for info in members:
            name = info.filename
            unsafe = _unsafe_name(name)
            if unsafe:
                findings.append(_refused(name, _KIND_UNSAFE_PATH, unsafe))
                continue
            if info.is_dir():
                continue
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                # The link target is its own member (or absent); the link's bytes are just a path.
                continue
            try:
                if is_wheel and _WHEEL_METADATA.fullmatch(name):
                    metadata_seen = True
                    with zf.open(info) as fh:
                        text = fh.read(1024 * 1024).decode("utf-8", "replace")
                    findings += [_refused(name, _KIND_WHEEL_TAGS, p) for p in _wheel_metadata_problems(text)]
                    continue
                with zf.open(info) as fh:
                    head = fh.read(SNIFF_BYTES)
                finding = _judge(name, head, _zip_reader(zf, info, budget))
            except Exception as exc:  # encrypted, corrupt, unsupported compression: all refusals
                finding = _refused(name, _KIND_UNREADABLE, f"member cannot be read ({type(exc).__name__}: {exc})")
            if finding is not None:
                findings.append(finding)
        if is_wheel and not metadata_seen:
            findings.append(_refused(display, _KIND_WHEEL_TAGS, "the wheel has no *.dist-info/WHEEL file"))
    return findings


def _zip_reader(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget) -> Callable[[], bytes | None]:
    def read() -> bytes | None:
        with zf.open(info) as fh:
            return _read_capped(fh, budget)

    return read


def _file_reader(path: Path, budget: _Budget) -> Callable[[], bytes | None]:
    def read() -> bytes | None:
        with path.open("rb") as fh:
            return _read_capped(fh, budget)

    return read


def _scan_file(path: Path, display: str, budget: _Budget) -> Finding | None:
    try:
        # Follow symlinks (the zipped layer will contain the target's bytes), but read only
        # regular files: a FIFO or device would block or never end.
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
        return _judge(display, head, _file_reader(path, budget))
    except FileNotFoundError:
        return None  # a dangling symlink: nothing would be zipped either
    except OSError as exc:
        return _refused(display, _KIND_UNREADABLE, f"cannot be read ({exc.strerror or exc})")


def _scan_folder(root: Path) -> list[Finding]:
    findings: list[Finding] = []
    budget = _Budget(MAX_TOTAL_BYTES)
    seen = 0
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()  # deterministic order for reports and tests
        for name in sorted(files):
            seen += 1
            if seen > MAX_MEMBERS:
                findings.append(
                    _refused(
                        root.name or str(root),
                        _KIND_UNREADABLE,
                        f"folder holds more than {MAX_MEMBERS} files, more than this gate inspects",
                    )
                )
                return findings
            path = Path(folder, name)
            finding = _scan_file(path, path.relative_to(root).as_posix(), budget)
            if finding is not None:
                findings.append(finding)
    return findings


def scan(path: Path) -> list[Finding]:
    """Every binary (and every native-named non-binary) in a .whl, a .zip, a folder or a single file."""
    path = Path(path)
    if path.is_dir():
        return _scan_folder(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.suffix.lower() in (".whl", ".zip"):
        return _scan_zip(path, path.name)
    finding = _scan_file(path, path.name, _Budget(MAX_TOTAL_BYTES))
    return [finding] if finding is not None else []


def _is_native(finding: Finding) -> bool:
    return finding.kind not in _NON_BINARY_KINDS


def _verdict(path: Path, findings: Sequence[Finding]) -> tuple[list[Finding], list[str]]:
    refused = [f for f in findings if not f.ok]
    notes = []
    if Path(path).suffix.lower() == ".whl" and not any(_is_native(f) for f in findings):
        notes.append(f"{Path(path).name}: the wheel contains no native binary at all, so the build went wrong")
    return refused, notes


def verify(path: Path) -> list[Finding]:
    """scan(), raising GateError if anything is refused or a wheel carries no native binary."""
    findings = scan(path)
    refused, notes = _verdict(path, findings)
    if refused or notes:
        raise GateError(refused, notes)
    return findings


# --------------------------------------------------------------------------- CLI
def _emit(text: str, stream: IO[str]) -> None:
    # A build log on a C/POSIX locale must not crash the gate over the em dash in a line.
    encoding = getattr(stream, "encoding", None) or "utf-8"
    stream.write(text.encode(encoding, "replace").decode(encoding) + "\n")


def report(paths: Sequence[Path], out: IO[str], err: IO[str], prog: str = "gate") -> int:
    """Print one line per shared object (and per refusal) of each path, then a verdict on err.

    Exit status: 0 passed, 1 refused, 2 a path does not exist. The build's gate and the
    `kiray-imaging verify-layer` command both print through here, so they cannot disagree.
    """
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        for p in missing:
            _emit(f"{prog}: no such file or folder: {p}", err)
        return 2
    refused: list[Finding] = []
    notes: list[str] = []
    binaries = 0
    for path in paths:
        findings = scan(Path(path))
        for finding in findings:
            _emit(finding.line(), out)
        binaries += sum(1 for f in findings if f.ok and _is_native(f))
        path_refused, path_notes = _verdict(Path(path), findings)
        refused += path_refused
        notes += path_notes
    out.flush()
    if refused or notes:
        parts = [f"{len(refused)} finding(s) Lambda would fail on, see the REFUSED lines above"] if refused else []
        _emit(f"{prog}: REFUSED " + "; ".join(parts + notes), err)
        return 1
    _emit(f"{prog}: passed ({binaries} shared object{'' if binaries == 1 else 's'})", err)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or any(a in ("-h", "--help") for a in args):
        _emit("usage: layer_gate.py PATH [PATH...]   (PATH: a .whl, a layer .zip or a folder)", sys.stderr)
        return 2
    return report([Path(a) for a in args], sys.stdout, sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
