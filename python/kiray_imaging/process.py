"""One object, one preset: refuse what needs no S3 call, read exactly the version the event names, render, write
the renditions. Every way it ends is an ``Outcome`` (outcomes.py); only a transient failure is raised."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from kiray_imaging import config, metrics
from kiray_imaging._core import ImageError
from kiray_imaging.failures import classify, error_code
from kiray_imaging.logs import log
from kiray_imaging.outcomes import Outcome, Skip, failed, rendered, skipped
from kiray_imaging.output_keys import rendition_key
from kiray_imaging.presets import Preset
from kiray_imaging.rendering import render_formats
from kiray_imaging.rendition_writes import rendition_metadata, replacement, write_rendition
from kiray_imaging.report import report
from kiray_imaging.s3_client import PutObjectRequest, S3Client, S3Error
from kiray_imaging.s3_events import S3Object


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)


def _too_large(obj: S3Object, size: int) -> Outcome:
    return failed(obj.key, "LimitExceededError", f"object is {size} bytes, over MAX_INPUT_BYTES", input_bytes=size)


def _read_source(s3: S3Client, settings: config.Settings, obj: S3Object) -> tuple[bytes, str] | Outcome:
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
            return skipped(obj.key, Skip.NO_SUCH_KEY)
        if code == "PreconditionFailed":
            return skipped(obj.key, Skip.SUPERSEDED, event_etag=obj.etag)
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
        return _too_large(obj, length)
    return response["Body"].read(), obj.etag or str(response.get("ETag", "")).strip('"')


def _render_and_write(
    s3: S3Client, settings: config.Settings, preset: Preset, obj: S3Object, where: Mapping[str, Any]
) -> Outcome:
    started = time.perf_counter()
    source = _read_source(s3, settings, obj)
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
        failure = classify(e)
        return failed(obj.key, failure.error_class, failure.message, input_bytes=len(data))

    metadata = rendition_metadata(obj, etag)
    decide = replacement(s3, obj, etag, metadata)
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
        if not write_rendition(s3, request, decide):
            log(logging.INFO, "skipped: a rendition of a newer upload is already written", **where,
                reason=Skip.SUPERSEDED.value, output_key=out_key, event_sequencer=obj.sequencer)  # fmt: skip
            continue
        upload_ms = _ms(started)
        written.append(out_key)
        stages_ms: dict[str, float] = {
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
        # Each skipped rendition was logged above; the object is counted once.
        metrics.skipped()
        return Outcome("skipped", obj.key, skip=Skip.SUPERSEDED)
    return rendered(obj.key, tuple(written))


def process_object(s3: S3Client, settings: config.Settings, preset: Preset, obj: S3Object) -> Outcome:
    """The outcome of one object, reported (one log line and metric for a skip or a permanent failure). A
    transient failure is raised, unreported: the caller decides who retries it."""
    where = {"bucket": obj.bucket, "key": obj.key, "rendition": preset.name}
    refused = settings.left_out(obj.bucket, obj.key, obj.size)
    if refused is not None:
        outcome = skipped(obj.key, refused)
    elif obj.size is not None and obj.size > settings.max_input_bytes:
        outcome = _too_large(obj, obj.size)
    else:
        try:
            outcome = _render_and_write(s3, settings, preset, obj, where)
        except S3Error as e:
            failure = classify(e)
            if not failure.permanent:
                raise  # transient: the client has retried already
            outcome = failed(obj.key, failure.error_class, failure.message, operation=e.operation_name)
        if outcome.status == "skipped" and outcome.skip is Skip.SUPERSEDED and not outcome.facts:
            return outcome  # per rendition, logged and counted where each was left alone
    report(outcome, preset.name, where)
    return outcome
