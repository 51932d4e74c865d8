"""Event parsing: both trigger shapes, URL-decoding of keys, and what is ignored or refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kiray_imaging.s3_events import EventShapeError, S3Object, objects_from_event, sequencer_is_newer

EVENTS = Path(__file__).resolve().parents[1] / "events"


def load(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def test_s3_notification_records_are_all_read_and_keys_decoded() -> None:
    objects = objects_from_event(load("s3_notification_two_records.json"))
    assert objects == [
        S3Object("kiray-test-photos", "uploads/listing-7/front door + porch.jpg", 1024, None, "0A1B2C3D4E5F678901"),
        S3Object("kiray-test-photos", "uploads/listing-7/küche.png", 2048,
                 "fedcba9876543210fedcba9876543210-2", "0A1B2C3D4E5F678902"),
    ]  # fmt: skip


def test_eventbridge_object_created() -> None:
    (obj,) = objects_from_event(load("eventbridge_object_created.json"))
    assert obj == S3Object("kiray-test-photos", "uploads/listing-7/living room.jpg", 1024,
                           "b1946ac92492d2347c6235b4d2611184", "00617F08299329D189")  # fmt: skip


def test_s3_test_event_is_ignored() -> None:
    assert objects_from_event(load("s3_test_event.json")) == []


def test_deletions_in_both_shapes() -> None:
    (obj,) = objects_from_event(load("eventbridge_object_deleted.json"))
    assert obj == S3Object("kiray-test-photos", "uploads/listing-7/living room.jpg", None, None, "00617F0829A2B3C4D5",
                           deleted=True)  # fmt: skip
    # A delete, a delete marker (versioned bucket) and a lifecycle expiration: all three are the upload going.
    assert objects_from_event(load("s3_notification_removed.json")) == [
        S3Object("kiray-test-photos", "uploads/listing-7/front door + porch.jpg", None, None, "0A1B2C3D4E5F678903",
                 deleted=True),
        S3Object("kiray-test-photos", "uploads/listing-7/küche.png", None, None, "0A1B2C3D4E5F678904", deleted=True),
        S3Object("kiray-test-photos", "uploads/listing-7/old.jpg", None, None, "0A1B2C3D4E5F678905", deleted=True),
    ]  # fmt: skip


def test_other_events_are_ignored() -> None:
    event = load("s3_notification_two_records.json")
    event["Records"][0]["eventName"] = "ObjectRestore:Completed"
    assert [o.key for o in objects_from_event(event)] == ["uploads/listing-7/küche.png"]
    bridge = load("eventbridge_object_created.json")
    bridge["detail-type"] = "Object Tags Added"
    assert objects_from_event(bridge) == []


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"Records": "nope"},
        {"Records": [{"eventSource": "aws:sqs"}]},
        {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {"bucket": {}}}]},
        {"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {"name": 1}, "object": {}}},
        {"source": "aws.s3", "detail-type": "Object Deleted", "detail": {"bucket": {"name": "b"}, "object": {}}},
        {"source": "aws.s3", "detail-type": "Object Deleted", "detail": "nope"},
        {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectRemoved:Delete", "s3": {"bucket": {"name": "b"}}}]},
    ],
)
def test_malformed_events_raise_a_shape_error(event: dict[str, Any]) -> None:
    with pytest.raises(EventShapeError):
        objects_from_event(event)


@pytest.mark.parametrize(
    ("candidate", "reference", "newer"),
    [
        ("0055AED6DCD90281E6", "0055AED6DCD90281E5", True),
        ("0055AED6DCD90281E5", "0055AED6DCD90281E6", False),
        ("0055AED6DCD90281E5", "0055AED6DCD90281E5", False),  # a duplicate delivery is not newer
        ("0055aed6dcd90281e6", "0055AED6DCD90281E5", True),  # case does not matter
        ("0055AED6DCD90281E5", "0055AED6DCD90281E5" + "00", False),  # padding is with zeros: equal
        ("0055AED6DCD90281E501", "0055AED6DCD90281E5", True),
        # Different lengths: the shorter is right-padded (AWS's current text; the older text said left-padded).
        ("1", "0F", True),
        ("0F", "1", False),
    ],
)
def test_sequencers_compare_as_s3_documents(candidate: str, reference: str, newer: bool) -> None:
    assert sequencer_is_newer(candidate, reference) is newer


def test_a_sequencer_that_is_not_hex_is_dropped() -> None:
    event = load("eventbridge_object_created.json")
    event["detail"]["object"]["sequencer"] = "not-hex; <script>"
    assert objects_from_event(event)[0].sequencer is None
    event["detail"]["object"]["sequencer"] = ""
    assert objects_from_event(event)[0].sequencer is None
