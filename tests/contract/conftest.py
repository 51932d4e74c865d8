"""Fixtures for the contract tests: the contract's own node_modules (json-schema-to-typescript, tsc), and the package
as it ships, installed where a consumer would have it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.contract.node_tools import CONTRACT, NODE_MODULES, NPM_ENV, TSC
else:
    from node_tools import CONTRACT, NODE_MODULES, NPM_ENV, TSC

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """contract/node_modules, which make installs (contract/node_modules/.installed) before the tests run."""
    if not (NODE_MODULES / ".installed").exists() or not TSC.exists():
        pytest.fail("contract/node_modules is missing: `make py-test` (or `npm ci --prefix contract`) installs it")
    return NODE_MODULES


@pytest.fixture(scope="session")
def packed(tmp_path_factory: pytest.TempPathFactory, node_modules: Path) -> Path:
    """`npm pack` of contract/: the tarball the package would publish."""
    out = tmp_path_factory.mktemp("pack")
    result = subprocess.run(
        ["npm", "pack", "--json", "--loglevel=error", "--pack-destination", str(out)],
        cwd=CONTRACT,
        env=NPM_ENV,
        capture_output=True,
        text=True,
        check=True,
    )
    return out / str(json.loads(result.stdout)[0]["filename"])


@pytest.fixture(scope="session")
def consumer_project(tmp_path_factory: pytest.TempPathFactory, packed: Path) -> Path:
    """A folder with the packed package in node_modules/@kiray/imaging-contract and the .ts consumers beside it."""
    project = tmp_path_factory.mktemp("consumer")
    scope = project / "node_modules" / "@kiray"
    with tarfile.open(packed) as tar:
        tar.extractall(scope, filter="data")
    (scope / "package").rename(scope / "imaging-contract")  # npm packs everything under package/
    for ts in [HERE / "consumer.ts", *sorted((HERE / "wrong").glob("*.ts"))]:
        shutil.copy(ts, project / ts.name)
    # The README's examples compile too, so they cannot drift from the types.
    for n, block in enumerate(re.findall(r"^```ts\n(.*?)^```", (CONTRACT / "README.md").read_text(), re.M | re.S)):
        (project / f"readme_{n}.ts").write_text(block)
    return project
