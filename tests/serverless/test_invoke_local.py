"""`sls invoke local` end to end: osls runs python3 from the project's .venv (set by our plugin), the real handler
reads from and writes to S3 (moto), with an S3-notification event (the other production shape is in the demo)."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path
from typing import Any

import boto3
from PIL import Image
from scripts.local_aws import aws_env

from kiray_imaging.output_keys import version_token

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "kiray-invoke-local"


def test_invoke_local_renders_through_the_real_handler(moto_endpoint: str, tmp_path: Path) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket=BUCKET)
    photo = io.BytesIO()
    Image.new("RGB", (3000, 2000), (200, 60, 40)).save(photo, "JPEG", quality=90)
    s3.put_object(Bucket=BUCKET, Key="uploads/l9/balcony view.jpg", Body=photo.getvalue())
    event: dict[str, Any] = json.loads((ROOT / "tests" / "events" / "s3_notification_two_records.json").read_text())
    record = event["Records"][0]
    record["s3"]["bucket"]["name"] = BUCKET
    record["s3"]["object"].update(key="uploads/l9/balcony+view.jpg", size=len(photo.getvalue()))
    event["Records"] = [record]
    event_path = tmp_path / "event.json"
    event_path.write_text(json.dumps(event))

    env = aws_env(moto_endpoint)
    env.pop("VIRTUAL_ENV", None)  # the plugin must find .venv by itself
    command = ["npx", "--no-install", "sls", "invoke", "local", "-f", "generate-medium", "-p", str(event_path),
               f"--param=photosBucket={BUCKET}"]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    logs = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"level"')]
    rendered = [line for line in logs if line["message"] == "rendered"]
    # serverless.yml asks the medium for JPEG and WebP, both from one decode.
    assert sorted(line["output_format"] for line in rendered) == ["jpeg", "webp"], result.stdout[-3000:]
    assert {line["key"] for line in rendered} == {"uploads/l9/balcony view.jpg"}
    token = version_token(s3.head_object(Bucket=BUCKET, Key="uploads/l9/balcony view.jpg")["ETag"])
    for ext, fmt in (("jpg", "JPEG"), ("webp", "WEBP")):
        key = f"renditions/medium/l9/balcony view.jpg/{token}.{ext}"
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        image = Image.open(io.BytesIO(body))
        assert (image.format, image.size) == (fmt, (1280, 853))
