"""What both Lambda functions do, once: for each uploaded object in the event, download it, render one preset,
upload the rendition. The handlers in py_handlers/ only name their preset.

Failure policy (README, "Failures, retries and recursion"): what no retry can fix is permanent — a bad image, an
oversized upload, S3 refusing access (``AccessDenied``, also what a deleted object looks like without
``s3:ListBucket``) or a KMS key that cannot be used — and is logged once (bucket, key, ``error_class``) and not
raised. Anything else from S3 or the network is transient: the S3 client retries it, then it is raised so Lambda
retries the event, and after that the event goes to the failure queue. Events that are stale (the object was replaced or
deleted since, or a newer upload's rendition is already written) are skipped.

S3 Batch Operations (backfills, docs/backfills.md) invoke the same functions with a list of tasks instead of an
event, and get one result per task back: rendered or skipped is ``Succeeded``, permanent is ``PermanentFailure``,
transient is ``TemporaryFailure`` (S3 retries the task); nothing is raised.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from kiray_imaging import __version__, batch_operations, config, metrics, simd_level
from kiray_imaging._core import ImageError
from kiray_imaging.logs import append_keys, configure, log
from kiray_imaging.output_keys import rendition_key
from kiray_imaging.presets import Preset, resolve
from kiray_imaging.rendering import render_formats
from kiray_imaging.s3_client import PutObjectRequest, S3Client, S3Error, from_environment
from kiray_imaging.s3_events import EventShapeError, S3Object, objects_from_event, sequencer_is_newer

Status = Literal["rendered", "skipped", "failed"]
Handler = Callable[[Mapping[str, Any], Any], dict[str, Any]]

# Codes no retry can fix. S3 answers AccessDenied (403) for a missing permission, an object or bucket policy, and —
# since the role deliberately has no s3:ListBucket — for an object that no longer exists; HEAD has no body, so its
# 403 arrives as the bare status. InvalidObjectState: the object is archived (Glacier) and must be restored first.
_PERMANENT = frozenset({"AccessDenied", "AllAccessDisabled", "InvalidObjectState"})
# S3 relays KMS errors for SSE-KMS objects as KMS.<code>: a disabled, deleted or unusable key is permanent; these are
# KMS being busy or briefly unavailable, and are retried like any other transient error.
_TRANSIENT_KMS = frozenset(
    {
        "KMS.ThrottlingException",
        "KMS.KMSInternalException",
        "KMS.DependencyTimeoutException",
        "KMS.LimitExceededException",
    }
)
# HEAD responses carry no error body: the client reports the bare status as the code.
_HEAD_CODES = {"403": "AccessDenied", "404": "NotFound", "412": "PreconditionFailed"}
# A conditional write lost a race with another writer (or a delete): look again, then decide again.
_WRITE_CONFLICTS = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "NotFound"})
_WRITE_ATTEMPTS = 3
# S3 allows 2 KB of user metadata (names + values, UTF-8); a longer source key is stored as its sha256.
_MAX_SOURCE_KEY_METADATA = 1024


@dataclass(frozen=True)
class Outcome:
    status: Status
    key: str
    detail: str = ""
    """Why skipped (a short reason), or the error class of a failure."""
    output_keys: tuple[str, ...] = ()
    message: str = ""
    """What went wrong, for a failure: the line an operator reads in a Batch Operations report."""


class RenditionWriteConflictError(RuntimeError):
    """Other writers kept replacing the rendition while this one tried: transient, so Lambda retries the event."""


def s3_client() -> S3Client:
    # It retries SlowDown/5xx/timeouts (5 retries, with backoff) before we give up and let Lambda retry.
    return from_environment()


def error_code(e: S3Error) -> str:
    return _HEAD_CODES.get(e.code, e.code)


def is_permanent(code: str) -> bool:
    """Whether an S3 error code is one that no retry can fix (the one place that decides)."""
    if code.startswith("KMS."):
        return code not in _TRANSIENT_KMS
    return code in _PERMANENT


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


def newer_rendition_exists(existing: Mapping[str, str], ours: Mapping[str, str]) -> bool:
    """Whether ``existing`` (a rendition's metadata) was made from a later upload of the same key than ``ours``."""
    theirs, mine = existing.get("source-sequencer"), ours.get("source-sequencer")
    if not theirs or not mine:
        return False
    same_key = all(existing.get(name) == ours.get(name) for name in ("source-key", "source-key-sha256"))
    # Sequencers only order events of one key; another source that maps to the same rendition key is not ordered.
    return same_key and sequencer_is_newer(theirs, mine)


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)


