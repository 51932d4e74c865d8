"""What the gate's tests share: the verdict texts they expect, and judge() for cases that must yield a finding.

conftest.py loads the gate by file path (never through the kiray_imaging package, whose __init__
needs the native extension), so here it is a plain top-level module, as is elf_factory.
"""

from __future__ import annotations

import sys
import time
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.layer import elf_factory as ef

    from kiray_imaging.tooling import layer_gate as gate
else:
    import elf_factory as ef
    import layer_gate as gate

DASH = "\u2014"
GOOD_KIND = "ELF64 x86-64 shared object"
MACOS_REASON = "built for macOS, Lambda runs Linux: this is the 'invalid ELF header' crash"
WINDOWS_REASON = "built for Windows, Lambda runs Linux: this is the 'invalid ELF header' crash"
GLIBC_TOO_NEW = "newer than the 2.17 that manylinux2014 / every Lambda runtime provides"


def judge(data: bytes, name: str = "x.so", arch: str = "x86_64") -> gate.Finding:
    """inspect_binary() for cases that must produce a finding."""
    finding = gate.inspect_binary(name, data, arch=arch)
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


def good_members() -> dict[str, bytes]:
    """A wheel's members: the package, its one good extension module, a marker file."""
    return {
        "kiray_imaging/__init__.py": b"from kiray_imaging._core import *\n",
        "kiray_imaging/_core.abi3.so": ef.elf_shared_object(),
        "kiray_imaging/py.typed": b"",
    }


def gate_module(name: str) -> ModuleType:
    """One of the gate's own modules (elf, policy, …), from the package conftest.py loaded by path."""
    return sys.modules[f"{gate.__package__}.{name}"]
