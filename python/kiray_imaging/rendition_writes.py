"""Writing a rendition so that a stale event never overwrites a newer one: what each rendition records about its
source (metadata), and the conditional-write protocol that makes "compare, then write" one step.

Each rendition records the version it was made from: ``source-etag``, ``source-sequencer`` (the event's place in S3's
order of events for the key) and ``source-key`` (percent-encoded; ``source-key-sha256`` when it would not fit S3's
2 KB of metadata). Writes are conditional: create with ``If-None-Match: *``; if the rendition exists, read its
metadata and, unless ``Replacement`` says leave it, replace exactly that version (``If-Match: <its ETag>``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from urllib.parse import quote

from kiray_imaging.failures import is_missing, lost_a_race
from kiray_imaging.s3_client import PutObjectRequest, S3Client, S3Error
from kiray_imaging.s3_events import S3Object, sequencer_is_newer

_WRITE_ATTEMPTS = 3
# S3 allows 2 KB of user metadata (names + values, UTF-8); a longer source key is stored as its sha256.
_MAX_SOURCE_KEY_METADATA = 1024
_SOURCE_KEY_FIELDS = ("source-key", "source-key-sha256")

Replacement = Callable[[Mapping[str, str]], "Mapping[str, str] | None"]
"""Given an existing rendition's metadata: the metadata to replace it with, or ``None`` to leave it alone."""


class RenditionWriteConflictError(RuntimeError):
    """Other writers kept replacing the rendition while this one tried: transient, so Lambda retries the event."""


def rendition_metadata(obj: S3Object, etag: str) -> dict[str, str]:
    """What a rendition records about its source: the version it was made from, and that event's place in the
    order of events for the key. Metadata must be ASCII: the key is percent-encoded."""
    metadata = {"source-etag": etag}
    if obj.sequencer:
        metadata["source-sequencer"] = obj.sequencer
    key = quote(obj.key, safe="/")
    if len(key) <= _MAX_SOURCE_KEY_METADATA:
        metadata["source-key"] = key
    else:
        metadata["source-key-sha256"] = hashlib.sha256(obj.key.encode()).hexdigest()
    return metadata


def _same_source_key(existing: Mapping[str, str], ours: Mapping[str, str]) -> bool:
    return all(existing.get(name) == ours.get(name) for name in _SOURCE_KEY_FIELDS)


def newer_rendition_exists(existing: Mapping[str, str], ours: Mapping[str, str]) -> bool:
    """Whether ``existing`` (a rendition's metadata) was made from a later upload of the same key than ``ours``."""
    theirs, mine = existing.get("source-sequencer"), ours.get("source-sequencer")
    if not theirs or not mine:
        return False
    # Sequencers only order events of one key; another source that maps to the same rendition key is not ordered.
    return _same_source_key(existing, ours) and sequencer_is_newer(theirs, mine)


def _source_is_current(s3: S3Client, obj: S3Object, etag: str) -> bool:
    """Whether the source is still the version we rendered (HEAD; the role may GetObject on the source prefix)."""
    try:
        current = s3.head_object(Bucket=obj.bucket, Key=obj.key)
    except S3Error as e:
        if is_missing(e):
            return False
        raise
    return str(current.get("ETag", "")).strip('"') == etag


def replacement(s3: S3Client, obj: S3Object, etag: str, ours: Mapping[str, str]) -> Replacement:
    """When a rendition already exists, whether ours replaces it.

    An event has a ``sequencer``: S3's order of events for the key decides (``newer_rendition_exists``). A Batch
    Operations task has none — it renders the object as it is now — so there is no order to compare. Instead:
    a rendition of the same source version is replaced (that is what a backfill is for: new presets or encoder),
    keeping the event's sequencer so a slow, older event still loses to it; a rendition of another version is
    replaced only if our source is still the current version. If a newer upload got in between, its own event
    renders it: we leave its rendition alone, or it replaces ours (ours carries no sequencer to stop it)."""
    current: list[bool] = []

    def decide(existing: Mapping[str, str]) -> Mapping[str, str] | None:
        if obj.sequencer:
            return None if newer_rendition_exists(existing, ours) else ours
        if _same_source_key(existing, ours) and existing.get("source-etag") == etag:
            sequencer = existing.get("source-sequencer")
            return {**ours, "source-sequencer": sequencer} if sequencer else ours
        if not current:
            current.append(_source_is_current(s3, obj, etag))
        return ours if current[0] else None

    return decide


def _raise_unless_lost_a_race(e: S3Error) -> None:
    if not lost_a_race(e):
        raise e


def write_rendition(s3: S3Client, request: PutObjectRequest, decide: Replacement) -> bool:
    """Writes the rendition unless ``decide`` says to leave an existing one alone (``False``), e.g. one made
    from a later upload of the source.

    Losing a race to another writer means looking again. The existing rendition is only read once S3 has said it
    exists, so a 403 there is a real refusal, not a missing key."""
    bucket, key = request["Bucket"], request["Key"]
    for _ in range(_WRITE_ATTEMPTS):
        try:
            create: PutObjectRequest = {**request, "IfNoneMatch": "*"}
            s3.put_object(**create)
            return True
        except S3Error as e:
            _raise_unless_lost_a_race(e)
        try:
            existing = s3.head_object(Bucket=bucket, Key=key)
        except S3Error as e:
            _raise_unless_lost_a_race(e)
            continue
        metadata = decide(existing.get("Metadata", {}))
        if metadata is None:
            return False
        try:
            replace: PutObjectRequest = {**request, "Metadata": dict(metadata), "IfMatch": existing["ETag"]}
            s3.put_object(**replace)
            return True
        except S3Error as e:
            _raise_unless_lost_a_race(e)
    raise RenditionWriteConflictError(f"s3://{bucket}/{key} kept changing during {_WRITE_ATTEMPTS} conditional writes")
