"""The layer's Python compiled to bytecode for the functions' runtime, so a cold start does not compile it.

Lambda mounts a layer read-only at /opt: a module shipped without its `.pyc` is compiled from source on every cold
start and the result thrown away, which the rehearsal measured as most of a function's Init Duration
(docs/cost.md, "Cold starts as Lambda reports them"). Bytecode is per minor version, so it is compiled by a CPython
of the runtime's version (serverless.yml's `python3.12`); another runtime ignores these files and compiles from
source as before, which keeps the layer one artifact for every Python.

Reproducible like the rest of the zip: hash-based `.pyc` (`unchecked-hash`, no timestamps; /opt never changes under
a running function), source paths recorded as /opt/python/…, where Lambda puts them, rather than the build's
temporary folder (the import system puts the real path in anyway). The same
sources give the same bytes for a given CPython 3.12.x; another patch release may compile some function differently,
so the build log names the version used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

RUNTIME_VERSION = "3.12"
"""serverless.yml's `provider.runtime` (python3.12); tests/layer/test_bytecode.py holds the two together."""
SITE = "/opt/python"
"""Where Lambda unpacks the layer's python/ folder: the path compiled into each code object."""


def candidates(explicit: str | None = None, version: str = RUNTIME_VERSION) -> Iterator[str]:
    """Interpreters that may be a CPython `version`, best first: `explicit`, then pyenv's (newest patch first), then
    PATH's. Shared with the rehearsal (scripts/rehearse/tools.py), which needs the same Python."""
    if explicit:
        yield explicit
    versions = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    for tree in sorted(versions.glob(f"{version}.*"), key=lambda p: _numeric(p.name), reverse=True):
        yield str(tree / "bin" / f"python{version}")
    found = shutil.which(f"python{version}")
    if found:
        yield found


def _numeric(name: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in name.split("."))


def find_compiler(explicit: str | None = None) -> tuple[str, str] | None:
    """(interpreter, its full version) of the first candidate that is a CPython RUNTIME_VERSION, or None. An
    `explicit` interpreter is the only candidate: one named on purpose is not silently replaced by another."""
    code = "import platform, sys; print(platform.python_implementation(), '%d.%d.%d' % sys.version_info[:3])"
    for candidate in [explicit] if explicit else candidates():
        try:
            out = subprocess.run([candidate, "-S", "-c", code], capture_output=True, text=True, timeout=30,
                                 check=True, env=_clean_env())  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            continue
        implementation, _, full = out.stdout.strip().partition(" ")
        if implementation == "CPython" and full.startswith(RUNTIME_VERSION + "."):
            return candidate, full
    return None


def _clean_env() -> dict[str, str]:
    # No PYTHONPYCACHEPREFIX, PYTHONOPTIMIZE or the like from the caller's shell: they would change what is written.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}


class BytecodeError(Exception):
    """A layer file did not compile (a syntax error the runtime's version rejects)."""


def compile_layer(files: Mapping[str, bytes], python: str) -> dict[str, bytes]:
    """The `__pycache__/*.cpython-312.pyc` of every `.py` in `files` (names relative to the layer's python/ folder),
    compiled by `python`; names in the same form."""
    sources = {name: data for name, data in files.items() if name.endswith(".py")}
    with tempfile.TemporaryDirectory(prefix="kiray-layer-bytecode-") as tmp:
        root = Path(tmp)
        for name, data in sources.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        command = [python, "-S", "-m", "compileall", "-q", "-j", "1", "--invalidation-mode", "unchecked-hash",
                   "-d", SITE, str(root)]  # fmt: skip
        run = subprocess.run(command, capture_output=True, text=True, env=_clean_env(), check=False)
        if run.returncode != 0:
            raise BytecodeError((run.stdout + run.stderr).strip() or f"compileall exited {run.returncode}")
        compiled = {
            path.relative_to(root).as_posix(): path.read_bytes()
            for path in sorted(root.rglob("*.pyc"))
            if path.parent.name == "__pycache__"
        }
    tag = f"cpython-{RUNTIME_VERSION.replace('.', '')}"
    missing = [name for name in sources if _pyc_name(name, tag) not in compiled]
    if missing:
        raise BytecodeError(f"no {tag} bytecode was written for {', '.join(sorted(missing)[:5])}")
    return compiled


def _pyc_name(source: str, tag: str) -> str:
    folder, _, file = source.rpartition("/")
    return f"{folder}/__pycache__/{file[:-3]}.{tag}.pyc" if folder else f"__pycache__/{file[:-3]}.{tag}.pyc"
