"""What the rehearsal sends each function and what it expects back, in the shapes production delivers.

The events are the fixtures of tests/events/ pointed at objects uploaded to the local S3 first: EventBridge's
"Object Created" (what the functions' rules match), classic S3 notification records (two at once), S3 Batch
Operations tasks in both invocation schemas (backfills), a broken upload (an HTML page named .jpg), and an
"Object Deleted" event for a photo that is still there (a delete of an older version: it must change nothing)
and one for a photo that never had renditions (removed: none). Afterwards the bucket must hold exactly the
renditions each function is configured to write, under the versioned keys of python/kiray_imaging/output_keys.py,
each an image of the right size and type, and each upload's current.json.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from PIL import Image

from scripts.local_aws import describe
from scripts.rehearse.package import Function

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"
PREFIX = "uploads/rehearsal/"
EXTENSIONS = {"jpeg": (".jpg", "JPEG", "image/jpeg"), "webp": (".webp", "WEBP", "image/webp")}
# What each rendition is (python/kiray_imaging/presets.py): the thumbnail exactly this size, the medium's longer side.
THUMBNAIL_SIZE, MEDIUM_SIDE = (400, 300), 1280


class RehearsalError(AssertionError):
    """A function answered, but not as production needs it to."""


@dataclass(frozen=True)
class Case:
    name: str
    event: dict[str, Any]
    check: Callable[[Function, Any], None]
    """Raises `RehearsalError` when the handler's response is not what this event should give."""
    renders: tuple[tuple[str, str], ...] = field(default=())
    """The (source key, ETag) of each upload whose renditions this event must write."""
    tells: tuple[tuple[str, str], ...] = field(default=())
    """The events for the backend it makes each function publish: (detail-type, source key). Renders tell their
    "Rendition Created" already."""

    def told(self) -> list[tuple[str, str]]:
        return [("Rendition Created", key) for key, _ in self.renders] + list(self.tells)


