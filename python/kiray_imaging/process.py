"""One object, one preset. An upload: read exactly the version the event names, render it, write its files, make it
the upload's current version (its ``current.json``), remove what it replaces. A deletion: remove the upload's
renditions. Every way it ends is an ``Outcome`` (outcomes.py), reported once; only a transient failure is raised.

What may change what, when events come late, twice or out of order, is lifecycle.py's; how the files and the state
are kept in agreement, rendition_writes.py's.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kiray_imaging import config, events, metrics
from kiray_imaging._core import ImageError
from kiray_imaging.failures import classify, error_code, is_missing
from kiray_imaging.lifecycle import Verdict, create_verdict, delete_verdict, later_sequencer
from kiray_imaging.logs import log
from kiray_imaging.outcomes import Outcome, Skip, failed, removed, rendered, skipped
from kiray_imaging.output_keys import file_name, scale_variant, version_token
from kiray_imaging.presets import Preset
from kiray_imaging.rendering import Rendition, Upload, render_upload
from kiray_imaging.rendition_state import FileFacts, RenditionState, StateDocumentError
from kiray_imaging.rendition_writes import Change, Folder, settle, source_metadata, transition
from kiray_imaging.report import report
from kiray_imaging.s3_client import PutObjectRequest, S3Client, S3Error
from kiray_imaging.s3_events import S3Object, sequencer_is_newer

FINGERPRINT_ALGORITHM = "phash-dct64"
"""rust_core/src/fingerprint.rs; contract/schemas/rendition-created.json names it too."""


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)


@dataclass(frozen=True)
class _Source:
    data: bytes
    etag: str
    version_id: str | None
    download_ms: float


@dataclass(frozen=True)
class _Made:
    """One rendition file, encoded and ready to write."""

    facts: FileFacts
    request: PutObjectRequest
    rendition: Rendition


def _failed(settings: config.Settings, preset: Preset, obj: S3Object, error_class: str, message: str,
            etag: str | None = None, **facts: Any) -> Outcome:  # fmt: skip
    """A permanent failure, for the log and for the backend (a "Rendition Failed" a person can read)."""
    told = events.person_message(error_class, message, max_pixels=settings.max_pixels,
                                 max_input_bytes=settings.max_input_bytes)  # fmt: skip
    event = events.rendition_failed(obj.bucket, obj.key, etag or obj.etag, preset.name, error_class, told)
    return dataclasses.replace(failed(obj.key, error_class, message, **facts), event=event)


def _too_large(settings: config.Settings, preset: Preset, obj: S3Object, size: int) -> Outcome:
    return _failed(settings, preset, obj, "LimitExceededError", f"object is {size} bytes, over MAX_INPUT_BYTES",
                   input_bytes=size)  # fmt: skip


def _own_keys(folder: Folder, token: str) -> list[str]:
    """Every file this function may write for the version ``token`` (the @2x ones only when the photo is large)."""
    return [folder.prefix + file_name(token, fmt, scale_variant(scale))
            for scale in folder.preset.scales for fmt in folder.settings.output_formats]  # fmt: skip


def _forget(s3: S3Client, folder: Folder, token: str) -> None:
    """This version is not the upload's any more: delete its files that the state does not name (written by an
    earlier attempt of this event that stopped before changing the state). Deletes cost nothing.

    The same bytes uploaded again (after a delete, say) have the same token: if their own event made them current
    while this one was deleting, the files are put back (settle re-renders them), whichever of the two ran last."""
    state = folder.read().state
    named = set(state.keys) if state is not None and state.kind == "current" else set()
    doomed = [key for key in _own_keys(folder, token) if key not in named]
    folder.delete(doomed)
    after = folder.read().state
    if after is not None and after.kind == "current" and set(after.keys) & set(doomed):
        settle(folder, {}, _repairer(s3, folder))


def _deleted_since(folder: Folder, obj: S3Object) -> bool:
    """Whether the state says the upload was deleted after this event (a tombstone at least as late)."""
    state = folder.read().state
    if state is None or state.kind != "deleted":
        return False
    return not (obj.sequencer and state.sequencer and sequencer_is_newer(obj.sequencer, state.sequencer))


def _read_source(s3: S3Client, settings: config.Settings, obj: S3Object, folder: Folder) -> _Source | Outcome:
    """The bytes and ETag of exactly the version the event names, or why there is nothing to render."""
    started = time.perf_counter()
    try:
        if obj.etag:
            # If the object was replaced since this event, S3 answers 412: the newer upload has its own event.
            response = s3.get_object(Bucket=obj.bucket, Key=obj.key, IfMatch=f'"{obj.etag}"')
        else:
            response = s3.get_object(Bucket=obj.bucket, Key=obj.key)
    except S3Error as e:
        code = error_code(e)
        if code == "PreconditionFailed" and obj.etag:
            _forget(s3, folder, version_token(obj.etag))
            return skipped(obj.key, Skip.SUPERSEDED, event_etag=obj.etag)
        if code in ("NoSuchKey", "AccessDenied") and (code == "NoSuchKey" or _deleted_since(folder, obj)):
            # Gone. (A role without s3:ListBucket is told AccessDenied; only a tombstone tells that from a refusal.)
            if obj.etag:
                _forget(s3, folder, version_token(obj.etag))
            return skipped(obj.key, Skip.DELETED)
        raise
    if obj.version_id and response.get("VersionId", "null") != obj.version_id:
        # A Batch Operations manifest named the version that was current when it was made. The object has been
        # replaced since: its upload has its own event. (Reading the named version instead would need
        # s3:GetObjectVersion, and would render a photo nobody sees any more.)
        response["Body"].close()
        return skipped(obj.key, Skip.SUPERSEDED, manifest_version_id=obj.version_id)
    length = int(response.get("ContentLength", 0))
    if length == 0:
        # An event says so up front (``size``); a Batch Operations task only here.
        response["Body"].close()
        return skipped(obj.key, Skip.EMPTY)
    if length > settings.max_input_bytes:
        response["Body"].close()
        return _too_large(settings, folder.preset, obj, length)
    data = response["Body"].read()
    etag = obj.etag or str(response.get("ETag", "")).strip('"')
    return _Source(data, etag, response.get("VersionId"), _ms(started))


def _render(folder: Folder, upload_key: str, source: _Source) -> tuple[list[_Made], Upload]:
    s = folder.settings
    token = version_token(source.etag)
    upload = render_upload(source.data, folder.preset, s.output_formats, max_pixels=s.max_pixels,
                           max_input_bytes=s.max_input_bytes)  # fmt: skip
    metadata = source_metadata(upload_key, source.etag)
    made = []
    for (scale, fmt), r in upload.files.items():
        key = folder.prefix + file_name(token, fmt, scale_variant(scale))
        request: PutObjectRequest = {"Bucket": s.dest_bucket, "Key": key, "Body": r.data,
                                     "ContentType": r.content_type, "CacheControl": s.cache_control,
                                     "Metadata": metadata}  # fmt: skip
        facts = FileFacts(key, fmt, r.content_type, r.width, r.height, len(r.data), scale)
        made.append(_Made(facts, request, r))
    return made, upload


def _upload_facts(upload: Upload) -> dict[str, Any]:
    """What the backend is told of the upload itself: its size as displayed (after EXIF orientation), its format,
    and (the thumbnail's) placeholder and fingerprint."""
    facts: dict[str, Any] = {"width": upload.width, "height": upload.height, "format": upload.source_format}
    if upload.placeholder is not None:
        facts["placeholder"] = {"thumbHash": base64.b64encode(upload.placeholder).decode("ascii")}
    if upload.fingerprint is not None:
        facts["fingerprint"] = {"algorithm": FINGERPRINT_ALGORITHM, "hash": f"{upload.fingerprint:016x}"}
    return facts


def _repairer(s3: S3Client, folder: Folder) -> Any:
    """Renders the version a state names again, to put back its missing files (rendition_writes.settle)."""

    def repair(state: RenditionState) -> Mapping[str, PutObjectRequest]:
        if not state.etag:
            return {}
        try:
            response = s3.get_object(Bucket=folder.settings.source_bucket, Key=state.upload_key,
                                     IfMatch=f'"{state.etag}"')  # fmt: skip
        except S3Error as e:
            if error_code(e) in ("PreconditionFailed", "NoSuchKey", "AccessDenied"):
                return {}  # that version is gone: the newer upload's own event changes the state
            raise
        source = _Source(response["Body"].read(), state.etag, response.get("VersionId"), 0.0)
        return {m.request["Key"]: m.request for m in _render(folder, state.upload_key, source)[0]}

    return repair


def _is_current(s3: S3Client, obj: S3Object, token: str) -> bool:
    """Whether the upload's current version is ``token`` (a HEAD: what decides when sequencers cannot)."""
    try:
        head = s3.head_object(Bucket=obj.bucket, Key=obj.key)
    except S3Error as e:
        if is_missing(e) or error_code(e) == "AccessDenied":
            return False
        raise
    return version_token(str(head.get("ETag", ""))) == token


def _decide_create(s3: S3Client, obj: S3Object, new: RenditionState) -> Any:
    token = new.token or ""

    def decide(state: RenditionState | None) -> tuple[Verdict, RenditionState | None]:
        verdict = create_verdict(state, token, obj.sequencer, lambda: _is_current(s3, obj, token))
        if verdict is Verdict.STALE:
            return verdict, None
        before = state.keys if state is not None else ()
        superseded = tuple(key for key in before if key not in new.keys)
        if verdict is Verdict.SAME and state is not None:
            # Never move the order back; keep what the last change still has to delete.
            kept = tuple(key for key in state.superseded if key not in new.keys)
            sequencer = later_sequencer(obj.sequencer, state.sequencer)
            return verdict, dataclasses.replace(new, sequencer=sequencer, superseded=kept + superseded)
        return verdict, dataclasses.replace(new, superseded=superseded)

    return decide


def _clean_up(folder: Folder, change: Change) -> list[str]:
    """After a change: delete what it superseded (and, on an upload's first change, where its renditions were
    written before versioned keys). Returns the keys removed."""
    gone = list(change.after.superseded) if change.after is not None else []
    folder.delete(gone)
    if change.before is None:
        folder.delete(folder.legacy_keys())
    return gone


def _render_upload(s3: S3Client, settings: config.Settings, preset: Preset, obj: S3Object,
                   where: Mapping[str, Any]) -> Outcome:  # fmt: skip
    folder = Folder(s3, settings, preset, obj.key)
    source = _read_source(s3, settings, obj, folder)
    if isinstance(source, Outcome):
        return source
    token = version_token(source.etag)
    state = folder.read().state
    if create_verdict(state, token, obj.sequencer, lambda: _is_current(s3, obj, token)) is Verdict.STALE:
        # Decided already by a newer event: not worth a render.
        _forget(s3, folder, token)
        later = state is not None and state.kind == "deleted"
        return skipped(obj.key, Skip.DELETED if later else Skip.SUPERSEDED, event_sequencer=obj.sequencer)
    try:
        made, upload = _render(folder, obj.key, source)
    except ImageError as e:
        return _record_failure(s3, folder, obj, source, e)
    upload_ms = {}
    for m in made:
        started = time.perf_counter()
        folder.put([m.request])
        upload_ms[m.facts.key] = _ms(started)
    new = RenditionState("current", obj.key, source.etag, obj.sequencer, files=tuple(m.facts for m in made),
                         version_id=source.version_id, facts=_upload_facts(upload))  # fmt: skip
    change = transition(folder, _decide_create(s3, obj, new))
    ours = {m.request["Key"]: m.request for m in made}
    if change.verdict is Verdict.STALE:
        settle(folder, ours, _repairer(s3, folder))
        later = change.after is not None and change.after.kind == "deleted"
        return skipped(obj.key, Skip.DELETED if later else Skip.SUPERSEDED, event_sequencer=obj.sequencer)
    gone = _clean_up(folder, change)
    unfixable = settle(folder, ours, _repairer(s3, folder))
    if unfixable:
        log(logging.WARNING, "renditions named by current.json are missing", **where, missing_keys=unfixable)
    for m in made:
        _log_rendered(where, settings, source, m, upload_ms[m.facts.key])
    if gone:
        log(logging.INFO, "removed: superseded renditions", **where, removed_keys=gone)
        metrics.removed(len(gone))
    event = events.rendition_created(obj.bucket, preset.name, change.after or new, gone)
    return rendered(obj.key, tuple(m.facts.key for m in made), event)


def _log_rendered(where: Mapping[str, Any], settings: config.Settings, source: _Source, m: _Made,
                  upload_ms: float) -> None:  # fmt: skip
    r = m.rendition
    stages_ms: dict[str, float] = {
        "download": source.download_ms,
        **{k: round(v, 2) for k, v in r.timings_ms.items()},
        "upload": upload_ms,
    }
    metrics.rendered(stages_ms)
    log(
        logging.INFO,
        "rendered",
        **where,
        output_bucket=settings.dest_bucket,
        output_key=m.facts.key,
        output_format=r.format,
        source_format=r.source_format,
        source_etag=source.etag,
        input_bytes=len(source.data),
        input_width=r.source_width,
        input_height=r.source_height,
        orientation=r.orientation,
        output_bytes=len(r.data),
        output_width=r.width,
        output_height=r.height,
        shrink_on_load=r.shrink_on_load,
        ms=stages_ms,
    )


def _record_failure(s3: S3Client, folder: Folder, obj: S3Object, source: _Source, e: ImageError) -> Outcome:
    """A version that cannot be rendered still replaces the one before it: the state says so, and the renditions of
    the photo it replaced go (they are not of the upload any more)."""
    failure = classify(e)
    new = RenditionState("failed", obj.key, source.etag, obj.sequencer, version_id=source.version_id,
                         error={"class": failure.error_class, "message": failure.message})  # fmt: skip
    change = transition(folder, _decide_create(s3, obj, new))
    if change.verdict is not Verdict.STALE:
        gone = _clean_up(folder, change)
        if gone:
            metrics.removed(len(gone))
    return _failed(folder.settings, folder.preset, obj, failure.error_class, failure.message, source.etag,
                   input_bytes=len(source.data))  # fmt: skip


def _source_exists(s3: S3Client, obj: S3Object) -> bool:
    try:
        s3.head_object(Bucket=obj.bucket, Key=obj.key)
    except S3Error as e:
        # 403: what a role without s3:ListBucket is told for a key that is not there.
        if is_missing(e) or error_code(e) == "AccessDenied":
            return False
        raise
    return True


def _remove_upload(s3: S3Client, settings: config.Settings, preset: Preset, obj: S3Object) -> Outcome:
    if _source_exists(s3, obj):
        # An older version was deleted, or the key was uploaded again since: the upload's own event decides.
        return skipped(obj.key, Skip.SUPERSEDED, deleted_sequencer=obj.sequencer)
    folder = Folder(s3, settings, preset, obj.key)

    def decide(state: RenditionState | None) -> tuple[Verdict, RenditionState | None]:
        verdict = delete_verdict(state, obj.sequencer)
        if verdict is not Verdict.APPLY:
            return verdict, None
        named = state.keys if state is not None and state.kind != "deleted" else ()
        return verdict, RenditionState("deleted", obj.key, None, obj.sequencer, superseded=named)

    change = transition(folder, decide)
    if change.verdict is Verdict.STALE:
        return skipped(obj.key, Skip.SUPERSEDED, deleted_sequencer=obj.sequencer)
    # SAME: a duplicate or a retry; what it removed is removed again (deleting is idempotent, and free).
    gone = _clean_up(folder, change)
    if gone:
        metrics.removed(len(gone))
    return removed(obj.key, tuple(gone), events.renditions_deleted(obj.bucket, obj.key, preset.name, gone))


def process_object(s3: S3Client, settings: config.Settings, preset: Preset, obj: S3Object,
                   publisher: events.Publisher | None = None) -> Outcome:  # fmt: skip
    """The outcome of one object, reported (one log line and metric for a skip, a removal or a permanent failure)
    and told to the backend through ``publisher`` (events.py). A transient failure is raised, unreported: the caller
    decides who retries it."""
    where = {"bucket": obj.bucket, "key": obj.key, "rendition": preset.name}
    refused = settings.left_out(obj.bucket, obj.key, None if obj.deleted else obj.size)
    if refused is not None:
        outcome = skipped(obj.key, refused)
    elif not obj.deleted and obj.size is not None and obj.size > settings.max_input_bytes:
        outcome = _too_large(settings, preset, obj, obj.size)
    else:
        try:
            if obj.deleted:
                outcome = _remove_upload(s3, settings, preset, obj)
            else:
                outcome = _render_upload(s3, settings, preset, obj, where)
        except S3Error as e:
            failure = classify(e)
            if not failure.permanent:
                raise  # transient: the client has retried already
            outcome = _failed(settings, preset, obj, failure.error_class, failure.message, operation=e.operation_name)
        except StateDocumentError as e:
            outcome = _failed(settings, preset, obj, "StateDocumentError", str(e))
    report(outcome, preset.name, where)
    if outcome.event is not None and publisher is not None:
        # After the files and the state: the backend is told only what is so. Raised if it fails (transient).
        publisher.publish([outcome.event])
    return outcome
