"""Deterministic, pure-Python makers of small native binaries and archives for the gate's tests.

The ELF objects are minimal but structurally real: program headers (PT_LOAD + PT_DYNAMIC with
DT_STRTAB/DT_STRSZ/DT_VERNEED/DT_VERNEEDNUM) and section headers (.dynstr, .gnu.version_r,
.dynamic, .shstrtab), so both of the gate's ways of finding version needs are exercised.
Virtual addresses equal file offsets, as in the first segment of a real shared object.
"""

from __future__ import annotations

import random
import struct
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

EM_386 = 3
EM_PPC64 = 21
EM_S390 = 22
EM_ARM = 40
EM_X86_64 = 62
EM_AARCH64 = 183
EM_RISCV = 243

ET_REL = 1
ET_EXEC = 2
ET_DYN = 3

SHT_STRTAB = 3
SHT_DYNAMIC = 6
SHT_GNU_VERNEED = 0x6FFFFFFE
SHF_ALLOC = 2
PT_LOAD = 1
PT_DYNAMIC = 2
DT_STRTAB = 5
DT_STRSZ = 10
DT_VERNEED = 0x6FFFFFFE
DT_VERNEEDNUM = 0x6FFFFFFF

CPU_TYPE_X86 = 7
CPU_TYPE_X86_64 = 0x01000007
CPU_TYPE_ARM64 = 0x0100000C
CPU_TYPE_POWERPC = 18
MH_BUNDLE = 8

PE_AMD64 = 0x8664
PE_I386 = 0x014C
PE_ARM64 = 0xAA64

GOOD_GLIBC = ("GLIBC_2.2.5", "GLIBC_2.14", "GLIBC_2.17")
LIBC = "libc.so.6"

Needs = Sequence[tuple[str, Sequence[str]]]


def elf_hash(name: bytes) -> int:
    h = 0
    for byte in name:
        h = ((h << 4) + byte) & 0xFFFFFFFF
        g = h & 0xF0000000
        if g:
            h ^= g >> 24
        h &= ~g & 0xFFFFFFFF
    return h


class StringTable:
    def __init__(self) -> None:
        self.blob = bytearray(b"\0")
        self.index: dict[str, int] = {}

    def add(self, text: str) -> int:
        if text not in self.index:
            self.index[text] = len(self.blob)
            self.blob += text.encode() + b"\0"
        return self.index[text]


@dataclass(frozen=True)
class ElfImage:
    """The bytes plus where things are, so hostile tests can patch precise fields."""

    data: bytes
    little: bool
    bits: int
    shoff: int
    shentsize: int
    verneed_section_index: int
    verneed_offset: int
    verneed_size: int
    dynstr_offset: int
    dynamic_offset: int

    def section_header_offset(self, index: int) -> int:
        return self.shoff + index * self.shentsize


def verneed_blob(needs: Needs, strings: StringTable, little: bool = True) -> bytes:
    """Elf_Verneed records, each followed by its Elf_Vernaux records (the GNU ld layout)."""
    end = "<" if little else ">"
    out = bytearray()
    version_index = 2  # 0 and 1 are reserved for local/global
    for i, (library, versions) in enumerate(needs):
        last = i == len(needs) - 1
        size = 16 + 16 * len(versions)
        out += struct.pack(
            end + "HHIII", 1, len(versions), strings.add(library), 16 if versions else 0, 0 if last else size
        )
        for j, version in enumerate(versions):
            name = version.encode()
            vna_next = 0 if j == len(versions) - 1 else 16
            out += struct.pack(end + "IHHII", elf_hash(name), 0, version_index, strings.add(version), vna_next)
            version_index += 1
    return bytes(out)


def _align(buf: bytearray, boundary: int) -> None:
    while len(buf) % boundary:
        buf.append(0)


