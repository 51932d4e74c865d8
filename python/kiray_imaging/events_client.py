"""EventBridge's PutEvents, the one call the functions make to tell the backend what happened (events.py builds
the events), on our own AWS client (aws_http.py: SigV4, retries, keep-alive) — boto3 is not loaded at cold start.

The JSON 1.1 protocol: ``POST /`` with ``X-Amz-Target: AWSEvents.PutEvents``; an answer of 200 may still carry
entries EventBridge refused (``FailedEntryCount``), which are raised like a refusal of the whole call.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from kiray_imaging.aws_http import (
    _ERROR_BODY_LIMIT,
    Answer,
    AwsClient,
    AwsError,
    botocore_credentials,
    endpoint_from,
    environment_credentials,
    region_from,
)

MAX_ENTRY_BYTES = 256 * 1024
"""EventBridge's limit on one entry (its detail, detail-type, source, resources and bus name, in UTF-8)."""
MAX_ENTRIES = 10
"""PutEvents takes at most 10 entries a call."""


class PutEventsEntry(TypedDict):
    Source: str
    DetailType: str
    Detail: str
    EventBusName: str


class EventsError(AwsError):
    """EventBridge refused the call, or some of its entries (``code`` is the first refused entry's ErrorCode)."""


def entry_size(entry: PutEventsEntry) -> int:
    """The size EventBridge counts against ``MAX_ENTRY_BYTES`` (its documented way to compute it)."""
    return sum(len(entry[k].encode()) for k in ("Source", "DetailType", "Detail", "EventBusName"))


class EventsClient(AwsClient):
    service = "events"

    def put_events(self, entries: Sequence[PutEventsEntry]) -> list[str]:
        """Sends ``entries`` (any number: ten a call); the event IDs EventBridge gave them, in order."""
        ids: list[str] = []
        for start in range(0, len(entries), MAX_ENTRIES):
            batch = list(entries[start : start + MAX_ENTRIES])
            for entry in batch:
                if entry_size(entry) > MAX_ENTRY_BYTES:
                    raise ValueError(f"a {entry['DetailType']!r} event of {entry_size(entry)} bytes is over "
                                     f"EventBridge's {MAX_ENTRY_BYTES}")  # fmt: skip
            body = json.dumps({"Entries": batch}).encode()
            headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AWSEvents.PutEvents"}
            answer = self.call("PutEvents", "POST", self.url(), headers, body, stream=True)
            try:
                raw = answer.response.read()
            except BaseException:
                self._release(reuse=False)
                raise
            self._release(reuse=True)
            result = json.loads(raw or b"{}")
            failed = [e for e in result.get("Entries", []) if e.get("ErrorCode")]
            if result.get("FailedEntryCount") or failed:
                first = failed[0] if failed else {}
                why = f"{len(failed)} of {len(batch)} entries refused: {first.get('ErrorMessage', '')}"
                raise EventsError("PutEvents", 200, str(first.get("ErrorCode", "FailedEntry")), why)
            ids += [str(e.get("EventId", "")) for e in result.get("Entries", [])]
        return ids

    def url(self) -> str:
        if self._endpoint is not None:
            return f"{self._endpoint.scheme}://{self._endpoint.netloc}{self._endpoint.path.rstrip('/')}/"
        suffix = "amazonaws.com.cn" if self.region.startswith("cn-") else "amazonaws.com"
        return f"https://events.{self.region}.{suffix}/"

    def error(self, operation: str, answer: Answer) -> EventsError:
        raw = answer.response.read(_ERROR_BODY_LIMIT)
        code, message = str(answer.status), answer.response.reason
        try:
            parsed: Any = json.loads(raw) if raw.strip() else {}
        except ValueError:
            parsed = {"message": raw[:200].decode("utf-8", "replace")}
        if isinstance(parsed, Mapping):
            # "__type": "com.amazonaws.events#ResourceNotFoundException" (or the code alone).
            code = str(parsed.get("__type", code)).rsplit("#", 1)[-1] or code
            message = str(parsed.get("message") or parsed.get("Message") or message)
        return EventsError(operation, answer.status, code, message, answer.headers.get("x-amzn-RequestId", ""))


def from_environment(env: Mapping[str, str] | None = None) -> EventsClient:
    env = os.environ if env is None else env
    return EventsClient(
        region=region_from(env),
        credentials=environment_credentials(env) or botocore_credentials(),
        endpoint_url=endpoint_from(env, "AWS_ENDPOINT_URL_EVENTS"),
        ca_bundle=env.get("AWS_CA_BUNDLE") or None,
    )
