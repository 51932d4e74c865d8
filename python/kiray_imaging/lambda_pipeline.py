"""The Lambda entry point of both functions: ``make_handler(preset)`` gives the handler the files in py_handlers/
name. It takes the two kinds of invocation the functions get — upload events (S3 notification records or
EventBridge) and S3 Batch Operations tasks (backfills, docs/backfills.md) — to the per-object flow (process.py).

Upload events: every object gets its turn; a transient failure is raised once the others are done, so Lambda
retries the event (then the failure queue has it). Batch Operations: one result per task, nothing raised: rendered
or skipped is ``Succeeded``, permanent is ``PermanentFailure``, transient is ``TemporaryFailure`` (S3 retries it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from kiray_imaging import __version__, batch_operations, config, events, metrics, simd_level
from kiray_imaging.failures import classify, error_code, is_permanent
from kiray_imaging.logs import append_keys, configure, log
from kiray_imaging.outcomes import Outcome, Status
from kiray_imaging.presets import Preset, resolve
from kiray_imaging.process import process_object
from kiray_imaging.rendition_writes import RenditionWriteConflictError
from kiray_imaging.report import report_retry
from kiray_imaging.s3_client import S3Client, from_environment
from kiray_imaging.s3_events import EventShapeError, S3Object, objects_from_event

__all__ = ["Handler", "Outcome", "RenditionWriteConflictError", "Status", "batch_task_result", "error_code",
           "is_permanent", "make_handler", "process_all", "process_object", "s3_client"]  # fmt: skip

Handler = Callable[[Mapping[str, Any], Any], dict[str, Any]]


def s3_client() -> S3Client:
    # It retries SlowDown/5xx/timeouts (5 retries, with backoff) before we give up and let Lambda retry.
    return from_environment()


def process_all(s3: S3Client, settings: config.Settings, preset: Preset, objects: list[S3Object],
                publisher: events.Publisher | None = None) -> list[Outcome]:  # fmt: skip
    """Every object gets its turn; a transient error is raised (so Lambda retries the event) only once the others
    are done. A retry renders those again, to the same keys and bytes."""
    outcomes: list[Outcome] = []
    transient: Exception | None = None
    for obj in objects:
        try:
            outcomes.append(process_object(s3, settings, preset, obj, publisher))
        except Exception as e:
            where = {"bucket": obj.bucket, "key": obj.key, "rendition": preset.name}
            report_retry(classify(e).error_class, e, preset.name, where)
            transient = transient or e
    if transient:
        raise transient
    return outcomes


def batch_task_result(
    s3: S3Client,
    settings: config.Settings,
    preset: Preset,
    task: batch_operations.Task,
    publisher: events.Publisher | None = None,
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
        outcome = process_object(s3, settings, preset, obj, publisher)
    except Exception as e:
        code = classify(e).error_class
        where = {"bucket": obj.bucket, "key": obj.key, "rendition": preset.name, "task_id": task.task_id}
        report_retry(code, e, preset.name, where)
        return batch_operations.result(task.task_id, "TemporaryFailure", f"{code}: {e}")
    if outcome.status == "rendered":
        return batch_operations.result(task.task_id, "Succeeded", "rendered: " + " ".join(outcome.output_keys))
    if outcome.skip is not None:
        # Skips are successes: nothing to do (see docs/backfills.md for why the recursion guard is one too).
        return batch_operations.result(task.task_id, "Succeeded", f"skipped: {outcome.skip.value}")
    return batch_operations.result(task.task_id, "PermanentFailure", f"{outcome.error_class}: {outcome.message}")


def _batch_response(
    s3: S3Client,
    settings: config.Settings,
    preset: Preset,
    event: Mapping[str, Any],
    publisher: events.Publisher | None,
) -> dict[str, Any]:
    invocation = batch_operations.parse(event)
    if invocation.user_arguments:
        # None are defined; logged so a job created with some is not silently taken to have used them.
        log(logging.WARNING, "ignored: Batch Operations userArguments", rendition=preset.name,
            job_id=invocation.job_id, user_arguments=dict(invocation.user_arguments))  # fmt: skip
    results = [batch_task_result(s3, settings, preset, task, publisher) for task in invocation.tasks]
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
    # Its EventBridge client is made at the first event: a cold start pays nothing for it.
    publisher = events.Publisher(settings.event_bus) if settings.event_bus else None
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
                return _batch_response(s3, settings, preset, event, publisher)
            objects = objects_from_event(event)
        except EventShapeError as e:
            # A malformed event stays malformed: log it for the on-call engineer instead of retrying it.
            log(logging.ERROR, f"failed: {e}", rendition=preset.name, error_class="EventShapeError")
            metrics.failed(preset.name, "EventShapeError")
            return {
                "rendition": preset.name,
                "rendered": [],
                "removed": [],
                "skipped": [],
                "failed": [{"error_class": "EventShapeError"}],
            }
        outcomes = process_all(s3, settings, preset, objects, publisher)
        return {
            "rendition": preset.name,
            "rendered": [key for o in outcomes if o.status == "rendered" for key in o.output_keys],
            "removed": [key for o in outcomes if o.status == "removed" for key in o.output_keys],
            "skipped": [o.key for o in outcomes if o.status == "skipped"],
            "failed": [{"key": o.key, "error_class": o.error_class} for o in outcomes if o.status == "failed"],
        }

    return handler
