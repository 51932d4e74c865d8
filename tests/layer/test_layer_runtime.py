"""The layer zip as Lambda mounts it: /opt/python first on sys.path, the runtime's boto3 after it, our handler file
in the function. Everything the handler imports must come from the zip, or it breaks only in AWS; it does not use
the runtime's boto3 at all (its own S3 client signs requests with the standard library).
The handler runs for real there (against moto): a photo, a bad upload and a malformed event, so every logging and
metrics path of Powertools runs from the layer, which leaves out the parts of Powertools we do not use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from kiray_imaging.output_keys import version_token

if TYPE_CHECKING:
    from tests import images
else:
    import images

ROOT = Path(__file__).resolve().parents[2]
LAYER_ZIP = ROOT / "layer" / "dist" / "kiray-imaging-layer.zip"

_CHILD = r"""
import json, sys
layer, runtime, task = sys.argv[1:4]
# Lambda's order: the function's code, the layers' python/, then the runtime's own packages (boto3).
sys.path[:0] = [task, layer]
sys.path.append(runtime)
import generate_thumbnail, aws_lambda_powertools, jmespath, typing_extensions, kiray_imaging
print("result:" + json.dumps(generate_thumbnail.handler(json.loads(sys.argv[4]), None)))
print("result:" + json.dumps(generate_thumbnail.handler({"not": "an S3 event"}, None)))
origins = {name: sys.modules[name].__file__ for name in
           ("kiray_imaging", "aws_lambda_powertools", "jmespath", "typing_extensions")}
print(json.dumps({**origins, "runtime": sorted({m.split(".")[0] for m in sys.modules if m.startswith(
    ("boto3", "botocore.", "s3transfer", "urllib3"))})}))
"""


def _s3_event(bucket: str, *keys: str) -> dict[str, Any]:
    return {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                         "s3": {"bucket": {"name": bucket}, "object": {"key": key}}} for key in keys]}  # fmt: skip


def test_the_handler_runs_from_the_layer_alone(tmp_path: Path, local_aws: str) -> None:
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
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="photos")
    s3.put_object(
        Bucket="photos", Key="uploads/1/room.jpg", Body=images.encode(images.arrow_picture((640, 480)), "JPEG")
    )
    s3.put_object(Bucket="photos", Key="uploads/1/broken.jpg", Body=b"\xff\xd8\xff not really a JPEG")
    event = _s3_event("photos", "uploads/1/room.jpg", "uploads/1/broken.jpg")
    # EVENT_BUS_NAME: the events for the backend go out too, through the layer's own EventBridge client.
    env = {"PATH": os.environ["PATH"], "SOURCE_BUCKET": "photos", "DEST_BUCKET": "photos", "EVENT_BUS_NAME": "default"}
    env |= {k: v for k, v in os.environ.items() if k.startswith("AWS_")}  # moto's endpoint and fake credentials
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _CHILD, str(opt / "python"), str(runtime), str(task), json.dumps(event)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    origins = json.loads(lines[-1])
    for name in ("kiray_imaging", "aws_lambda_powertools", "jmespath", "typing_extensions"):
        assert origins[name].startswith(str(opt / "python")), (name, origins[name])
    assert origins["runtime"] == []
    cold_start = json.loads(next(line for line in lines if '"cold start"' in line))
    assert cold_start["service"] == "kiray-imaging"
    photo, malformed = (json.loads(line.removeprefix("result:")) for line in lines if line.startswith("result:"))
    token = version_token(s3.head_object(Bucket="photos", Key="uploads/1/room.jpg")["ETag"])
    rendered = f"renditions/thumbnail/1/room.jpg/{token}.jpg"
    assert photo["rendered"] == [rendered]
    assert [f["key"] for f in photo["failed"]] == ["uploads/1/broken.jpg"]
    assert malformed["failed"] == [{"error_class": "EventShapeError"}]
    assert s3.head_object(Bucket="photos", Key=rendered)["ContentLength"] > 0
    documents = [json.loads(line) for line in lines if line.startswith("{")]
    errors = [d for d in documents if d.get("level") == "ERROR"]
    assert {e.get("error_class") for e in errors} >= {"DecodeError", "EventShapeError"}, errors
    emf = [d for d in documents if "_aws" in d]
    assert {m["Name"] for d in emf for m in d["_aws"]["CloudWatchMetrics"][0]["Metrics"]} >= {
        "RenditionsMade", "DecodeMs", "Failures"}  # fmt: skip
