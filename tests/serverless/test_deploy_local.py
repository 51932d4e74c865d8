"""`make deploy-local` as a test: sls deploy to moto, check the stack's functions, layer and role, sls remove."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_deploy_and_remove_against_moto() -> None:
    result = subprocess.run([sys.executable, "scripts/deploy_local.py"], cwd=ROOT, capture_output=True, text=True,
                            timeout=900)  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "deploy-local: ok" in output
    assert "deploy-local: function kiray-imaging-dev-generate-thumbnail: python3.12" in output
    assert "deploy-local: layer " in output
    # The existing bucket's rehearsal: no bucket of the stack's own, and the bucket kept its own settings.
    assert "deploy-local: createBucket=false: the stack's buckets ['ServerlessDeploymentBucket']" in output
    assert "queue notifications ['exports'], rules ['theirs', 'kiray-imaging-tombstones']" in output
