"""The Lambda layer's binary gate: refuse native code that Lambda cannot load.

Given a .whl, a layer .zip, a folder or one file, and the functions' architecture: one Finding per native binary
(and per refusal), a verdict, a report. The build (layer/build.py) runs it on the wheel and on the zip it ships;
`kiray-imaging verify-layer` runs it on whatever a user hands it. What it holds binaries to is in policy.py, how
each format is recognised in binaries.py and elf.py, the names that pin an interpreter in wheel_tags.py; this module
walks archives and folders within the limits below.

As a script, where kiray_imaging cannot be imported: ``python python/kiray_imaging/tooling PATH [PATH...]``
(see __main__.py). Exit status 0 = passed, 1 = refused, 2 = bad invocation / missing path.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import IO

from . import binaries, wheel_tags
from .policy import (
    DEFAULT_ARCH,
    KIND_UNREADABLE,
    KIND_UNSAFE_PATH,
    KIND_WHEEL_TAGS,
    MAX_GLIBC,
    TARGETS,
    Budget,
    Finding,
    GateError,
    Target,
    is_native,
    refused,
    target,
)
from .wheel_tags import extension_tag_problem

__all__ = [
    "DEFAULT_ARCH",
    "MAX_GLIBC",
    "TARGETS",
    "Finding",
    "GateError",
    "extension_tag_problem",
    "inspect_binary",
    "inspect_wheel_name",
    "main",
    "report",
    "scan",
    "verify",
]

# Limits that keep a hostile or broken archive from turning the gate into a denial of service.
# A Lambda layer may unpack to 250 MB at most, so these are generous for honest input.
MAX_MEMBER_BYTES: int = 512 * 1024 * 1024
MAX_TOTAL_BYTES: int = 2 * 1024 * 1024 * 1024
MAX_MEMBERS: int = 200_000
# ELF records (headers, dynamic entries, version needs) decoded per scan. An honest layer's shared objects hold a few
# hundred each; elf.py's per-file caps allow a quarter of a million in one crafted file, and this keeps a thousand
# such files from adding up.
MAX_ELF_RECORDS: int = 1_000_000
# Every magic we recognise fits in the first 8 bytes; a little more costs nothing.
SNIFF_BYTES: int = 64


def _budget() -> Budget:
    return Budget(bytes_left=MAX_TOTAL_BYTES, records_left=MAX_ELF_RECORDS, records_cap=MAX_ELF_RECORDS)


def inspect_binary(path: str, data: bytes, *, arch: str = DEFAULT_ARCH) -> Finding | None:
    """Judge one file's bytes for Lambda arch. None when it is not a binary and its name is not a native library's."""
    return binaries.inspect_binary(path, data, target(arch), _budget())


def inspect_wheel_name(filename: str, *, arch: str = DEFAULT_ARCH) -> list[str]:
    """Problems with a wheel filename's tags; [] when it is an abi3 manylinux2014-compatible wheel for arch."""
    return wheel_tags.inspect_wheel_name(filename, target(arch))


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


def _read_capped(stream: IO[bytes], budget: Budget) -> bytes | None:
    """The whole stream, or None when it is larger than the per-member or remaining budget."""
    cap = min(MAX_MEMBER_BYTES, budget.bytes_left)
    data = stream.read(cap + 1)
    if len(data) > cap:
        return None
    budget.bytes_left -= len(data)
    return data


def _too_large(path: str) -> Finding:
    return refused(
        path,
        KIND_UNREADABLE,
        f"binary too large to inspect (over {MAX_MEMBER_BYTES // (1024 * 1024)} MiB, or the "
        f"{MAX_TOTAL_BYTES // (1024 * 1024)} MiB total budget is spent): a Lambda layer cannot hold it",
    )


