"""Which failures a retry can fix, decided in one place.

Permanent — no retry can fix it, so it is logged once and not raised: a bad image (``ImageError``), an event of the
wrong shape, and S3 refusing access (``AccessDenied``, also what a deleted object looks like to a role without
``s3:ListBucket``), an archived object, or a KMS key that cannot be used. Transient — anything else from S3 or the
network: the S3 client has retried it already, then it is raised so Lambda (or S3 Batch Operations) retries.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiray_imaging._core import ImageError
from kiray_imaging.s3_client import S3Error
from kiray_imaging.s3_events import EventShapeError

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


def error_code(e: S3Error) -> str:
    return _HEAD_CODES.get(e.code, e.code)


def is_permanent(code: str) -> bool:
    """Whether an S3 error code is one that no retry can fix."""
    if code.startswith("KMS."):
        return code not in _TRANSIENT_KMS
    return code in _PERMANENT


def lost_a_race(e: S3Error) -> bool:
    """Whether a conditional write or read failed because another writer (or a delete) got there first."""
    return error_code(e) in _WRITE_CONFLICTS


def is_missing(e: S3Error) -> bool:
    return error_code(e) in ("NoSuchKey", "NotFound")


@dataclass(frozen=True)
class Failure:
    error_class: str
    permanent: bool
    message: str


def classify(e: BaseException) -> Failure:
    """What a failure is: its class (an ``ImageError`` subclass, an S3 code, …), whether it is permanent, and what to
    tell a person."""
    if isinstance(e, ImageError):
        return Failure(type(e).__name__, True, str(e))
    if isinstance(e, EventShapeError):
        return Failure("EventShapeError", True, str(e))
    if isinstance(e, S3Error):
        code = error_code(e)
        if is_permanent(code):
            return Failure(code, True, f"S3 {e.operation_name} refused: {code}")
        return Failure(code, False, str(e))
    return Failure(type(e).__name__, False, str(e))
