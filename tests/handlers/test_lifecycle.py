"""A photo's whole life through both functions against moto: uploaded, replaced, deleted, and every event late,
twice or out of order. What must hold: only the current version's renditions exist, under keys that name it; a
deleted upload leaves no rendition; nothing a late event does undoes a newer one."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from PIL import Image

from kiray_imaging import lambda_pipeline
from kiray_imaging.lambda_pipeline import Handler, make_handler

if TYPE_CHECKING:
    from tests.handlers.s3_helpers import (
        BUCKET,
        HookedS3,
        client_error,
        delete,
        delete_record,
        event,
        files,
        invoke,
        jpeg,
        keys,
        log_lines,
        next_sequencer,
        raises,
        state_key,
        state_of,
        upload,
        version_key,
    )
else:
    from s3_helpers import (
        BUCKET,
        HookedS3,
        client_error,
        delete,
        delete_record,
        event,
        files,
        invoke,
        jpeg,
        keys,
        log_lines,
        next_sequencer,
        raises,
        state_key,
        state_of,
        upload,
        version_key,
    )

KEY = "uploads/l7/front.jpg"
RED, GREEN, BLUE = (200, 0, 0), (0, 200, 0), (0, 0, 200)
Functions = dict[str, Handler]


def deliver(functions: Functions, *records: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The event to both functions (each has its own EventBridge rule), as Lambda would."""
    return {name: invoke(h, event(*records)) for name, h in functions.items()}


def renditions_of(s3: Any, upload_key: str, etag: str = "", *, two_x: bool = False) -> list[str]:
    """Every file both functions write for one version of ``upload_key``; ``two_x``: the photo fills 800x600, so
    the thumbnail has its @2x file too."""
    thumbnails = [".jpg", "@2x.jpg"] if two_x else [".jpg"]
    return sorted(
        [version_key(s3, upload_key, "thumbnail", ext, etag) for ext in thumbnails]
        + [version_key(s3, upload_key, "medium", ext, etag) for ext in (".jpg", ".webp")]
    )


def colour(s3: Any, key: str) -> tuple[int, int, int]:
    pixel = Image.open(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())).convert("RGB")
    r, g, b = pixel.getpixel((5, 5))  # type: ignore[misc]
    return int(r), int(g), int(b)


def is_(rgb: tuple[int, int, int]) -> Callable[[tuple[int, int, int]], bool]:
    return lambda got: all(abs(a - b) < 40 for a, b in zip(got, rgb))


def etag(record: dict[str, Any]) -> str:
    return str(record["s3"]["object"]["eTag"])


# --- Replace --------------------------------------------------------------------------------------------------------


def test_a_replaced_upload_gets_new_keys_and_the_old_ones_go(s3: Any, functions: Functions) -> None:
    first = upload(s3, KEY, jpeg(1600, 1200, RED))
    deliver(functions, first)
    old = renditions_of(s3, KEY, two_x=True)
    assert files(s3) == old
    second = upload(s3, KEY, jpeg(1600, 1200, GREEN))
    results = deliver(functions, second)
    new = renditions_of(s3, KEY, two_x=True)
    assert not set(old) & set(new), "a new version must never reuse a cached key"
    assert files(s3) == new
    assert all(is_(GREEN)(colour(s3, k)) for k in new if not k.endswith(".webp"))
    # Immutable by construction: the same key always holds the same version.
    assert {s3.head_object(Bucket=BUCKET, Key=k)["CacheControl"] for k in new} == {
        "public, max-age=31536000, immutable"
    }
    assert results["medium"]["rendered"] == [k for k in new if "/medium/" in k]
    for rendition in ("thumbnail", "medium"):
        state = state_of(s3, KEY, rendition)
        assert state is not None
        assert (state["state"], state["upload"]["etag"]) == ("current", etag(second))
        assert [f["key"] for f in state["files"]] == [k for k in new if f"/{rendition}/" in k]
        assert state["superseded"] == [k for k in old if f"/{rendition}/" in k]
        head = s3.head_object(Bucket=BUCKET, Key=state_key(KEY, rendition))
        assert (head["CacheControl"], head["ContentType"]) == ("no-cache", "application/json")


