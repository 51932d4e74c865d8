"""The handlers against a real S3 API (moto server): what ends up in the buckets, and what is logged."""

from __future__ import annotations

import importlib
import io
import json
import sys
from collections.abc import Callable, Mapping
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from PIL import Image

from kiray_imaging.lambda_pipeline import Handler, make_handler

BUCKET = "kiray-test-photos"


def jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(out, "JPEG", quality=90)
    return out.getvalue()


def s3_event(*keys: str, bucket: str = BUCKET) -> dict[str, Any]:
    from urllib.parse import quote_plus

    return {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(k, safe="/"), "size": 100}},
            }
            for k in keys
        ]
    }


def log_lines(captured: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in captured.splitlines() if line.startswith("{")]


@pytest.fixture
def s3(local_aws: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in {
        "SOURCE_BUCKET": BUCKET,
        "DEST_BUCKET": BUCKET,
        "SOURCE_PREFIX": "uploads/",
        "DEST_PREFIX": "renditions/",
        "OUTPUT_FORMAT": "jpeg",
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def handler(s3: Any) -> Callable[[str], Handler]:
    return make_handler


def invoke(h: Handler, event: Mapping[str, Any]) -> dict[str, Any]:
    return h(event, None)


def test_both_handlers_render_into_the_destination_prefix(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    original = jpeg(1600, 1200)
    s3.put_object(Bucket=BUCKET, Key="uploads/l1/front door.JPG", Body=original)
    etag = s3.head_object(Bucket=BUCKET, Key="uploads/l1/front door.JPG")["ETag"].strip('"')
    for module, rendition, size in (
        ("py_handlers.generate_thumbnail", "thumbnail", (400, 300)),
        ("py_handlers.generate_medium", "medium", (1280, 960)),
    ):
        sys.modules.pop(module, None)
        h = importlib.import_module(module).handler
        result = invoke(h, s3_event("uploads/l1/front door.JPG"))
        key = f"renditions/{rendition}/l1/front door.jpg"
        assert result["rendered"] == [key]
        obj = s3.get_object(Bucket=BUCKET, Key=key)
        assert obj["ContentType"] == "image/jpeg"
        assert obj["CacheControl"] == "public, max-age=31536000, immutable"
        assert obj["Metadata"]["source-etag"] == etag
        assert obj["Metadata"]["source-key"] == "uploads/l1/front%20door.JPG"
        assert Image.open(io.BytesIO(obj["Body"].read())).size == size
    # The original upload is untouched.
    assert s3.get_object(Bucket=BUCKET, Key="uploads/l1/front door.JPG")["Body"].read() == original
    rendered = [line for line in log_lines(capsys.readouterr().out) if line["message"] == "rendered"]
    assert {line["rendition"] for line in rendered} == {"thumbnail", "medium"}
    assert set(rendered[0]["ms"]) == {"download", "decode", "colour", "resize", "orient", "encode", "upload"}


def test_bad_image_is_logged_once_and_not_raised(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    s3.put_object(Bucket=BUCKET, Key="uploads/l1/notes.jpg", Body=b"<html>not a photo</html>")
    s3.put_object(Bucket=BUCKET, Key="uploads/l1/good.jpg", Body=jpeg(800, 600))
    result = invoke(make_handler("thumbnail"), s3_event("uploads/l1/notes.jpg", "uploads/l1/good.jpg"))
    # One bad record does not stop the others, and nothing is raised (a retry cannot fix a bad image).
    assert result["failed"] == [{"key": "uploads/l1/notes.jpg", "error_class": "UnsupportedFormatError"}]
    assert result["rendered"] == ["renditions/thumbnail/l1/good.jpg"]
    errors = [line for line in log_lines(capsys.readouterr().out) if line["level"] == "ERROR"]
    assert len(errors) == 1
    assert errors[0] | {"message": ""} == errors[0] | {
        "message": "",
        "bucket": BUCKET,
        "key": "uploads/l1/notes.jpg",
        "error_class": "UnsupportedFormatError",
    }
    assert "HTML" in errors[0]["message"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert sorted(keys) == ["renditions/thumbnail/l1/good.jpg", "uploads/l1/good.jpg", "uploads/l1/notes.jpg"]


def test_destination_prefix_is_never_processed(s3: Any) -> None:
    # Even if a misconfigured trigger delivers it: the recursion guard is in code too.
    s3.put_object(Bucket=BUCKET, Key="renditions/thumbnail/l1/x.jpg", Body=jpeg(800, 600))
    result = invoke(make_handler("thumbnail"), s3_event("renditions/thumbnail/l1/x.jpg"))
    assert result["skipped"] == ["renditions/thumbnail/l1/x.jpg"]
    assert result["rendered"] == []
    assert len(s3.list_objects_v2(Bucket=BUCKET)["Contents"]) == 1


def test_keys_outside_the_source_prefix_and_folder_markers_are_skipped(s3: Any) -> None:
    event = s3_event("other/x.jpg", "uploads/l1/")
    event["Records"].append(s3_event("uploads/empty.jpg")["Records"][0])
    event["Records"][-1]["s3"]["object"]["size"] = 0
    result = invoke(make_handler("medium"), event)
    assert result["skipped"] == ["other/x.jpg", "uploads/l1/", "uploads/empty.jpg"]


def test_object_deleted_before_processing_is_skipped(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    result = invoke(make_handler("thumbnail"), s3_event("uploads/gone.jpg"))
    assert result["skipped"] == ["uploads/gone.jpg"]
    assert any(line.get("reason") == "NoSuchKey" for line in log_lines(capsys.readouterr().out))


def test_oversized_object_is_refused_before_download(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_INPUT_BYTES", "1000")
    s3.put_object(Bucket=BUCKET, Key="uploads/big.jpg", Body=jpeg(800, 600))
    event = s3_event("uploads/big.jpg")
    event["Records"][0]["s3"]["object"]["size"] = 5000
    assert invoke(make_handler("thumbnail"), event)["failed"] == [
        {"key": "uploads/big.jpg", "error_class": "LimitExceededError"}
    ]
    # Without a size in the event, the object's Content-Length is checked before reading the body.
    del event["Records"][0]["s3"]["object"]["size"]
    assert invoke(make_handler("thumbnail"), event)["failed"][0]["error_class"] == "LimitExceededError"


def test_s3_errors_are_raised_so_lambda_retries(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    s3.put_object(Bucket=BUCKET, Key="uploads/a.jpg", Body=jpeg(800, 600))
    monkeypatch.setenv("DEST_BUCKET", "no-such-bucket")
    with pytest.raises(ClientError, match="NoSuchBucket"):
        invoke(make_handler("thumbnail"), s3_event("uploads/a.jpg"))


def test_malformed_event_is_logged_not_retried(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    result = invoke(make_handler("thumbnail"), {"hello": "world"})
    assert result["failed"] == [{"error_class": "EventShapeError"}]
    assert any(line.get("error_class") == "EventShapeError" for line in log_lines(capsys.readouterr().out))


def test_retry_is_idempotent(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="uploads/a.jpg", Body=jpeg(900, 700))
    h = make_handler("thumbnail")
    invoke(h, s3_event("uploads/a.jpg"))
    first = s3.get_object(Bucket=BUCKET, Key="renditions/thumbnail/a.jpg")["Body"].read()
    invoke(h, s3_event("uploads/a.jpg"))
    assert s3.get_object(Bucket=BUCKET, Key="renditions/thumbnail/a.jpg")["Body"].read() == first
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 2
