"""The handlers against a real S3 API (moto server): what ends up in the buckets, and what is logged."""

from __future__ import annotations

import hashlib
import importlib
import io
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
from PIL import Image

from kiray_imaging import lambda_pipeline
from kiray_imaging.lambda_pipeline import Handler, make_handler, newer_rendition_exists, rendition_metadata
from kiray_imaging.s3_client import S3Error
from kiray_imaging.s3_events import S3Object

if TYPE_CHECKING:
    from tests.handlers.s3_helpers import (
        BUCKET,
        HookedS3,
        event,
        invoke,
        jpeg,
        keys,
        log_lines,
        next_sequencer,
        s3_event,
        upload,
    )
else:
    from s3_helpers import BUCKET, HookedS3, event, invoke, jpeg, keys, log_lines, next_sequencer, s3_event, upload


@pytest.fixture
def handler(s3: Any) -> Callable[[str], Handler]:
    return make_handler


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
    with pytest.raises(S3Error, match="NoSuchBucket"):
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
    result = invoke(make_handler("thumbnail"), event(upload(s3, key, jpeg(800, 600))))
    expected = "renditions/thumbnail/l1/" + name.rsplit(".", 1)[0] + ".jpg"
    assert result["rendered"] == [expected]
    assert keys(s3, "renditions/") == [expected]
    assert s3.head_object(Bucket=BUCKET, Key=expected)["Metadata"]["source-key"] == quote(key, safe="/")


def test_a_key_near_the_1024_byte_limit_gets_a_hashed_deterministic_rendition_key(s3: Any) -> None:
    # uploads/ + 1016 bytes: the longest key S3 allows. renditions/thumbnail/ is longer than uploads/, so the
    # rendition key would be 1035 bytes, which S3 refuses (moto does not enforce the limit: checked here).
    name = ("ü" * 600)[: (1016 - len(".jpg")) // 2] + ".jpg"
    key = "uploads/" + name
    assert len(key.encode()) == 1024
    record = upload(s3, key, jpeg(800, 600))
    h = make_handler("thumbnail")
    (first,) = invoke(h, event(record))["rendered"]
    (again,) = invoke(h, event(record))["rendered"]
    assert first == again
    assert keys(s3, "renditions/") == [first]
    assert len(first.encode()) <= 1024
    assert first.startswith("renditions/thumbnail/üüü")
    assert first.endswith("-" + hashlib.sha256(name.encode()).hexdigest() + ".jpg")
    # Its metadata fits S3's 2 KB (percent-encoded, this key alone would be 6 KB): the key is stored as its hash.
    metadata = s3.head_object(Bucket=BUCKET, Key=first)["Metadata"]
    assert sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items()) <= 2048
    assert metadata["source-key-sha256"] == hashlib.sha256(key.encode()).hexdigest()


def test_metadata_stays_under_2_kb_for_every_key_s3_accepts() -> None:
    for key in ("uploads/" + "%" * 1016, "uploads/" + "ü" * 508, "uploads/" + "a" * 1016, "uploads/a.jpg"):
        obj = S3Object(BUCKET, key, 1, "d41d8cd98f00b204e9800998ecf8427e-10000", "F" * 64)
        metadata = rendition_metadata(obj, obj.etag or "")
        assert sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items()) <= 2048, key


# --- Duplicates, order and stale events --------------------------------------------------------------------------


def test_duplicate_delivery_is_idempotent(s3: Any) -> None:
    record = upload(s3, "uploads/l1/a.jpg", jpeg(900, 700))
    h = make_handler("thumbnail")
    invoke(h, event(record))
    first = s3.get_object(Bucket=BUCKET, Key="renditions/thumbnail/l1/a.jpg")
    body = first["Body"].read()
    assert first["Metadata"]["source-etag"] == record["s3"]["object"]["eTag"]
    assert first["Metadata"]["source-sequencer"] == record["s3"]["object"]["sequencer"]
    assert invoke(h, event(record, record))["rendered"] == ["renditions/thumbnail/l1/a.jpg"] * 2
    assert s3.get_object(Bucket=BUCKET, Key="renditions/thumbnail/l1/a.jpg")["Body"].read() == body
    assert keys(s3) == ["renditions/thumbnail/l1/a.jpg", "uploads/l1/a.jpg"]


