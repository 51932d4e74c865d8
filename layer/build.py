"""Build the Lambda layer: one manylinux2014 x86_64 abi3 wheel (maturin + zig), verified, then zipped under python/.

    python layer/build.py [--force]

Why zig: it links against a glibc 2.17 symbol set from any host (macOS, a new Linux, CI), so the binary loads on
every Lambda runtime; a binary built natively on a developer's machine is what crashes there ("invalid ELF header"
for a Mach-O, "GLIBC_2.xx not found" for a new glibc). The gate below refuses both before anything is packaged.

The build is skipped when the wheel is newer than every input (sources, lock files, build settings), so the
Serverless plugin can call this on every `sls package` / `sls deploy` at almost no cost.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import importlib.util
import os
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

# Lambda architecture → Rust target. The architecture itself is one setting, `params.architecture` in
# serverless.yml, which the Serverless plugin passes here; arm64 is on paper only (see README, "arm64").
TARGETS = {"x86_64": "x86_64-unknown-linux-gnu", "arm64": "aarch64-unknown-linux-gnu"}
MANYLINUX = "manylinux2014"
INPUTS = ("Cargo.toml", "Cargo.lock", "pyproject.toml", "rust_core", "python")
# Lambda allows 250 MB unzipped per function including layers; our own budget is far tighter.
MAX_LAYER_ZIP_BYTES = 3 * 1024 * 1024
# Zip timestamps: fixed, so the same wheel always gives the same zip (SOURCE_DATE_EPOCH overrides).
EPOCH_1980 = 315532800


def log(message: str) -> None:
    print(f"layer: {message}", flush=True)


def load_gate() -> Any:
    """The gate is stdlib-only and loaded by path: the package itself may not be importable on this host."""
    path = ROOT / "python" / "kiray_imaging" / "layer_gate.py"
    spec = importlib.util.spec_from_file_location("kiray_layer_gate", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


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


def build_wheel(target: str) -> Path:
    shutil.rmtree(WHEELS, ignore_errors=True)
    env = dict(os.environ)
    # maturin finds zig through `python -m ziglang` of the interpreter on PATH: make that this one.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    command = [
        sys.executable, "-m", "maturin", "build", "--release", "--zig",
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


def zip_layer(wheel: Path, out: Path) -> None:
    """Lambda unpacks a layer into /opt; Python layers put packages under python/, which is on sys.path there."""
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", EPOCH_1980))
    stamp = time.gmtime(max(epoch, EPOCH_1980))[:6]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for name in sorted(n for n in src.namelist() if not n.endswith("/")):
            info = zipfile.ZipInfo(f"python/{name}", date_time=stamp)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(info, src.read(name), compresslevel=9)
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
    gate.ARCH = args.architecture

    with exclusive_build():
        return build_and_verify(gate, args.architecture, args.force)


def build_and_verify(gate: Any, architecture: str, force: bool) -> int:
    wheel = current_wheel(TARGETS[architecture], force)
    try:
        # Verify the wheel, then what actually ships: the zip.
        gate.verify(wheel)
        zip_layer(wheel, LAYER_ZIP)
        findings = gate.verify(LAYER_ZIP)
    except gate.GateError as e:
        LAYER_ZIP.unlink(missing_ok=True)
        print(f"layer: REFUSED by the binary gate, nothing was packaged:\n{e}", file=sys.stderr)
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
