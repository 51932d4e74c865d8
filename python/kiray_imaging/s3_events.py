"""Which S3 objects an invocation is about, and whether each was created or deleted. Understands the two shapes our
trigger can deliver: S3 notification records (``ObjectCreated:*``, ``ObjectRemoved:*``, ``LifecycleExpiration:*``)
and EventBridge "Object Created" / "Object Deleted" events. Keys arrive URL-encoded (spaces as ``+``) and are
decoded here, in one place. Also how two events for one key are ordered (their ``sequencer``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

_HEX = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True)
class S3Object:
    bucket: str
    key: str
    """Decoded, as S3 stores it."""
    size: int | None
    etag: str | None
    sequencer: str | None
    """S3's order of events for this key (hex); ``None`` when absent or not hex."""
    version_id: str | None = None
    """The version a Batch Operations manifest named: the one expected to be current. (A delete event's version is
    not kept: whether the upload is gone is asked of S3 itself, lifecycle.py.)"""
    deleted: bool = False
    """A deletion (``Object Deleted``, ``ObjectRemoved:*``, a lifecycle expiration) rather than a creation."""


class EventShapeError(ValueError):
    """The event is neither an S3 notification nor an EventBridge S3 event: nothing can be retried."""


def _object(bucket: Any, obj: Any, *, deleted: bool = False) -> S3Object:
    if not isinstance(bucket, Mapping) or not isinstance(obj, Mapping):
        raise EventShapeError("expected 'bucket' and 'object' mappings")
    name, key = bucket.get("name"), obj.get("key")
    if not isinstance(name, str) or not isinstance(key, str):
        raise EventShapeError("expected bucket.name and object.key strings")
    size = obj.get("size")
    etag = obj.get("eTag", obj.get("etag"))
    sequencer = obj.get("sequencer")
    return S3Object(
        bucket=name,
        key=unquote_plus(key),
        size=size if isinstance(size, int) else None,
        etag=etag.strip('"') if isinstance(etag, str) else None,
        sequencer=sequencer if isinstance(sequencer, str) and sequencer and set(sequencer) <= _HEX else None,
        deleted=deleted,
    )


# S3 notification event names: created, or gone (deleted, a delete marker, or expired by a lifecycle rule).
_CREATED = ("ObjectCreated:",)
_DELETED = ("ObjectRemoved:", "LifecycleExpiration:")


def objects_from_event(event: Mapping[str, Any]) -> list[S3Object]:
    """The created and deleted objects named by ``event``; ``[]`` for S3's ``s3:TestEvent`` and for other records
    (restores, tags, ACLs)."""
    if event.get("Event") == "s3:TestEvent":
        return []
    if "Records" in event:
        records = event["Records"]
        if not isinstance(records, list):
            raise EventShapeError("expected 'Records' to be a list")
        objects = []
        for record in records:
            if not isinstance(record, Mapping) or record.get("eventSource") != "aws:s3":
                raise EventShapeError("expected S3 notification records (eventSource aws:s3)")
            name = str(record.get("eventName", ""))
            if not name.startswith(_CREATED + _DELETED):
                continue
            s3 = record.get("s3")
            if not isinstance(s3, Mapping):
                raise EventShapeError("expected an 's3' mapping in each record")
            objects.append(_object(s3.get("bucket"), s3.get("object"), deleted=name.startswith(_DELETED)))
        return objects
    if event.get("source") == "aws.s3" and "detail" in event:
        kind = event.get("detail-type")
        if kind not in ("Object Created", "Object Deleted"):
            return []
        detail = event["detail"]
        if not isinstance(detail, Mapping):
            raise EventShapeError("expected 'detail' to be a mapping")
        return [_object(detail.get("bucket"), detail.get("object"), deleted=kind == "Object Deleted")]
    raise EventShapeError(f"unrecognised event with keys {sorted(event)[:8]}")


def sequencer_is_newer(candidate: str, reference: str) -> bool:
    """Whether the event with sequencer ``candidate`` happened after the one with ``reference``, for the same key
    (sequencers of different keys are not comparable). As S3 documents it: sequencers are hex strings of varying
    length; right-pad the shorter with zeros, then compare lexicographically. Case is normalised first."""
    width = max(len(candidate), len(reference))
    return candidate.upper().ljust(width, "0") > reference.upper().ljust(width, "0")
