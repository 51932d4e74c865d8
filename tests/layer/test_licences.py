"""The layer ships the licence notices of everything compiled into the extension, and the build refuses a licence
outside the allow-list in layer/about.toml (docs/supply-chain.md, "Licensed")."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYER_ZIP = ROOT / "layer" / "dist" / "kiray-imaging-layer.zip"
NOTICES = "python/kiray_imaging/licenses/THIRD_PARTY_LICENSES.txt"
STD_NOTICES = "python/kiray_imaging/licenses/rust-std-COPYRIGHT-library.html"


@pytest.fixture(scope="module")
def build(layer_build: ModuleType) -> ModuleType:
    return layer_build


@pytest.fixture(scope="module")
def layer() -> dict[str, bytes]:
    subprocess.run([sys.executable, "layer/build.py"], cwd=ROOT, check=True, capture_output=True)
    with zipfile.ZipFile(LAYER_ZIP) as z:
        return {name: z.read(name) for name in z.namelist()}


def notices_crates(text: str) -> dict[str, str]:
    """name → version of the 'Crates compiled in' list."""
    return dict(re.findall(r"^([A-Za-z0-9_-]+) (\d[^:\s]*): ", text, re.MULTILINE))


def test_the_layer_carries_the_notices_next_to_the_package(layer: dict[str, bytes]) -> None:
    text = layer[NOTICES].decode()
    crates = notices_crates(text)
    assert crates["mozjpeg-sys"] == "2.2.3"
    assert "libwebp-sys" in crates
    assert "mozjpeg-sys 2.2.3: IJG AND Zlib AND BSD-3-Clause" in text
    assert "libwebp-sys" in text
    # The C libraries' own terms, not only the crates' declared licences.
    assert "This software is based in part on the work of the Independent JPEG Group." in text
    assert "Copyright (C)2009-2023 D. R. Commander." in text  # libjpeg-turbo, BSD-3-Clause
    assert "Copyright (c) 2010, Google Inc." in text  # libwebp, BSD-3-Clause
    assert "This software is provided 'as-is'" in text  # libjpeg-turbo SIMD, Zlib
    assert b"Copyright notices for The Rust Standard Library" in layer[STD_NOTICES]


def test_every_crate_in_the_binary_is_in_the_notices(layer: dict[str, bytes]) -> None:
    # Panic locations name the source files of the crates compiled in (under the remapped registry path): a
    # cross-check of cargo-about's dependency graph against what the linker actually kept.
    binary = layer["python/kiray_imaging/_core.abi3.so"]
    in_binary = set(re.findall(rb"/cargo/registry/src/[^/]+/([A-Za-z0-9_.-]+)/", binary))
    assert in_binary, "no crate paths found in the binary: has the path remapping changed?"
    listed = {f"{name}-{version}".encode() for name, version in notices_crates(layer[NOTICES].decode()).items()}
    assert in_binary <= listed, sorted(in_binary - listed)
    lock = (ROOT / "Cargo.lock").read_text()
    for name, version in notices_crates(layer[NOTICES].decode()).items():
        assert f'name = "{name}"\nversion = "{version}"' in lock


def crafted_config(tmp_path: Path, drop: str = "", replace: tuple[str, str] = ("", "")) -> Path:
    text = (ROOT / "layer" / "about.toml").read_text()
    if drop:
        assert f'    "{drop}",\n' in text
        text = text.replace(f'    "{drop}",\n', "")
    if replace[0]:
        assert replace[0] in text
        text = text.replace(*replace)
    # Licence files at crate roots only: the same allow-list decision in a third of the time.
    config = tmp_path / "about.toml"
    config.write_text(text.replace("private = { ignore = true }\n", "private = { ignore = true }\nmax-depth = 1\n"))
    return config


def test_a_licence_outside_the_allow_list_fails_the_build(build: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "notices.txt"
    build.generate_notices(out, crafted_config(tmp_path))  # the shipped allow-list passes
    assert "mozjpeg-sys 2.2.3" in out.read_text()
    with pytest.raises(build.LicenceError) as refused:
        build.generate_notices(out, crafted_config(tmp_path, drop="IJG"))
    assert "failed to satisfy license requirements" in str(refused.value)
    assert "mozjpeg-sys" in str(refused.value)
    assert not out.exists()


def test_a_changed_licence_file_fails_the_build(build: ModuleType, tmp_path: Path) -> None:
    # A new mozjpeg-sys whose LICENSE reads differently must be read by a person, not guessed at by the tool.
    checksum = "9aac39d55ba213edf5d5a981a1d526b547664b7fdfd7947f2e9bf3ca89e1926b"
    config = crafted_config(tmp_path, replace=(checksum, "0" * 64))
    with pytest.raises(build.LicenceError) as refused:
        build.generate_notices(tmp_path / "notices.txt", config)
    assert "failed to validate" in str(refused.value)


def _wheel(path: Path, metadata: str) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("pkg-1.0.dist-info/METADATA", metadata)
        z.writestr("pkg/__init__.py", "")
    return path


def test_runtime_wheels_declare_a_licence_from_the_allow_list(build: ModuleType, tmp_path: Path) -> None:
    # The Python packages shipped next to ours (layer/requirements.txt) are held to an allow-list as well.
    expression = _wheel(
        tmp_path / "a-1.0-py3-none-any.whl", "Name: a\nLicense-Expression: PSF-2.0\nLicense: GPL\n\nbody"
    )
    assert build.wheel_licence(expression) == "PSF-2.0"
    legacy = _wheel(tmp_path / "b-1.0-py3-none-any.whl", "Name: b\nLicense: GPL-3.0-only\n\nLicense: MIT in the body")
    assert build.wheel_licence(legacy) == "GPL-3.0-only"
    assert build.wheel_licence(legacy) not in build.RUNTIME_LICENCES
    for wheel in build.runtime_wheels():
        assert build.wheel_licence(wheel) in build.RUNTIME_LICENCES, wheel.name


def test_the_layer_ships_the_runtime_wheels_notices(layer: dict[str, bytes]) -> None:
    licences = [n for n in layer if (".dist-info/" in n and "/licenses/" in n) or n.endswith(".dist-info/LICENSE")]
    for package in ("aws_lambda_powertools", "jmespath", "typing_extensions"):
        assert any(n.startswith(f"python/{package}-") for n in licences), (package, licences)
