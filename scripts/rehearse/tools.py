"""What the rehearsal needs on the machine, pinned here and installed under target/rehearse/tools/ (git-ignored).

- The AWS Lambda Runtime Interface Emulator (RIE), built from its Go module with `go install` through the module
  proxy: the Runtime API and the invoke endpoint that Lambda's own images use for local runs.
- The python3.12 runtime's Python side: awslambdaric in /var/runtime and the AWS SDK in the interpreter's
  site-packages, from `runtime-requirements.txt` and `sdk-requirements.txt` beside this file (by hash).
- A relocatable CPython 3.12 (a pyenv or python-build-standalone tree), mounted at /var/lang as Lambda has it.
- bubblewrap, `unshare` and a writable memory cgroup, which are the machine's own (root; Linux x86_64).

Each missing piece is reported in one line that says what to install (`Missing`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TOOLS = ROOT / "target" / "rehearse" / "tools"

RIE_MODULE = "github.com/aws/aws-lambda-runtime-interface-emulator"
# The emulator's releases are tagged v1.NN, which is not the vMAJOR.MINOR.PATCH the module proxy serves, so the
# proxy knows it by commit only: this pseudo-version is its main branch on 2026-10-30, after release v1.30.
RIE_VERSION = "v0.0.0-20261030222936-bef5c4ba774d"
RIE = TOOLS / "bin" / "aws-lambda-rie"

RUNTIME = "python3.12"
PYTHON_VERSION = "3.12"
# /var/runtime (awslambdaric) and /var/lang/lib/python3.12/site-packages (boto3), one folder each.
RUNTIME_PACKAGES = TOOLS / "var-runtime"
SDK_PACKAGES = TOOLS / "site-packages"
REQUIREMENTS = {RUNTIME_PACKAGES: HERE / "runtime-requirements.txt", SDK_PACKAGES: HERE / "sdk-requirements.txt"}


class Missing(SystemExit):
    """Something the sandbox needs is not on this machine; the message is the one line that says what to do."""

    def __init__(self, what: str) -> None:
        super().__init__(f"rehearse: {what}")


def check_host() -> None:
    """The sandbox is Linux namespaces and a cgroup, run as root; Lambda's architecture is x86_64 here."""
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        raise Missing(f"runs on Linux x86_64 only (this is {platform.system()} {platform.machine()}): use a VM or CI")
    if os.geteuid() != 0:
        raise Missing("needs root, for a network namespace and a memory cgroup: run it as root (CI does)")
    if shutil.which("bwrap") is None:
        raise Missing("bubblewrap lays out the sandbox: apt-get install bubblewrap")
    for tool in ("unshare", "setpriv"):
        if shutil.which(tool) is None:
            raise Missing(f"`{tool}` (util-linux) is needed: apt-get install util-linux")


@dataclass(frozen=True)
class Interpreter:
    prefix: Path
    """Mounted at /var/lang: holds bin/python3.12 and lib/python3.12."""
    version: str


def _describe(python: str) -> Interpreter | None:
    code = "import json, sys; print(json.dumps([sys.base_prefix, '%d.%d.%d' % sys.version_info[:3]]))"
    try:
        out = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True, timeout=30, check=True)
        prefix, version = json.loads(out.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    interpreter = Interpreter(Path(prefix), version)
    relocatable = (interpreter.prefix / "bin" / f"python{PYTHON_VERSION}").is_file() and (
        interpreter.prefix / "lib" / f"python{PYTHON_VERSION}" / "os.py"
    ).is_file()
    # A system Python lives in /usr with the rest of the OS; only a self-contained tree can be mounted at /var/lang.
    if not version.startswith(PYTHON_VERSION + ".") or not relocatable or interpreter.prefix == Path("/usr"):
        return None
    return interpreter


def _runtime_python_candidates(explicit: str | None) -> list[str]:
    # The layer build looks for the runtime's CPython the same way, to compile the layer's bytecode: one search.
    spec = importlib.util.spec_from_file_location("kiray_layer_bytecode", ROOT / "layer" / "bytecode.py")
    assert spec is not None
    assert spec.loader is not None
    bytecode = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bytecode)
    return list(bytecode.candidates(explicit, PYTHON_VERSION))


