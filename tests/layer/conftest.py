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


def _load_gate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kiray_tooling_loader", TOOLING / "__main__.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {TOOLING}")
    loader = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loader)
    gate: ModuleType = loader.load_gate()
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
