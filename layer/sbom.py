"""The layer's software bill of materials: layer/dist/kiray-imaging-layer.cdx.json, CycloneDX 1.6 JSON.

What the zip holds, each part described by the tool made for it:

- the Rust crates compiled into kiray_imaging/_core.abi3.so: cargo-cyclonedx (pinned below, installed by `make
  setup`) on rust_core/ for the Lambda target with the build's features, kept to what cargo compiles for that
  build (`cargo tree -e normal`): cargo-cyclonedx also lists optional dependencies no feature turns on (flate2's
  zlib-rs). Versions, licence expressions, purls and crates.io checksums are cargo-cyclonedx's;
- the Rust standard library linked in, at the toolchain's version;
- the C libraries the -sys crates compile from their vendored sources: libwebp and its sharpyuv (versions read from
  their headers) and mozjpeg/libjpeg-turbo (see MOZJPEG); licences from layer/about.toml's checksum-pinned
  clarifications, which cargo-about already holds the same sources to;
- the Python packages: cyclonedx-py (requirements-dev.txt) on an environment made of the zip's own python/ folder:
  kiray-imaging and, from layer/requirements.txt, Powertools and its dependencies.

The layer itself is the SBOM's subject, named by the zip's sha256. Reproducible like the zip: the timestamp is
SOURCE_DATE_EPOCH, the serial number is derived from the zip's hash, the checkout's path is mapped to /kiray-imaging
as in the binary, and cyclonedx-python-lib writes everything in one canonical order.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
import venv
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import tomllib
from cyclonedx.model.bom import Bom
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "layer" / "dist"
SBOM = DIST / "kiray-imaging-layer.cdx.json"
STAMP = ROOT / "layer" / "build" / "sbom.sha256"
MANIFEST = ROOT / "rust_core" / "Cargo.toml"
# The version is pinned here and installed by `make setup` (the Makefile reads it from here), as cargo-about's is.
CARGO_CYCLONEDX_VERSION = "0.5.9"
NEUTRAL_ROOT = "/kiray-imaging"  # what layer/build.py maps the checkout to in the binary, too

# mozjpeg-sys vendors mozjpeg's C without anything that names its version (no CMakeLists.txt, ChangeLog or
# jversion.h: its build.rs writes JVERSION as the crate's own version). What it vendors was identified once, by
# comparing its 282 files with mozjpeg's git history: all equal to commit c2bc3511 (v4.1.5 and one commit), which
# is libjpeg-turbo 2.1.5.1 with fixes from its 2.1.6 ChangeLog. The identification is pinned to the digest of the
# vendored files: a different mozjpeg-sys fails the build until someone identifies its sources again.
MOZJPEG = {
    "bf7fe3738cbdc6576dcd602b8e9d250609de6bb32a3a6368728221962a2e56b8": {
        "version": "4.1.5",
        "commit": "c2bc3511d547870c4f67bbafda5fba794ba71f7f",
        "libjpeg-turbo": "2.1.5.1",
    },
}
# The Rust standard library's licence, as the toolchain's notice (shipped in the layer) states it.
RUST_STD_LICENCE, RUST_STD_STATEMENT = "MIT OR Apache-2.0", "licensed under Apache 2.0 and MIT terms"


class SbomError(Exception):
    """The SBOM cannot be made truthfully (an unidentified vendored library, a tool missing or refusing)."""


def _run(command: list[str], **kwargs: Any) -> str:
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise SbomError(f"{' '.join(command[:3])} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return str(result.stdout)


def cargo_cyclonedx() -> str:
    """The pinned cargo-cyclonedx, or `SbomError` saying how to get it."""
    home = Path(os.environ.get("CARGO_HOME") or Path.home() / ".cargo")
    found = shutil.which("cargo-cyclonedx") or str(home / "bin" / "cargo-cyclonedx")
    try:
        version = subprocess.run([found, "cyclonedx", "--version"], capture_output=True, text=True).stdout.split()
    except OSError:
        version = []
    if version[-1:] != [CARGO_CYCLONEDX_VERSION]:
        raise SbomError(
            f"cargo-cyclonedx {CARGO_CYCLONEDX_VERSION} writes the Rust part of the SBOM, found "
            f"{' '.join(version) or 'none'}: run `make setup` (cargo install --locked cargo-cyclonedx@"
            f"{CARGO_CYCLONEDX_VERSION})"
        )
    return found


def maturin_features() -> list[str]:
    """The features maturin builds the extension with (pyproject.toml [tool.maturin] features)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(config["tool"]["maturin"].get("features", []))