def _judge(
    path: str, head: bytes, read_all: Callable[[], bytes | None], arch: Target, budget: Budget
) -> Finding | None:
    """Decide from the first bytes whether the full contents are worth reading, then judge them.

    read_all is only called when needed, so the (possibly large) read is skipped for data files.
    """
    if not binaries.has_binary_magic(head):
        # Non-binaries are judged by name and first bytes alone; reading them fully would let a
        # zip bomb disguised as data cost us the full decompression.
        return binaries.inspect_binary(path, head, arch, budget) if binaries.looks_native(path) else None
    data = read_all()
    if data is None:
        return _too_large(path)
    return _with_name_check(binaries.inspect_binary(path, data, arch, budget))


def _with_name_check(finding: Finding | None) -> Finding | None:
    if finding is None or not is_native(finding):
        return finding
    problem = extension_tag_problem(finding.path)
    if problem is None:
        return finding
    reason = f"{finding.reason}; {problem}" if finding.reason else problem
    return replace(finding, ok=False, reason=reason)


def _scan_zip(archive: Path, display: str, arch: Target) -> list[Finding]:
    findings: list[Finding] = []
    is_wheel = archive.suffix.lower() == ".whl"
    if is_wheel:
        findings += [refused(display, KIND_WHEEL_TAGS, p) for p in wheel_tags.inspect_wheel_name(archive.name, arch)]
    budget = _budget()
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        return [*findings, refused(display, KIND_UNREADABLE, f"not a readable zip archive ({exc})")]
    with zf:
        members = zf.infolist()
        if len(members) > MAX_MEMBERS:
            return [
                *findings,
                refused(
                    display,
                    KIND_UNREADABLE,
                    f"archive lists {len(members)} members, more than the {MAX_MEMBERS} this gate inspects",
                ),
            ]
        metadata_seen = False
        for info in members:
            name = info.filename
            unsafe = _unsafe_name(name)
            if unsafe:
                findings.append(refused(name, KIND_UNSAFE_PATH, unsafe))
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
                    findings += [
                        refused(name, KIND_WHEEL_TAGS, p) for p in wheel_tags.wheel_metadata_problems(text, arch)
                    ]
                    continue
                with zf.open(info) as fh:
                    head = fh.read(SNIFF_BYTES)
                finding = _judge(name, head, _zip_reader(zf, info, budget), arch, budget)
            except Exception as exc:  # encrypted, corrupt, unsupported compression: all refusals
                finding = refused(name, KIND_UNREADABLE, f"member cannot be read ({type(exc).__name__}: {exc})")
            if finding is not None:
                findings.append(finding)
        if is_wheel and not metadata_seen:
            findings.append(refused(display, KIND_WHEEL_TAGS, "the wheel has no *.dist-info/WHEEL file"))
    return findings


def _zip_reader(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: Budget) -> Callable[[], bytes | None]:
    def read() -> bytes | None:
        with zf.open(info) as fh:
            return _read_capped(fh, budget)

    return read


def _file_reader(path: Path, budget: Budget) -> Callable[[], bytes | None]:
    def read() -> bytes | None:
        with path.open("rb") as fh:
            return _read_capped(fh, budget)

    return read


def _scan_file(path: Path, display: str, arch: Target, budget: Budget) -> Finding | None:
    try:
        # Follow symlinks (the zipped layer will contain the target's bytes), but read only
        # regular files: a FIFO or device would block or never end.
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
        return _judge(display, head, _file_reader(path, budget), arch, budget)
    except FileNotFoundError:
        return None  # a dangling symlink: nothing would be zipped either
    except OSError as exc:
        return refused(display, KIND_UNREADABLE, f"cannot be read ({exc.strerror or exc})")


def _scan_folder(root: Path, arch: Target) -> list[Finding]:
    findings: list[Finding] = []
    budget = _budget()
    seen = 0
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()  # deterministic order for reports and tests
        for name in sorted(files):
            seen += 1
            if seen > MAX_MEMBERS:
                findings.append(
                    refused(
                        root.name or str(root),
                        KIND_UNREADABLE,
                        f"folder holds more than {MAX_MEMBERS} files, more than this gate inspects",
                    )
                )
                return findings
            path = Path(folder, name)
            finding = _scan_file(path, path.relative_to(root).as_posix(), arch, budget)
            if finding is not None:
                findings.append(finding)
    return findings


