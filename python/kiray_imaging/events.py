"""The events the functions publish for the backend (EventBridge, ``source: kiray.imaging``): "Rendition Created",
"Rendition Failed", "Renditions Deleted". Their shapes are a contract: ``contract/schemas/`` (JSON Schema) and
``contract/index.d.ts`` (TypeScript) say what every field is, and the tests validate every event the pipeline emits
against them. Built here from what the pipeline knows; sent by ``Publisher`` through events_client.py.

Delivery is at least once: a duplicate (a retried invocation, a duplicate S3 event) carries the same facts, since
they come from the upload's version, not from the invocation. A failed PutEvents is transient: the invocation is
retried, and its files are written again to the same keys.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kiray_imaging.rendition_state import RenditionState

if TYPE_CHECKING:
    from kiray_imaging.events_client import PutEventsEntry

SOURCE = "kiray.imaging"
SCHEMA_VERSION = 1
CREATED, FAILED, DELETED = "Rendition Created", "Rendition Failed", "Renditions Deleted"

# What an agent in the listing editor is told, by error class: what went wrong and what to do, never a stack trace.
_ACCEPTED = "Upload a JPEG, PNG or WebP photo"
_PEOPLE_MESSAGES = {
    "DecodeError": f"This photo could not be read: the file looks damaged or incomplete. {_ACCEPTED} again.",
    "UnsupportedFormatError": f"This file is not a photo the site can show. {_ACCEPTED} instead.",
    "LimitExceededError": "This photo is too large to process (over {max_mp} megapixels or {max_mib} MB). "
    "Upload a smaller copy of it.",
}
_HEIC = (
    "This photo is in HEIC format (what iPhones take), which the site cannot show. Upload it as a JPEG: on an iPhone, "
    "choose it from the photo library in the upload form, or set Camera > Formats to Most Compatible."
)
_OURS = "This photo could not be processed because of a problem on our side, not with the photo. We have been alerted."


@dataclass(frozen=True)
class Event:
    detail_type: str
    detail: Mapping[str, Any]


def person_message(error_class: str, message: str, *, max_pixels: int, max_input_bytes: int) -> str:
    """The failure as the agent who uploaded the photo should read it."""
    if error_class == "UnsupportedFormatError" and ("HEIF" in message or "HEIC" in message):
        return _HEIC
    template = _PEOPLE_MESSAGES.get(error_class)
    if template is None:
        return _OURS
    return template.format(max_mp=max_pixels // 1_000_000, max_mib=max_input_bytes // 2**20)


def _upload(bucket: str, state: RenditionState) -> dict[str, Any]:
    upload: dict[str, Any] = {"bucket": bucket, "key": state.upload_key}
    for name, value in (("etag", state.etag), ("versionId", state.version_id), ("sequencer", state.sequencer)):
        if value:
            upload[name] = value
    return upload


def rendition_created(bucket: str, rendition: str, state: RenditionState, replaces: Sequence[str]) -> Event:
    """What the state of a version that became current says, for the backend."""
    facts = dict(state.facts)
    upload = _upload(bucket, state) | {k: facts[k] for k in ("width", "height", "format")}
    files = [
        {"key": f.key, "format": f.format, "contentType": f.content_type, "width": f.width, "height": f.height,
         "bytes": f.bytes, "scale": f.scale}
        for f in state.files
    ]  # fmt: skip
    detail: dict[str, Any] = {"schemaVersion": SCHEMA_VERSION, "upload": upload, "rendition": rendition,
                              "files": files}  # fmt: skip
    for name in ("placeholder", "fingerprint"):
        if name in facts:
            detail[name] = facts[name]
    if replaces:
        detail["replaces"] = list(replaces)
    return Event(CREATED, detail)


def rendition_failed(bucket: str, key: str, etag: str | None, rendition: str, error_class: str,
                     message: str) -> Event:  # fmt: skip
    upload: dict[str, Any] = {"bucket": bucket, "key": key}
    if etag:
        upload["etag"] = etag
    error = {"class": error_class, "message": message}
    return Event(FAILED, {"schemaVersion": SCHEMA_VERSION, "upload": upload, "rendition": rendition, "error": error})


def renditions_deleted(bucket: str, key: str, rendition: str, keys: Sequence[str]) -> Event:
    detail = {"schemaVersion": SCHEMA_VERSION, "upload": {"bucket": bucket, "key": key}, "rendition": rendition,
              "keys": list(keys)}  # fmt: skip
    return Event(DELETED, detail)


class Publisher:
    """Sends events to one bus. The client is made at the first event, so a cold start that publishes nothing
    (a skip, say) pays nothing for it."""

    def __init__(self, bus: str) -> None:
        self.bus = bus
        self._client: Any = None
        self._lock = threading.Lock()

    def entries(self, events: Sequence[Event]) -> list[PutEventsEntry]:
        def detail(e: Event) -> str:
            return json.dumps(e.detail, separators=(",", ":"), ensure_ascii=False)

        return [{"Source": SOURCE, "DetailType": e.detail_type, "EventBusName": self.bus, "Detail": detail(e)}
                for e in events]  # fmt: skip

    def publish(self, events: Sequence[Event]) -> None:
        if not events:
            return
        with self._lock:
            if self._client is None:
                from kiray_imaging.events_client import from_environment

                self._client = from_environment()
        self._client.put_events(self.entries(events))
