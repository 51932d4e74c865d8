"""Load layer_gate.py by file path, exactly as the layer build script does.

Importing it as kiray_imaging.layer_gate would run the package __init__, which imports the
native _core extension; these tests must pass on a machine where that is not built. The module
is registered in sys.modules *before* it executes because @dataclass looks its module up there.
Test modules then simply ``import layer_gate``, or take the ``layer_gate`` fixture.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
GATE_PATH = REPO / "python" / "kiray_imaging" / "layer_gate.py"


def _load_gate() -> None:
    if "layer_gate" in sys.modules:
        return
    spec = importlib.util.spec_from_file_location("layer_gate", GATE_PATH)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {GATE_PATH}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["layer_gate"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["layer_gate"]
        raise


_load_gate()


@pytest.fixture
def gate_path() -> Path:
    """The gate's source file, for tests that run it as a script."""
    return GATE_PATH


@pytest.fixture
def layer_gate() -> ModuleType:
    """The gate module itself, loaded by path as above."""
    return sys.modules["layer_gate"]
