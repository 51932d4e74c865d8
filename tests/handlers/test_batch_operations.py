"""S3 Batch Operations invoking the functions (backfills): schema 1.0 and 2.0 in, one result per task out, against
moto. Transient faults are injected into the functions' S3 client where it meets the network (a 503 answered in
the request's place), so its retries run as in production before the task becomes a TemporaryFailure."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
from PIL import Image

from kiray_imaging import batch_operations, lambda_pipeline, s3_client
from kiray_imaging.lambda_pipeline import make_handler
from kiray_imaging.s3_client import Answer
from kiray_imaging.s3_events import EventShapeError

if TYPE_CHECKING:
    from tests.handlers.s3_helpers import BUCKET, HookedS3, event, invoke, jpeg, keys, log_lines, s3_answer, upload
else:
    from s3_helpers import BUCKET, HookedS3, event, invoke, jpeg, keys, log_lines, s3_answer, upload

GOOD = "uploads/l1/front door+garden é.jpg"
BAD = "uploads/l1/notes.jpg"
MISSING = "uploads/l1/deleted.jpg"
RENDITION_KEY = "renditions/thumbnail/l1/old.jpg"
FLAKY = "uploads/l1/flaky.jpg"
LOCKED = "uploads/locked/a.jpg"


def task(schema: str, task_id: str, key: str, version: str | None = None, bucket: str = BUCKET) -> dict[str, Any]:
    """One task as S3 sends it: 1.0 names the bucket by ARN and URL-encodes the key, 2.0 names it plainly."""
    if schema == "1.0":
        return {
            "taskId": task_id,
            "s3Key": quote(key, safe="/"),
            "s3VersionId": version,
            "s3BucketArn": f"arn:aws:s3:::{bucket}",
        }
    return {"taskId": task_id, "s3Key": key, "s3VersionId": version, "s3Bucket": bucket}


def batch_event(schema: str, *tasks: dict[str, Any], **job: Any) -> dict[str, Any]:
    return {
        "invocationSchemaVersion": schema,
        "invocationId": f"inv-{schema}",
        "job": {"id": "f3cc4f60-61f6-4a2b-8a21-d07600c373ce", **job},
        "tasks": list(tasks),
    }


def inject(monkeypatch: pytest.MonkeyPatch, faults: dict[str, tuple[int, str]], seen: list[str] | None = None) -> None:
    """The functions' own S3 client (with its retries), answering GetObject of a key in ``faults`` with that
    status and S3 error code in the network's place, without backoff delays."""
    monkeypatch.setattr(s3_client, "MAX_BACKOFF_S", 0.0)
    real = lambda_pipeline.s3_client

    def client() -> Any:
        s3 = real()
        send = s3.send

        def answer(method: str, url: str, headers: Mapping[str, str], body: bytes) -> Answer:
            for key, (status, code) in faults.items():
                if method == "GET" and url.endswith("/" + quote(key, safe="/~")):
                    if seen is not None:
                        seen.append(key)
                    return s3_answer(status, code)
            return send(method, url, headers, body)

        s3.send = answer
        return s3

    monkeypatch.setattr(lambda_pipeline, "s3_client", client)


def mixed_bucket(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key=GOOD, Body=jpeg(1600, 1200))
    s3.put_object(Bucket=BUCKET, Key=BAD, Body=b"<html>not a photo</html>")
    s3.put_object(Bucket=BUCKET, Key=RENDITION_KEY, Body=jpeg(400, 300))
    s3.put_object(Bucket=BUCKET, Key=FLAKY, Body=jpeg(800, 600))
    s3.put_object(Bucket=BUCKET, Key=LOCKED, Body=jpeg(800, 600))


