"""The layer's SBOM, layer/dist/kiray-imaging-layer.cdx.json (layer/sbom.py, docs/supply-chain.md "Described"):
everything in the zip, each part with version, licence and purl, cross-checked against what else the build knows
(the licence notices cargo-about wrote, layer/requirements.txt, the vendored C sources)."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

ROOT = Path(__file__).resolve().parents[2]
LAYER_ZIP = ROOT / "layer" / "dist" / "kiray-imaging-layer.zip"
SBOM = ROOT / "layer" / "dist" / "kiray-imaging-layer.cdx.json"
NOTICES = "python/kiray_imaging/licenses/THIRD_PARTY_LICENSES.txt"
TARGET = "x86_64-unknown-linux-gnu"


@pytest.fixture(scope="module")
def built() -> tuple[dict[str, Any], bytes, str]:
    """The SBOM, the zip and the SBOM's text, as `make layer` leaves them."""
    result = subprocess.run([sys.executable, "layer/build.py"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(r"layer/dist/kiray-imaging-layer\.cdx\.json: CycloneDX SBOM of \d+ components", result.stdout)
    text = SBOM.read_text()
    return json.loads(text), LAYER_ZIP.read_bytes(), text


@pytest.fixture(scope="module")
def sbom_module(layer_build: ModuleType) -> ModuleType:
    module: ModuleType = layer_build.load_layer_module("sbom")
    return module


def components(sbom: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["name"], c["version"]): c for c in sbom["components"]}


def licences(component: dict[str, Any]) -> list[str]:
    return [entry.get("expression") or entry["license"].get("id") or entry["license"]["name"]
            for entry in component.get("licenses", [])]  # fmt: skip


def test_the_sbom_describes_this_zip_and_is_valid_cyclonedx(built: tuple[dict[str, Any], bytes, str]) -> None:
    sbom, zipped, text = built
    assert sbom["bomFormat"] == "CycloneDX"
    assert sbom["specVersion"] == "1.6"
    subject = sbom["metadata"]["component"]
    assert subject["name"] == "kiray-imaging-layer"
    assert subject["hashes"] == [{"alg": "SHA-256", "content": hashlib.sha256(zipped).hexdigest()}]
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    # Reproducible: the layer's fixed time, a serial number of the zip's own, no path of this machine.
    assert sbom["metadata"]["timestamp"] == "1980-01-01T00:00:00+00:00"
    assert sbom["serialNumber"].startswith("urn:uuid:")
    assert not re.search(r"/(?:tmp|work|root|home)/", text)
    tools = {t["name"]: t["version"] for t in sbom["metadata"]["tools"]["components"]}
    assert tools["cargo-cyclonedx"] == "0.5.9"
    assert tools["cyclonedx-py"] == "7.5.0"


def test_every_crate_of_the_notices_is_listed_with_version_licence_and_purl(
    built: tuple[dict[str, Any], bytes, str],
) -> None:
    """cargo-about (the notices in the zip) and cargo-cyclonedx resolve the crates independently: they must agree."""
    sbom, zipped, _ = built
    with zipfile.ZipFile(io.BytesIO(zipped)) as z:
        notices = z.read(NOTICES).decode()
    crates = set(re.findall(r"^([A-Za-z0-9_-]+) (\d[^:\s]*): ", notices, re.MULTILINE))
    assert len(crates) > 50
    listed = {k: c for k, c in components(sbom).items() if c.get("purl", "").startswith("pkg:cargo/")}
    assert set(listed) == crates | {("kiray_imaging_core", "0.1.0")}
    for (name, version), component in listed.items():
        assert component["purl"].startswith(f"pkg:cargo/{name}@{version}"), component
        assert licences(component), component
    # The crates.io checksum Cargo.lock pins, for every crate from the registry.
    assert all(c["hashes"][0]["alg"] == "SHA-256" for c in listed.values() if c["bom-ref"].startswith("registry+"))
    # An optional dependency no feature enables is not in the binary, so not in the SBOM (cargo-cyclonedx lists it).
    assert not any(name == "zlib-rs" for name, _ in listed)


def _vendored(crate: str) -> Path:
    command = ["cargo", "metadata", "--locked", "--offline", "--format-version", "1", "--manifest-path",
               str(ROOT / "rust_core" / "Cargo.toml")]  # fmt: skip
    metadata = json.loads(subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout)
    (path,) = [Path(p["manifest_path"]).parent for p in metadata["packages"] if p["name"] == crate]
    return path / "vendor"


def test_the_bundled_c_libraries_are_listed_with_their_vendored_versions(
    built: tuple[dict[str, Any], bytes, str],
) -> None:
    sbom, _, _ = built
    by_name = {c["name"]: c for c in sbom["components"]}
    # libwebp's README banner names its release; the SBOM read the version from the encoder's header.
    banner = re.search(r"/v(\d+\.\d+\.\d+)\s*$", (_vendored("libwebp-sys") / "README.md").read_text(), re.MULTILINE)
    assert banner is not None
    webp = by_name["libwebp"]
    assert webp["version"] == banner.group(1)
    assert webp["purl"] == f"pkg:github/webmproject/libwebp@v{banner.group(1)}"
    assert licences(webp) == ["BSD-3-Clause"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", by_name["libsharpyuv"]["version"])
    mozjpeg = by_name["mozjpeg"]
    assert mozjpeg["version"].startswith("4.")
    assert licences(mozjpeg) == ["IJG AND Zlib AND BSD-3-Clause"]
    assert mozjpeg["pedigree"]["ancestors"][0]["name"] == "libjpeg-turbo"
    toolchain = re.search(r'^channel = "(.*)"', (ROOT / "rust-toolchain.toml").read_text(), re.MULTILINE)
    assert toolchain is not None
    assert by_name["std"]["version"] == toolchain.group(1)
    # Each hangs off the crate that compiles it.
    depends = {d["ref"]: d.get("dependsOn", []) for d in sbom["dependencies"]}
    sys_crates = {c["name"]: c["bom-ref"] for c in sbom["components"] if c["name"] in ("libwebp-sys", "mozjpeg-sys")}
    assert webp["bom-ref"] in depends[sys_crates["libwebp-sys"]]
    assert mozjpeg["bom-ref"] in depends[sys_crates["mozjpeg-sys"]]


def test_the_python_packages_are_those_of_layer_requirements(built: tuple[dict[str, Any], bytes, str]) -> None:
    sbom, _, _ = built
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (ROOT / "layer" / "requirements.txt").read_text(), re.M))
    listed = {c["purl"]: c for c in sbom["components"] if c.get("purl", "").startswith("pkg:pypi/")}
    assert set(listed) == {f"pkg:pypi/{name}@{version}" for name, version in pins.items()}
    assert all(licences(c) for c in listed.values())
    assert "MIT-0" in licences(listed["pkg:pypi/aws-lambda-powertools@3.37.0"])
    # And the package itself, unpublished (no purl), which the layer's subject depends on with them.
    ours = next(c for c in sbom["components"] if c["name"] == "kiray-imaging")
    assert "purl" not in ours
    assert licences(ours) == ["MIT"]
    subject = next(d for d in sbom["dependencies"] if d["ref"] == "kiray-imaging-layer")
    assert set(subject["dependsOn"]) == {ours["bom-ref"], *(c["bom-ref"] for c in listed.values())}


def test_unidentified_vendored_jpeg_sources_stop_the_sbom(sbom_module: ModuleType,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """mozjpeg-sys carries no mozjpeg version: its sources are identified by digest, and other sources are refused
    rather than described as what they are not."""
    monkeypatch.setattr(sbom_module, "MOZJPEG", {})
    with pytest.raises(sbom_module.SbomError, match=r"not identified in layer/sbom\.py MOZJPEG"):
        sbom_module.make_sbom(LAYER_ZIP, TARGET, 315532800)