def find_python(explicit: str | None = None) -> Interpreter:
    """The CPython 3.12 to mount at /var/lang: ``explicit`` (REHEARSE_PYTHON), else pyenv's, else PATH's."""
    for candidate in _runtime_python_candidates(explicit):
        interpreter = _describe(candidate)
        if interpreter is not None:
            return interpreter
    raise Missing(
        f"a self-contained CPython {PYTHON_VERSION} (the functions' runtime) is needed: pyenv install {PYTHON_VERSION}"
        f" (or set REHEARSE_PYTHON to one)"
    )


def _rie_installed() -> bool:
    if not RIE.is_file():
        return False
    go = shutil.which("go")
    if go is None:  # built before; `go version -m` would only confirm the pin
        return (TOOLS / "rie.version").is_file() and (TOOLS / "rie.version").read_text().strip() == RIE_VERSION
    out = subprocess.run([go, "version", "-m", str(RIE)], capture_output=True, text=True, check=False).stdout
    return any(line.split()[1:3] == [RIE_MODULE, RIE_VERSION] for line in out.splitlines() if "\tmod\t" in line)


def rie() -> Path:
    """The pinned emulator, or `Missing`."""
    if not _rie_installed():
        raise Missing(f"the Runtime Interface Emulator {RIE_VERSION} is not installed: make rehearse-tools")
    return RIE


def _requirements_stamp(folder: Path) -> Path:
    return folder / ".requirements.sha256"


def _requirements_digest(folder: Path, interpreter: Interpreter) -> str:
    text = REQUIREMENTS[folder].read_bytes() + interpreter.version.encode()
    return hashlib.sha256(text).hexdigest()


def runtime_packages(interpreter: Interpreter) -> tuple[Path, Path]:
    """(/var/runtime, site-packages) as installed for ``interpreter``, or `Missing`."""
    for folder in REQUIREMENTS:
        stamp = _requirements_stamp(folder)
        if not stamp.is_file() or stamp.read_text().strip() != _requirements_digest(folder, interpreter):
            raise Missing(f"python3.12's packages ({REQUIREMENTS[folder].name}) are not installed: make rehearse-tools")
    return RUNTIME_PACKAGES, SDK_PACKAGES


def install(interpreter: Interpreter) -> None:
    """Builds the emulator and installs the runtime's packages, each only when its pin changed."""
    if not _rie_installed():
        go = shutil.which("go")
        if go is None:
            raise Missing(
                "Go builds the Runtime Interface Emulator: install Go ≥ 1.21 from https://go.dev/dl/ (it fetches the"
                " toolchain the emulator asks for)"
            )
        RIE.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, GOBIN=str(RIE.parent), GOFLAGS="-trimpath", CGO_ENABLED="0")
        target = f"{RIE_MODULE}/cmd/aws-lambda-rie@{RIE_VERSION}"
        print(f"rehearse: go install {target}", flush=True)
        subprocess.run([go, "install", target], env=env, check=True)
        (TOOLS / "rie.version").write_text(RIE_VERSION + "\n")
    for folder, requirements in REQUIREMENTS.items():
        digest = _requirements_digest(folder, interpreter)
        stamp = _requirements_stamp(folder)
        if stamp.is_file() and stamp.read_text().strip() == digest:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        print(f"rehearse: installing {requirements.name} for CPython {interpreter.version} → {folder}", flush=True)
        # The wheels Lambda's x86_64 python3.12 would take, whatever this machine's Python is; compiled afterwards
        # by that CPython, as a runtime image has them (the sandbox cannot write __pycache__ there).
        command = [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--require-hashes", "--no-compile",
            "--only-binary=:all:", "--platform", "manylinux2014_x86_64", "--implementation", "cp",
            "--python-version", PYTHON_VERSION, "--target", str(folder), "-r", str(requirements),
        ]  # fmt: skip
        subprocess.run(command, check=True)
        python = interpreter.prefix / "bin" / f"python{PYTHON_VERSION}"
        subprocess.run([str(python), "-m", "compileall", "-q", str(folder)], check=True, stdout=subprocess.DEVNULL)
        stamp.write_text(digest + "\n")