def build_elf(
    glibc: Sequence[str] = GOOD_GLIBC,
    *,
    other_needs: Needs = (),
    bits: int = 64,
    little: bool = True,
    machine: int = EM_X86_64,
    e_type: int = ET_DYN,
    osabi: int = 0,
    sections: bool = True,
    dynamic: bool = True,
    raw_verneed: bytes | None = None,
    verneed_count: int | None = None,
) -> ElfImage:
    """An ELF object needing `glibc` versions from libc.so.6 (plus `other_needs`).

    raw_verneed replaces the generated .gnu.version_r bytes (strings "libc.so.6" and the glibc
    names are still in .dynstr); verneed_count overrides sh_info and DT_VERNEEDNUM.
    """
    end = "<" if little else ">"
    wide = bits == 64
    ehsize, phentsize, shentsize = (64, 56, 64) if wide else (52, 32, 40)
    needs: list[tuple[str, Sequence[str]]] = []
    if glibc:
        needs.append((LIBC, tuple(glibc)))
    needs += [(lib, tuple(v)) for lib, v in other_needs]

    dynstr = StringTable()
    for lib, versions in needs:
        dynstr.add(lib)
        for version in versions:
            dynstr.add(version)
    verneed = raw_verneed if raw_verneed is not None else verneed_blob(needs, dynstr, little)
    count = verneed_count if verneed_count is not None else len(needs)
    has_verneed = bool(needs) or raw_verneed is not None

    phnum = 2 if dynamic else 1
    body = bytearray(ehsize + phnum * phentsize)
    dynstr_offset = len(body)
    body += dynstr.blob
    _align(body, 4)
    verneed_offset = len(body)
    body += verneed
    _align(body, 8)
    dynamic_offset = len(body)
    entries = [(DT_STRTAB, dynstr_offset), (DT_STRSZ, len(dynstr.blob))]
    if has_verneed:
        entries += [(DT_VERNEED, verneed_offset), (DT_VERNEEDNUM, count)]
    entries.append((0, 0))
    for tag, value in entries:
        body += struct.pack(end + ("qQ" if wide else "iI"), tag, value)
    dynamic_size = len(body) - dynamic_offset

    shstr = StringTable()
    section_specs: list[tuple[str, int, int, int, int, int]] = [("", 0, 0, 0, 0, 0)]
    verneed_section_index = 0
    if sections:
        section_specs.append((".dynstr", SHT_STRTAB, dynstr_offset, len(dynstr.blob), 0, 0))
        if has_verneed:
            verneed_section_index = len(section_specs)
            section_specs.append((".gnu.version_r", SHT_GNU_VERNEED, verneed_offset, len(verneed), 1, count))
        section_specs.append((".dynamic", SHT_DYNAMIC, dynamic_offset, dynamic_size, 1, 0))
        for name, *_ in section_specs:
            shstr.add(name)
        shstr.add(".shstrtab")
    shstrtab_offset = len(body)
    if sections:
        body += shstr.blob
        section_specs.append((".shstrtab", SHT_STRTAB, shstrtab_offset, len(shstr.blob), 0, 0))
    _align(body, 8)
    shoff = len(body) if sections else 0
    for name, sh_type, offset, size, link, info in section_specs if sections else []:
        flags = 0 if name in ("", ".shstrtab") else SHF_ALLOC
        fields = (shstr.add(name), sh_type, flags, offset, offset, size, link, info, 1, 0)
        body += struct.pack(end + ("IIQQQQIIQQ" if wide else "IIIIIIIIII"), *fields)
    file_size = len(body)

    ident = b"\x7fELF" + bytes([2 if wide else 1, 1 if little else 2, 1, osabi]) + bytes(8)
    shnum = len(section_specs) if sections else 0
    shstrndx = len(section_specs) - 1 if sections else 0
    header_fmt = "HHIQQQIHHHHHH" if wide else "HHIIIIIHHHHHH"
    header = ident + struct.pack(
        end + header_fmt, e_type, machine, 1, 0, ehsize, shoff, 0, ehsize, phentsize, phnum, shentsize, shnum, shstrndx
    )
    body[: len(header)] = header
    phdrs = [(PT_LOAD, 5, 0, 0, file_size, file_size, 0x1000)]
    if dynamic:
        phdrs.append((PT_DYNAMIC, 6, dynamic_offset, dynamic_offset, dynamic_size, dynamic_size, 8))
    for i, (p_type, flags, offset, vaddr, filesz, memsz, align) in enumerate(phdrs):
        if wide:
            packed = struct.pack(end + "IIQQQQQQ", p_type, flags, offset, vaddr, vaddr, filesz, memsz, align)
        else:
            packed = struct.pack(end + "IIIIIIII", p_type, offset, vaddr, vaddr, filesz, memsz, flags, align)
        start = ehsize + i * phentsize
        body[start : start + phentsize] = packed
    return ElfImage(
        data=bytes(body),
        little=little,
        bits=bits,
        shoff=shoff,
        shentsize=shentsize,
        verneed_section_index=verneed_section_index,
        verneed_offset=verneed_offset,
        verneed_size=len(verneed),
        dynstr_offset=dynstr_offset,
        dynamic_offset=dynamic_offset,
    )


