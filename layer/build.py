"""Build the Lambda layer: one manylinux2014 x86_64 abi3 wheel (maturin + zig), verified, then zipped under python/.

    python layer/build.py [--force]

Why zig: it links against a glibc 2.17 symbol set from any host (macOS, a new Linux, CI), so the binary loads on
every Lambda runtime; a binary built natively on a developer's machine is what crashes there ("invalid ELF header"
for a Mach-O, "GLIBC_2.xx not found" for a new glibc). The gate below refuses both before anything is packaged.

The build is skipped when the wheel is newer than every input (sources, lock files, build settings), so the
Serverless plugin can call this on every `sls package` / `sls deploy` at almost no cost.

Reproducible: the same commit gives byte-identical wheel and zip from any folder on any machine (fixed
SOURCE_DATE_EPOCH, build paths remapped out of the binary, fixed zip metadata; the zip's bytecode given the same
CPython 3.12 patch release, layer/bytecode.py); tests/layer/test_reproducible.py
builds a second copy elsewhere and compares. Licensed: cargo-about writes the notices of everything compiled into
the extension into the package (kiray_imaging/licenses/), and fails the build on a licence outside layer/about.toml's
allow-list. See docs/supply-chain.md.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "layer" / "build"
WHEELS = BUILD / "wheels"
STAMP = BUILD / "inputs.sha256"
DIST = ROOT / "layer" / "dist"
LAYER_ZIP = DIST / "kiray-imaging-layer.zip"
# Pure-Python packages shipped next to ours (Powertools and its dependencies), pinned by hash.
RUNTIME_REQUIREMENTS = ROOT / "layer" / "requirements.txt"
RUNTIME_WHEELS = BUILD / "runtime-wheels"
# The licences a runtime wheel may declare (its METADATA's License-Expression, else License): the same permissive
# terms as layer/about.toml's allow-list for the Rust crates, plus MIT-0 (Powertools) and PSF-2.0 (typing-extensions),
# both permissive and asking for nothing beyond the notice each wheel carries in its .dist-info/.
RUNTIME_LICENCES = frozenset({"MIT", "MIT-0", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "ISC", "PSF-2.0"})
# Powertools is a toolbox and the handlers use two of its tools, Logger and Metrics. Its REST/GraphQL routers
# (event_handler) and the utilities other than the two that Logger imports (jmespath_utils) or types with (typing)
# are a quarter of the 3 MB budget (bench/results/history.md) for code that is never imported. Left out of the layer;
# the wheel's RECORD still lists them (nothing reads it on Lambda). tests/layer/test_layer_runtime.py runs the handler's
# logging and metrics paths from the unzipped layer alone, so a Powertools update that needs one of them fails there.
RUNTIME_LEFT_OUT = ("aws_lambda_powertools/event_handler/", "aws_lambda_powertools/utilities/")
RUNTIME_KEPT = ("aws_lambda_powertools/utilities/__init__.py", "aws_lambda_powertools/utilities/jmespath_utils/",
                "aws_lambda_powertools/utilities/typing/")  # fmt: skip
# Our own build tooling (the binary gate): in the wheel for `kiray-imaging verify-layer`, never run by the functions.
# tests/layer/test_built_layer.py checks the zip holds none of it.
TOOLING_LEFT_OUT = ("kiray_imaging/tooling/",)

# Lambda architecture → Rust target. The architecture itself is one setting, `params.architecture` in
# serverless.yml, which the Serverless plugin passes here; arm64 is on paper only (see README, "arm64").
TARGETS = {"x86_64": "x86_64-unknown-linux-gnu", "arm64": "aarch64-unknown-linux-gnu"}
MANYLINUX = "manylinux2014"
# README: the wheel's METADATA; vendor: patched third-party crates compiled in (vendor/*/KIRAY-PATCH.md).
INPUTS = ("Cargo.toml", "Cargo.lock", "pyproject.toml", "README.md", "rust_core", "python", "vendor")
# Lambda allows 250 MB unzipped per function including layers; our own budget is far tighter.
MAX_LAYER_ZIP_BYTES = 3 * 1024 * 1024
# Zip timestamps: fixed, so the same wheel always gives the same zip (SOURCE_DATE_EPOCH overrides). Not the commit
# time: a commit that does not touch the layer must not make a new layer version on the next deploy.
EPOCH_1980 = 315532800

# Licence notices (cargo-about). The version is pinned here and installed by `make setup`, which reads it from here.
CARGO_ABOUT_VERSION = "0.9.3"
ABOUT_CONFIG = ROOT / "layer" / "about.toml"
ABOUT_TEMPLATE = ROOT / "layer" / "about.hbs"
# Generated, git-ignored, and included in the wheel by pyproject.toml ([tool.maturin] include).
NOTICES_DIR = ROOT / "python" / "kiray_imaging" / "licenses"
NOTICES = NOTICES_DIR / "THIRD_PARTY_LICENSES.txt"
# The Rust standard library is linked in too; rustup ships its notices (and those of its own dependencies).
STD_NOTICES = NOTICES_DIR / "rust-std-COPYRIGHT-library.html"
NOTICES_STAMP = BUILD / "notices.sha256"
NOTICE_INPUTS = ("Cargo.toml", "Cargo.lock", "rust_core/Cargo.toml", "rust-toolchain.toml", "layer/about.toml",
                 "layer/about.hbs")  # fmt: skip


def log(message: str) -> None:
    print(f"layer: {message}", flush=True)


def load_gate() -> Any:
    """The gate, loaded by path (its loader, tooling/__main__.py, is stdlib-only): the package may not be importable on
    this host, whose native extension is not the Linux one being built."""
    path = ROOT / "python" / "kiray_imaging" / "tooling" / "__main__.py"
    spec = importlib.util.spec_from_file_location("kiray_tooling_loader", path)
    assert spec is not None
    assert spec.loader is not None
    loader = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loader)
    try:
        return loader.load_gate()
    except ModuleNotFoundError as e:  # pyelftools, when the virtualenv predates it
        raise SystemExit(f"layer: {e}") from None


def inputs_digest(target: str) -> str:
    digest = hashlib.sha256()
    for name in INPUTS:
        path = ROOT / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            if "__pycache__" in f.parts or f.suffix == ".pyc":
                continue
            digest.update(f.relative_to(ROOT).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(f.read_bytes()).digest())
    digest.update(f"{target} {MANYLINUX}".encode())
    return digest.hexdigest()


def source_date_epoch() -> int:
    return max(int(os.environ.get("SOURCE_DATE_EPOCH", EPOCH_1980)), EPOCH_1980)


def rust_sysroot() -> Path:
    # Asked from ROOT so that rust-toolchain.toml picks the toolchain, as it does for the build.
    out = subprocess.run(["rustc", "--print", "sysroot"], cwd=ROOT, capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def cargo_home(env: dict[str, str]) -> Path:
    return Path(env.get("CARGO_HOME") or Path.home() / ".cargo")


def path_remaps(env: dict[str, str]) -> list[tuple[str, str]]:
    """Build paths → neutral names. Panic messages, C __FILE__ strings and the C objects' include paths would
    otherwise carry the checkout, the cargo registry, the toolchain and zig paths of whoever built the layer, and
    the same commit would not give the same bytes elsewhere."""
    home = cargo_home(env)
    ziglang = importlib.util.find_spec("ziglang")
    prefixes = [(ROOT, "/kiray-imaging"), (home, "/cargo"), (rust_sysroot(), "/rust")]
    # registry/ and git/ by their own names too: cargo resolves them when they are symlinks (a shared or cached
    # registry), and rustc then sees the target path, not CARGO_HOME's.
    prefixes += [(home / "registry", "/cargo/registry"), (home / "git", "/cargo/git")]
    if ziglang is not None and ziglang.origin:  # zig's own headers, wherever the virtualenv is
        prefixes.append((Path(ziglang.origin).parent, "/zig"))
    target_dir = env.get("CARGO_TARGET_DIR")
    if target_dir:
        prefixes.append((Path(target_dir), "/kiray-imaging-target"))
    remaps = {real: neutral for path, neutral in prefixes for real in (str(path), str(path.resolve()))}
    # rustc and clang both apply the last mapping that matches: the longest (most specific) prefixes go last, so
    # .venv/…/ziglang inside the checkout becomes /zig, not /kiray-imaging/.venv/….
    return sorted(remaps.items(), key=lambda item: len(item[0]))


def reproducible_env(env: dict[str, str]) -> dict[str, str]:
    """The environment maturin, cargo, rustc and zig cc run in, so that the binary depends only on the sources."""
    env = dict(env)
    remaps = path_remaps(env)
    env["SOURCE_DATE_EPOCH"] = str(source_date_epoch())
    # Set, not appended to: a builder's own RUSTFLAGS or ~/.cargo/config.toml rustflags (target-cpu=native…) must
    # not shape what ships. The encoded form keeps paths with spaces whole.
    env.pop("RUSTFLAGS", None)
    env["CARGO_ENCODED_RUSTFLAGS"] = "\x1f".join(f"--remap-path-prefix={real}={neutral}" for real, neutral in remaps)
    # The C of mozjpeg-sys and libwebp-sys, compiled by zig cc through the cc crate, which reads CFLAGS.
    for name in [n for n in env if n == "CFLAGS" or n.startswith(("CFLAGS_", "TARGET_CFLAGS"))]:
        del env[name]
    env["CFLAGS"] = " ".join(f"-ffile-prefix-map={real}={neutral}" for real, neutral in remaps)
    return env


def build_wheel(target: str) -> Path:
    shutil.rmtree(WHEELS, ignore_errors=True)
    env = reproducible_env(dict(os.environ))
    # maturin finds zig through `python -m ziglang` of the interpreter on PATH: make that this one.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    # --locked: Cargo.lock is the pin; a build that would have to change it fails instead of shipping other crates.
    command = [
        sys.executable, "-m", "maturin", "build", "--release", "--zig", "--locked",
        "--target", target, "--compatibility", MANYLINUX, "--out", str(WHEELS),
    ]  # fmt: skip
    log(" ".join(["maturin", *command[3:]]))
    started = time.monotonic()
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    wheels = sorted(WHEELS.glob("*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"layer: expected one wheel in {WHEELS}, found {[w.name for w in wheels]}")
    log(f"built {wheels[0].name} in {time.monotonic() - started:.0f} s")
    return wheels[0]


def current_wheel(target: str, force: bool) -> Path:
    digest = inputs_digest(target)
    wheels = sorted(WHEELS.glob("*.whl"))
    if not force and len(wheels) == 1 and STAMP.is_file() and STAMP.read_text().strip() == digest:
        log(f"up to date: {wheels[0].name}")
        return wheels[0]
    wheel = build_wheel(target)
    STAMP.write_text(digest + "\n")
    return wheel


class LicenceError(Exception):
    """cargo-about refused (a licence outside the allow-list, an unreadable or changed licence file); str() says why."""


def cargo_about() -> str:
    """The pinned cargo-about, or SystemExit saying how to get it."""
    found = shutil.which("cargo-about") or str(cargo_home(dict(os.environ)) / "bin" / "cargo-about")
    try:
        version = subprocess.run([found, "--version"], capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        version = []
    if version[-1:] != [CARGO_ABOUT_VERSION]:
        raise SystemExit(
            f"layer: cargo-about {CARGO_ABOUT_VERSION} writes the licence notices, found {' '.join(version) or 'none'}:"
            f" run `make setup` (cargo install --locked cargo-about@{CARGO_ABOUT_VERSION} --features cli)"
        )
    return found


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def generate_notices(out: Path, config: Path = ABOUT_CONFIG) -> None:
    """Notices of every crate compiled into the extension → out; LicenceError if one is outside the allow-list."""
    exe = cargo_about()
    manifest = str(ROOT / "rust_core" / "Cargo.toml")
    # --frozen: no network, so the notices come from the locked crates' own files, never from a fetch that may vary.
    subprocess.run(["cargo", "fetch", "--locked", "--quiet", "--manifest-path", manifest], cwd=ROOT, check=True)
    command = [exe, "generate", "--frozen", "--fail", "--config", str(config), "--manifest-path", manifest,
               "--output-file", str(out), str(ABOUT_TEMPLATE)]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    messages = _ANSI.sub("", result.stderr).strip()
    # A clarification whose checksum no longer matches (the crate's licence file changed) is only a warning to
    # cargo-about, which then guesses from the file: here it stops the build until someone reads the new terms.
    if result.returncode != 0 or "failed to validate" in messages:
        out.unlink(missing_ok=True)
        raise LicenceError(messages or f"cargo-about exited with {result.returncode}")


def notices_digest() -> str:
    digest = hashlib.sha256(f"cargo-about {CARGO_ABOUT_VERSION}\0".encode())
    for name in NOTICE_INPUTS:
        digest.update(name.encode() + b"\0" + hashlib.sha256((ROOT / name).read_bytes()).digest())
    return digest.hexdigest()


def current_notices() -> None:
    """Regenerate kiray_imaging/licenses/ when the dependency graph, the toolchain or the templates changed."""
    digest = notices_digest()
    outputs = (NOTICES, STD_NOTICES, NOTICES_STAMP)
    if all(f.is_file() for f in outputs) and NOTICES_STAMP.read_text().strip() == digest:
        return
    NOTICES_DIR.mkdir(parents=True, exist_ok=True)
    generate_notices(NOTICES)
    std = rust_sysroot() / "share" / "doc" / "rust" / "COPYRIGHT-library.html"
    if not std.is_file():
        raise LicenceError(f"{std} is missing: the Rust standard library's notices cannot be shipped without it")
    shutil.copyfile(std, STD_NOTICES)
    NOTICES_STAMP.write_text(digest + "\n")
    crates = len(re.findall(r"^\S+ \S+: ", NOTICES.read_text(encoding="utf-8"), re.MULTILINE))
    log(f"licence notices for {crates} crates (cargo-about {CARGO_ABOUT_VERSION}) → {NOTICES.relative_to(ROOT)}")


def runtime_wheels() -> list[Path]:
    """The wheels of layer/requirements.txt, downloaded once per pin set; pip checks every hash."""
    stamp = RUNTIME_WHEELS / "requirements.sha256"
    digest = hashlib.sha256(RUNTIME_REQUIREMENTS.read_bytes()).hexdigest()
    if not (stamp.is_file() and stamp.read_text().strip() == digest):
        shutil.rmtree(RUNTIME_WHEELS, ignore_errors=True)
        command = [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
            "--require-hashes", "-r", str(RUNTIME_REQUIREMENTS), "-d", str(RUNTIME_WHEELS),
        ]  # fmt: skip
        subprocess.run(command, check=True)
        stamp.write_text(digest + "\n")
    wheels = sorted(RUNTIME_WHEELS.glob("*.whl"))
    for wheel in wheels:
        # Only pure-Python wheels: a compiled one would need the same gate and target as ours.
        if not wheel.name.endswith("-py3-none-any.whl"):
            raise SystemExit(f"layer: {wheel.name} in {RUNTIME_REQUIREMENTS.name} is not a pure-Python wheel")
        licence = wheel_licence(wheel)
        if licence not in RUNTIME_LICENCES:
            raise LicenceError(f"{wheel.name} declares licence {licence!r}, outside {sorted(RUNTIME_LICENCES)}")
    return wheels


def wheel_licence(wheel: Path) -> str:
    """The licence a wheel's METADATA declares: the SPDX License-Expression, else the License field."""
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        fields = [line.split(":", 1) for line in z.read(name).decode().split("\n\n", 1)[0].splitlines()]
    declared = {k.strip(): v.strip() for k, v in (f for f in fields if len(f) == 2)}
    return declared.get("License-Expression") or declared.get("License", "")