def _neutral(text: str) -> str:
    """The checkout's path, in the forms cargo writes it, as NEUTRAL_ROOT."""
    for real in sorted({str(ROOT), str(ROOT.resolve())}, key=len, reverse=True):
        text = text.replace(f"file://{real}", f"file://{NEUTRAL_ROOT}").replace(real, NEUTRAL_ROOT)
    return text


def rust_sbom(target: str, work: Path, epoch: int) -> dict[str, Any]:
    """cargo-cyclonedx's SBOM of rust_core for ``target``: the crate and every dependency it lists."""
    exe = cargo_cyclonedx()
    name = f"kiray-sbom-{os.getpid()}"
    features = ",".join(maturin_features())
    command = [exe, "cyclonedx", "--manifest-path", str(MANIFEST), "--format", "json", "--spec-version", "1.5",
               "--target", target, "--no-build-deps", "--override-filename", name, "--quiet"]  # fmt: skip
    if features:
        command += ["--features", features]
    _run(command, env=dict(os.environ, SOURCE_DATE_EPOCH=str(epoch)))
    written = MANIFEST.parent / f"{name}.json"  # cargo-cyclonedx writes beside the manifest; moved out of the tree
    moved = work / "rust.cdx.json"
    shutil.move(str(written), moved)
    loaded: dict[str, Any] = json.loads(_neutral(moved.read_text()))
    return loaded


def compiled_crates(target: str) -> set[tuple[str, str]]:
    """(name, version) of every crate cargo compiles into the extension: normal dependencies on ``target`` with the
    build's features."""
    command = ["cargo", "tree", "--locked", "--offline", "--manifest-path", str(MANIFEST), "--target", target,
               "-e", "normal", "--prefix", "none", "--format", "{p}"]  # fmt: skip
    features = ",".join(maturin_features())
    if features:
        command += ["--features", features]
    crates = set()
    for line in _run(command).splitlines():
        match = re.match(r"^(\S+) v(\S+)", line)
        if match:
            crates.add((match.group(1), match.group(2)))
    return crates


def package_dirs(target: str) -> dict[str, Path]:
    """Each package's source folder (in cargo's registry or vendor/), by name."""
    command = ["cargo", "metadata", "--locked", "--offline", "--format-version", "1", "--filter-platform", target,
               "--manifest-path", str(MANIFEST)]  # fmt: skip
    metadata = json.loads(_run(command))
    return {p["name"]: Path(p["manifest_path"]).parent for p in metadata["packages"]}


def _define(header: Path, *names: str) -> str:
    """The dotted version made of #define NAME <number> lines of ``header``."""
    text = header.read_text(errors="replace")
    parts = []
    for name in names:
        match = re.search(rf"^#define {name} (\d+)\s*$", text, re.MULTILINE)
        if match is None:
            raise SbomError(f"{header}: no #define {name}")
        parts.append(match.group(1))
    return ".".join(parts)


def _tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _about_clarifications() -> dict[str, Any]:
    return tomllib.loads((ROOT / "layer" / "about.toml").read_text())


def _library(name: str, version: str, licence: str, description: str, purl: str | None, vcs: str) -> dict[str, Any]:
    component: dict[str, Any] = {
        "type": "library",
        "bom-ref": f"c-library:{name}@{version}",
        "name": name,
        "version": version,
        "description": description,
        "licenses": [{"expression": licence}],
        "externalReferences": [{"type": "vcs", "url": vcs}],
    }
    if purl:
        component["purl"] = purl
    return component