@pytest.mark.parametrize("schema", ["1.0", "2.0"])
def test_mixed_tasks_get_one_result_each(
    s3: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], schema: str
) -> None:
    mixed_bucket(s3)
    seen: list[str] = []
    inject(monkeypatch, {FLAKY: (503, "SlowDown"), LOCKED: (403, "AccessDenied")}, seen)
    tasks = [task(schema, f"t-{n}", key) for n, key in enumerate((GOOD, BAD, MISSING, RENDITION_KEY, FLAKY, LOCKED))]

    response = invoke(make_handler("thumbnail"), batch_event(schema, *tasks))

    assert {k: v for k, v in response.items() if k != "results"} == {
        "invocationSchemaVersion": schema,
        "treatMissingKeysAs": "PermanentFailure",
        "invocationId": f"inv-{schema}",
    }
    assert response["results"] == [
        {
            "taskId": "t-0",
            "resultCode": "Succeeded",
            "resultString": "rendered: renditions/thumbnail/l1/front door+garden é.jpg",
        },
        {
            "taskId": "t-1",
            "resultCode": "PermanentFailure",
            "resultString": "UnsupportedFormatError: HTML input is not supported",
        },
        # moto says NoSuchKey; real S3 says AccessDenied to a role without s3:ListBucket (a PermanentFailure).
        {"taskId": "t-2", "resultCode": "Succeeded", "resultString": "skipped: NoSuchKey"},
        {"taskId": "t-3", "resultCode": "Succeeded", "resultString": "skipped: recursion-guard"},
        {
            "taskId": "t-4",
            "resultCode": "TemporaryFailure",
            "resultString": "SlowDown: An error occurred (SlowDown) when calling the GetObject operation "
            "(reached max retries: 5): SlowDown",
        },
        {
            "taskId": "t-5",
            "resultCode": "PermanentFailure",
            "resultString": "AccessDenied: S3 GetObject refused: AccessDenied",
        },
    ]
    # The client retried the throttled read before the task was handed back to S3 to retry; a 403 is not retried.
    assert seen == [FLAKY] * 6 + [LOCKED]  # the first attempt and 5 retries
    assert keys(s3, "renditions/") == ["renditions/thumbnail/l1/front door+garden é.jpg", RENDITION_KEY]
    body = s3.get_object(Bucket=BUCKET, Key="renditions/thumbnail/l1/front door+garden é.jpg")["Body"].read()
    assert Image.open(io.BytesIO(body)).size == (400, 300)
    lines = [line for line in log_lines(capsys.readouterr().out) if line["message"] == "batch task"]
    assert [(line["task_id"], line["result_code"]) for line in lines] == [
        (r["taskId"], r["resultCode"]) for r in response["results"]
    ]


def test_schema_1_0_keys_are_decoded_and_2_0_keys_are_not(s3: Any) -> None:
    # The same literal '+' means a space in a 1.0 key (URL-encoded) and a plus in a 2.0 key (as stored).
    s3.put_object(Bucket=BUCKET, Key="uploads/a b.jpg", Body=jpeg(800, 600))
    s3.put_object(Bucket=BUCKET, Key="uploads/a+b.jpg", Body=jpeg(800, 600))
    h = make_handler("thumbnail")
    v1 = {"taskId": "t", "s3Key": "uploads/a+b.jpg", "s3VersionId": None, "s3BucketArn": f"arn:aws:s3:::{BUCKET}"}
    v2 = {"taskId": "t", "s3Key": "uploads/a+b.jpg", "s3VersionId": None, "s3Bucket": BUCKET}
    assert invoke(h, batch_event("1.0", v1))["results"][0]["resultString"] == "rendered: renditions/thumbnail/a b.jpg"
    assert invoke(h, batch_event("2.0", v2))["results"][0]["resultString"] == "rendered: renditions/thumbnail/a+b.jpg"