def _refuse(settings: config.Settings, obj: S3Object, where: Mapping[str, str]) -> Outcome | None:
    """The checks that need no S3 call."""
    if obj.bucket == settings.dest_bucket and obj.key.startswith(settings.dest_prefix):
        # Recursion guard, in code as well as in the trigger's filter: never read our own output.
        log(logging.WARNING, "skipped: key is under the destination prefix", **where, reason="recursion-guard")
        return Outcome("skipped", obj.key, "destination prefix")
    if obj.bucket != settings.source_bucket or not obj.key.startswith(settings.source_prefix):
        log(logging.WARNING, "skipped: key is outside the source prefix", **where, reason="outside-source")
        return Outcome("skipped", obj.key, "outside source prefix")
    if obj.key.endswith("/") or obj.size == 0:
        log(logging.INFO, "skipped: folder marker or empty object", **where, reason="empty")
        return Outcome("skipped", obj.key, "empty")
    if obj.size is not None and obj.size > settings.max_input_bytes:
        return _too_large(obj, where, obj.size)
    return None


def _too_large(obj: S3Object, where: Mapping[str, str], size: int) -> Outcome:
    log(
        logging.ERROR,
        "failed: object larger than MAX_INPUT_BYTES",
        **where,
        error_class="LimitExceededError",
        input_bytes=size,
    )
    return Outcome("failed", obj.key, "LimitExceededError", message=f"object is {size} bytes, over MAX_INPUT_BYTES")


def _read_source(
    s3: S3Client, settings: config.Settings, obj: S3Object, where: Mapping[str, str]
) -> tuple[bytes, str] | Outcome:
    """The source bytes and ETag of exactly the version the event names, or why there is nothing to render."""
    try:
        if obj.etag:
            # If the object was replaced since this event, S3 answers 412: the newer upload has its own event.
            response = s3.get_object(Bucket=obj.bucket, Key=obj.key, IfMatch=f'"{obj.etag}"')
        else:
            response = s3.get_object(Bucket=obj.bucket, Key=obj.key)
    except S3Error as e:
        code = error_code(e)
        if code == "NoSuchKey":
            log(logging.WARNING, "skipped: object deleted before processing", **where, reason="NoSuchKey")
            return Outcome("skipped", obj.key, "NoSuchKey")
        if code == "PreconditionFailed":
            log(logging.INFO, "skipped: superseded, the object was replaced since this event", **where,
                reason="superseded", event_etag=obj.etag)  # fmt: skip
            return Outcome("skipped", obj.key, "superseded")
        raise
    if obj.version_id and response.get("VersionId", "null") != obj.version_id:
        # A Batch Operations manifest named the version that was current when it was made. The object has been
        # replaced since: its upload has its own event. (Reading the named version instead would need
        # s3:GetObjectVersion, and would render a photo nobody sees any more.)
        response["Body"].close()
        log(logging.INFO, "skipped: superseded, the object was replaced since the manifest was made", **where,
            reason="superseded", manifest_version_id=obj.version_id)  # fmt: skip
        return Outcome("skipped", obj.key, "superseded")
    length = int(response.get("ContentLength", 0))
    if length == 0:
        # An event says so up front (``size``); a Batch Operations task only here.
        response["Body"].close()
        log(logging.INFO, "skipped: folder marker or empty object", **where, reason="empty")
        return Outcome("skipped", obj.key, "empty")
    if length > settings.max_input_bytes:
        response["Body"].close()
        return _too_large(obj, where, length)
    return response["Body"].read(), obj.etag or str(response.get("ETag", "")).strip('"')


