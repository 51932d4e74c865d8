"""S3 Batch Operations' Lambda invocation schema, versions 1.0 and 2.0: which objects an invocation names, and the
response S3 expects back (one result per task). Only the shape lives here; what is done with each object, and which
result code it earns, is the pipeline's (lambda_pipeline.py), shared with the upload events.

The two versions differ in how a task names its object (AWS, "Invoke AWS Lambda function" in the S3 user guide, and
the ``LambdaInvokeOperation`` API reference):

- 1.0 (the default): ``s3BucketArn`` and ``s3Key`` **URL-encoded**, as the key is written in a CSV manifest;
- 2.0 (required for ``UserArguments``): ``s3Bucket`` (the name) and ``s3Key`` as S3 stores it, not encoded; the job
  carries ``userArguments``.

Both have ``taskId`` and ``s3VersionId`` (``null`` when the manifest names no version). There are no ETag, size or
``sequencer`` fields: a task is "the object as it is now" (or the version the manifest named).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote_plus

from kiray_imaging.s3_events import EventShapeError, S3Object

ResultCode = Literal["Succeeded", "TemporaryFailure", "PermanentFailure"]
SCHEMA_VERSIONS = ("1.0", "2.0")
# S3 keeps resultString in the completion report; a short line is what an operator reads there.
_MAX_RESULT_STRING = 1024
# A task missing from our results (there should be none) counts as failed, never as silently done.
TREAT_MISSING_KEYS_AS: ResultCode = "PermanentFailure"


@dataclass(frozen=True)
class Task:
    task_id: str
    obj: S3Object | None
    """``None`` when the task cannot be read (``problem`` says why): it gets a PermanentFailure."""
    problem: str = ""


@dataclass(frozen=True)
class Invocation:
    schema_version: str
    invocation_id: str
    job_id: str
    tasks: tuple[Task, ...]
    user_arguments: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskResult:
    task_id: str
    result_code: ResultCode
    result_string: str


def is_batch_operations_event(event: Mapping[str, Any]) -> bool:
    return "invocationSchemaVersion" in event and "tasks" in event


def _bucket_name(task: Mapping[str, Any], schema_version: str) -> str | None:
    if schema_version == "1.0":
        arn = task.get("s3BucketArn")
        if not isinstance(arn, str):
            return None
        # arn:aws:s3:::bucket (bucket names cannot contain ':'); the Lambda guide's example has region and account
        # in it, so take the last field rather than split on ':::'.
        return arn.rsplit(":", 1)[-1] or None
    name = task.get("s3Bucket")
    return name if isinstance(name, str) and name else None


def _task(task: Any, schema_version: str) -> Task | None:
    if not isinstance(task, Mapping) or not isinstance(task.get("taskId"), str):
        return None  # nothing to answer with; S3 counts it as TREAT_MISSING_KEYS_AS
    task_id: str = task["taskId"]
    if schema_version not in SCHEMA_VERSIONS:
        # Another version may encode keys differently: better a visible failure than a wrong key.
        return Task(task_id, None, f"unsupported invocationSchemaVersion {schema_version!r}")
    bucket, key = _bucket_name(task, schema_version), task.get("s3Key")
    if bucket is None or not isinstance(key, str) or not key:
        field_name = "s3BucketArn" if schema_version == "1.0" else "s3Bucket"
        return Task(task_id, None, f"expected {field_name} and s3Key strings")
    version = task.get("s3VersionId")
    return Task(
        task_id,
        S3Object(
            bucket=bucket,
            key=unquote_plus(key) if schema_version == "1.0" else key,
            size=None,
            etag=None,
            sequencer=None,
            # The manifest says "null" for an unversioned object; a real version ID is never "null".
            version_id=version if isinstance(version, str) and version and version != "null" else None,
        ),
    )


def parse(event: Mapping[str, Any]) -> Invocation:
    """The tasks of a Batch Operations invocation. Raises ``EventShapeError`` only when there is nothing to answer
    (no invocation ID, no task list); a single unreadable task becomes a ``Task`` with a ``problem``."""
    schema_version, invocation_id = event.get("invocationSchemaVersion"), event.get("invocationId")
    tasks, job = event.get("tasks"), event.get("job")
    if not isinstance(schema_version, str) or not isinstance(invocation_id, str) or not isinstance(tasks, list):
        raise EventShapeError("expected invocationSchemaVersion and invocationId strings and a tasks list")
    job = job if isinstance(job, Mapping) else {}
    arguments = job.get("userArguments")
    return Invocation(
        schema_version=schema_version,
        invocation_id=invocation_id,
        job_id=str(job.get("id", "")),
        tasks=tuple(t for t in (_task(task, schema_version) for task in tasks) if t is not None),
        user_arguments={str(k): str(v) for k, v in arguments.items()} if isinstance(arguments, Mapping) else {},
    )


def result(task_id: str, result_code: ResultCode, result_string: str) -> TaskResult:
    if len(result_string) > _MAX_RESULT_STRING:
        result_string = result_string[: _MAX_RESULT_STRING - 1] + "…"
    return TaskResult(task_id, result_code, result_string)


def response(invocation: Invocation, results: Sequence[TaskResult]) -> dict[str, Any]:
    """What the function returns to S3: the invocation's own version and ID, and one result per task."""
    return {
        "invocationSchemaVersion": invocation.schema_version,
        "treatMissingKeysAs": TREAT_MISSING_KEYS_AS,
        "invocationId": invocation.invocation_id,
        "results": [
            {"taskId": r.task_id, "resultCode": r.result_code, "resultString": r.result_string} for r in results
        ],
    }
