"""`kiray-imaging verify-layer PATH`: the build's gate, run by users on any layer, wheel or folder.

Each wrong kind of layer is crafted the way it happens in practice (a dependency installed on a Mac, on a Graviton
box, on Windows, on a new Linux, or for one Python version), and the command must name the problem on its line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kiray_imaging import cli

if TYPE_CHECKING:
    from tests.layer import elf_factory as ef
else:
    import elf_factory as ef

ROOT = Path(__file__).resolve().parents[2]
LAYER_ZIP = ROOT / "layer" / "dist" / "kiray-imaging-layer.zip"
DASH = "\u2014"
ELF_OK = "ELF64 x86-64 shared object"
MACOS = "built for macOS, Lambda runs Linux: this is the 'invalid ELF header' crash"
WINDOWS = "built for Windows, Lambda runs Linux: this is the 'invalid ELF header' crash"
NOT_ABI3 = (
    "extension module tag cpython-312-x86_64-linux-gnu is not abi3: only CPython 3.12 imports it, not every "
    "Lambda python3.x runtime (a stable-ABI build is named *.abi3.so)"
)
REFUSED_ONE = "verify-layer: REFUSED 1 finding(s) Lambda would fail on, see the REFUSED lines above\n"


def verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    status = cli.main(["verify-layer", *args])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


def layer(tmp_path: Path, members: dict[str, bytes]) -> Path:
    # Every crafted layer also holds a good extension and pure Python, which must stay "ok" beside the bad one.
    good = {"python/kiray_imaging/_core.abi3.so": ef.elf_shared_object(), "python/kiray_imaging/__init__.py": b""}
    return ef.make_zip(tmp_path / "layer.zip", {**good, **members})


GOOD_LINE = f"ok       python/kiray_imaging/_core.abi3.so: {ELF_OK}, max GLIBC_2.17"


@pytest.mark.parametrize(
    ("member", "data", "line"),
    [
        pytest.param(
            "python/sharp/build/Release/sharp-darwin-arm64v8.node",
            ef.macho(ef.CPU_TYPE_ARM64),
            f"REFUSED  python/sharp/build/Release/sharp-darwin-arm64v8.node: Mach-O 64-bit arm64 {DASH} {MACOS}",
            id="macos-node",
        ),
        pytest.param(
            "python/PIL/_imaging.cpython-312-darwin.so",
            ef.macho(ef.CPU_TYPE_X86_64),
            f"REFUSED  python/PIL/_imaging.cpython-312-darwin.so: Mach-O 64-bit x86_64 {DASH} {MACOS}; extension "
            "module tag cpython-312-darwin is not abi3: only CPython 3.12 imports it, not every Lambda python3.x "
            "runtime (a stable-ABI build is named *.abi3.so)",
            id="macos-so",
        ),
        pytest.param(
            "python/fast/_speedups.abi3.so",
            ef.build_elf(machine=ef.EM_AARCH64).data,
            f"REFUSED  python/fast/_speedups.abi3.so: ELF64 aarch64 shared object {DASH} built for aarch64, "
            "but this layer targets Lambda x86_64 (x86-64)",
            id="aarch64-elf",
        ),
        pytest.param(
            "python/fast/_speedups.pyd",
            ef.pe(ef.PE_AMD64),
            f"REFUSED  python/fast/_speedups.pyd: PE32+ AMD64 {DASH} {WINDOWS}",
            id="windows-pyd",
        ),
        pytest.param(
            "python/lib/libheif.so.1",
            ef.elf_shared_object(("GLIBC_2.2.5", "GLIBC_2.34")),
            f"REFUSED  python/lib/libheif.so.1: {ELF_OK} {DASH} needs GLIBC_2.34, newer than the 2.17 that "
            "manylinux2014 / every Lambda runtime provides",
            id="glibc-2.34",
        ),
        pytest.param(
            "python/kiray_imaging/_other.cpython-312-x86_64-linux-gnu.so",
            ef.elf_shared_object(),
            f"REFUSED  python/kiray_imaging/_other.cpython-312-x86_64-linux-gnu.so: {ELF_OK} {DASH} {NOT_ABI3}",
            id="not-abi3",
        ),
    ],
)
def test_each_wrong_kind_of_layer_is_refused_with_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], member: str, data: bytes, line: str
) -> None:
    status, lines, err = verify(capsys, str(layer(tmp_path, {member: data})))
    assert status == 1
    assert sorted(lines) == sorted([GOOD_LINE, line])
    assert err == REFUSED_ONE


def test_a_good_layer_folder_and_wheel_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "unzipped" / "python" / "kiray_imaging"
    folder.mkdir(parents=True)
    (folder / "_core.abi3.so").write_bytes(ef.elf_shared_object())
    (folder / "_plain.so").write_bytes(ef.elf_shared_object())  # untagged names load on any CPython
    wheel = ef.make_wheel(tmp_path, {"kiray_imaging/_core.abi3.so": ef.elf_shared_object()})
    status, lines, err = verify(capsys, str(tmp_path / "unzipped"), str(wheel))
    assert status == 0, lines
    assert lines == [
        f"ok       python/kiray_imaging/_core.abi3.so: {ELF_OK}, max GLIBC_2.17",
        f"ok       python/kiray_imaging/_plain.so: {ELF_OK}, max GLIBC_2.17",
        f"ok       kiray_imaging/_core.abi3.so: {ELF_OK}, max GLIBC_2.17",
    ]
    assert err == "verify-layer: passed (3 shared objects)\n"


def test_a_version_tagged_wheel_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = "kiray_imaging-0.1.0-cp312-cp312-manylinux_2_17_x86_64.whl"
    wheel = ef.make_wheel(
        tmp_path, {"kiray_imaging/_core.abi3.so": ef.elf_shared_object()}, filename=name, tags=("cp312-cp312-x",)
    )
    status, lines, _err = verify(capsys, str(wheel))
    assert status == 1
    assert any(line.startswith(f"REFUSED  {name}: wheel tags {DASH} abi tag cp312 is not abi3") for line in lines)


def test_architecture_follows_the_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arm = ef.make_zip(tmp_path / "arm.zip", {"python/x/_core.abi3.so": ef.build_elf(machine=ef.EM_AARCH64).data})
    assert verify(capsys, "--architecture", "arm64", str(arm))[0] == 0
    assert verify(capsys, str(arm))[0] == 1


def test_missing_path_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, lines, err = verify(capsys, str(tmp_path / "nope.zip"))
    assert (status, lines) == (2, [])
    assert err == f"verify-layer: no such file or folder: {tmp_path / 'nope.zip'}\n"


def test_our_own_layer_passes_through_the_installed_command() -> None:
    # The console script a user runs, on what `make layer` built (the build is a no-op when up to date).
    subprocess.run([sys.executable, "layer/build.py"], cwd=ROOT, check=True, capture_output=True)
    command = Path(sys.executable).parent / "kiray-imaging"
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    result = subprocess.run(
        [str(command), "verify-layer", str(LAYER_ZIP)], capture_output=True, text=True, encoding="utf-8", env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"ok       python/kiray_imaging/_core.abi3.so: {ELF_OK}, max GLIBC_2.")
    assert result.stderr == "verify-layer: passed (1 shared object)\n"


def test_a_missing_pyelftools_is_named_not_a_traceback(tmp_path: Path) -> None:
    # A pip install brings pyelftools as a dependency; one made with --no-deps (as `make setup` installs the wheel) or
    # trimmed afterwards gets the one command that mends it.
    hide = "import sys; sys.modules['elftools'] = None; from kiray_imaging import cli; sys.exit(cli.main(sys.argv[1:]))"
    result = subprocess.run(
        [sys.executable, "-c", hide, "verify-layer", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "verify-layer: the binary gate needs pyelftools, a dependency of kiray-imaging that is missing here: "
        "pip install pyelftools\n"
    )