@dataclass(frozen=True)
class Bundled:
    """A C library compiled from a -sys crate's vendored sources."""

    crate_ref: str
    component: dict[str, Any]


def bundled_libraries(target: str, crates: dict[str, dict[str, Any]]) -> list[Bundled]:
    """libwebp, sharpyuv and mozjpeg as the vendored sources of the compiled -sys crates say."""
    dirs = package_dirs(target)
    about = _about_clarifications()
    found = []
    if "libwebp-sys" in crates:
        vendor = dirs["libwebp-sys"] / "vendor"
        encoder = _define(vendor / "src/enc/vp8i_enc.h", "ENC_MAJ_VERSION", "ENC_MIN_VERSION", "ENC_REV_VERSION")
        decoder = _define(vendor / "src/dec/vp8i_dec.h", "DEC_MAJ_VERSION", "DEC_MIN_VERSION", "DEC_REV_VERSION")
        if encoder != decoder:
            raise SbomError(f"libwebp-sys vendors libwebp's encoder {encoder} beside its decoder {decoder}")
        sharpyuv = _define(vendor / "sharpyuv" / "sharpyuv.h", "SHARPYUV_VERSION_MAJOR", "SHARPYUV_VERSION_MINOR",
                           "SHARPYUV_VERSION_PATCH")  # fmt: skip
        # libwebp's own licence file, as layer/about.toml pins it for cargo-about.
        (licence,) = [f["license"] for f in about["libwebp-sys"]["clarify"]["files"] if f["path"] == "vendor/COPYING"]
        ref = crates["libwebp-sys"]["bom-ref"]
        vcs = "https://chromium.googlesource.com/webm/libwebp"
        webp = _library("libwebp", encoder, licence, "the WebP codec, compiled in by libwebp-sys",
                        f"pkg:github/webmproject/libwebp@v{encoder}", vcs)  # fmt: skip
        found.append(Bundled(ref, webp))
        found.append(Bundled(ref, _library("libsharpyuv", sharpyuv, licence, "libwebp's sharp RGB to YUV conversion",
                                           None, vcs)))  # fmt: skip
    if "mozjpeg-sys" in crates:
        vendor = dirs["mozjpeg-sys"] / "vendor"
        digest = _tree_digest(vendor)
        if digest not in MOZJPEG:
            raise SbomError(
                f"mozjpeg-sys {crates['mozjpeg-sys']['version']} vendors C sources (digest {digest}) not identified"
                " in layer/sbom.py MOZJPEG: compare them with mozjpeg's git history and add what they are"
            )
        origin = MOZJPEG[digest]
        licence = about["mozjpeg-sys"]["clarify"]["license"]
        component = _library(
            "mozjpeg", origin["version"], licence,
            f"libjpeg-turbo {origin['libjpeg-turbo']} with Mozilla's encoder improvements, at mozjpeg commit"
            f" {origin['commit'][:12]}; compiled in by mozjpeg-sys",
            f"pkg:github/mozilla/mozjpeg@{origin['commit']}", "https://github.com/mozilla/mozjpeg",
        )  # fmt: skip
        component["pedigree"] = {
            "ancestors": [
                _library("libjpeg-turbo", origin["libjpeg-turbo"], licence, "the codec mozjpeg is a fork of",
                         f"pkg:github/libjpeg-turbo/libjpeg-turbo@{origin['libjpeg-turbo']}",
                         "https://github.com/libjpeg-turbo/libjpeg-turbo")
            ],
            "commits": [{"uid": origin["commit"], "url": f"https://github.com/mozilla/mozjpeg/commit/{origin['commit']}"}],
        }  # fmt: skip
        found.append(Bundled(crates["mozjpeg-sys"]["bom-ref"], component))
    return found