Replacement = Callable[[Mapping[str, str]], "Mapping[str, str] | None"]
"""Given an existing rendition's metadata: the metadata to replace it with, or ``None`` to leave it alone."""


def _source_is_current(s3: S3Client, obj: S3Object, etag: str) -> bool:
    """Whether the source is still the version we rendered (HEAD; the role may GetObject on the source prefix)."""
    try:
        current = s3.head_object(Bucket=obj.bucket, Key=obj.key)
    except S3Error as e:
        if error_code(e) in ("NoSuchKey", "NotFound"):
            return False
        raise
    return str(current.get("ETag", "")).strip('"') == etag


def _replacement(s3: S3Client, obj: S3Object, etag: str, ours: Mapping[str, str]) -> Replacement:
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
        same_key = all(existing.get(name) == ours.get(name) for name in ("source-key", "source-key-sha256"))
        if same_key and existing.get("source-etag") == etag:
            sequencer = existing.get("source-sequencer")
            return {**ours, "source-sequencer": sequencer} if sequencer else ours
        if not current:
            current.append(_source_is_current(s3, obj, etag))
        return ours if current[0] else None

    return decide


def _write_rendition(s3: S3Client, request: PutObjectRequest, replacement: Replacement) -> bool:
    """Writes the rendition unless ``replacement`` says to leave an existing one alone (``False``), e.g. one made
    from a later upload of the source.

    Conditional writes make the check and the write one step: create only if absent, else replace only the exact
    version that was compared (its ETag). Losing a race to another writer means looking again. The existing
    rendition is only read once S3 has said it exists, so a 403 there is a real refusal, not a missing key."""
    bucket, key = request["Bucket"], request["Key"]
    for _ in range(_WRITE_ATTEMPTS):
        try:
            create: PutObjectRequest = {**request, "IfNoneMatch": "*"}
            s3.put_object(**create)
            return True
        except S3Error as e:
            if error_code(e) not in _WRITE_CONFLICTS:
                raise
        try:
            existing = s3.head_object(Bucket=bucket, Key=key)
        except S3Error as e:
            if error_code(e) not in _WRITE_CONFLICTS:
                raise
            continue
        metadata = replacement(existing.get("Metadata", {}))
        if metadata is None:
            return False
        try:
            replace: PutObjectRequest = {**request, "Metadata": dict(metadata), "IfMatch": existing["ETag"]}
            s3.put_object(**replace)
            return True
        except S3Error as e:
            if error_code(e) not in _WRITE_CONFLICTS:
                raise
    raise RenditionWriteConflictError(f"s3://{bucket}/{key} kept changing during {_WRITE_ATTEMPTS} conditional writes")


