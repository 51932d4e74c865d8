"""`kiray-imaging backfill --bucket B --orphans [--delete]`: renditions that nothing needs any more, found by listing
the bucket (docs/backfills.md, "Migration and orphans").

What is an orphan, in the order it is looked for:

- ``legacy``: a rendition of the key scheme before versioned keys (``renditions/thumbnail/l7/front.jpg``) whose
  upload is gone, or whose upload has been rendered since under the new scheme (its ``current.json`` exists). One
  whose upload has not been rendered again yet is *kept* and counted as ``legacy-in-use``: run the backfill first.
- ``upload-gone``: the files and ``current.json`` of an upload that no longer exists, its delete event lost.
- ``unreferenced``: a version's file that its upload's ``current.json`` does not name (left by an invocation that
  stopped between writing it and changing the state).
- ``tombstone``: a deleted upload's ``current.json`` older than the lifecycle rule's expiry (a bucket without the
  rule: ``kiray-imaging bucket-setup`` adds it).

Only keys older than ``--min-age`` (an hour by default) are orphans: a function may be between writing a file and
recording it. Keys under the destination prefix that belong to neither scheme are reported, never deleted.
The listing needs ``s3:ListBucket``, the state documents ``s3:GetObject`` on the destination prefix, and
``--delete`` ``s3:DeleteObject`` there (1000 keys per DeleteObjects call): credentials of an operator, not of the
functions, which deliberately cannot list.
"""

from __future__ import annotations

import datetime
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kiray_imaging import config
from kiray_imaging.output_keys import legacy_rendition_key, parse_rendition_key, rendition_folder, version_token
from kiray_imaging.presets import DEPLOYED_FORMATS
from kiray_imaging.rendition_state import RenditionState, StateDocumentError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

TOMBSTONE_DAYS = 15
"""How long a deleted upload's tombstone is kept: Lambda retries events for an hour, and the failure queue keeps them
14 days for a replay (serverless.yml ``tombstoneRule`` says the same; tests/serverless/test_template.py holds them)."""
DEFAULT_MIN_AGE = datetime.timedelta(hours=1)
_DELETE_BATCH = 1000


@dataclass
class Listed:
    key: str
    etag: str
    modified: datetime.datetime


@dataclass
class Sweep:
    orphans: dict[str, list[str]] = field(default_factory=dict)
    """Reason → keys to delete."""
    kept: Counter[str] = field(default_factory=Counter)
    """Reason → how many keys were looked at and kept."""
    unknown: list[str] = field(default_factory=list)

    def add(self, reason: str, key: str) -> None:
        self.orphans.setdefault(reason, []).append(key)

    def keys(self) -> list[str]:
        return sorted(k for keys in self.orphans.values() for k in keys)


def _listing(s3: S3Client, bucket: str, prefix: str) -> Iterator[Listed]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            yield Listed(o["Key"], str(o.get("ETag", "")).strip('"'), o["LastModified"])


