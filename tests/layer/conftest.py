"""Load the gate (python/kiray_imaging/tooling) by file path, exactly as the layer build script does.

Importing it as kiray_imaging.tooling would run the package __init__, which imports the native _core
extension; these tests must pass on a machine where that is not built. tooling/__main__.py holds the one
loader (build.py calls it too); it registers the gate's public module here as ``layer_gate``, so test modules
simply ``import layer_gate``, or take the ``layer_gate`` fixture.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLING = REPO / "python" / "kiray_imaging" / "tooling"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load_gate() -> ModuleType:
    gate: ModuleType = _load("kiray_tooling_loader", TOOLING / "__main__.py").load_gate()
    return gate


sys.modules.setdefault("layer_gate", _load_gate())


@pytest.fixture
def gate_path() -> Path:
    """The gate's folder, for tests that run it as a script (``python <folder> PATH``)."""
    return TOOLING


@pytest.fixture
def layer_gate() -> ModuleType:
    """The gate module itself, loaded by path as above."""
    return sys.modules["layer_gate"]


@pytest.fixture(scope="session")
def layer_build() -> ModuleType:
    """layer/build.py, loaded by path (layer/ is not a package). Its ``load_layer_module`` gives the other layer
    modules (bytecode.py, sbom.py) as the build itself loads them, so their exception classes are the build's."""
    return _load("kiray_layer_build", REPO / "layer" / "build.py")
