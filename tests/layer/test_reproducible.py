"""The same sources give the same layer, whoever builds them and wherever (docs/supply-chain.md).

One more release build (a few minutes): the checkout is cloned to another folder, with its uncommitted changes, and
built there with its own target dir and a different CARGO_HOME path, so a checkout, target or registry path that
leaks into the binary or the SBOM, a timestamp, or a random id in the wheel or the SBOM shows up.

The wheel and the zip are byte-identical. They were not while the resizer was called through its run-time pixel
type: that compiled fast_image_resize's f32 kernels, which we never run and whose machine code LLVM emitted
differently from one build to the next (a few hundred bytes, even in the same folder). `resize.rs` now names the
two pixel types it resizes, and those kernels are not compiled at all (docs/supply-chain.md).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ("layer/dist/kiray-imaging-layer.zip", "layer/build/inputs.sha256")
SHA_FILE = "layer/dist/kiray-imaging-layer.sha256"
SBOM_FILE = "layer/dist/kiray-imaging-layer.cdx.json"


def _git(*args: str) -> list[str]:
    out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [name for name in out.split("\0") if name]


def _clone_with_changes(dest: Path) -> None:
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(dest)], check=True)
    # What the test runs on is the working tree, committed or not.
    for name in _git("ls-files", "-z", "--modified", "--others", "--exclude-standard"):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    for name in _git("ls-files", "-z", "--deleted"):
        (dest / name).unlink(missing_ok=True)


def _cargo_home_elsewhere(dest: Path) -> Path:
    """Another CARGO_HOME path whose registry is this machine's, so no crate is downloaded again."""
    real = Path(os.environ.get("CARGO_HOME") or Path.home() / ".cargo")
    dest.mkdir()
    for name in ("registry", "git", "bin"):
        if (real / name).exists():
            (dest / name).symlink_to(real / name)
    return dest


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _differing_members(a: Path, b: Path) -> list[str]:
    with zipfile.ZipFile(a) as za, zipfile.ZipFile(b) as zb:
        names = sorted(set(za.namelist()) | set(zb.namelist()))
        return [n for n in names if n not in za.namelist() or n not in zb.namelist() or za.read(n) != zb.read(n)]


@dataclass(frozen=True)
class Builds:
    ours: dict[str, bytes]  # this checkout's artifacts, read right after its build
    copy: Path
    wheel: str
    tmp: Path


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    tmp_path = tmp_path_factory.mktemp("reproducible")
    subprocess.run([sys.executable, "layer/build.py"], cwd=ROOT, check=True, capture_output=True)
    # Taken at once: `sls package` or a developer may rebuild this checkout while the copy builds.
    (wheel,) = (ROOT / "layer" / "build" / "wheels").glob("*.whl")
    wheel_name = f"layer/build/wheels/{wheel.name}"
    ours = {name: (ROOT / name).read_bytes() for name in (*ARTIFACTS, wheel_name, SHA_FILE, SBOM_FILE)}
    copy = tmp_path / "elsewhere" / "kiray-imaging-copy"
    _clone_with_changes(copy)
    env = {k: v for k, v in os.environ.items() if k not in ("CARGO_TARGET_DIR", "SOURCE_DATE_EPOCH")}
    env["CARGO_HOME"] = str(_cargo_home_elsewhere(tmp_path / "cargo-home"))
    result = subprocess.run(
        [sys.executable, str(copy / "layer" / "build.py")], cwd=copy, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # Same inputs first; otherwise the sources were edited between the build above and the clone.
    assert (copy / ARTIFACTS[1]).read_bytes() == ours[ARTIFACTS[1]], "sources changed during the test: run it again"
    return Builds(ours, copy, wheel_name, tmp_path)


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {info.filename: z.read(info) for info in z.infolist()}


def test_a_second_build_elsewhere_is_byte_identical(builds: Builds) -> None:
    for name in (builds.wheel, ARTIFACTS[0]):
        here, there = builds.tmp / f"ours-{Path(name).name}", builds.copy / name
        here.write_bytes(builds.ours[name])
        assert _sha256(there) == _sha256(here), f"{name} differs in {_differing_members(here, there)}"
    # And the hash the stack records is that of these bytes.
    assert builds.ours[SHA_FILE].decode().split()[0] == _sha256(builds.copy / ARTIFACTS[0])


def test_a_second_build_elsewhere_writes_the_same_sbom(builds: Builds) -> None:
    """layer/sbom.py: the same zip gets the same bytes of SBOM, whichever folder and CARGO_HOME built it."""
    there = (builds.copy / SBOM_FILE).read_bytes()
    assert there == builds.ours[SBOM_FILE], _first_difference(builds.ours[SBOM_FILE], there)


def _first_difference(a: bytes, b: bytes) -> str:
    lines = zip(a.decode().splitlines(), b.decode().splitlines())
    return next((f"line {i + 1}: {x!r} != {y!r}" for i, (x, y) in enumerate(lines) if x != y), "lengths differ")


def test_the_binary_carries_no_build_path(builds: Builds) -> None:
    # Equal bytes could still both hold a path that happens to be the same on two builds (/tmp, a home folder).
    for binary in (data for name, data in _members(builds.ours[ARTIFACTS[0]]).items() if name.endswith(".so")):
        assert not re.search(rb"/(?:tmp|work|root|home)/", binary)


def test_make_layer_prints_the_sha256_the_stack_records() -> None:
    result = subprocess.run(["make", "-s", "layer"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    recorded = (ROOT / "layer" / "dist" / "kiray-imaging-layer.sha256").read_text().split()[0]
    assert f"sha256 {recorded}" in result.stdout
