"""The layer zip as Lambda mounts it: /opt/python first on sys.path, the runtime's boto3 after it, our handler file
in the function. Everything the handler imports besides boto3 must come from the zip, or it breaks only in AWS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[2]
LAYER_ZIP = ROOT / "layer" / "dist" / "kiray-imaging-layer.zip"

_CHILD = r"""
import json, sys
layer, runtime, task = sys.argv[1:4]
# Lambda's order: the function's code, the layers' python/, then the runtime's own packages (boto3).
sys.path[:0] = [task, layer]
sys.path.append(runtime)
import generate_thumbnail, aws_lambda_powertools, jmespath, typing_extensions, kiray_imaging
print(json.dumps({name: sys.modules[name].__file__ for name in
                  ("kiray_imaging", "aws_lambda_powertools", "jmespath", "typing_extensions", "boto3")}))
"""


def test_the_handler_imports_from_the_layer_alone(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "layer/build.py"], cwd=ROOT, check=True, capture_output=True)
    opt = tmp_path / "opt"
    with zipfile.ZipFile(LAYER_ZIP) as z:
        z.extractall(opt)
    task = tmp_path / "task"
    task.mkdir()
    (task / "generate_thumbnail.py").write_bytes((ROOT / "py_handlers" / "generate_thumbnail.py").read_bytes())
    # The runtime's packages: boto3 and its dependencies, nothing else of .venv (which also has Powertools).
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    site = Path(boto3.__file__).parent.parent
    for name in ("boto3", "botocore", "s3transfer", "dateutil", "urllib3", "six.py"):
        (runtime / name).symlink_to(site / name)
    env = {"PATH": os.environ["PATH"], "SOURCE_BUCKET": "photos", "DEST_BUCKET": "photos",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _CHILD, str(opt / "python"), str(runtime), str(task)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    origins = json.loads(lines[-1])
    for name in ("kiray_imaging", "aws_lambda_powertools", "jmespath", "typing_extensions"):
        assert origins[name].startswith(str(opt / "python")), (name, origins[name])
    assert origins["boto3"].startswith(str(runtime))
    cold_start = json.loads(next(line for line in lines if '"cold start"' in line))
    assert cold_start["service"] == "kiray-imaging"
