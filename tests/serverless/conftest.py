from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def sls_package(out: Path, *params: str) -> Path:
    """`sls package` against a throwaway moto, into ``out`` (the plugin builds/verifies the layer)."""
    command = [sys.executable, "scripts/local_aws.py", "--", "npx", "--no-install", "sls", "package", "--package",
               str(out), *(f"--param={p}" for p in params)]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`sls package` once, with the defaults."""
    return sls_package(tmp_path_factory.mktemp("sls-package"))


@pytest.fixture(scope="session")
def existing_bucket_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The template for a bucket the stack does not own (docs/deploying.md, "An existing bucket")."""
    out = sls_package(tmp_path_factory.mktemp("sls-package-existing"), "createBucket=false",
                      "photosBucket=acme-listing-photos")  # fmt: skip
    loaded: dict[str, Any] = json.loads((out / "cloudformation-template-update-stack.json").read_text())
    return loaded


@pytest.fixture(scope="session")
def template(packaged: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((packaged / "cloudformation-template-update-stack.json").read_text())
    return loaded