def test_an_event_for_a_replaced_object_is_superseded(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # The event names one version (its ETag); the object was replaced since: the newer upload has its own event.
    old = upload(s3, "uploads/l1/a.jpg", jpeg(900, 700, (200, 0, 0)))
    new = upload(s3, "uploads/l1/a.jpg", jpeg(900, 700, (0, 200, 0)))
    h = make_handler("thumbnail")
    assert invoke(h, event(old)) == {"rendition": "thumbnail", "rendered": [], "skipped": ["uploads/l1/a.jpg"],
                                     "failed": []}  # fmt: skip
    assert keys(s3, "renditions/") == []
    assert [line["reason"] for line in log_lines(capsys.readouterr().out) if "reason" in line] == ["superseded"]
    # In either order: the newer event renders, the older one (delivered late, or retried) never overwrites it.
    invoke(h, event(new))
    rendered = s3.get_object(Bucket=BUCKET, Key="renditions/thumbnail/l1/a.jpg")["Body"].read()
    assert invoke(h, event(old))["skipped"] == ["uploads/l1/a.jpg"]
    assert s3.get_object(Bucket=BUCKET, Key="renditions/thumbnail/l1/a.jpg")["Body"].read() == rendered
    assert green(rendered)


def test_an_older_event_never_overwrites_a_newer_rendition(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # The same bytes uploaded twice: one ETag, two events. The later one is rendered first, then the earlier one
    # arrives (S3 does not deliver in order); its read succeeds (same ETag) but the rendition is newer: skip.
    body = jpeg(900, 700)
    earlier = upload(s3, "uploads/l1/a.jpg", body)
    later = upload(s3, "uploads/l1/a.jpg", body)
    h = make_handler("thumbnail")
    invoke(h, event(later))
    before = s3.head_object(Bucket=BUCKET, Key="renditions/thumbnail/l1/a.jpg")
    assert invoke(h, event(earlier))["skipped"] == ["uploads/l1/a.jpg"]
    after = s3.head_object(Bucket=BUCKET, Key="renditions/thumbnail/l1/a.jpg")
    assert after["Metadata"]["source-sequencer"] == later["s3"]["object"]["sequencer"]
    assert (after["ETag"], after["LastModified"]) == (before["ETag"], before["LastModified"])
    logged = [line for line in log_lines(capsys.readouterr().out) if line.get("reason") == "superseded"]
    assert logged[0]["output_key"] == "renditions/thumbnail/l1/a.jpg"
    # And the other way round, the later event replaces the earlier one's rendition.
    s3.delete_object(Bucket=BUCKET, Key="renditions/thumbnail/l1/a.jpg")
    invoke(h, event(earlier))
    invoke(h, event(later))
    metadata = s3.head_object(Bucket=BUCKET, Key="renditions/thumbnail/l1/a.jpg")["Metadata"]
    assert metadata["source-sequencer"] == later["s3"]["object"]["sequencer"]


def test_a_newer_rendition_written_while_rendering_wins(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Another invocation (a later upload of the same key) writes its rendition between our check and our write:
    # the conditional write notices, looks again, and leaves the newer rendition alone.
    earlier = upload(s3, "uploads/l1/a.jpg", jpeg(900, 700, (200, 0, 0)))
    later_sequencer = next_sequencer()
    newer = b"the later upload's rendition"
    out_key = "renditions/thumbnail/l1/a.jpg"

    metadata = {"source-key": "uploads/l1/a.jpg", "source-sequencer": later_sequencer, "source-etag": "x"}

    def other_writer(kwargs: dict[str, Any]) -> None:
        if not s3.list_objects_v2(Bucket=BUCKET, Prefix=out_key).get("KeyCount"):
            s3.put_object(Bucket=BUCKET, Key=out_key, Body=newer, Metadata=metadata)

    hooked = HookedS3({("put_object", out_key): other_writer})
    monkeypatch.setattr(lambda_pipeline, "s3_client", lambda: hooked)
    assert invoke(make_handler("thumbnail"), event(earlier))["skipped"] == ["uploads/l1/a.jpg"]
    assert s3.get_object(Bucket=BUCKET, Key=out_key)["Body"].read() == newer
    assert [name for name, _ in hooked.calls] == ["get_object", "put_object", "head_object"]


def test_an_older_rendition_written_while_rendering_is_replaced(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    older_sequencer = next_sequencer()
    later = upload(s3, "uploads/l1/a.jpg", jpeg(900, 700, (0, 200, 0)))
    out_key = "renditions/thumbnail/l1/a.jpg"

    metadata = {"source-key": "uploads/l1/a.jpg", "source-sequencer": older_sequencer, "source-etag": "x"}

    def other_writer(kwargs: dict[str, Any]) -> None:
        if not s3.list_objects_v2(Bucket=BUCKET, Prefix=out_key).get("KeyCount"):
            s3.put_object(Bucket=BUCKET, Key=out_key, Body=b"older", Metadata=metadata)

    monkeypatch.setattr(lambda_pipeline, "s3_client", lambda: HookedS3({("put_object", out_key): other_writer}))
    assert invoke(make_handler("thumbnail"), event(later))["rendered"] == [out_key]
    assert green(s3.get_object(Bucket=BUCKET, Key=out_key)["Body"].read())


def test_sequencers_of_other_source_keys_are_not_compared() -> None:
    # uploads/a.jpg and uploads/a.png share renditions/…/a.jpg; their sequencers say nothing about each other.
    ours = {"source-key": "uploads/a.jpg", "source-sequencer": "0001"}
    assert newer_rendition_exists({"source-key": "uploads/a.jpg", "source-sequencer": "0002"}, ours)
    assert not newer_rendition_exists({"source-key": "uploads/a.png", "source-sequencer": "0002"}, ours)
    assert not newer_rendition_exists({"source-key": "uploads/a.jpg", "source-sequencer": "0001"}, ours)
    assert not newer_rendition_exists({"source-key": "uploads/a.jpg"}, ours)  # written before sequencers were kept
    assert not newer_rendition_exists({"source-key": "uploads/a.jpg", "source-sequencer": "0002"},
                                      {"source-key": "uploads/a.jpg"})  # fmt: skip


def green(body: bytes) -> bool:
    r, g, _ = Image.open(io.BytesIO(body)).convert("RGB").getpixel((10, 10))  # type: ignore[misc]
    return bool(g > 150 and r < 60)


def test_a_newer_rendition_written_between_check_and_replace_wins(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # The rendition of an old upload is there; ours is newer, so we replace it, but only the version we checked:
    # a still newer rendition written in between is not overwritten.
    out_key = "renditions/thumbnail/l1/a.jpg"
    invoke(make_handler("thumbnail"), event(upload(s3, "uploads/l1/a.jpg", jpeg(900, 700, (200, 0, 0)))))
    ours = upload(s3, "uploads/l1/a.jpg", jpeg(900, 700, (0, 200, 0)))
    newest = {"source-key": "uploads/l1/a.jpg", "source-sequencer": next_sequencer(), "source-etag": "x"}

    def other_writer(kwargs: dict[str, Any]) -> None:
        if "IfMatch" in kwargs:
            s3.put_object(Bucket=BUCKET, Key=out_key, Body=b"newest", Metadata=newest)

    monkeypatch.setattr(lambda_pipeline, "s3_client", lambda: HookedS3({("put_object", out_key): other_writer}))
    assert invoke(make_handler("thumbnail"), event(ours))["skipped"] == ["uploads/l1/a.jpg"]
    assert s3.get_object(Bucket=BUCKET, Key=out_key)["Body"].read() == b"newest"


def test_a_rendition_that_keeps_changing_is_retried_by_lambda(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Bounded: after a few lost races the error is raised (transient), and Lambda retries the event later.
    out_key = "renditions/thumbnail/l1/a.jpg"
    ours = upload(s3, "uploads/l1/a.jpg", jpeg(900, 700))
    writes = iter(range(100))

    def other_writer(kwargs: dict[str, Any]) -> None:
        s3.put_object(Bucket=BUCKET, Key=out_key, Body=f"older {next(writes)}".encode(), Metadata={"source-etag": "x"})

    monkeypatch.setattr(lambda_pipeline, "s3_client", lambda: HookedS3({("put_object", out_key): other_writer}))
    with pytest.raises(lambda_pipeline.RenditionWriteConflictError):
        invoke(make_handler("thumbnail"), event(ours))
    assert next(writes) == 6  # 3 rounds of create-or-replace, each lost