def shipped(name: str) -> bool:
    """Whether a file of a wheel goes into the layer (see RUNTIME_LEFT_OUT, TOOLING_LEFT_OUT)."""
    if name.startswith(TOOLING_LEFT_OUT):
        return False
    return not name.startswith(RUNTIME_LEFT_OUT) or name.startswith(RUNTIME_KEPT)


def load_layer_module(name: str) -> Any:
    """A module of layer/ (bytecode.py, sbom.py), loaded by path as the gate is: layer/ is not a package."""
    if f"kiray_layer_{name}" in sys.modules:
        return sys.modules[f"kiray_layer_{name}"]
    spec = importlib.util.spec_from_file_location(f"kiray_layer_{name}", ROOT / "layer" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def zip_layer(wheels: list[Path], out: Path, compiler: str | None) -> None:
    """Lambda unpacks a layer into /opt; Python layers put packages under python/, which is on sys.path there.
    A wheel of pure Python unpacked is that package installed (no scripts); `compiler` (a CPython of the runtime's
    version, or None) adds its bytecode (layer/bytecode.py)."""
    stamp = time.gmtime(source_date_epoch())[:6]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    files: dict[str, bytes] = {}
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as src:
            for name in (n for n in src.namelist() if not n.endswith("/") and shipped(n)):
                if name in files:
                    raise SystemExit(f"layer: {name} is in more than one wheel ({wheel.name})")
                files[name] = src.read(name)
    if compiler is not None:
        files.update(load_layer_module("bytecode").compile_layer(files, compiler))
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for name in sorted(files):
            info = zipfile.ZipInfo(f"python/{name}", date_time=stamp)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(info, files[name], compresslevel=9)
    os.replace(tmp, out)


@contextlib.contextmanager
def exclusive_build() -> Any:
    """One build at a time per checkout: two maturin runs sharing target/ and layer/build/ break each other."""
    BUILD.mkdir(parents=True, exist_ok=True)
    with open(BUILD / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log("another build of this checkout is running; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild the wheel even if it looks up to date")
    parser.add_argument("--architecture", choices=sorted(TARGETS), default="x86_64", help="Lambda architecture")
    args = parser.parse_args(argv)
    gate = load_gate()

    with exclusive_build():
        return build_and_verify(gate, args.architecture, args.force)


def build_and_verify(gate: Any, architecture: str, force: bool) -> int:
    try:
        current_notices()
        runtime = runtime_wheels()
    except LicenceError as e:
        print(f"layer: REFUSED by the licence check (layer/about.toml, RUNTIME_LICENCES), nothing was built:\n{e}",
              file=sys.stderr)  # fmt: skip
        return 1
    wheel = current_wheel(TARGETS[architecture], force)
    compiler = bytecode_compiler()
    try:
        # Verify the wheel, then what actually ships: the zip.
        gate.verify(wheel, arch=architecture)
        zip_layer([wheel, *runtime], LAYER_ZIP, compiler)
        findings = gate.verify(LAYER_ZIP, arch=architecture)
    except gate.GateError as e:
        LAYER_ZIP.unlink(missing_ok=True)
        print(f"layer: REFUSED by the binary gate, nothing was packaged:\n{e}", file=sys.stderr)
        return 1
    except load_layer_module("bytecode").BytecodeError as e:
        LAYER_ZIP.unlink(missing_ok=True)
        print(f"layer: the layer's Python does not compile for the runtime, nothing was packaged:\n{e}",
              file=sys.stderr)  # fmt: skip
        return 1
    for finding in findings:
        log(finding.line())
    size = LAYER_ZIP.stat().st_size
    sha256 = hashlib.sha256(LAYER_ZIP.read_bytes()).hexdigest()
    (DIST / "kiray-imaging-layer.sha256").write_text(f"{sha256}  {LAYER_ZIP.name}\n")
    log(f"{LAYER_ZIP.relative_to(ROOT)}: {size} bytes ({size / 1024 / 1024:.2f} MiB), sha256 {sha256}")
    if size > MAX_LAYER_ZIP_BYTES:
        print(f"layer: {size} bytes is over the {MAX_LAYER_ZIP_BYTES}-byte budget", file=sys.stderr)
        return 1
    return write_sbom(architecture)


def bytecode_compiler() -> str | None:
    """The CPython that compiles the layer's bytecode (LAYER_PYTHON, else pyenv's or PATH's python3.12), or None
    with a warning: the layer then works as before, and its functions compile it on every cold start."""
    bytecode = load_layer_module("bytecode")
    explicit = os.environ.get("LAYER_PYTHON")
    found = bytecode.find_compiler(explicit)
    if found is None and explicit:
        raise SystemExit(f"layer: LAYER_PYTHON={explicit} is not a CPython {bytecode.RUNTIME_VERSION} (the functions' "
                         f"runtime), which the layer's bytecode must be compiled by")  # fmt: skip
    if found is None:
        print(f"layer: WARNING: no CPython {bytecode.RUNTIME_VERSION} here, so the layer ships without bytecode and "
              f"every cold start compiles it (docs/cost.md); install one (pyenv install {bytecode.RUNTIME_VERSION}, "
              f"brew install python@{bytecode.RUNTIME_VERSION}) or set LAYER_PYTHON", file=sys.stderr)  # fmt: skip
        return None
    interpreter, version = found
    log(f"bytecode for the runtime: compiled by CPython {version} ({interpreter})")
    return str(interpreter)


def write_sbom(architecture: str) -> int:
    """The zip's CycloneDX SBOM beside it (layer/sbom.py)."""
    sbom = load_layer_module("sbom")
    try:
        count = sbom.current_sbom(LAYER_ZIP, TARGETS[architecture], source_date_epoch())
    except sbom.SbomError as e:
        sbom.SBOM.unlink(missing_ok=True)
        print(f"layer: no SBOM could be made for {LAYER_ZIP.name}:\n{e}", file=sys.stderr)
        return 1
    log(f"{sbom.SBOM.relative_to(ROOT)}: CycloneDX SBOM of {count} components")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
