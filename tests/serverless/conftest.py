from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`sls package` once, against a throwaway moto, into a temporary folder (the plugin builds/verifies the layer)."""
    out = tmp_path_factory.mktemp("sls-package")
    command = [
        sys.executable,
        "scripts/local_aws.py",
        "--",
        "npx",
        "--no-install",
        "sls",
        "package",
        "--package",
        str(out),
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def template(packaged: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((packaged / "cloudformation-template-update-stack.json").read_text())
    return loaded