def _fixture(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def rendition(fn: Function) -> str:
    """``generate-thumbnail`` → ``thumbnail``."""
    return fn.name.removeprefix("generate-")


def rendition_keys(fn: Function, source_key: str, etag: str) -> list[str]:
    """Where the function writes that version of the upload: the pipeline's own naming (from .venv's core, the one
    the layer was built from). Every photo here is large enough for the thumbnail's @2x file."""
    from kiray_imaging.output_keys import rendition_key, scale_variant, version_token
    from kiray_imaging.presets import PRESETS

    env = fn.environment
    return [rendition_key(source_key, source_prefix=env["SOURCE_PREFIX"], dest_prefix=env["DEST_PREFIX"],
                          rendition=rendition(fn), fmt=f, token=version_token(etag), variant=scale_variant(scale))
            for scale in PRESETS[rendition(fn)].scales
            for f in env.get("OUTPUT_FORMAT", "jpeg").split(",")]  # fmt: skip


def state_key(fn: Function, source_key: str) -> str:
    from kiray_imaging.output_keys import pointer_key

    env = fn.environment
    return pointer_key(source_key, source_prefix=env["SOURCE_PREFIX"], dest_prefix=env["DEST_PREFIX"],
                       rendition=rendition(fn))  # fmt: skip


def _expect(condition: bool, what: str, response: Any) -> None:
    if not condition:
        raise RehearsalError(f"{what}; the handler returned {json.dumps(response)[:600]}")


def _rendered(*uploads: tuple[str, str]) -> Callable[[Function, Any], None]:
    def check(fn: Function, response: Any) -> None:
        expected = sorted(k for key, etag in uploads for k in rendition_keys(fn, key, etag))
        _expect(isinstance(response, dict) and sorted(response.get("rendered", [])) == expected,
                f"expected renditions {expected}", response)  # fmt: skip
        _expect(not response.get("failed"), "expected no failures", response)

    return check


def _failed(key: str, error_class: str) -> Callable[[Function, Any], None]:
    def check(fn: Function, response: Any) -> None:
        _expect(isinstance(response, dict) and response.get("rendered") == []
                and response.get("failed") == [{"key": key, "error_class": error_class}],
                f"expected {key} to fail permanently as {error_class}, with nothing rendered", response)  # fmt: skip

    return check


def _nothing(fn: Function, response: Any) -> None:
    _expect(isinstance(response, dict) and response.get("rendered") == [] and not response.get("failed"),
            "expected nothing rendered and nothing failed", response)  # fmt: skip


def _removed_none(fn: Function, response: Any) -> None:
    _expect(isinstance(response, dict) and response.get("removed") == [] and not response.get("failed"),
            "expected a deletion that removed nothing and failed nothing", response)  # fmt: skip


def _batch(task_id: str, key: str, etag: str) -> Callable[[Function, Any], None]:
    def check(fn: Function, response: Any) -> None:
        results = response.get("results") if isinstance(response, dict) else None
        expected = "rendered: " + " ".join(rendition_keys(fn, key, etag))
        _expect(results == [{"taskId": task_id, "resultCode": "Succeeded", "resultString": expected}],
                f"expected task {task_id} Succeeded with {expected!r}", response)  # fmt: skip

    return check


def _upload(s3: Any, bucket: str, key: str, body: bytes) -> tuple[int, str]:
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    etag = str(s3.head_object(Bucket=bucket, Key=key)["ETag"]).strip('"')
    return len(body), etag


def _png(photo: bytes) -> bytes:
    with Image.open(io.BytesIO(photo)) as image:
        small = image.convert("RGB")
        small.thumbnail((1600, 1600))
        out = io.BytesIO()
        small.save(out, "PNG")
        return out.getvalue()


def seed(s3: Any, bucket: str, photo: bytes) -> list[Case]:
    """Uploads the objects the events name and returns the events in the order each function gets them."""
    cases = []

    created = _fixture("eventbridge_object_created.json")
    key = f"{PREFIX}eventbridge/living room.jpg"
    size, etag = _upload(s3, bucket, key, photo)
    created["resources"] = [f"arn:aws:s3:::{bucket}"]
    created["detail"]["bucket"]["name"] = bucket
    created["detail"]["object"].update(key=quote_plus(key, safe="/"), size=size, etag=etag)
    cases.append(Case("EventBridge Object Created", created, _rendered((key, etag)), ((key, etag),)))

    records = _fixture("s3_notification_two_records.json")
    keys = [f"{PREFIX}s3/front door + porch.jpg", f"{PREFIX}s3/küche.png"]
    uploads = []
    for record, record_key, body in zip(records["Records"], keys, (photo, _png(photo))):
        size, record_etag = _upload(s3, bucket, record_key, body)
        uploads.append((record_key, record_etag))
        record["s3"]["bucket"].update(name=bucket, arn=f"arn:aws:s3:::{bucket}")
        record["s3"]["object"].update(key=quote_plus(record_key, safe="/"), size=size, eTag=record_etag)
    cases.append(Case("S3 notification records", records, _rendered(*uploads), tuple(uploads)))

    for schema in ("2.0", "1.0"):
        batch = _fixture(f"batch_operations_{schema.replace('.', '_')}.json")
        batch_key = f"{PREFIX}batch-{schema}/garden view.jpg"
        _, batch_etag = _upload(s3, bucket, batch_key, photo)
        (task,) = batch["tasks"]
        if schema == "1.0":  # names the bucket by ARN and URL-encodes the key
            task.update(s3BucketArn=f"arn:aws:s3:::{bucket}", s3Key=quote(batch_key, safe="/"))
        else:
            task.update(s3Bucket=bucket, s3Key=batch_key)
        cases.append(Case(f"Batch Operations task (schema {schema})", batch,
                          _batch(task["taskId"], batch_key, batch_etag), ((batch_key, batch_etag),)))  # fmt: skip

    broken = _fixture("eventbridge_object_created.json")
    broken_key = f"{PREFIX}broken/notes.jpg"
    size, etag = _upload(s3, bucket, broken_key, b"<html><body>not a photo</body></html>")
    broken["detail"]["bucket"]["name"] = bucket
    broken["detail"]["object"].update(key=quote_plus(broken_key, safe="/"), size=size, etag=etag)
    cases.append(Case("broken upload (HTML named .jpg)", broken, _failed(broken_key, "UnsupportedFormatError"),
                      tells=(("Rendition Failed", broken_key),)))  # fmt: skip

    deleted = _fixture("eventbridge_object_deleted.json")
    deleted["detail"]["bucket"]["name"] = bucket
    deleted["detail"]["object"]["key"] = quote_plus(key, safe="/")
    cases.append(Case("EventBridge Object Deleted (the photo is still there)", deleted, _nothing))
    never = _fixture("s3_notification_removed.json")
    never["Records"] = never["Records"][:1]
    never["Records"][0]["s3"]["bucket"].update(name=bucket, arn=f"arn:aws:s3:::{bucket}")
    never_key = f"{PREFIX}never/rendered.jpg"
    never["Records"][0]["s3"]["object"]["key"] = quote_plus(never_key, safe="/")
    cases.append(Case("S3 ObjectRemoved:Delete (nothing was ever rendered)", never, _removed_none,
                      tells=(("Renditions Deleted", never_key),)))  # fmt: skip
    return cases


def check_bucket(s3: Any, functions: list[Function], cases: list[Case]) -> list[str]:
    """What landed under the destination prefix: exactly the expected renditions, each decodable, of the right size,
    format, Content-Type and Cache-Control. Returns one line per rendition checked."""
    bucket, dest = functions[0].environment["DEST_BUCKET"], functions[0].environment["DEST_PREFIX"]
    expected = {k: fn for fn in functions for case in cases for key, etag in case.renders
                for k in rendition_keys(fn, key, etag)}  # fmt: skip
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=dest).get("Contents", [])
    found = sorted(o["Key"] for o in listed if not o["Key"].endswith("/current.json"))
    if found != sorted(expected):
        missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
        raise RehearsalError(f"renditions in s3://{bucket}/{dest}: missing {missing}, unexpected {extra}")
    states = {o["Key"] for o in listed if o["Key"].endswith("/current.json")}
    unrecorded = [state_key(fn, key) for fn in functions for case in cases for key, _ in case.renders
                  if state_key(fn, key) not in states]  # fmt: skip
    if unrecorded:
        raise RehearsalError(f"uploads rendered without their current.json: {unrecorded}")
    lines = []
    for key in found:
        fn = expected[key]
        fmt = next(f for f, (ext, _, _) in EXTENSIONS.items() if key.endswith(ext))
        obj = s3.get_object(Bucket=bucket, Key=key)
        body = obj["Body"].read()
        with Image.open(io.BytesIO(body)) as image:
            size, decoded = image.size, image.format
        problems = []
        if decoded != EXTENSIONS[fmt][1] or obj["ContentType"] != EXTENSIONS[fmt][2]:
            problems.append(f"{decoded} sent as {obj['ContentType']}")
        if obj.get("CacheControl") != fn.environment["CACHE_CONTROL"]:
            problems.append(f"Cache-Control {obj.get('CacheControl')!r}")
        scale = 2 if "@2x." in key else 1
        want = (THUMBNAIL_SIZE[0] * scale, THUMBNAIL_SIZE[1] * scale)
        if rendition(fn) == "thumbnail" and size != want:
            problems.append(f"{size[0]}x{size[1]}, expected {want[0]}x{want[1]}")
        if rendition(fn) == "medium" and max(size) != MEDIUM_SIDE:
            problems.append(f"{size[0]}x{size[1]}, expected a longer side of {MEDIUM_SIDE}")
        if problems:
            raise RehearsalError(f"s3://{bucket}/{key}: " + "; ".join(problems))
        lines.append(f"  {key}: {decoded} {size[0]}x{size[1]}, {len(body)} bytes, {obj['ContentType']}")
    return lines


def check_events(received: list[dict[str, Any]], functions: list[Function], cases: list[Case]) -> list[str]:
    """What the functions told the backend (EventBridge, read back from a queue): exactly one event per function and
    case that should make one, each from kiray.imaging. Returns one line per event."""
    expected = sorted((kind, rendition(fn), key) for fn in functions for case in cases for kind, key in case.told())
    got = sorted((e["detail-type"], e["detail"]["rendition"], e["detail"]["upload"]["key"]) for e in received)
    if got != expected or any(e["source"] != "kiray.imaging" for e in received):
        raise RehearsalError(f"events for the backend: expected {expected}, got {got}")
    return [
        f"  {describe(e)}"
        for e in sorted(
            received, key=lambda e: (e["detail-type"], e["detail"]["rendition"], e["detail"]["upload"]["key"])
        )
    ]
