"""The rehearsal run once as `make rehearse` runs it; its package is then reused by the tests that break things."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.rehearse.rehearse_helpers import PACKAGE, ROOT, TEMPLATE, Run, rehearse
else:
    from rehearse_helpers import PACKAGE, ROOT, TEMPLATE, Run, rehearse


@pytest.fixture(scope="session")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The whole rehearsal, packaging included: both functions, every production event, the bucket checked."""
    return rehearse(tmp=tmp_path_factory.mktemp("rehearsal"))


@pytest.fixture(scope="session")
def package(rehearsal: Run) -> Path:
    """What `sls package` wrote for the rehearsal above."""
    assert (PACKAGE / TEMPLATE).is_file(), rehearsal.output[-3000:]
    return PACKAGE


@pytest.fixture(scope="session")
def layer_zip(package: Path) -> Path:
    return ROOT / "layer" / "dist" / "kiray-imaging-layer.zip"