def rust_std() -> dict[str, Any]:
    """The standard library at the pinned toolchain's version (rust-toolchain.toml), with the licence its shipped
    notice states."""
    info = dict(line.split(": ", 1) for line in _run(["rustc", "-vV"]).splitlines() if ": " in line)
    sysroot = Path(_run(["rustc", "--print", "sysroot"]).strip())
    notice = (sysroot / "share" / "doc" / "rust" / "COPYRIGHT-library.html").read_text(errors="replace")
    if RUST_STD_STATEMENT not in notice:
        raise SbomError(f"the toolchain's COPYRIGHT-library.html no longer says {RUST_STD_STATEMENT!r}: read its terms")
    version = info["release"]
    return {
        "type": "library",
        "bom-ref": f"rust-std@{version}",
        "name": "std",
        "group": "rust-lang",
        "version": version,
        "description": f"The Rust standard library and its dependencies, rustc {info['commit-hash'][:9]}; notices in"
        " kiray_imaging/licenses/rust-std-COPYRIGHT-library.html",
        "licenses": [{"expression": RUST_STD_LICENCE}],
        "externalReferences": [{"type": "vcs", "url": f"https://github.com/rust-lang/rust/tree/{info['commit-hash']}"}],
    }


def python_sbom(layer_zip: Path, work: Path, epoch: int) -> dict[str, Any]:
    """cyclonedx-py's SBOM of an environment holding exactly the zip's python/ folder, kiray-imaging as its root."""
    env_dir = work / "layer-env"
    venv.create(env_dir, with_pip=False, symlinks=True)
    site = env_dir / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    with zipfile.ZipFile(layer_zip) as z:
        for name in z.namelist():
            # The distributions' metadata is what the tool reads; their code stays in the zip.
            if name.startswith("python/") and ".dist-info/" in name and not name.endswith("/"):
                target = site / name.removeprefix("python/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(z.read(name))
    out = work / "python.cdx.json"
    tool = Path(sys.executable).with_name("cyclonedx-py")
    command = [str(tool), "environment", "--pyproject", str(ROOT / "pyproject.toml"), "--mc-type", "library",
               "--output-reproducible", "--spec-version", "1.6", "--output-file", str(out), str(env_dir)]  # fmt: skip
    _run(command, env=dict(os.environ, SOURCE_DATE_EPOCH=str(epoch)))
    loaded: dict[str, Any] = json.loads(out.read_text())
    root = loaded["metadata"]["component"]
    (metadata,) = site.glob("kiray_imaging-*.dist-info/METADATA")
    version = re.search(r"^Version: (\S+)$", metadata.read_text(), re.MULTILINE)
    if version is None:
        raise SbomError(f"{metadata.name} of the layer's kiray-imaging names no version")
    root["version"] = version.group(1)
    root["bom-ref"] = f"kiray-imaging@{root['version']}"
    for dependency in loaded["dependencies"]:
        if dependency["ref"] == "root-component":
            dependency["ref"] = root["bom-ref"]
    return loaded


def _tools(*boms: dict[str, Any]) -> list[dict[str, Any]]:
    tools = []
    for bom in boms:
        listed = bom["metadata"].get("tools", [])
        for tool in listed.get("components", []) if isinstance(listed, dict) else listed:
            group = tool.get("group", tool.get("vendor"))
            tools.append({"type": tool.get("type", "application"), "name": tool["name"], "version": tool["version"]}
                         | ({"group": group} if group else {}))  # fmt: skip
    return tools


def _dependencies(*groups: Iterable[dict[str, Any]], keep: set[str]) -> list[dict[str, Any]]:
    merged: dict[str, set[str]] = {}
    for group in groups:
        for dependency in group:
            if dependency["ref"] in keep:
                depends = merged.setdefault(dependency["ref"], set())
                depends.update(d for d in dependency.get("dependsOn", []) if d in keep)
    return [{"ref": ref, "dependsOn": sorted(deps)} for ref, deps in sorted(merged.items())]


def make_sbom(layer_zip: Path, target: str, epoch: int) -> tuple[str, int]:
    """The SBOM of ``layer_zip`` as JSON text, and how many components it lists."""
    zip_sha256 = hashlib.sha256(layer_zip.read_bytes()).hexdigest()
    with tempfile.TemporaryDirectory(prefix="kiray-sbom-") as tmp:
        rust = rust_sbom(target, Path(tmp), epoch)
        python = python_sbom(layer_zip, Path(tmp), epoch)
    compiled = compiled_crates(target)
    core = rust["metadata"]["component"]
    core.pop("components", None)  # its cargo targets
    crates = [c for c in rust["components"] if (c["name"], c["version"]) in compiled]
    missing = compiled - {(c["name"], c["version"]) for c in crates} - {(core["name"], core["version"])}
    if missing:
        raise SbomError(f"cargo compiles {sorted(missing)}, which cargo-cyclonedx did not list")
    by_name = {c["name"]: c for c in crates}
    bundled = bundled_libraries(target, by_name)
    std = rust_std()
    py_root = python["metadata"]["component"]
    layer = {
        "type": "library",
        "bom-ref": "kiray-imaging-layer",
        "name": "kiray-imaging-layer",
        "version": py_root["version"],
        "description": f"AWS Lambda layer (python/, manylinux2014 x86_64 abi3): {layer_zip.name}",
        "hashes": [{"alg": "SHA-256", "content": zip_sha256}],
    }
    components = [py_root, *python["components"], core, *crates, std, *(b.component for b in bundled)]
    refs = {c["bom-ref"] for c in components} | {layer["bom-ref"]}
    ours = [
        {"ref": layer["bom-ref"], "dependsOn": [py_root["bom-ref"], *(c["bom-ref"] for c in python["components"])]},
        {"ref": py_root["bom-ref"], "dependsOn": [core["bom-ref"]]},
        {"ref": core["bom-ref"], "dependsOn": [std["bom-ref"]]},
        *({"ref": b.crate_ref, "dependsOn": [b.component["bom-ref"]]} for b in bundled),
        *({"ref": c["bom-ref"]} for c in [std, *(b.component for b in bundled)]),
    ]
    document = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        # Derived from the zip's hash: the same zip always gets the same SBOM, another zip another serial number.
        "serialNumber": uuid.uuid5(uuid.NAMESPACE_URL, f"urn:sha256:{zip_sha256}").urn,
        "version": 1,
        "metadata": {
            "timestamp": datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(),
            "tools": {"components": _tools(rust, python)},
            "component": layer,
            "properties": [
                {"name": "cdx:reproducible", "value": "true"},
                {"name": "cdx:rustc:sbom:target:triple", "value": target},
            ],
        },
        "components": components,
        "dependencies": _dependencies(rust["dependencies"], python["dependencies"], ours, keep=refs),
    }
    bom = Bom.from_json(document)  # type: ignore[attr-defined]
    text = JsonV1Dot6(bom).output_as_string(indent=2) + "\n"
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise SbomError(f"the SBOM does not validate against CycloneDX 1.6: {error}")
    return text, len(components)


def _inputs_digest(layer_zip: Path, target: str, epoch: int) -> str:
    digest = hashlib.sha256(f"{target} {epoch} {CARGO_CYCLONEDX_VERSION}\0".encode())
    for path in (layer_zip, Path(__file__), ROOT / "Cargo.lock", ROOT / "pyproject.toml", ROOT / "layer" / "about.toml",
                 ROOT / "rust-toolchain.toml", ROOT / "requirements-dev.txt"):  # fmt: skip
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def current_sbom(layer_zip: Path, target: str, epoch: int) -> int:
    """Writes SBOM for ``layer_zip`` unless it is already the one for these inputs; returns its component count."""
    digest = _inputs_digest(layer_zip, target, epoch)
    if SBOM.is_file() and STAMP.is_file() and STAMP.read_text().split()[0] == digest:
        return int(STAMP.read_text().split()[1])
    text, count = make_sbom(layer_zip, target, epoch)
    SBOM.write_text(text)
    STAMP.parent.mkdir(parents=True, exist_ok=True)
    STAMP.write_text(f"{digest} {count}\n")
    return count