def test_the_state_names_each_file_with_its_size(s3: Any, functions: Functions) -> None:
    deliver(functions, upload(s3, KEY, jpeg(1600, 1200)))
    state = state_of(s3, KEY, "medium")
    assert state is not None
    for f in state["files"]:
        body = s3.get_object(Bucket=BUCKET, Key=f["key"])["Body"].read()
        assert (f["width"], f["height"], f["bytes"]) == (*Image.open(io.BytesIO(body)).size, len(body))
    assert [(f["format"], f["contentType"]) for f in state["files"]] == [("jpeg", "image/jpeg"), ("webp", "image/webp")]
    # The thumbnail's: its 400x300 and the 800x600 @2x beside it, each with its scale.
    thumbnail = state_of(s3, KEY, "thumbnail")
    assert thumbnail is not None
    assert [(f["key"].rsplit("/", 1)[1][16:], f["width"], f["height"], f["scale"]) for f in thumbnail["files"]] == [
        (".jpg", 400, 300, 1),
        ("@2x.jpg", 800, 600, 2),
    ]


def test_uploads_that_differ_only_by_extension_keep_their_own_renditions(s3: Any, functions: Functions) -> None:
    jpg = upload(s3, "uploads/l7/front.jpg", jpeg(640, 480, RED))
    png = upload(s3, "uploads/l7/front.png", jpeg(640, 480, BLUE))
    deliver(functions, jpg, png)
    assert files(s3) == sorted(renditions_of(s3, "uploads/l7/front.jpg") + renditions_of(s3, "uploads/l7/front.png"))
    assert is_(RED)(colour(s3, version_key(s3, "uploads/l7/front.jpg")))
    assert is_(BLUE)(colour(s3, version_key(s3, "uploads/l7/front.png")))


def test_a_late_event_of_the_replaced_version_changes_nothing(s3: Any, functions: Functions) -> None:
    first = upload(s3, KEY, jpeg(640, 480, RED))
    second = upload(s3, KEY, jpeg(640, 480, GREEN))
    deliver(functions, second)
    before = {k: s3.head_object(Bucket=BUCKET, Key=k)["ETag"] for k in keys(s3, "renditions/")}
    results = deliver(functions, first)
    assert results["thumbnail"]["skipped"] == [KEY]
    assert {k: s3.head_object(Bucket=BUCKET, Key=k)["ETag"] for k in keys(s3, "renditions/")} == before


def test_the_same_bytes_uploaded_again_keep_their_keys(s3: Any, functions: Functions) -> None:
    # A, B, then A's bytes again: the third upload's renditions are A's keys (the same version token), and the
    # state's order moves to the third upload's sequencer, never back.
    a, b = jpeg(640, 480, RED), jpeg(640, 480, GREEN)
    first, second, third = upload(s3, KEY, a), upload(s3, KEY, b), upload(s3, KEY, a)
    deliver(functions, first)
    deliver(functions, second)
    deliver(functions, third)
    assert files(s3) == renditions_of(s3, KEY, etag(first))
    deliver(functions, first)  # a duplicate of the first upload's event, very late
    state = state_of(s3, KEY)
    assert state is not None
    assert state["upload"]["sequencer"] == third["s3"]["object"]["sequencer"]
    assert files(s3) == renditions_of(s3, KEY, etag(first))


def test_a_replacement_that_cannot_be_read_removes_the_old_renditions(s3: Any, functions: Functions) -> None:
    # The old photo is not the upload any more; showing it would be wrong. The state says why there is nothing.
    deliver(functions, upload(s3, KEY, jpeg(640, 480)))
    results = deliver(functions, upload(s3, KEY, b"<html>not a photo</html>"))
    assert results["thumbnail"]["failed"] == [{"key": KEY, "error_class": "UnsupportedFormatError"}]
    assert files(s3) == []
    state = state_of(s3, KEY)
    assert state is not None
    assert (state["state"], state["error"]["class"]) == ("failed", "UnsupportedFormatError")


