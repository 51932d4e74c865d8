"""What the gate holds native code to (the glibc ceiling, the Lambda architectures) and how it says so (Finding)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# manylinux2014 is glibc 2.17; the oldest Lambda runtimes (Amazon Linux 1) had exactly that,
# so anything needing more can fail on some runtime even if it happens to load on AL2023.
MAX_GLIBC: tuple[int, int] = (2, 17)
# serverless.yml's default; build.py and verify-layer pass the functions' architecture explicitly.
DEFAULT_ARCH = "x86_64"


@dataclass(frozen=True)
class Target:
    """One Lambda architecture, as each place the gate looks at spells it."""

    elf_machine: int
    elf_name: str  # as it appears in Finding.kind
    wheel_arch: str  # as it appears in wheel platform tags
    lambda_name: str  # as the Lambda console spells it


# Lambda calls aarch64 "arm64"; both spellings select the same target.
TARGETS: dict[str, Target] = {
    "x86_64": Target(62, "x86-64", "x86_64", "x86_64"),
    "aarch64": Target(183, "aarch64", "aarch64", "arm64"),
    "arm64": Target(183, "aarch64", "aarch64", "arm64"),
}


def target(arch: str) -> Target:
    """The Target of an architecture name; ValueError naming the known ones otherwise."""
    try:
        return TARGETS[arch]
    except KeyError:
        raise ValueError(f"unknown Lambda architecture {arch!r}, expected one of {', '.join(TARGETS)}") from None


# Kinds of findings that are not about a binary's contents; they do not count as "a native
# binary was found" when deciding whether a wheel is suspiciously empty.
KIND_WHEEL_TAGS = "wheel tags"
KIND_NOT_BINARY = "not a binary"
KIND_UNSAFE_PATH = "unsafe path"
KIND_UNREADABLE = "unreadable"
NON_BINARY_KINDS = frozenset({KIND_WHEEL_TAGS, KIND_NOT_BINARY, KIND_UNSAFE_PATH, KIND_UNREADABLE})


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
                detail = f", max GLIBC_{dotted(self.max_glibc)}"
            elif self.kind in NON_BINARY_KINDS:
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


@dataclass
class Budget:
    """What one scan may still spend, so that many mid-sized members cannot add up to a bomb: bytes read whole, and
    ELF records decoded (a record costs far more to decode than to read, so bytes alone do not bound the time)."""

    bytes_left: int
    records_left: int
    records_cap: int  # the starting records_left, for the message


def dotted(version: Sequence[int]) -> str:
    return ".".join(str(part) for part in version)


def refused(path: str, kind: str, reason: str, max_glibc: tuple[int, ...] | None = None) -> Finding:
    return Finding(path=path, kind=kind, max_glibc=max_glibc, ok=False, reason=reason)


def is_native(finding: Finding) -> bool:
    return finding.kind not in NON_BINARY_KINDS
