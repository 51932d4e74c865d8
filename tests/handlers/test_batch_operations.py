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

from kiray_imaging import aws_http, batch_operations, lambda_pipeline
from kiray_imaging.lambda_pipeline import make_handler
from kiray_imaging.rendition_state import RenditionState
from kiray_imaging.s3_client import Answer
from kiray_imaging.s3_events import EventShapeError

if TYPE_CHECKING:
    from tests.handlers.s3_helpers import (
        BUCKET,
        HookedS3,
        event,
        invoke,
        jpeg,
        keys,
        log_lines,
        s3_answer,
        state_key,
        state_of,
        upload,
        version_key,
    )
else:
    from s3_helpers import (
        BUCKET,
        HookedS3,
        event,
        invoke,
        jpeg,
        keys,
        log_lines,
        s3_answer,
        state_key,
        state_of,
        upload,
        version_key,
    )

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
    monkeypatch.setattr(aws_http, "MAX_BACKOFF_S", 0.0)
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
    s3.put_object(Bucket=BUCKET, Key=FLAKY, Body=jpeg(640, 480))
    s3.put_object(Bucket=BUCKET, Key=LOCKED, Body=jpeg(640, 480))


@pytest.mark.parametrize("schema", ["1.0", "2.0"])
def test_mixed_tasks_get_one_result_each(
    s3: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], schema: str
) -> None:
    mixed_bucket(s3)
    seen: list[str] = []
    inject(monkeypatch, {FLAKY: (503, "SlowDown"), LOCKED: (403, "AccessDenied")}, seen)
    tasks = [task(schema, f"t-{n}", key) for n, key in enumerate((GOOD, BAD, MISSING, RENDITION_KEY, FLAKY, LOCKED))]

    response = invoke(make_handler("thumbnail"), batch_event(schema, *tasks))
    good = version_key(s3, GOOD)

    assert {k: v for k, v in response.items() if k != "results"} == {
        "invocationSchemaVersion": schema,
        "treatMissingKeysAs": "PermanentFailure",
        "invocationId": f"inv-{schema}",
    }
    assert response["results"] == [
        {
            "taskId": "t-0",
            "resultCode": "Succeeded",
            # 1600x1200 fills the 2x box: the thumbnail and its @2x file.
            "resultString": f"rendered: {good} {good.removesuffix('.jpg')}@2x.jpg",
        },
        {
            "taskId": "t-1",
            "resultCode": "PermanentFailure",
            "resultString": "UnsupportedFormatError: HTML input is not supported",
        },
        # moto says NoSuchKey; real S3 says AccessDenied to a role without s3:ListBucket (a PermanentFailure).
        {"taskId": "t-2", "resultCode": "Succeeded", "resultString": "skipped: deleted"},
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
    # The bad photo's current.json says it failed; the rendition named as a task is left alone (recursion guard).
    good_2x = good.removesuffix(".jpg") + "@2x.jpg"
    assert keys(s3, "renditions/") == sorted([good, good_2x, state_key(GOOD), state_key(BAD), RENDITION_KEY])
    body = s3.get_object(Bucket=BUCKET, Key=good)["Body"].read()
    assert Image.open(io.BytesIO(body)).size == (400, 300)
    lines = [line for line in log_lines(capsys.readouterr().out) if line["message"] == "batch task"]
    assert [(line["task_id"], line["result_code"]) for line in lines] == [
        (r["taskId"], r["resultCode"]) for r in response["results"]
    ]


def test_schema_1_0_keys_are_decoded_and_2_0_keys_are_not(s3: Any) -> None:
    # The same literal '+' means a space in a 1.0 key (URL-encoded) and a plus in a 2.0 key (as stored).
    s3.put_object(Bucket=BUCKET, Key="uploads/a b.jpg", Body=jpeg(640, 480))
    s3.put_object(Bucket=BUCKET, Key="uploads/a+b.jpg", Body=jpeg(640, 480))
    h = make_handler("thumbnail")
    v1 = {"taskId": "t", "s3Key": "uploads/a+b.jpg", "s3VersionId": None, "s3BucketArn": f"arn:aws:s3:::{BUCKET}"}
    v2 = {"taskId": "t", "s3Key": "uploads/a+b.jpg", "s3VersionId": None, "s3Bucket": BUCKET}
    spaced, plus = version_key(s3, "uploads/a b.jpg"), version_key(s3, "uploads/a+b.jpg")
    assert spaced.startswith("renditions/thumbnail/a b.jpg/")
    assert plus.startswith("renditions/thumbnail/a+b.jpg/")
    assert invoke(h, batch_event("1.0", v1))["results"][0]["resultString"] == f"rendered: {spaced}"
    assert invoke(h, batch_event("2.0", v2))["results"][0]["resultString"] == f"rendered: {plus}"


def test_the_medium_function_reports_both_formats(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTPUT_FORMAT", "jpeg,webp")
    s3.put_object(Bucket=BUCKET, Key="uploads/l1/a.jpg", Body=jpeg(1600, 1200))
    response = invoke(make_handler("medium"), batch_event("2.0", task("2.0", "t", "uploads/l1/a.jpg")))
    assert response["results"] == [
        {
            "taskId": "t",
            "resultCode": "Succeeded",
            "resultString": "rendered: "
            + " ".join(version_key(s3, "uploads/l1/a.jpg", "medium", ext) for ext in (".jpg", ".webp")),
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
    listed = s3.put_object(Bucket=BUCKET, Key="uploads/a.jpg", Body=jpeg(640, 480, (200, 0, 0)))["VersionId"]
    h = make_handler("thumbnail")
    current = invoke(h, batch_event("2.0", task("2.0", "t", "uploads/a.jpg", listed)))
    made = version_key(s3, "uploads/a.jpg")
    assert current["results"][0]["resultString"] == f"rendered: {made}"

    s3.put_object(Bucket=BUCKET, Key="uploads/a.jpg", Body=jpeg(640, 480, (0, 200, 0)))  # replaced since the manifest
    stale = invoke(h, batch_event("2.0", task("2.0", "t", "uploads/a.jpg", listed)))
    assert stale["results"] == [{"taskId": "t", "resultCode": "Succeeded", "resultString": "skipped: superseded"}]
    # Left as it was: the newer upload's own event renders it and removes these.
    assert keys(s3, "renditions/") == sorted([made, state_key("uploads/a.jpg")])


def test_a_rerender_of_the_same_version_replaces_the_rendition_and_keeps_the_events_order(s3: Any) -> None:
    # A backfill after a preset change: the file an event made is written again; the state keeps that event's
    # sequencer (a task has none), so the order of later events is still S3's.
    record = upload(s3, "uploads/a.jpg", jpeg(640, 480))
    sequencer = record["s3"]["object"]["sequencer"]
    h = make_handler("thumbnail")
    invoke(h, event(record))
    out = version_key(s3, "uploads/a.jpg")
    metadata = s3.head_object(Bucket=BUCKET, Key=out)["Metadata"]
    s3.put_object(Bucket=BUCKET, Key=out, Body=b"made with the old preset", Metadata=metadata)

    result = invoke(h, batch_event("2.0", task("2.0", "t", "uploads/a.jpg")))

    assert result["results"][0]["resultString"] == f"rendered: {out}"
    replaced = s3.get_object(Bucket=BUCKET, Key=out)
    assert Image.open(io.BytesIO(replaced["Body"].read())).size == (400, 300)
    assert replaced["Metadata"] == metadata
    state = state_of(s3, "uploads/a.jpg")
    assert state is not None
    assert state["upload"]["sequencer"] == sequencer
    # A slow duplicate of an *older* event of the same bytes re-renders the same version, and moves nothing back.
    earlier = f"{int(sequencer, 16) - 1:0{len(sequencer)}X}"
    older = {**record, "s3": {**record["s3"], "object": {**record["s3"]["object"], "sequencer": earlier}}}
    assert invoke(h, event(older))["rendered"] == [out]
    assert (state_of(s3, "uploads/a.jpg") or {})["upload"]["sequencer"] == sequencer


def test_a_rendition_of_another_version_is_replaced_while_the_source_is_current(s3: Any) -> None:
    old = upload(s3, "uploads/a.jpg", jpeg(640, 480, (200, 0, 0)))
    h = make_handler("thumbnail")
    invoke(h, event(old))
    before = version_key(s3, "uploads/a.jpg")
    s3.put_object(Bucket=BUCKET, Key="uploads/a.jpg", Body=jpeg(640, 480, (0, 200, 0)))  # its event was lost
    result = invoke(h, batch_event("1.0", task("1.0", "t", "uploads/a.jpg")))
    after = version_key(s3, "uploads/a.jpg")
    assert result["results"][0]["resultString"] == f"rendered: {after}"
    assert keys(s3, "renditions/") == sorted([after, state_key("uploads/a.jpg")])
    state = state_of(s3, "uploads/a.jpg") or {}
    # No sequencer: the task ordered itself by a HEAD of the upload, and so will later events.
    assert "sequencer" not in state["upload"]
    assert state["superseded"] == [before]


def test_a_newer_upload_during_the_task_wins(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Between our read and our change of state the photo is replaced and its own event renders it: the task finds
    # a state it cannot order by sequencer, asks S3 which version is current, and removes what it wrote.
    s3.put_object(Bucket=BUCKET, Key="uploads/a.jpg", Body=jpeg(640, 480, (200, 0, 0)))
    ours = version_key(s3, "uploads/a.jpg")
    newer: list[str] = []

    def newer_upload(kwargs: dict[str, Any]) -> None:
        if not newer:
            record = upload(s3, "uploads/a.jpg", jpeg(640, 480, (0, 200, 0)))
            newer.extend(invoke(make_handler("thumbnail"), event(record))["rendered"])

    hooked = HookedS3({("put_object", ours): newer_upload})
    monkeypatch.setattr(lambda_pipeline, "s3_client", lambda: hooked)
    result = invoke(make_handler("thumbnail"), batch_event("2.0", task("2.0", "t", "uploads/a.jpg")))
    assert result["results"] == [{"taskId": "t", "resultCode": "Succeeded", "resultString": "skipped: superseded"}]
    assert keys(s3, "renditions/") == sorted([*newer, state_key("uploads/a.jpg")])
    assert green(s3.get_object(Bucket=BUCKET, Key=newer[0])["Body"].read())


def green(body: bytes) -> bool:
    r, g, _ = Image.open(io.BytesIO(body)).convert("RGB").getpixel((10, 10))  # type: ignore[misc]
    return bool(g > 150 and r < 60)


def test_a_state_that_keeps_changing_is_a_temporary_failure(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    s3.put_object(Bucket=BUCKET, Key="uploads/a.jpg", Body=jpeg(640, 480))
    state = state_key("uploads/a.jpg")
    writes = iter(range(100))

    def other_writer(kwargs: dict[str, Any]) -> None:
        # Another invocation changes the state just before each of our writes: our compare-and-swap never holds.
        other = RenditionState("failed", "uploads/a.jpg", f"{next(writes):032x}", None)
        s3.put_object(Bucket=BUCKET, Key=state, Body=other.to_bytes())

    monkeypatch.setattr(lambda_pipeline, "s3_client", lambda: HookedS3({("put_object", state): other_writer}))
    (result,) = invoke(make_handler("thumbnail"), batch_event("2.0", task("2.0", "t", "uploads/a.jpg")))["results"]
    assert result["resultCode"] == "TemporaryFailure"
    assert result["resultString"].startswith("RenditionWriteConflictError: s3://")


# --- The schema itself ------------------------------------------------------------------------------------------


def test_unreadable_tasks_fail_permanently_and_the_rest_are_processed(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="uploads/a.jpg", Body=jpeg(640, 480))
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
    s3.put_object(Bucket=BUCKET, Key="uploads/a.jpg", Body=jpeg(640, 480))
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
    s3.put_object(Bucket=BUCKET, Key="uploads/a.jpg", Body=jpeg(640, 480))
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