def _render_and_write(
    s3: S3Client, settings: config.Settings, preset: Preset, obj: S3Object, where: Mapping[str, str]
) -> Outcome:
    started = time.perf_counter()
    source = _read_source(s3, settings, obj, where)
    if isinstance(source, Outcome):
        return source
    data, etag = source
    download_ms = _ms(started)

    try:
        renditions = render_formats(
            data,
            preset,
            settings.output_formats,
            max_pixels=settings.max_pixels,
            max_input_bytes=settings.max_input_bytes,
        )
    except ImageError as e:
        log(logging.ERROR, f"failed: {e}", **where, error_class=type(e).__name__, input_bytes=len(data))
        return Outcome("failed", obj.key, type(e).__name__, message=str(e))

    metadata = rendition_metadata(obj, etag)
    replacement = _replacement(s3, obj, etag, metadata)
    written = []
    for rendition in renditions.values():
        out_key = rendition_key(
            obj.key,
            source_prefix=settings.source_prefix,
            dest_prefix=settings.dest_prefix,
            rendition=preset.name,
            fmt=rendition.format,
        )
        started = time.perf_counter()
        request: PutObjectRequest = {
            "Bucket": settings.dest_bucket,
            "Key": out_key,
            "Body": rendition.data,
            "ContentType": rendition.content_type,
            "CacheControl": settings.cache_control,
            "Metadata": metadata,
        }
        if not _write_rendition(s3, request, replacement):
            log(logging.INFO, "skipped: a rendition of a newer upload is already written", **where,
                reason="superseded", output_key=out_key, event_sequencer=obj.sequencer)  # fmt: skip
            continue
        upload_ms = _ms(started)
        written.append(out_key)
        stages_ms = {
            "download": download_ms,
            **{k: round(v, 2) for k, v in rendition.timings_ms.items()},
            "upload": upload_ms,
        }
        metrics.rendered(stages_ms)
        log(
            logging.INFO,
            "rendered",
            **where,
            output_bucket=settings.dest_bucket,
            output_key=out_key,
            output_format=rendition.format,
            source_format=rendition.source_format,
            input_bytes=len(data),
            input_width=rendition.source_width,
            input_height=rendition.source_height,
            orientation=rendition.orientation,
            output_bytes=len(rendition.data),
            output_width=rendition.width,
            output_height=rendition.height,
            shrink_on_load=rendition.shrink_on_load,
            ms=stages_ms,
        )
    if not written:
        return Outcome("skipped", obj.key, "superseded")
    return Outcome("rendered", obj.key, output_keys=tuple(written))


def process_object(s3: S3Client, settings: config.Settings, preset: Preset, obj: S3Object) -> Outcome:
    outcome = _process_object(s3, settings, preset, obj)
    if outcome.status == "skipped":
        metrics.skipped()
    elif outcome.status == "failed":
        metrics.failed(preset.name, outcome.detail)
    return outcome


def _process_object(s3: S3Client, settings: config.Settings, preset: Preset, obj: S3Object) -> Outcome:
    where = {"bucket": obj.bucket, "key": obj.key, "rendition": preset.name}
    refused = _refuse(settings, obj, where)
    if refused:
        return refused
    try:
        return _render_and_write(s3, settings, preset, obj, where)
    except S3Error as e:
        code = error_code(e)
        if not is_permanent(code):
            raise  # transient: the client has retried already; Lambda retries the event
        log(logging.ERROR, f"failed: S3 {e.operation_name} refused: {code}", **where, error_class=code,
            operation=e.operation_name)  # fmt: skip
        return Outcome("failed", obj.key, code, message=f"S3 {e.operation_name} refused: {code}")


def process_all(s3: S3Client, settings: config.Settings, preset: Preset, objects: list[S3Object]) -> list[Outcome]:
    """Every object gets its turn; a transient error is raised (so Lambda retries the event) only once the others
    are done. A retry renders those again, to the same keys and bytes."""
    outcomes: list[Outcome] = []
    transient: Exception | None = None
    for obj in objects:
        try:
            outcomes.append(process_object(s3, settings, preset, obj))
        except Exception as e:
            code = error_code(e) if isinstance(e, S3Error) else type(e).__name__
            log(logging.WARNING, f"retrying: {e}", bucket=obj.bucket, key=obj.key, rendition=preset.name,
                error_class=code)  # fmt: skip
            metrics.failed(preset.name, code, transient=True)
            transient = transient or e
    if transient:
        raise transient
    return outcomes