def test_renditions_of_the_old_key_scheme_go_when_the_upload_is_first_rendered(s3: Any, functions: Functions) -> None:
    legacy = ["renditions/thumbnail/l7/front.jpg", "renditions/medium/l7/front.jpg", "renditions/medium/l7/front.webp"]
    for key in legacy:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"rendered before versioned keys")
    deliver(functions, upload(s3, KEY, jpeg(640, 480)))
    assert files(s3) == renditions_of(s3, KEY)


# --- Delete ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["s3", "eventbridge"])
def test_a_deleted_upload_leaves_no_rendition(s3: Any, functions: Functions, shape: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    deliver(functions, upload(s3, KEY, jpeg(1600, 1200)))
    made = files(s3)
    assert len(made) == 4  # thumbnail and its @2x, medium JPEG and WebP
    record = delete(s3, KEY)
    if shape == "s3":
        results = deliver(functions, record)
    else:
        bridge = {"source": "aws.s3", "detail-type": "Object Deleted", "detail": {
            "bucket": {"name": BUCKET}, "object": {"key": KEY, "sequencer": record["s3"]["object"]["sequencer"]},
            "deletion-type": "Permanently Deleted"}}  # fmt: skip
        results = {name: invoke(h, bridge) for name, h in functions.items()}
    assert sorted(results["thumbnail"]["removed"] + results["medium"]["removed"]) == made
    assert files(s3) == []
    # What is left is each function's tombstone, tagged for the bucket's lifecycle rule.
    assert keys(s3, "renditions/") == [state_key(KEY, "medium"), state_key(KEY, "thumbnail")]
    for rendition in ("thumbnail", "medium"):
        state = state_of(s3, KEY, rendition)
        assert state is not None
        assert (state["state"], state["files"]) == ("deleted", [])
        tags = s3.get_object_tagging(Bucket=BUCKET, Key=state_key(KEY, rendition))["TagSet"]
        assert tags == [{"Key": "kiray-imaging", "Value": "deleted"}]
    lines = [line for line in log_lines(capsys.readouterr().out) if line["message"].startswith("removed:")]
    assert sorted(k for line in lines for k in line["removed_keys"]) == made


def test_a_duplicate_delete_reports_the_same_removal(s3: Any, functions: Functions) -> None:
    deliver(functions, upload(s3, KEY, jpeg(640, 480)))
    record = delete(s3, KEY)
    once, twice = deliver(functions, record), deliver(functions, record)
    assert once == twice
    assert files(s3) == []


def test_a_delete_of_an_upload_that_never_had_renditions_is_a_no_op_logged_once(
    s3: Any, functions: Functions, capsys: pytest.CaptureFixture[str]
) -> None:
    results = deliver(functions, delete_record("uploads/l7/never.jpg", next_sequencer()))
    assert results["thumbnail"]["removed"] == []
    lines = [line for line in log_lines(capsys.readouterr().out) if line.get("key") == "uploads/l7/never.jpg"]
    assert [(line["rendition"], line["message"]) for line in lines] == [
        ("thumbnail", "removed: no renditions to remove"),
        ("medium", "removed: no renditions to remove"),
    ]
    assert files(s3) == []


def test_a_late_delete_of_an_older_version_removes_nothing_of_the_newer_upload(s3: Any, functions: Functions) -> None:
    deliver(functions, upload(s3, KEY, jpeg(640, 480, RED)))
    deleted = delete(s3, KEY)
    again = upload(s3, KEY, jpeg(640, 480, GREEN))
    deliver(functions, again)
    results = deliver(functions, deleted)  # delivered late, after the re-upload was rendered
    assert results["thumbnail"]["skipped"] == [KEY]
    assert files(s3) == renditions_of(s3, KEY)
    assert is_(GREEN)(colour(s3, version_key(s3, KEY)))


def test_deleting_an_older_version_in_a_versioned_bucket_keeps_the_current_renditions(
    s3: Any, functions: Functions
) -> None:
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    first = upload(s3, KEY, jpeg(640, 480, RED))
    second = upload(s3, KEY, jpeg(640, 480, GREEN))
    deliver(functions, first, second)
    old_version = s3.list_object_versions(Bucket=BUCKET, Prefix=KEY)["Versions"][-1]["VersionId"]
    s3.delete_object(Bucket=BUCKET, Key=KEY, VersionId=old_version)  # a newer sequencer, but the upload stays
    deliver(functions, delete_record(KEY, next_sequencer()))
    assert files(s3) == renditions_of(s3, KEY, etag(second))


def test_a_create_event_that_arrives_after_its_delete_recreates_nothing(s3: Any, functions: Functions) -> None:
    created = upload(s3, KEY, jpeg(640, 480))
    deleted = delete(s3, KEY)
    deliver(functions, deleted)
    results = deliver(functions, created)
    assert results["thumbnail"]["skipped"] == [KEY]
    assert files(s3) == []


def test_a_delete_while_rendering_wins(s3: Any, functions: Functions, monkeypatch: pytest.MonkeyPatch) -> None:
    # The render read the photo; before it changed the state, the photo was deleted and its delete event handled.
    # The render finds the tombstone newer than its event and removes what it wrote.
    created = upload(s3, KEY, jpeg(640, 480))
    thumb = version_key(s3, KEY)
    done: list[dict[str, Any]] = []

    def deleted_meanwhile(kwargs: dict[str, Any]) -> None:
        if not done:
            done.append(invoke(functions["thumbnail"], event(delete(s3, KEY))))

    hooked = HookedS3({("put_object", thumb): deleted_meanwhile})
    monkeypatch.setattr(lambda_pipeline, "s3_client", lambda: hooked)
    result = invoke(make_handler("thumbnail"), event(created))
    assert done[0]["removed"] == []
    assert result["skipped"] == [KEY]
    assert files(s3) == []
    assert (state_of(s3, KEY) or {})["state"] == "deleted"


def test_a_refused_delete_is_permanent_and_alarmed(
    s3: Any, functions: Functions, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    deliver(functions, upload(s3, KEY, jpeg(640, 480)))
    thumb = version_key(s3, KEY)
    record = delete(s3, KEY)
    refused = raises(client_error("AccessDenied", 403, "DeleteObject"))
    monkeypatch.setattr(lambda_pipeline, "s3_client", lambda: HookedS3({("delete_object", thumb): refused}))
    result = invoke(make_handler("thumbnail"), event(record))
    assert result["failed"] == [{"key": KEY, "error_class": "AccessDenied"}]
    (error,) = [line for line in log_lines(capsys.readouterr().out) if line["level"] == "ERROR"]
    assert (error["error_class"], error["operation"]) == ("AccessDenied", "DeleteObject")


def test_a_malformed_delete_event_is_a_shape_error(s3: Any, functions: Functions) -> None:
    bad = {"source": "aws.s3", "detail-type": "Object Deleted", "detail": {"bucket": {"name": BUCKET}, "object": {}}}
    assert invoke(functions["thumbnail"], bad)["failed"] == [{"error_class": "EventShapeError"}]


def test_the_functions_delete_only_their_own_files(s3: Any, functions: Functions,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    calls: dict[str, HookedS3] = {}
    for name, env in (("thumbnail", "jpeg"), ("medium", "jpeg,webp")):
        monkeypatch.setenv("OUTPUT_FORMAT", env)
        calls[name] = HookedS3({})
        monkeypatch.setattr(lambda_pipeline, "s3_client", lambda name=name: calls[name])
        functions[name] = make_handler(name)
    deliver(functions, upload(s3, KEY, jpeg(640, 480, RED)))
    deliver(functions, upload(s3, KEY, jpeg(640, 480, GREEN)))
    deliver(functions, delete(s3, KEY))
    for name, client in calls.items():
        written = {key for call, key in client.calls if call in ("put_object", "delete_object")}
        assert written, name
        assert all(key and key.startswith(f"renditions/{name}/") for key in written), (name, written)
    assert files(s3) == []
