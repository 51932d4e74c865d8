"""Shared by the handler tests: test photos, events shaped as S3 delivers them, and an S3 client that fails on cue."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote_plus

from botocore.exceptions import ClientError
from PIL import Image

from kiray_imaging.lambda_pipeline import Handler

BUCKET = "kiray-test-photos"
_SEQUENCERS = itertools.count(0x617F08299329D189)


def jpeg(width: int, height: int, colour: tuple[int, int, int] = (30, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "JPEG", quality=90)
    return out.getvalue()


def record(key: str, *, bucket: str = BUCKET, size: int = 100, etag: str | None = None,
           sequencer: str | None = None) -> dict[str, Any]:  # fmt: skip
    """One S3 notification record; the key URL-encoded as S3 sends it (spaces as ``+``)."""
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "size": size}
    if etag is not None:
        obj["eTag"] = etag
    if sequencer is not None:
        obj["sequencer"] = sequencer
    return {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": bucket}, "object": obj}}  # fmt: skip


def s3_event(*keys: str, bucket: str = BUCKET) -> dict[str, Any]:
    return {"Records": [record(k, bucket=bucket) for k in keys]}


def next_sequencer() -> str:
    """Increasing, 18 hex digits like S3's."""
    return f"{next(_SEQUENCERS):018X}"


def upload(s3: Any, key: str, body: bytes) -> dict[str, Any]:
    """Puts ``body`` at ``key`` and returns the notification record S3 would send for that upload."""
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    etag = s3.head_object(Bucket=BUCKET, Key=key)["ETag"].strip('"')
    return record(key, size=len(body), etag=etag, sequencer=next_sequencer())


def event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def invoke(h: Handler, event: Mapping[str, Any]) -> dict[str, Any]:
    return h(event, None)


def json_lines(captured: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in captured.splitlines() if line.startswith("{")]


def log_lines(captured: str) -> list[dict[str, Any]]:
    """The log lines, without the EMF metric documents (those carry ``_aws``) that share stdout with them."""
    return [line for line in json_lines(captured) if "_aws" not in line]


def metric_documents(captured: str) -> list[dict[str, Any]]:
    return [line for line in json_lines(captured) if "_aws" in line]


def keys(s3: Any, prefix: str = "") -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))


def client_error(code: str, status: int, operation: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": code},
            "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}, "RequestId": "r", "HostId": "h",
                                 "RetryAttempts": 0},
        },
        operation,
    )  # fmt: skip


Hook = Callable[[dict[str, Any]], None]


class HookedS3:
    """A real S3 client (moto), except that a call matching ``hooks`` ((method, key) → hook) runs the hook first:
    it may raise (a fault S3 would return) or act (another writer getting in between). Calls are recorded."""

    def __init__(self, real: Any, hooks: Mapping[tuple[str, str], Hook]) -> None:
        self.real, self.hooks = real, dict(hooks)
        self.calls: list[tuple[str, str | None]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.real, name)

        def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs.get("Key")))
            hook = self.hooks.get((name, kwargs.get("Key", "")))
            if hook is not None:
                hook(kwargs)
            return method(**kwargs)

        return call


def raises(error: Exception) -> Hook:
    def hook(kwargs: dict[str, Any]) -> None:
        raise error

    return hook
