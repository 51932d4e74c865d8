"""Names that decide which interpreters and platforms will load code: wheel file names, a wheel's WHEEL tags, and
extension module names (PEP 425 / 427 / 3149)."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from .policy import MAX_GLIBC, Target, dotted

_LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
_MANYLINUX = re.compile(r"manylinux_(\d{1,4})_(\d{1,4})_(\w+)")
_LEGACY = re.compile(r"(manylinux1|manylinux2010|manylinux2014)_(\w+)")


def _platform_problem(tag: str, arch: Target) -> str | None:
    """Why one platform tag is unacceptable for arch, or None when it is an old-enough manylinux tag."""
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
                f"platform tag {tag} promises only glibc {dotted(glibc)}, newer than the "
                f"{dotted(MAX_GLIBC)} of manylinux2014 / every Lambda runtime ({wanted} wanted)"
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


def _tag_problems(python: str, abi: str, platform: str, arch: Target) -> list[str]:
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
        problem = _platform_problem(tag, arch)
        if problem:
            problems.append(problem)
    return problems


def inspect_wheel_name(filename: str, arch: Target) -> list[str]:
    """Problems with a wheel filename's tags; [] when it is an abi3 manylinux2014-compatible wheel for arch."""
    name = PurePosixPath(filename.replace("\\", "/")).name
    if not name.endswith(".whl"):
        return [f"{name} is not a wheel file name (no .whl suffix)"]
    parts = name[: -len(".whl")].split("-")
    if len(parts) not in (5, 6) or not all(parts):
        return [f"{name} is not a valid wheel file name (name-version[-build]-python-abi-platform.whl)"]
    python, abi, platform = parts[-3:]
    return _tag_problems(python, abi, platform, arch)


def wheel_metadata_problems(text: str, arch: Target) -> list[str]:
    """Problems with the Tag: lines of a wheel's .dist-info/WHEEL file."""
    tags = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Tag:")]
    if not tags:
        return ["the WHEEL file has no Tag: lines"]
    problems = []
    for tag in tags:
        parts = tag.split("-")
        if len(parts) != 3 or not all(parts):
            problems.append(f"Tag: {tag} is not python-abi-platform")
            continue
        python, abi, platform = parts
        problems += [f"Tag: {tag}: {problem}" for problem in _tag_problems(python, abi, platform, arch)]
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