def scan(path: Path, *, arch: str = DEFAULT_ARCH) -> list[Finding]:
    """Every binary (and every native-named non-binary) in a .whl, a .zip, a folder or a single file, judged for
    Lambda arch ("x86_64", or "arm64" / "aarch64"); ValueError for another architecture."""
    return _scan(Path(path), target(arch))


def _scan(path: Path, arch: Target) -> list[Finding]:
    if path.is_dir():
        return _scan_folder(path, arch)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.suffix.lower() in (".whl", ".zip"):
        return _scan_zip(path, path.name, arch)
    finding = _scan_file(path, path.name, arch, _budget())
    return [finding] if finding is not None else []


def _verdict(path: Path, findings: Sequence[Finding]) -> tuple[list[Finding], list[str]]:
    refusals = [f for f in findings if not f.ok]
    notes = []
    if Path(path).suffix.lower() == ".whl" and not any(is_native(f) for f in findings):
        notes.append(f"{Path(path).name}: the wheel contains no native binary at all, so the build went wrong")
    return refusals, notes


def verify(path: Path, *, arch: str = DEFAULT_ARCH) -> list[Finding]:
    """scan(), raising GateError if anything is refused or a wheel carries no native binary."""
    findings = scan(path, arch=arch)
    refusals, notes = _verdict(path, findings)
    if refusals or notes:
        raise GateError(refusals, notes)
    return findings


def _emit(text: str, stream: IO[str]) -> None:
    # A build log on a C/POSIX locale must not crash the gate over the em dash in a line.
    encoding = getattr(stream, "encoding", None) or "utf-8"
    stream.write(text.encode(encoding, "replace").decode(encoding) + "\n")


def report(paths: Sequence[Path], out: IO[str], err: IO[str], prog: str = "gate", *, arch: str = DEFAULT_ARCH) -> int:
    """Print one line per shared object (and per refusal) of each path, judged for Lambda arch, then a verdict on err.

    Exit status: 0 passed, 1 refused, 2 a path does not exist. The build's gate and the
    `kiray-imaging verify-layer` command both print through here, so they cannot disagree.
    """
    spec = target(arch)
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        for p in missing:
            _emit(f"{prog}: no such file or folder: {p}", err)
        return 2
    refusals: list[Finding] = []
    notes: list[str] = []
    shared_objects = 0
    for path in paths:
        findings = _scan(Path(path), spec)
        for finding in findings:
            _emit(finding.line(), out)
        shared_objects += sum(1 for f in findings if f.ok and is_native(f))
        path_refused, path_notes = _verdict(Path(path), findings)
        refusals += path_refused
        notes += path_notes
    out.flush()
    if refusals or notes:
        parts = [f"{len(refusals)} finding(s) Lambda would fail on, see the REFUSED lines above"] if refusals else []
        _emit(f"{prog}: REFUSED " + "; ".join(parts + notes), err)
        return 1
    _emit(f"{prog}: passed ({shared_objects} shared object{'' if shared_objects == 1 else 's'})", err)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    arch = DEFAULT_ARCH
    if args[:1] == ["--architecture"] and len(args) >= 2:
        arch, args = args[1], args[2:]
    if not args or arch not in TARGETS or any(a in ("-h", "--help") for a in args):
        choices = "|".join(TARGETS)
        _emit(
            f"usage: gate [--architecture {choices}] PATH [PATH...]   (PATH: a .whl, a layer .zip or a folder)",
            sys.stderr,
        )
        return 2
    return report([Path(a) for a in args], sys.stdout, sys.stderr, arch=arch)
