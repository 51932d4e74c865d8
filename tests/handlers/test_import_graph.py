"""What a function imports is what it runs: a handler's cold import, in a fresh interpreter, loads exactly the
kiray_imaging modules of RUNTIME_MODULES, and none of the build tooling, the AWS SDK or pyelftools.

RUNTIME_MODULES is the one list to change when the runtime's own modules change (a split of lambda_pipeline.py
adds its parts there). A module that shows up in a handler's import graph without being added there on purpose,
or one that is no longer imported, fails this test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Both functions import the same graph: each names its preset and calls the shared pipeline.
RUNTIME_MODULES = frozenset(
    {
        "kiray_imaging",
        "kiray_imaging._core",
        "kiray_imaging.aws_http",
        "kiray_imaging.batch_operations",
        "kiray_imaging.config",
        "kiray_imaging.events",
        "kiray_imaging.failures",
        "kiray_imaging.lambda_pipeline",
        "kiray_imaging.lifecycle",
        "kiray_imaging.logs",
        "kiray_imaging.metrics",
        "kiray_imaging.names",
        "kiray_imaging.outcomes",
        "kiray_imaging.output_keys",
        "kiray_imaging.presets",
        "kiray_imaging.process",
        "kiray_imaging.rendering",
        "kiray_imaging.rendition_state",
        "kiray_imaging.rendition_writes",
        "kiray_imaging.report",
        "kiray_imaging.s3_client",
        "kiray_imaging.s3_events",
    }
)
# Never loaded by a function: the build tooling (left out of the layer), pyelftools (never in it), and the AWS SDK,
# which the functions do not use (s3_client.py signs S3 requests with the standard library). The bare `botocore`
# package is allowed: Powertools probes for it (aws_lambda_powertools/shared/user_agent.py) to add its user agent
# where an SDK is present, as Lambda's runtime is; none of the SDK below that package is loaded.
FORBIDDEN = ("kiray_imaging.tooling", "elftools", "boto3", "botocore.", "s3transfer")

_CHILD = """
import importlib, json, sys
sys.path.insert(0, sys.argv[1])
importlib.import_module(sys.argv[2])
print("modules:" + json.dumps(sorted(sys.modules)))
"""


def _modules_after_importing(handler: str) -> set[str]:
    env = {"PATH": os.environ["PATH"], "SOURCE_BUCKET": "photos", "DEST_BUCKET": "photos"}
    result = subprocess.run(
        [sys.executable, "-I", "-c", _CHILD, str(ROOT), handler], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("modules:")]
    return set(json.loads(line.removeprefix("modules:")))


@pytest.mark.parametrize("handler", ["py_handlers.generate_thumbnail", "py_handlers.generate_medium"])
def test_a_handler_imports_only_what_it_runs(handler: str) -> None:
    modules = _modules_after_importing(handler)
    ours = {m for m in modules if m == "kiray_imaging" or m.startswith("kiray_imaging.")}
    assert ours == RUNTIME_MODULES, {
        "not expected": sorted(ours - RUNTIME_MODULES),
        "missing": sorted(RUNTIME_MODULES - ours),
    }
    forbidden = sorted(m for m in modules if m.startswith(FORBIDDEN))
    assert forbidden == []