def find(
    s3: S3Client,
    settings: config.Settings,
    *,
    now: datetime.datetime | None = None,
    min_age: datetime.timedelta = DEFAULT_MIN_AGE,
) -> Sweep:
    """Lists the uploads and the renditions and sorts every rendition key into orphans and kept."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    uploads = {o.key: o for o in _listing(s3, settings.source_bucket, settings.source_prefix)
               if settings.left_out(settings.source_bucket, o.key, None) is None}  # fmt: skip
    renditions = list(_listing(s3, settings.dest_bucket, settings.dest_prefix))
    names = sorted({key[len(settings.dest_prefix) :].split("/", 1)[0] for key in (r.key for r in renditions)})
    folders = {
        rendition_folder(key, source_prefix=settings.source_prefix, dest_prefix=settings.dest_prefix, rendition=name):
        key for key in uploads for name in names
    }  # fmt: skip
    legacy = {
        legacy_rendition_key(key, source_prefix=settings.source_prefix, dest_prefix=settings.dest_prefix,
                             rendition=name, fmt=fmt): (key, name)
        for key in uploads for name, formats in DEPLOYED_FORMATS.items() for fmt in formats
    }  # fmt: skip
    states = {r.key: r for r in renditions if r.key.endswith("/current.json")}
    parsed_states = {key: _read_state(s3, settings.dest_bucket, key) for key in states}
    sweep = Sweep()
    old_enough = [r for r in renditions if now - r.modified >= min_age]
    sweep.kept["too recent to judge"] = len(renditions) - len(old_enough)
    for r in old_enough:
        parsed = parse_rendition_key(r.key, settings.dest_prefix)
        if parsed is None:
            if r.key in legacy:
                owner, name = legacy[r.key]
                folder = rendition_folder(owner, source_prefix=settings.source_prefix,
                                          dest_prefix=settings.dest_prefix, rendition=name)  # fmt: skip
                if folder + "current.json" in states:
                    sweep.add("legacy", r.key)
                else:
                    sweep.kept["legacy-in-use"] += 1
            elif _looks_legacy(r.key, settings):
                sweep.add("legacy", r.key)  # no upload maps to it: its upload is gone
            else:
                sweep.unknown.append(r.key)
            continue
        upload = folders.get(parsed.folder)
        if parsed.token is None:  # a current.json
            state = parsed_states.get(r.key)
            if upload is None and (state is None or state.kind != "deleted"):
                sweep.add("upload-gone", r.key)
            elif state is not None and state.kind == "deleted" and now - r.modified >= _tombstone_age():
                sweep.add("tombstone", r.key)
            else:
                sweep.kept["current.json"] += 1
            continue
        if upload is None:
            sweep.add("upload-gone", r.key)
            continue
        state = parsed_states.get(parsed.folder + "current.json")
        named = set(state.keys) if state is not None and state.kind == "current" else set()
        if r.key in named:
            sweep.kept["current"] += 1
        elif state is None and parsed.token == version_token(uploads[upload].etag):
            sweep.kept["current, not recorded yet"] += 1
        else:
            sweep.add("unreferenced", r.key)
    return sweep


def _tombstone_age() -> datetime.timedelta:
    return datetime.timedelta(days=TOMBSTONE_DAYS)


def _looks_legacy(key: str, settings: config.Settings) -> bool:
    """A key of the old scheme: under a rendition's prefix, ending in a rendition format's extension."""
    from kiray_imaging.output_keys import EXTENSIONS

    rest = key[len(settings.dest_prefix) :]
    return "/" in rest and any(rest.endswith(ext) for ext in EXTENSIONS.values())


def _read_state(s3: S3Client, bucket: str, key: str) -> RenditionState | None:
    try:
        return RenditionState.from_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except StateDocumentError:
        return None


def delete(s3: S3Client, bucket: str, keys: Iterable[str]) -> int:
    """Deletes ``keys``, 1000 per call; returns how many S3 reported deleted. Raises on any key it refused."""
    batch: list[str] = []
    deleted = 0
    for key in [*keys, None]:
        if key is not None:
            batch.append(key)
        if batch and (key is None or len(batch) == _DELETE_BATCH):
            answer: Any = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch],
                                                                   "Quiet": False})  # fmt: skip
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise RuntimeError(f"S3 refused to delete {len(answer['Errors'])} keys, e.g. {first['Key']}: "
                                   f"{first.get('Code')}")  # fmt: skip
            deleted += len(answer.get("Deleted", []))
            batch = []
    return deleted


def report(sweep: Sweep, bucket: str, out: Any = sys.stdout) -> None:
    for reason in ("legacy", "upload-gone", "unreferenced", "tombstone"):
        keys = sweep.orphans.get(reason, [])
        print(f"orphans: {reason}: {len(keys)}", file=out)
        for key in keys:
            print(f"  s3://{bucket}/{key}", file=out)
    kept = ", ".join(f"{reason} {n}" for reason, n in sorted(sweep.kept.items()) if n) or "none"
    print(f"kept: {kept}", file=out)
    if sweep.unknown:
        print(f"not of either key scheme (left alone): {len(sweep.unknown)}", file=out)
        for key in sweep.unknown:
            print(f"  s3://{bucket}/{key}", file=out)
