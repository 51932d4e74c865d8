"""The layer that `make layer` built (and the plugin ships) passes the gate: ELF64 x86-64, GLIBC ≤ 2.17, abi3; and it
holds the functions' runtime only, none of the build tooling that the wheel carries for `kiray-imaging verify-layer`."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def test_built_wheel_and_layer_pass_the_gate(layer_gate: ModuleType) -> None:
    subprocess.run([sys.executable, "layer/build.py"], cwd=ROOT, check=True, capture_output=True)
    (wheel,) = (ROOT / "layer" / "build" / "wheels").glob("*.whl")
    assert "-cp39-abi3-" in wheel.name
    assert "manylinux_2_17_x86_64" in wheel.name
    for artifact in (wheel, ROOT / "layer" / "dist" / "kiray-imaging-layer.zip"):
        findings = layer_gate.verify(artifact)
        binaries = [f for f in findings if f.kind != "wheel tags"]
        assert [f.path.rsplit("/", 1)[-1] for f in binaries] == ["_core.abi3.so"]
        (core,) = binaries
        assert core.ok
        assert core.kind.startswith("ELF64 x86-64")
        assert core.max_glibc is not None
        assert tuple(core.max_glibc[:2]) <= (2, 17)
    with zipfile.ZipFile(wheel) as z:
        tags = [line for line in z.read(next(n for n in z.namelist() if n.endswith("/WHEEL"))).decode().splitlines()
                if line.startswith("Tag:")]  # fmt: skip
    assert tags
    assert all("cp39-abi3-manylinux" in t and t.endswith("x86_64") for t in tags), tags


def test_the_layer_leaves_the_build_tooling_out() -> None:
    subprocess.run([sys.executable, "layer/build.py"], cwd=ROOT, check=True, capture_output=True)
    (wheel,) = (ROOT / "layer" / "build" / "wheels").glob("*.whl")
    with zipfile.ZipFile(wheel) as z:
        in_wheel = {n for n in z.namelist() if n.startswith("kiray_imaging/tooling/")}
        requires = [line for line in z.read(next(n for n in z.namelist() if n.endswith("/METADATA"))).decode()
                    .splitlines() if line.startswith("Requires-Dist:")]  # fmt: skip
    # The wheel keeps the gate and names its parser, so that verify-layer works from a pip install.
    assert {"kiray_imaging/tooling/layer_gate.py", "kiray_imaging/tooling/elf.py"} <= in_wheel
    assert any(line.startswith("Requires-Dist: pyelftools") for line in requires), requires
    with zipfile.ZipFile(ROOT / "layer" / "dist" / "kiray-imaging-layer.zip") as z:
        names = z.namelist()
    assert "python/kiray_imaging/lambda_pipeline.py" in names
    assert [n for n in names if n.startswith("python/kiray_imaging/tooling/")] == []
    assert [n for n in names if n.startswith(("python/elftools/", "python/pyelftools"))] == []
