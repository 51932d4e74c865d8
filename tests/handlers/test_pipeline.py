"""The handlers against a real S3 API (moto server): what ends up in the buckets, and what is logged."""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
from PIL import Image

from kiray_imaging.lambda_pipeline import Handler, make_handler
from kiray_imaging.output_keys import version_token
from kiray_imaging.rendition_writes import source_metadata
from kiray_imaging.s3_client import S3Error

if TYPE_CHECKING:
    from tests.handlers.s3_helpers import (
        BUCKET,
        event,
        invoke,
        jpeg,
        keys,
        log_lines,
        s3_event,
        upload,
    )
else:
    from s3_helpers import BUCKET, event, invoke, jpeg, keys, log_lines, s3_event, upload


@pytest.fixture
def handler(s3: Any) -> Callable[[str], Handler]:
    return make_handler


def test_both_handlers_render_into_the_destination_prefix(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    original = jpeg(1600, 1200)
    s3.put_object(Bucket=BUCKET, Key="uploads/l1/front door.JPG", Body=original)
    etag = s3.head_object(Bucket=BUCKET, Key="uploads/l1/front door.JPG")["ETag"].strip('"')
    for module, rendition, sizes in (
        ("py_handlers.generate_thumbnail", "thumbnail", {"": (400, 300), "@2x": (800, 600)}),
        ("py_handlers.generate_medium", "medium", {"": (1280, 960)}),
    ):
        sys.modules.pop(module, None)
        h = importlib.import_module(module).handler
        result = invoke(h, s3_event("uploads/l1/front door.JPG"))
        # The whole upload key (extension included) names the folder, the version's ETag the file; the thumbnail's
        # 2x file sits beside it.
        made = {f"renditions/{rendition}/l1/front door.JPG/{etag[:16]}{x}.jpg": size for x, size in sizes.items()}
        assert result["rendered"] == list(made)
        for key, size in made.items():
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
    s3.put_object(Bucket=BUCKET, Key="uploads/l1/good.jpg", Body=jpeg(640, 480))
    result = invoke(make_handler("thumbnail"), s3_event("uploads/l1/notes.jpg", "uploads/l1/good.jpg"))
    # One bad record does not stop the others, and nothing is raised (a retry cannot fix a bad image).
    assert result["failed"] == [{"key": "uploads/l1/notes.jpg", "error_class": "UnsupportedFormatError"}]
    good = rendition_of(s3, "uploads/l1/good.jpg")
    assert result["rendered"] == [good]
    errors = [line for line in log_lines(capsys.readouterr().out) if line["level"] == "ERROR"]
    assert len(errors) == 1
    assert errors[0] | {"message": ""} == errors[0] | {
        "message": "",
        "bucket": BUCKET,
        "key": "uploads/l1/notes.jpg",
        "error_class": "UnsupportedFormatError",
    }
    assert "HTML" in errors[0]["message"]
    # The bad upload's state says why it has no renditions (a page can show it); the good one's names its file.
    notes_state = "renditions/thumbnail/l1/notes.jpg/current.json"
    assert keys(s3) == sorted(
        [good, "renditions/thumbnail/l1/good.jpg/current.json", notes_state, "uploads/l1/good.jpg",
         "uploads/l1/notes.jpg"]
    )  # fmt: skip
    state = json.loads(s3.get_object(Bucket=BUCKET, Key=notes_state)["Body"].read())
    assert (state["state"], state["error"]["class"], state["files"]) == ("failed", "UnsupportedFormatError", [])


def test_destination_prefix_is_never_processed(s3: Any) -> None:
    # Even if a misconfigured trigger delivers it: the recursion guard is in code too.
    s3.put_object(Bucket=BUCKET, Key="renditions/thumbnail/l1/x.jpg", Body=jpeg(640, 480))
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
    assert any(line.get("reason") == "deleted" for line in log_lines(capsys.readouterr().out))


def test_oversized_object_is_refused_before_download(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_INPUT_BYTES", "1000")
    s3.put_object(Bucket=BUCKET, Key="uploads/big.jpg", Body=jpeg(640, 480))
    event = s3_event("uploads/big.jpg")
    event["Records"][0]["s3"]["object"]["size"] = 5000
    assert invoke(make_handler("thumbnail"), event)["failed"] == [
        {"key": "uploads/big.jpg", "error_class": "LimitExceededError"}
    ]
    # Without a size in the event, the object's Content-Length is checked before reading the body.
    del event["Records"][0]["s3"]["object"]["size"]
    assert invoke(make_handler("thumbnail"), event)["failed"][0]["error_class"] == "LimitExceededError"


def test_s3_errors_are_raised_so_lambda_retries(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    s3.put_object(Bucket=BUCKET, Key="uploads/a.jpg", Body=jpeg(640, 480))
    monkeypatch.setenv("DEST_BUCKET", "no-such-bucket")
    with pytest.raises(S3Error, match="NoSuchBucket"):
        invoke(make_handler("thumbnail"), s3_event("uploads/a.jpg"))


def test_malformed_event_is_logged_not_retried(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    result = invoke(make_handler("thumbnail"), {"hello": "world"})
    assert result["failed"] == [{"error_class": "EventShapeError"}]
    assert any(line.get("error_class") == "EventShapeError" for line in log_lines(capsys.readouterr().out))


def test_retry_is_idempotent(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="uploads/a.jpg", Body=jpeg(700, 500))
    h = make_handler("thumbnail")
    invoke(h, s3_event("uploads/a.jpg"))
    out = rendition_of(s3, "uploads/a.jpg")
    first = s3.get_object(Bucket=BUCKET, Key=out)["Body"].read()
    invoke(h, s3_event("uploads/a.jpg"))
    assert s3.get_object(Bucket=BUCKET, Key=out)["Body"].read() == first
    assert keys(s3) == sorted(["renditions/thumbnail/a.jpg/current.json", out, "uploads/a.jpg"])


# --- Keys as uploaders name them -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "front door.jpg",  # a space arrives as "+"
        "1+1=2.jpg",  # a literal "+" arrives as "%2B"
        "50% off.jpg",  # a literal "%" arrives as "%25"
        "küche – 東京 🏠.jpg",  # UTF-8, percent-encoded
        "a %2B b+c.jpg",  # what looks encoded but is not
    ],
)
def test_awkward_keys_are_decoded_once_and_kept(s3: Any, name: str) -> None:
    key = f"uploads/l1/{name}"
    record = upload(s3, key, jpeg(640, 480))
    result = invoke(make_handler("thumbnail"), event(record))
    expected = f"renditions/thumbnail/l1/{name}/{record['s3']['object']['eTag'][:16]}.jpg"
    assert result["rendered"] == [expected]
    assert keys(s3, "renditions/") == sorted([f"renditions/thumbnail/l1/{name}/current.json", expected])
    assert s3.head_object(Bucket=BUCKET, Key=expected)["Metadata"]["source-key"] == quote(key, safe="/")


def test_a_key_near_the_1024_byte_limit_gets_a_hashed_deterministic_rendition_key(s3: Any) -> None:
    # uploads/ + 1016 bytes: the longest key S3 allows. renditions/thumbnail/ is longer than uploads/, so the
    # rendition key would be 1035 bytes, which S3 refuses (moto does not enforce the limit: checked here).
    name = ("ü" * 600)[: (1016 - len(".jpg")) // 2] + ".jpg"
    key = "uploads/" + name
    assert len(key.encode()) == 1024
    record = upload(s3, key, jpeg(640, 480))
    h = make_handler("thumbnail")
    (first,) = invoke(h, event(record))["rendered"]
    (again,) = invoke(h, event(record))["rendered"]
    assert first == again
    folder = first.rsplit("/", 1)[0]
    assert keys(s3, "renditions/") == sorted([f"{folder}/current.json", first])
    assert len(first.encode()) <= 1024
    assert len(f"{folder}/current.json".encode()) <= 1024
    assert first.startswith("renditions/thumbnail/üüü")
    assert folder.endswith("-" + hashlib.sha256(name.encode()).hexdigest())
    # Its metadata fits S3's 2 KB (percent-encoded, this key alone would be 6 KB): the key is stored as its hash.
    metadata = s3.head_object(Bucket=BUCKET, Key=first)["Metadata"]
    assert sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items()) <= 2048
    assert metadata["source-key-sha256"] == hashlib.sha256(key.encode()).hexdigest()


def test_metadata_stays_under_2_kb_for_every_key_s3_accepts() -> None:
    for key in ("uploads/" + "%" * 1016, "uploads/" + "ü" * 508, "uploads/" + "a" * 1016, "uploads/a.jpg"):
        metadata = source_metadata(key, "d41d8cd98f00b204e9800998ecf8427e-10000")
        assert sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items()) <= 2048, key


def rendition_of(s3: Any, upload_key: str, rendition: str = "thumbnail", ext: str = ".jpg") -> str:
    """The key of the current version's rendition of ``upload_key``, from the upload's ETag."""
    etag = s3.head_object(Bucket=BUCKET, Key=upload_key)["ETag"]
    return f"renditions/{rendition}/{upload_key.removeprefix('uploads/')}/{version_token(etag)}{ext}"
