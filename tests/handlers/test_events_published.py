"""What the backend is told: the functions' EventBridge events, published through moto's EventBridge to a rule whose
target is an SQS queue, and read back from it — as a backend subscribes (docs/integrating.md)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from tests.contract.validate import as_eventbridge_delivers, validate_event

from kiray_imaging import aws_http, events, events_client
from kiray_imaging.events_client import MAX_ENTRY_BYTES, EventsError, entry_size
from kiray_imaging.lambda_pipeline import Handler, make_handler
from kiray_imaging.output_keys import rendition_key
from kiray_imaging.rendition_state import FileFacts, RenditionState

if TYPE_CHECKING:
    from tests.handlers.s3_helpers import BUCKET, delete, event, invoke, jpeg, upload, version_key
else:
    from s3_helpers import BUCKET, delete, event, invoke, jpeg, upload, version_key

KEY = "uploads/l7/front.jpg"
Read = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def published(s3: Any, monkeypatch: pytest.MonkeyPatch) -> Read:
    """The functions publish to the default bus; a rule sends everything from kiray.imaging to a queue. Returns a
    reader of what arrived since the last read (EventBridge envelopes), each checked against the contract."""
    monkeypatch.setenv("EVENT_BUS_NAME", "default")
    sqs, bridge = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName="backend")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bridge.put_rule(Name="kiray-imaging-to-backend", EventPattern=json.dumps({"source": ["kiray.imaging"]}))
    bridge.put_targets(Rule="kiray-imaging-to-backend", Targets=[{"Id": "backend", "Arn": arn}])

    def read() -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        while True:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return got
            for m in messages:
                envelope = json.loads(m["Body"])
                validate_event(as_eventbridge_delivers(envelope))  # every event emitted keeps the contract
                got.append(envelope)
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    return read


@pytest.fixture
def deployed(published: Read, monkeypatch: pytest.MonkeyPatch) -> dict[str, Handler]:
    thumbnail = make_handler("thumbnail")
    monkeypatch.setenv("OUTPUT_FORMAT", "jpeg,webp")
    medium = make_handler("medium")
    monkeypatch.setenv("OUTPUT_FORMAT", "jpeg")
    return {"thumbnail": thumbnail, "medium": medium}


def deliver(functions: dict[str, Handler], record: dict[str, Any]) -> None:
    for h in functions.values():
        invoke(h, event(record))


def by_rendition(envelopes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    assert {e["source"] for e in envelopes} == {"kiray.imaging"}
    return {e["detail"]["rendition"]: e for e in envelopes}


def test_an_upload_is_announced_once_per_function_with_every_file(
    s3: Any, deployed: dict[str, Handler], published: Read
) -> None:
    record = upload(s3, KEY, jpeg(1600, 1200))
    deliver(deployed, record)
    got = by_rendition(published())
    assert set(got) == {"thumbnail", "medium"}
    medium = got["medium"]
    assert medium["detail-type"] == "Rendition Created"
    detail = medium["detail"]
    assert detail["schemaVersion"] == 1
    assert detail["upload"] == {"bucket": BUCKET, "key": KEY, "etag": record["s3"]["object"]["eTag"],
                                "sequencer": record["s3"]["object"]["sequencer"], "width": 1600, "height": 1200,
                                "format": "jpeg"}  # fmt: skip
    assert [
        (f["key"], f["format"], f["contentType"], f["width"], f["height"], f["scale"]) for f in detail["files"]
    ] == [
        (version_key(s3, KEY, "medium", ".jpg"), "jpeg", "image/jpeg", 1280, 960, 1),
        (version_key(s3, KEY, "medium", ".webp"), "webp", "image/webp", 1280, 960, 1),
    ]
    for f in detail["files"]:
        assert f["bytes"] == len(s3.get_object(Bucket=BUCKET, Key=f["key"])["Body"].read())
    assert "replaces" not in detail


def test_the_upload_is_sized_as_displayed(s3: Any, deployed: dict[str, Handler], published: Read) -> None:
    from tests import images

    # A landscape photo stored turned (EXIF orientation 6), as phones do: the page shows it 1600x1200.
    deliver(deployed, upload(s3, KEY, images.oriented(images.noise((1600, 1200)), 6, "JPEG")))
    detail = by_rendition(published())["thumbnail"]["detail"]
    assert (detail["upload"]["width"], detail["upload"]["height"]) == (1600, 1200)
    assert [(f["width"], f["height"], f["scale"]) for f in detail["files"]] == [(400, 300, 1), (800, 600, 2)]


def test_a_replacement_says_what_it_replaces(s3: Any, deployed: dict[str, Handler], published: Read) -> None:
    deliver(deployed, upload(s3, KEY, jpeg(640, 480, (200, 0, 0))))
    before = {r: e["detail"]["files"] for r, e in by_rendition(published()).items()}
    deliver(deployed, upload(s3, KEY, jpeg(640, 480, (0, 200, 0))))
    after = by_rendition(published())
    for rendition, envelope in after.items():
        assert envelope["detail"]["replaces"] == [f["key"] for f in before[rendition]]


def test_a_failure_is_told_in_words_a_person_can_act_on(s3: Any, deployed: dict[str, Handler],
                                                      published: Read) -> None:  # fmt: skip
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    record = upload(s3, "uploads/l7/from-iphone.heic", heic)
    deliver(deployed, record)
    got = by_rendition(published())
    for envelope in got.values():
        assert envelope["detail-type"] == "Rendition Failed"
        assert envelope["detail"]["upload"] == {"bucket": BUCKET, "key": "uploads/l7/from-iphone.heic",
                                                "etag": record["s3"]["object"]["eTag"]}  # fmt: skip
        error = envelope["detail"]["error"]
        assert error["class"] == "UnsupportedFormatError"
        assert "HEIC" in error["message"]
        assert "JPEG" in error["message"]
    broken = upload(s3, "uploads/l7/broken.jpg", jpeg(640, 480)[:600])
    deliver(deployed, broken)
    error = by_rendition(published())["thumbnail"]["detail"]["error"]
    assert error["class"] == "DecodeError"
    assert "damaged or incomplete" in error["message"]


def test_a_deletion_lists_what_it_removed(s3: Any, deployed: dict[str, Handler], published: Read) -> None:
    deliver(deployed, upload(s3, KEY, jpeg(640, 480)))
    made = {r: [f["key"] for f in e["detail"]["files"]] for r, e in by_rendition(published()).items()}
    deliver(deployed, delete(s3, KEY))
    got = by_rendition(published())
    for rendition, envelope in got.items():
        assert envelope["detail-type"] == "Renditions Deleted"
        assert envelope["detail"] == {"schemaVersion": 1, "upload": {"bucket": BUCKET, "key": KEY},
                                      "rendition": rendition, "keys": made[rendition]}  # fmt: skip


def test_a_duplicate_carries_the_same_facts(s3: Any, deployed: dict[str, Handler], published: Read) -> None:
    record = upload(s3, KEY, jpeg(640, 480))
    deliver(deployed, record)
    first = {r: e["detail"] for r, e in by_rendition(published()).items()}
    deliver(deployed, record)
    assert {r: e["detail"] for r, e in by_rendition(published()).items()} == first


def test_nothing_is_told_of_a_skip(s3: Any, deployed: dict[str, Handler], published: Read) -> None:
    record = upload(s3, KEY, jpeg(640, 480))
    upload(s3, KEY, jpeg(640, 480, (0, 200, 0)))  # replaced before its event came: superseded
    deliver(deployed, record)
    assert published() == []


def test_a_failed_put_events_is_transient_and_the_retry_tells_it(
    s3: Any, published: Read, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aws_http, "MAX_BACKOFF_S", 0.0)
    record = upload(s3, KEY, jpeg(640, 480))
    real = events_client.from_environment

    def throttled() -> events_client.EventsClient:
        client = real()
        client.send = lambda *a: (_ for _ in ()).throw(ConnectionResetError("reset"))
        return client

    monkeypatch.setattr(events_client, "from_environment", throttled)
    h = make_handler("thumbnail")
    with pytest.raises(ConnectionResetError):
        invoke(h, event(record))
    assert published() == []
    monkeypatch.setattr(events_client, "from_environment", real)
    invoke(make_handler("thumbnail"), event(record))  # Lambda's retry, in a new environment
    (envelope,) = published()
    assert envelope["detail"]["files"][0]["key"] == version_key(s3, KEY)


def test_refused_entries_are_an_error_and_entries_have_a_size_limit() -> None:
    publisher = events.Publisher("no-such-bus")
    entry: events_client.PutEventsEntry
    (entry,) = publisher.entries([events.renditions_deleted(BUCKET, KEY, "thumbnail", ["k"] * 10)])
    assert entry_size(entry) < 2000
    client = events_client.EventsClient(region="us-east-1", credentials=lambda: aws_http.Credentials("a", "b"))
    with pytest.raises(ValueError, match="over EventBridge's 262144"):
        client.put_events([{**entry, "Detail": json.dumps({"x": "é" * MAX_ENTRY_BYTES})}])
    with pytest.raises(EventsError) as refused:
        raise EventsError("PutEvents", 200, "InternalFailure", "1 of 1 entries refused")
    assert "InternalFailure" in str(refused.value)


def test_the_largest_events_stay_far_under_eventbridges_entry_limit() -> None:
    """The largest event the pipeline can make: an upload key of S3's 1024 bytes (3-byte characters, ETag of a
    multipart upload, a sequencer) whose every file key is as long as S3 allows, each format at each density, a
    replaced version with as many, and the facts. EventBridge refuses an entry over 256 KB; the contract promises
    events that never come near it."""
    key = "uploads/" + "é" * ((1024 - len("uploads/")) // 2)
    etag = "9b2cf535f27731c974343645a3985328-10000"
    keys = [rendition_key(key, source_prefix="uploads/", dest_prefix="renditions/", rendition="thumbnail", fmt=fmt,
                          token=token, variant=variant)
            for token in ("9b2cf535f27731c9", "0123456789abcdef") for fmt in ("jpeg", "webp")
            for variant in ("", "@2x")]  # fmt: skip
    assert all(1000 < len(k.encode()) <= 1024 for k in keys)
    files = tuple(FileFacts(k, "jpeg", "image/jpeg", 800, 600, 10**8, 2) for k in keys[:4])
    facts = {"width": 60000, "height": 40000, "format": "jpeg", "placeholder": {"thumbHash": "A" * 48},
             "fingerprint": {"algorithm": "phash-dct64", "hash": "f" * 16}}  # fmt: skip
    state = RenditionState("current", key, etag, "0" * 64, files=files, version_id="v" * 1024, facts=facts)
    publisher = events.Publisher("a" * 256)
    made = [events.rendition_created("b" * 63, "thumbnail", state, keys[4:]),
            events.renditions_deleted("b" * 63, key, "thumbnail", keys),
            events.rendition_failed("b" * 63, key, etag, "thumbnail", "UnsupportedFormatError",
                                    events.person_message("UnsupportedFormatError", "HEIC", max_pixels=1,
                                                          max_input_bytes=1))]  # fmt: skip
    sizes = [entry_size(entry) for entry in publisher.entries(made)]
    assert max(sizes) < MAX_ENTRY_BYTES // 16, sizes
