"""Which native format a file is, from its first bytes, and the verdict on each: ELF is judged (elf.py), a Mach-O or
PE is refused by name (Lambda runs Linux: loading one is the "invalid ELF header" crash), and a file named like a
native library that is none of them is refused too."""

from __future__ import annotations

import re
import struct

from . import elf
from .policy import KIND_NOT_BINARY, Budget, Finding, Target, refused

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


def looks_native(name: str) -> bool:
    """True for names a loader would open: .so (also versioned .so.N), .node, .dylib, .pyd, .dll."""
    return bool(_NATIVE_NAME.search(name))


def has_binary_magic(head: bytes) -> bool:
    return head[:4] == elf.MAGIC or head[:4] in _MACHO_THIN or head[:4] in _FAT_MAGICS or head[:2] == b"MZ"


def _macho_cpu(cputype: int, cpusubtype: int) -> str:
    name = _MACHO_CPUS.get(cputype, f"cputype {cputype:#x}")
    if name == "arm64" and cpusubtype & 0xFF == 2:
        return "arm64e"
    return name


def _inspect_macho(path: str, data: bytes) -> Finding:
    bits, little = _MACHO_THIN[data[:4]]
    if len(data) < 12:
        return refused(path, f"Mach-O {bits}-bit (truncated)", _MACOS_REASON)
    cputype, cpusubtype = struct.unpack_from("<ii" if little else ">ii", data, 4)
    return refused(path, f"Mach-O {bits}-bit {_macho_cpu(cputype & 0xFFFFFFFF, cpusubtype)}", _MACOS_REASON)


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
        return refused(path, f"Mach-O universal ({', '.join(cpus)})", _MACOS_REASON)
    if path.lower().endswith(".class") and not looks_native(path):
        return None  # a Java class file: not native code at all
    return refused(
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
            return refused(path, f"{flavour} {name}", _WINDOWS_REASON)
    # "MZ" alone is too weak a signal to judge arbitrary data files by.
    if looks_native(path) or path.lower().endswith(".exe"):
        return refused(path, "MS-DOS/PE executable (PE header unreadable)", _WINDOWS_REASON)
    return None


def inspect_binary(path: str, data: bytes, target: Target, budget: Budget) -> Finding | None:
    """Judge one file's bytes for target. None when it is not a binary and its name is not a native library's."""
    try:
        magic = data[:4]
        if magic == elf.MAGIC:
            return elf.inspect_elf(path, data, target, budget)
        if magic in _MACHO_THIN:
            return _inspect_macho(path, data)
        if magic in _FAT_MAGICS:
            return _inspect_fat(path, data)
        if data[:2] == b"MZ":
            return _inspect_pe(path, data)
        if not looks_native(path):
            return None
        if 0 < len(data) < 4 and elf.MAGIC.startswith(data):
            return refused(path, "truncated ELF", f"truncated ELF: the file ends after {len(data)} bytes")
        if not data:
            return refused(path, KIND_NOT_BINARY, "empty file named like a native library")
        return refused(
            path,
            KIND_NOT_BINARY,
            f"named like a native library but is not ELF, Mach-O or PE (starts with {data[:8].hex(' ')}); "
            "loading it fails with 'invalid ELF header'",
        )
    except Exception as exc:  # the gate must report, never crash, whatever the bytes are
        return refused(path, "unparseable binary", f"could not be parsed ({type(exc).__name__}: {exc})")