def test_the_medium_function_reports_both_formats(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTPUT_FORMAT", "jpeg,webp")
    s3.put_object(Bucket=BUCKET, Key="uploads/l1/a.jpg", Body=jpeg(1600, 1200))
    response = invoke(make_handler("medium"), batch_event("2.0", task("2.0", "t", "uploads/l1/a.jpg")))
    assert response["results"] == [
        {
            "taskId": "t",
            "resultCode": "Succeeded",
            "resultString": "rendered: renditions/medium/l1/a.jpg renditions/medium/l1/a.webp",
        }
    ]


def test_keys_outside_the_source_prefix_and_empty_objects_succeed_as_skipped(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="other/a.jpg", Body=jpeg(80, 60))
    s3.put_object(Bucket=BUCKET, Key="uploads/l1/", Body=b"")
    s3.put_object(Bucket=BUCKET, Key="uploads/empty.jpg", Body=b"")
    tasks = [
        task("2.0", "out", "other/a.jpg"),
        task("2.0", "dir", "uploads/l1/"),
        task("2.0", "empty", "uploads/empty.jpg"),
        task("2.0", "bucket", "uploads/a.jpg", bucket="elsewhere"),
    ]
    results = invoke(make_handler("thumbnail"), batch_event("2.0", *tasks))["results"]
    assert [(r["resultCode"], r["resultString"]) for r in results] == [
        ("Succeeded", "skipped: outside-source"),
        ("Succeeded", "skipped: empty"),
        ("Succeeded", "skipped: empty"),
        ("Succeeded", "skipped: outside-source"),
    ]
    assert keys(s3, "renditions/") == []


# --- Versions and order: no ETag and no sequencer in a task ------------------------------------------------------


def test_a_manifest_version_that_is_no_longer_current_is_superseded(s3: Any) -> None:
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    listed = s3.put_object(Bucket=BUCKET, Key="uploads/a.jpg", Body=jpeg(800, 600, (200, 0, 0)))["VersionId"]
    h = make_handler("thumbnail")
    current = invoke(h, batch_event("2.0", task("2.0", "t", "uploads/a.jpg", listed)))
    assert current["results"][0]["resultString"] == "rendered: renditions/thumbnail/a.jpg"

    s3.put_object(Bucket=BUCKET, Key="uploads/a.jpg", Body=jpeg(800, 600, (0, 200, 0)))  # replaced since the manifest
    s3.delete_object(Bucket=BUCKET, Key="renditions/thumbnail/a.jpg")
    stale = invoke(h, batch_event("2.0", task("2.0", "t", "uploads/a.jpg", listed)))
    assert stale["results"] == [{"taskId": "t", "resultCode": "Succeeded", "resultString": "skipped: superseded"}]
    assert keys(s3, "renditions/") == []  # the newer upload's own event renders it


def test_a_rerender_of_the_same_version_replaces_the_rendition_and_keeps_the_events_order(s3: Any) -> None:
    # A backfill after a preset change: the rendition an event made is replaced; it keeps that event's sequencer,
    # so a slow duplicate of an *older* event still cannot overwrite it.
    record = upload(s3, "uploads/a.jpg", jpeg(800, 600))
    etag, sequencer = record["s3"]["object"]["eTag"], record["s3"]["object"]["sequencer"]
    out = "renditions/thumbnail/a.jpg"
    metadata = {"source-etag": etag, "source-sequencer": sequencer, "source-key": "uploads/a.jpg"}
    s3.put_object(Bucket=BUCKET, Key=out, Body=b"made with the old preset", Metadata=metadata)
    h = make_handler("thumbnail")

    result = invoke(h, batch_event("2.0", task("2.0", "t", "uploads/a.jpg")))

    assert result["results"][0]["resultCode"] == "Succeeded"
    replaced = s3.get_object(Bucket=BUCKET, Key=out)
    assert Image.open(io.BytesIO(replaced["Body"].read())).size == (400, 300)
    assert replaced["Metadata"] == metadata
    earlier = f"{int(sequencer, 16) - 1:0{len(sequencer)}X}"
    older = {**record, "s3": {**record["s3"], "object": {**record["s3"]["object"], "sequencer": earlier}}}
    assert invoke(h, event(older))["skipped"] == ["uploads/a.jpg"]


def test_a_rendition_of_another_version_is_replaced_while_the_source_is_current(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="uploads/a.jpg", Body=jpeg(800, 600))
    s3.put_object(
        Bucket=BUCKET,
        Key="renditions/thumbnail/a.jpg",
        Body=b"an old upload's rendition",
        Metadata={"source-etag": "0ld", "source-sequencer": "0A", "source-key": "uploads/a.jpg"},
    )
    result = invoke(make_handler("thumbnail"), batch_event("1.0", task("1.0", "t", "uploads/a.jpg")))
    assert result["results"][0]["resultString"] == "rendered: renditions/thumbnail/a.jpg"
    assert "source-sequencer" not in s3.head_object(Bucket=BUCKET, Key="renditions/thumbnail/a.jpg")["Metadata"]


def test_a_newer_upload_during_the_task_wins(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Between our read and our write the photo is replaced and its own event writes its rendition: the task sees
    # a rendition of another version, finds its source no longer current, and leaves the newer rendition alone.
    s3.put_object(Bucket=BUCKET, Key="uploads/a.jpg", Body=jpeg(800, 600, (200, 0, 0)))
    out = "renditions/thumbnail/a.jpg"

    def newer_upload(kwargs: dict[str, Any]) -> None:
        if "IfNoneMatch" in kwargs:
            s3.put_object(Bucket=BUCKET, Key="uploads/a.jpg", Body=jpeg(800, 600, (0, 200, 0)))
            s3.put_object(
                Bucket=BUCKET,
                Key=out,
                Body=b"the newer upload's rendition",
                Metadata={"source-etag": "new", "source-sequencer": "0B", "source-key": "uploads/a.jpg"},
            )

    hooked = HookedS3({("put_object", out): newer_upload})
    monkeypatch.setattr(lambda_pipeline, "s3_client", lambda: hooked)
    result = invoke(make_handler("thumbnail"), batch_event("2.0", task("2.0", "t", "uploads/a.jpg")))
    assert result["results"] == [{"taskId": "t", "resultCode": "Succeeded", "resultString": "skipped: superseded"}]
    assert s3.get_object(Bucket=BUCKET, Key=out)["Body"].read() == b"the newer upload's rendition"
    assert [name for name, _ in hooked.calls] == ["get_object", "put_object", "head_object", "head_object"]


def test_a_rendition_write_that_keeps_losing_races_is_a_temporary_failure(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.put_object(Bucket=BUCKET, Key="uploads/a.jpg", Body=jpeg(800, 600))
    out = "renditions/thumbnail/a.jpg"

    writes = iter(range(100))

    def other_writer(kwargs: dict[str, Any]) -> None:
        s3.put_object(
            Bucket=BUCKET, Key=out, Body=f"another writer {next(writes)}".encode(), Metadata={"source-etag": "x"}
        )

    monkeypatch.setattr(lambda_pipeline, "s3_client", lambda: HookedS3({("put_object", out): other_writer}))
    (result,) = invoke(make_handler("thumbnail"), batch_event("2.0", task("2.0", "t", "uploads/a.jpg")))["results"]
    assert result["resultCode"] == "TemporaryFailure"
    assert result["resultString"].startswith("RenditionWriteConflictError: s3://")


# --- The schema itself ------------------------------------------------------------------------------------------


def test_unreadable_tasks_fail_permanently_and_the_rest_are_processed(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="uploads/a.jpg", Body=jpeg(800, 600))
    tasks: list[dict[str, Any]] = [
        {"taskId": "no-key", "s3VersionId": None, "s3Bucket": BUCKET},
        {"s3Key": "uploads/a.jpg"},
        task("2.0", "ok", "uploads/a.jpg"),
    ]
    response = invoke(make_handler("thumbnail"), batch_event("2.0", *tasks))
    # The task without a taskId cannot be answered: S3 counts it as treatMissingKeysAs (PermanentFailure).
    assert [(r["taskId"], r["resultCode"]) for r in response["results"]] == [
        ("no-key", "PermanentFailure"),
        ("ok", "Succeeded"),
    ]
    assert response["results"][0]["resultString"] == "EventShapeError: expected s3Bucket and s3Key strings"


def test_an_unknown_schema_version_fails_each_task_rather_than_guess_its_keys(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="uploads/a.jpg", Body=jpeg(800, 600))
    response = invoke(make_handler("thumbnail"), batch_event("3.0", task("2.0", "t", "uploads/a.jpg")))
    assert response["invocationSchemaVersion"] == "3.0"
    assert response["results"] == [
        {
            "taskId": "t",
            "resultCode": "PermanentFailure",
            "resultString": "EventShapeError: unsupported invocationSchemaVersion '3.0'",
        }
    ]
    assert keys(s3, "renditions/") == []


def test_user_arguments_are_logged_as_ignored(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    s3.put_object(Bucket=BUCKET, Key="uploads/a.jpg", Body=jpeg(800, 600))
    event_ = batch_event("2.0", task("2.0", "t", "uploads/a.jpg"), userArguments={"quality": "90"})
    assert invoke(make_handler("thumbnail"), event_)["results"][0]["resultCode"] == "Succeeded"
    (line,) = [line for line in log_lines(capsys.readouterr().out) if line["message"].startswith("ignored")]
    assert line["user_arguments"] == {"quality": "90"}


@pytest.mark.parametrize(
    ("arn", "bucket"),
    [("arn:aws:s3:::photos", "photos"), ("arn:aws:s3:us-east-1:0123456788:photos", "photos")],
)
def test_schema_1_0_bucket_arns(arn: str, bucket: str) -> None:
    # The S3 guide's ARN and the Lambda guide's example (with region and account) name the same bucket.
    raw = {"taskId": "t", "s3Key": "uploads/a%20b.jpg", "s3VersionId": "null", "s3BucketArn": arn}
    invocation = batch_operations.parse(batch_event("1.0", raw))
    (parsed,) = invocation.tasks
    assert parsed.obj is not None
    assert (parsed.obj.bucket, parsed.obj.key, parsed.obj.version_id) == (bucket, "uploads/a b.jpg", None)
    assert (invocation.invocation_id, invocation.job_id) == ("inv-1.0", "f3cc4f60-61f6-4a2b-8a21-d07600c373ce")


@pytest.mark.parametrize(
    "event_",
    [
        {"invocationSchemaVersion": "1.0", "tasks": []},
        {"invocationSchemaVersion": "2.0", "invocationId": "i", "tasks": "not a list"},
    ],
)
def test_an_invocation_with_nothing_to_answer_is_a_shape_error(event_: dict[str, Any]) -> None:
    with pytest.raises(EventShapeError):
        batch_operations.parse(event_)


def test_a_long_result_string_is_cut_for_the_report() -> None:
    cut: Callable[[str], str] = lambda s: batch_operations.result("t", "Succeeded", s).result_string  # noqa: E731
    assert cut("x" * 1024) == "x" * 1024
    assert cut("x" * 5000) == "x" * 1023 + "…"
