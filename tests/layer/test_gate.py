"""The layer's binary gate (python/kiray_imaging/tooling/): its module contract, report lines, target
architecture and command line. The verdicts themselves: test_gate_elf.py, test_gate_formats.py, test_gate_archives.py.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.layer import elf_factory as ef
    from tests.layer.gate_support import (
        DASH,
        GOOD_KIND,
        MACOS_REASON,
        good_members,
        judge,
    )

    from kiray_imaging.tooling import layer_gate as gate
else:
    import elf_factory as ef
    import layer_gate as gate
    from gate_support import (
        DASH,
        GOOD_KIND,
        MACOS_REASON,
        good_members,
        judge,
    )


# --------------------------------------------------------------------------- module contract
TOOLING = Path(gate.__file__).parent
TOOLING_SOURCES = sorted(TOOLING.glob("*.py"))


def test_public_api_names_and_policy_constants() -> None:
    assert gate.MAX_GLIBC == (2, 17)
    assert gate.DEFAULT_ARCH == "x86_64"
    assert not hasattr(gate, "ARCH"), "the architecture is a parameter, not a module global to swap"
    assert [f.name for f in dataclasses.fields(gate.Finding)] == ["path", "kind", "max_glibc", "ok", "reason"]
    assert issubclass(gate.GateError, Exception)
    for name in ("inspect_binary", "inspect_wheel_name", "scan", "verify", "report", "main"):
        assert callable(getattr(gate, name)), name
    finding = gate.Finding(path="a.so", kind=GOOD_KIND, max_glibc=(2, 17), ok=True, reason="")
    with pytest.raises(dataclasses.FrozenInstanceError):
        finding.ok = False  # type: ignore[misc]


def _imports(path: Path) -> tuple[set[str], set[int]]:
    """The top-level names a module imports absolutely, and the levels of its relative imports."""
    absolute: set[str] = set()
    levels: set[int] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            absolute |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                levels.add(node.level)
            else:
                assert node.module is not None
                absolute.add(node.module.split(".")[0])
    return absolute, levels


@pytest.mark.parametrize("path", TOOLING_SOURCES, ids=lambda p: p.name)
def test_gate_imports_only_the_standard_library_and_pyelftools(path: Path) -> None:
    # build.py loads the folder by path as a package of its own, where kiray_imaging cannot be imported.
    absolute, levels = _imports(path)
    assert "kiray_imaging" not in absolute
    assert levels <= {1}, "relative imports beyond the tooling folder would pull in the kiray_imaging package"
    allowed = set(sys.stdlib_module_names) | {"__future__"}
    if path.name != "__main__.py":  # the loader runs before anything else can: standard library alone
        allowed.add("elftools")
    else:
        assert not levels
    assert absolute <= allowed, absolute - allowed


@pytest.mark.parametrize("path", TOOLING_SOURCES, ids=lambda p: p.name)
def test_gate_source_is_python39_syntax(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, feature_version=(3, 9))
    if any(not isinstance(node, ast.Expr) for node in tree.body):  # more than a docstring
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


# --------------------------------------------------------------------------- target architecture
def test_arch_is_a_parameter() -> None:
    # What "ARCH is one setting" asserted when it was a module global, with the architecture passed instead.
    assert judge(ef.build_elf(machine=ef.EM_AARCH64).data, arch="aarch64").ok
    x86 = judge(ef.elf_shared_object(), arch="aarch64")
    assert not x86.ok
    assert "built for x86-64, but this layer targets Lambda arm64" in x86.reason
    arm_wheel = "k-0.1.0-cp39-abi3-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
    assert gate.inspect_wheel_name(arm_wheel, arch="aarch64") == []
    assert gate.inspect_wheel_name(ef.GOOD_WHEEL_NAME, arch="aarch64") != []
    # A call for another architecture leaves nothing behind.
    assert judge(ef.elf_shared_object()).ok
    assert gate.inspect_wheel_name(arm_wheel) != []


@pytest.mark.parametrize("arch", ["aarch64", "arm64"])
def test_arch_flows_through_scan_verify_report_and_main(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arch: str
) -> None:
    arm = ef.make_zip(tmp_path / "arm.zip", {"python/x/_core.abi3.so": ef.build_elf(machine=ef.EM_AARCH64).data})
    assert [f.ok for f in gate.scan(arm, arch=arch)] == [True]
    assert [f.ok for f in gate.scan(arm)] == [False]
    assert [f.kind for f in gate.verify(arm, arch=arch)] == ["ELF64 aarch64 shared object"]
    with pytest.raises(gate.GateError):
        gate.verify(arm)
    assert gate.report([arm], sys.stdout, sys.stderr, arch=arch) == 0
    assert gate.report([arm], sys.stdout, sys.stderr) == 1
    assert gate.main(["--architecture", arch, str(arm)]) == 0
    assert gate.main([str(arm)]) == 1
    capsys.readouterr()


def test_an_unknown_arch_is_a_value_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for call in (
        lambda: gate.scan(tmp_path, arch="sparc"),
        lambda: gate.verify(tmp_path, arch="sparc"),
        lambda: gate.inspect_binary("x.so", ef.elf_shared_object(), arch="sparc"),
        lambda: gate.inspect_wheel_name(ef.GOOD_WHEEL_NAME, arch="sparc"),
        lambda: gate.report([tmp_path], sys.stdout, sys.stderr, arch="sparc"),
    ):
        with pytest.raises(ValueError, match="unknown Lambda architecture 'sparc', expected one of x86_64, aarch64"):
            call()
    assert gate.main(["--architecture", "sparc", str(tmp_path)]) == 2
    assert "usage: gate [--architecture x86_64|aarch64|arm64] PATH" in capsys.readouterr().err


# --------------------------------------------------------------------------- CLI
def test_cli_passes_a_good_wheel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wheel = ef.make_wheel(tmp_path, good_members())
    assert gate.main([str(wheel)]) == 0
    out, err = capsys.readouterr()
    assert out == "ok       kiray_imaging/_core.abi3.so: ELF64 x86-64 shared object, max GLIBC_2.17\n"
    assert err == "gate: passed (1 shared object)\n"


def test_cli_refuses_the_classic_crash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = ef.make_wheel(tmp_path, good_members())
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
    wheel = ef.make_wheel(tmp_path, good_members())
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


def test_the_script_says_how_to_get_a_missing_pyelftools(tmp_path: Path, gate_path: Path) -> None:
    hide = "import runpy, sys; sys.modules['elftools'] = None; sys.argv[:] = sys.argv[1:]; "
    hide += "runpy.run_path(sys.argv[0], run_name='__main__')"
    result = subprocess.run(
        [sys.executable, "-c", hide, str(gate_path), str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("gate: the binary gate needs pyelftools: `make setup` installs it"), result.stderr