def batch_task_result(
    s3: S3Client, settings: config.Settings, preset: Preset, task: batch_operations.Task
) -> batch_operations.TaskResult:
    """One Batch Operations task through ``process_object``, its outcome as a result code. Never raises: S3
    retries a ``TemporaryFailure`` itself, and an exception would fail every task of the invocation."""
    if task.obj is None:
        log(logging.ERROR, f"failed: {task.problem}", rendition=preset.name, task_id=task.task_id,
            error_class="EventShapeError")  # fmt: skip
        metrics.failed(preset.name, "EventShapeError")
        return batch_operations.result(task.task_id, "PermanentFailure", f"EventShapeError: {task.problem}")
    obj = task.obj
    try:
        outcome = process_object(s3, settings, preset, obj)
    except Exception as e:
        code = error_code(e) if isinstance(e, S3Error) else type(e).__name__
        log(logging.WARNING, f"retrying: {e}", bucket=obj.bucket, key=obj.key, rendition=preset.name,
            error_class=code, task_id=task.task_id)  # fmt: skip
        metrics.failed(preset.name, code, transient=True)
        return batch_operations.result(task.task_id, "TemporaryFailure", f"{code}: {e}")
    if outcome.status == "rendered":
        return batch_operations.result(task.task_id, "Succeeded", "rendered: " + " ".join(outcome.output_keys))
    if outcome.status == "skipped":
        # Skips are successes: nothing to do (see docs/backfills.md for why the recursion guard is one too).
        return batch_operations.result(task.task_id, "Succeeded", f"skipped: {outcome.detail}")
    return batch_operations.result(task.task_id, "PermanentFailure", f"{outcome.detail}: {outcome.message}")


def _batch_response(
    s3: S3Client, settings: config.Settings, preset: Preset, event: Mapping[str, Any]
) -> dict[str, Any]:
    invocation = batch_operations.parse(event)
    if invocation.user_arguments:
        # None are defined; logged so a job created with some is not silently taken to have used them.
        log(logging.WARNING, "ignored: Batch Operations userArguments", rendition=preset.name,
            job_id=invocation.job_id, user_arguments=dict(invocation.user_arguments))  # fmt: skip
    results = [batch_task_result(s3, settings, preset, task) for task in invocation.tasks]
    for task, r in zip(invocation.tasks, results):
        log(
            logging.INFO,
            "batch task",
            rendition=preset.name,
            job_id=invocation.job_id,
            task_id=task.task_id,
            key=task.obj.key if task.obj else None,
            result_code=r.result_code,
            result_string=r.result_string,
        )
    return batch_operations.response(invocation, results)


def make_handler(preset_name: str) -> Handler:
    """The Lambda entry point for one preset. Settings and the S3 client are made once per cold start."""
    preset = resolve(preset_name)
    settings = config.load()
    configure(settings.log_level)
    s3 = s3_client()
    log(logging.INFO, "cold start", rendition=preset.name, core_version=__version__, simd=simd_level())

    def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        # Every line of this invocation names it, so one request's lines can be pulled out of a busy log group.
        append_keys(request_id=getattr(context, "aws_request_id", None))
        try:
            return _handle(event)
        finally:
            metrics.flush(preset.name)

    def _handle(event: Mapping[str, Any]) -> dict[str, Any]:
        try:
            if batch_operations.is_batch_operations_event(event):
                return _batch_response(s3, settings, preset, event)
            objects = objects_from_event(event)
        except EventShapeError as e:
            # A malformed event stays malformed: log it for the on-call engineer instead of retrying it.
            log(logging.ERROR, f"failed: {e}", rendition=preset.name, error_class="EventShapeError")
            metrics.failed(preset.name, "EventShapeError")
            return {
                "rendition": preset.name,
                "rendered": [],
                "skipped": [],
                "failed": [{"error_class": "EventShapeError"}],
            }
        outcomes = process_all(s3, settings, preset, objects)
        return {
            "rendition": preset.name,
            "rendered": [key for o in outcomes for key in o.output_keys],
            "skipped": [o.key for o in outcomes if o.status == "skipped"],
            "failed": [{"key": o.key, "error_class": o.detail} for o in outcomes if o.status == "failed"],
        }

    return handler