def elf_shared_object(glibc: Sequence[str] = GOOD_GLIBC) -> bytes:
    """Just the bytes of a default build_elf(); the good case unless glibc says otherwise."""
    return build_elf(glibc).data


def patch(data: bytes, offset: int, fmt: str, *values: int) -> bytes:
    """A copy of data with struct fmt packed at offset."""
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, *values)
    return bytes(out)


def macho(cputype: int, *, bits: int = 64, little: bool = True, filetype: int = MH_BUNDLE) -> bytes:
    """A thin Mach-O header (no load commands), as the first bytes of a macOS .so/.node/.dylib."""
    end = "<" if little else ">"
    magic = 0xFEEDFACF if bits == 64 else 0xFEEDFACE
    header = struct.pack(end + "IiiIIII", magic, cputype, 0, filetype, 0, 0, 0)
    if bits == 64:
        header += b"\0\0\0\0"  # reserved
    return header + bytes(64)


def fat_macho(cputypes: Sequence[int]) -> bytes:
    """A universal binary: big-endian fat header, fat_arch records, one thin slice per arch."""
    slices = [macho(cpu) for cpu in cputypes]
    header = struct.pack(">II", 0xCAFEBABE, len(cputypes))
    offset = 0x1000
    records = b""
    for cpu, thin in zip(cputypes, slices):
        records += struct.pack(">IiIII", cpu, 0, offset, len(thin), 12)
        offset += 0x1000
    out = bytearray(header + records)
    for i, thin in enumerate(slices):
        out += bytes(0x1000 * (i + 1) - len(out))
        out += thin
    return bytes(out)


def java_class() -> bytes:
    """CAFEBABE, minor 0, major 61 (Java 17): same magic as a universal binary."""
    return struct.pack(">IHH", 0xCAFEBABE, 0, 61) + bytes(32)


def pe(machine: int = PE_AMD64, *, pe32_plus: bool = True) -> bytes:
    """MZ stub pointing (e_lfanew) at a PE signature, COFF header and optional-header magic."""
    stub = bytearray(0x80)
    stub[0:2] = b"MZ"
    struct.pack_into("<I", stub, 0x3C, 0x80)
    optional_size = 240 if pe32_plus else 224
    coff = struct.pack("<HHIIIHH", machine, 0, 0, 0, 0, optional_size, 0x2022)
    optional = struct.pack("<H", 0x20B if pe32_plus else 0x10B) + bytes(optional_size - 2)
    return bytes(stub) + b"PE\0\0" + coff + optional


def random_bytes(size: int = 256, seed: int = 20240601) -> bytes:
    return random.Random(seed).randbytes(size)


# --------------------------------------------------------------------------- archives
GOOD_WHEEL_NAME = "kiray_imaging-0.1.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
GOOD_WHEEL_TAGS = ("cp39-abi3-manylinux_2_17_x86_64", "cp39-abi3-manylinux2014_x86_64")


def make_zip(path: Path, members: Mapping[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def make_wheel(
    folder: Path,
    members: Mapping[str, bytes],
    *,
    filename: str = GOOD_WHEEL_NAME,
    tags: Sequence[str] | None = GOOD_WHEEL_TAGS,
) -> Path:
    """A wheel with a dist-info WHEEL file carrying `tags` (none at all when tags is None)."""
    dist_info = "-".join(filename.split("-")[:2]) + ".dist-info"
    everything = dict(members)
    if tags is not None:
        wheel = "Wheel-Version: 1.0\nGenerator: elf_factory\nRoot-Is-Purelib: false\n"
        wheel += "".join(f"Tag: {tag}\n" for tag in tags)
        everything[f"{dist_info}/WHEEL"] = wheel.encode()
    everything[f"{dist_info}/METADATA"] = b"Metadata-Version: 2.1\nName: kiray-imaging\nVersion: 0.1.0\n"
    everything[f"{dist_info}/RECORD"] = b""
    return make_zip(folder / filename, everything)
