"""What both Lambda functions do, once: for each uploaded object in the event, download it, render one preset,
upload the rendition. The handlers in py_handlers/ only name their preset.

Failure policy: a bad image is permanent (logged with bucket, key and error class; never raised, since a retry
cannot fix it); an S3 or network error is transient and raised, so Lambda's retry policy runs it again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from kiray_imaging import __version__, config, simd_level
from kiray_imaging.logs import configure, log
from kiray_imaging.output_keys import rendition_key
from kiray_imaging.presets import Preset, resolve
from kiray_imaging.rendering import render_formats
from kiray_imaging.s3_events import EventShapeError, S3Object, objects_from_event

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
else:
    S3Client = Any

from kiray_imaging._core import ImageError

Status = Literal["rendered", "skipped", "failed"]
Handler = Callable[[Mapping[str, Any], Any], dict[str, Any]]


@dataclass(frozen=True)
class Outcome:
    status: Status
    key: str
    detail: str = ""
    output_keys: tuple[str, ...] = ()


def s3_client() -> S3Client:
    # Standard retry mode backs off on SlowDown/5xx/timeouts before we give up and let Lambda retry.
    return boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 5}))


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)


def process_object(s3: S3Client, settings: config.Settings, preset: Preset, obj: S3Object) -> Outcome:
    where = {"bucket": obj.bucket, "key": obj.key, "rendition": preset.name}
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
        log(
            logging.ERROR,
            "failed: object larger than MAX_INPUT_BYTES",
            **where,
            error_class="LimitExceededError",
            input_bytes=obj.size,
        )
        return Outcome("failed", obj.key, "LimitExceededError")

    started = time.perf_counter()
    try:
        response = s3.get_object(Bucket=obj.bucket, Key=obj.key)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "NoSuchKey":
            log(logging.WARNING, "skipped: object deleted before processing", **where, reason="NoSuchKey")
            return Outcome("skipped", obj.key, "NoSuchKey")
        raise
    length = int(response.get("ContentLength", 0))
    if length > settings.max_input_bytes:
        response["Body"].close()
        log(
            logging.ERROR,
            "failed: object larger than MAX_INPUT_BYTES",
            **where,
            error_class="LimitExceededError",
            input_bytes=length,
        )
        return Outcome("failed", obj.key, "LimitExceededError")
    data = response["Body"].read()
    etag = obj.etag or str(response.get("ETag", "")).strip('"')
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
        return Outcome("failed", obj.key, type(e).__name__)

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
        s3.put_object(
            Bucket=settings.dest_bucket,
            Key=out_key,
            Body=rendition.data,
            ContentType=rendition.content_type,
            CacheControl=settings.cache_control,
            # Metadata must be ASCII: the source key is stored percent-encoded.
            Metadata={"source-etag": etag, "source-key": quote(obj.key, safe="/")},
        )
        upload_ms = _ms(started)
        written.append(out_key)
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
            ms={
                "download": download_ms,
                **{k: round(v, 2) for k, v in rendition.timings_ms.items()},
                "upload": upload_ms,
            },
        )
    return Outcome("rendered", obj.key, output_keys=tuple(written))


def make_handler(preset_name: str) -> Handler:
    """The Lambda entry point for one preset. Settings and the S3 client are made once per cold start."""
    preset = resolve(preset_name)
    settings = config.load()
    configure(settings.log_level)
    s3 = s3_client()
    log(logging.INFO, "cold start", rendition=preset.name, core_version=__version__, simd=simd_level())

    def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        try:
            objects = objects_from_event(event)
        except EventShapeError as e:
            # A malformed event stays malformed: log it for the on-call engineer instead of retrying it.
            log(logging.ERROR, f"failed: {e}", rendition=preset.name, error_class="EventShapeError")
            return {
                "rendition": preset.name,
                "rendered": [],
                "skipped": [],
                "failed": [{"error_class": "EventShapeError"}],
            }
        outcomes = [process_object(s3, settings, preset, obj) for obj in objects]
        return {
            "rendition": preset.name,
            "rendered": [key for o in outcomes for key in o.output_keys],
            "skipped": [o.key for o in outcomes if o.status == "skipped"],
            "failed": [{"key": o.key, "error_class": o.detail} for o in outcomes if o.status == "failed"],
        }

    return handler
