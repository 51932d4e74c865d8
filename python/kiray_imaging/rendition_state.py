"""``current.json``: which version of an upload a rendition's files are of — one small JSON document per upload and
rendition, next to the files (output_keys.py), changed only by compare-and-swap (``If-Match`` its ETag, or
``If-None-Match: *`` to create it). It is the one place that orders what happens to a key, so that events arriving
late, twice or out of order cannot undo a newer one (lifecycle.py has the rules).

Each function keeps its own (``renditions/thumbnail/…/current.json``, ``renditions/medium/…/current.json``): the two
never write each other's documents or files. The backend may read it to find an upload's current files without
listing the bucket; it is served with ``Cache-Control: no-cache`` because it changes.

    {"v": 1, "state": "current", "upload": {"key": "uploads/l7/front.jpg", "etag": "9b2c…", "sequencer": "0061…"},
     "files": [{"key": "renditions/thumbnail/l7/front.jpg/9b2cf535f27731c9.jpg", "format": "jpeg",
                "contentType": "image/jpeg", "width": 400, "height": 300, "bytes": 28595}],
     "superseded": ["renditions/thumbnail/l7/front.jpg/77b1c0de00000000.jpg"]}

``state`` is ``current`` (``files`` are the renditions of ``upload``), ``failed`` (that version could not be
rendered: ``error``; it has no files) or ``deleted`` (the upload was deleted: a tombstone, tagged so that the
bucket's lifecycle rule expires it, kept meanwhile so that a late event of an older version renders nothing).
``superseded``: the files the last change replaced, deleted right after it; kept so that a retry after a crash
deletes them too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from kiray_imaging.failures import is_missing, lost_a_race
from kiray_imaging.output_keys import version_token
from kiray_imaging.s3_client import PutObjectRequest, S3Client, S3Error

SCHEMA = 1
Kind = Literal["current", "failed", "deleted"]
TOMBSTONE_TAG = "kiray-imaging=deleted"
"""On deleted-state documents: the bucket's lifecycle rule (serverless.yml ``TombstonesExpire``) expires them."""
CACHE_CONTROL = "no-cache"
# A document names a handful of keys of at most 1 KB each; anything far larger is not one of ours.
_MAX_DOCUMENT_BYTES = 256 * 1024


@dataclass(frozen=True)
class FileFacts:
    key: str
    format: str
    content_type: str
    width: int
    height: int
    bytes: int
    scale: int = 1
    """1 for the rendition's own size; 2 for its 2x file (for high-density screens), written beside it."""

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "format": self.format, "contentType": self.content_type, "width": self.width,
                "height": self.height, "bytes": self.bytes, "scale": self.scale}  # fmt: skip

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> FileFacts:
        return cls(str(raw["key"]), str(raw["format"]), str(raw["contentType"]), int(raw["width"]),
                   int(raw["height"]), int(raw["bytes"]), int(raw.get("scale", 1)))  # fmt: skip


@dataclass(frozen=True)
class RenditionState:
    kind: Kind
    upload_key: str
    etag: str | None
    """The upload version's ETag (``None`` in a tombstone)."""
    sequencer: str | None
    """S3's order of the event that made this state; ``None`` when a Batch Operations task did (no event)."""
    files: tuple[FileFacts, ...] = ()
    superseded: tuple[str, ...] = ()
    version_id: str | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)
    """What else the functions know of the version (the upload's displayed size and format, …): events repeat it."""
    error: Mapping[str, str] = field(default_factory=dict)
    """``failed``: ``{"class": …, "message": …}``."""

    @property
    def token(self) -> str | None:
        return version_token(self.etag) if self.etag and self.kind != "deleted" else None

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.files)

    def to_bytes(self) -> bytes:
        upload: dict[str, Any] = {"key": self.upload_key}
        for name, value in (("etag", self.etag), ("versionId", self.version_id), ("sequencer", self.sequencer)):
            if value:
                upload[name] = value
        doc: dict[str, Any] = {"v": SCHEMA, "state": self.kind, "upload": upload,
                               "files": [f.to_json() for f in self.files]}  # fmt: skip
        if self.superseded:
            doc["superseded"] = list(self.superseded)
        if self.facts:
            doc["facts"] = dict(self.facts)
        if self.error:
            doc["error"] = dict(self.error)
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> RenditionState:
        """Raises ``StateDocumentError`` for a document that is not one of ours."""
        try:
            doc = json.loads(data)
            upload = doc["upload"]
            kind = doc["state"]
            if doc.get("v") != SCHEMA or kind not in ("current", "failed", "deleted"):
                raise StateDocumentError(f"unknown state document (v={doc.get('v')!r}, state={kind!r})")
            return cls(
                kind=kind,
                upload_key=str(upload["key"]),
                etag=upload.get("etag"),
                sequencer=upload.get("sequencer"),
                version_id=upload.get("versionId"),
                files=tuple(FileFacts.from_json(f) for f in doc.get("files", [])),
                superseded=tuple(str(k) for k in doc.get("superseded", [])),
                facts=dict(doc.get("facts", {})),
                error={str(k): str(v) for k, v in doc.get("error", {}).items()},
            )
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            if isinstance(e, StateDocumentError):
                raise
            raise StateDocumentError(f"malformed state document: {e}") from None


class StateDocumentError(ValueError):
    """``current.json`` is not a document of ours (or of a newer schema): an operator must look at it."""


class StateChangedError(Exception):
    """Another invocation changed the document between our read and our write: read again, decide again."""


@dataclass(frozen=True)
class Read:
    state: RenditionState | None
    etag: str | None
    """The document's own ETag, for ``If-Match``; ``None`` when there is none yet."""


def read(s3: S3Client, bucket: str, key: str) -> Read:
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except S3Error as e:
        if is_missing(e):
            return Read(None, None)
        raise
    if int(response.get("ContentLength", 0)) > _MAX_DOCUMENT_BYTES:
        response["Body"].close()
        raise StateDocumentError(f"s3://{bucket}/{key} is too large to be a state document")
    return Read(RenditionState.from_bytes(response["Body"].read()), response["ETag"])


def write(s3: S3Client, bucket: str, key: str, state: RenditionState, replacing: Read) -> None:
    """Writes ``state`` only if the document is still what ``replacing`` read; else ``StateChangedError``."""
    request: PutObjectRequest = {
        "Bucket": bucket,
        "Key": key,
        "Body": state.to_bytes(),
        "ContentType": "application/json",
        "CacheControl": CACHE_CONTROL,
    }
    if replacing.etag is None:
        request["IfNoneMatch"] = "*"
    else:
        request["IfMatch"] = replacing.etag
    if state.kind == "deleted":
        request["Tagging"] = TOMBSTONE_TAG
    try:
        s3.put_object(**request)
    except S3Error as e:
        if lost_a_race(e):
            raise StateChangedError(key) from e
        raise
