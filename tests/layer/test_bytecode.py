"""The layer ships its Python compiled for the runtime (layer/bytecode.py), and python3.12 really uses it.

Lambda's /opt is read-only, so a module without a usable .pyc is compiled on every cold start: the proof here is a
copy of the layer whose every source file is replaced by one that raises, imported by CPython 3.12 with the handler.
It can only import if every module the handler needs comes from bytecode that is never checked against its source.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYER_ZIP = ROOT / "layer" / "dist" / "kiray-imaging-layer.zip"


@pytest.fixture(scope="module")
def bytecode(layer_build: ModuleType) -> ModuleType:
    module: ModuleType = layer_build.load_layer_module("bytecode")
    return module


@pytest.fixture(scope="module")
def python312(bytecode: ModuleType) -> str:
    found = bytecode.find_compiler(os.environ.get("LAYER_PYTHON"))
    # Not a skip: make test needs a CPython 3.12 anyway (the rehearsal), and without one the layer ships no bytecode.
    assert found is not None, "no CPython 3.12 found: pyenv install 3.12 (or set LAYER_PYTHON)"
    return str(found[0])


@pytest.fixture(scope="module")
def layer() -> zipfile.ZipFile:
    subprocess.run([sys.executable, "layer/build.py"], cwd=ROOT, check=True, capture_output=True)
    return zipfile.ZipFile(LAYER_ZIP)


def test_every_module_of_the_layer_has_unchecked_bytecode_for_the_runtime(layer: zipfile.ZipFile) -> None:
    names = set(layer.namelist())
    sources = sorted(n for n in names if n.endswith(".py"))
    assert len(sources) > 50
    for source in sources:
        folder, _, file = source.rpartition("/")
        pyc = f"{folder}/__pycache__/{file[:-3]}.cpython-312.pyc"
        assert pyc in names, source
        header = layer.read(pyc)[:16]
        # PEP 552: flags 0b01 = hash-based, not checked against the source (no mtime, reproducible).
        assert int.from_bytes(header[4:8], "little") == 0b01, pyc
    # Nothing but the runtime's version: another tag would be dead weight in the zip.
    assert {n.rsplit(".", 2)[-2] for n in names if n.endswith(".pyc")} == {"cpython-312"}


_IMPORT = r"""
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import generate_thumbnail, kiray_imaging.rendering, aws_lambda_powertools
print(json.dumps(sorted(m for m, mod in sys.modules.items() if (getattr(mod, "__file__", None) or "").startswith(
    sys.argv[2]))))
"""


def test_python312_imports_the_handler_from_bytecode_alone(
    layer: zipfile.ZipFile, python312: str, tmp_path: Path
) -> None:
    opt = tmp_path / "opt"
    layer.extractall(opt)
    for source in (opt / "python").rglob("*.py"):
        source.write_text("raise SystemExit('compiled from source: ' + __name__)\n")
    task = tmp_path / "task"
    task.mkdir()
    (task / "generate_thumbnail.py").write_bytes((ROOT / "py_handlers" / "generate_thumbnail.py").read_bytes())
    env = {"PATH": os.environ["PATH"], "SOURCE_BUCKET": "b", "DEST_BUCKET": "d", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}  # fmt: skip
    # -B: nothing written, as on a read-only /opt; -S: no site-packages of this machine.
    run = subprocess.run([python312, "-S", "-B", "-c", _IMPORT, str(task), str(opt / "python")],
                         capture_output=True, text=True, env=env, check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    loaded = set(json.loads(run.stdout.strip().splitlines()[-1]))
    assert {"kiray_imaging", "kiray_imaging._core", "kiray_imaging.rendering", "aws_lambda_powertools"} <= loaded


def test_the_bytecode_names_lambdas_paths_not_the_builds(layer: zipfile.ZipFile) -> None:
    pyc = layer.read("python/kiray_imaging/__pycache__/rendering.cpython-312.pyc")
    assert b"/opt/python/kiray_imaging/rendering.py" in pyc
    assert b"kiray-layer-bytecode-" not in pyc


def test_a_source_the_runtime_cannot_compile_is_an_error(bytecode: ModuleType, python312: str) -> None:
    files = {"good/__init__.py": b"X = 1\n", "good/bad.py": b"def f(:\n"}
    with pytest.raises(bytecode.BytecodeError, match=r"bad\.py"):
        bytecode.compile_layer(files, python312)


def test_compiling_twice_gives_the_same_bytes(bytecode: ModuleType, python312: str) -> None:
    # Each compile runs in its own temporary folder, whose name must not reach the bytes (-d); set constants too.
    files = {"pkg/__init__.py": b"def f(x):\n    return x in {'alpha', 'beta', 'gamma', 'delta', 'epsilon'}\n"}
    first = bytecode.compile_layer(files, python312)
    assert list(first) == ["pkg/__pycache__/__init__.cpython-312.pyc"]
    assert bytecode.compile_layer(files, python312) == first


def test_the_runtime_version_is_the_templates(bytecode: ModuleType) -> None:
    serverless = (ROOT / "serverless.yml").read_text()
    assert f"runtime: python{bytecode.RUNTIME_VERSION}\n" in serverless


def test_an_interpreter_named_on_purpose_is_the_only_one_tried(bytecode: ModuleType, python312: str) -> None:
    # This test's own Python is not a 3.12 (the suite runs in .venv); LAYER_PYTHON naming it is refused, not replaced.
    assert not sys.version.startswith(bytecode.RUNTIME_VERSION + ".")
    assert bytecode.find_compiler(sys.executable) is None
    found = bytecode.find_compiler(python312)
    assert found is not None
    assert found[0] == python312
