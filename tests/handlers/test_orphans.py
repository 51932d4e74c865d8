"""`kiray-imaging backfill --orphans`: what nothing needs any more is found by listing, and only that is deleted —
renditions of the key scheme before versioned keys, of uploads that are gone, leftovers no state names, old
tombstones — against moto, on a bucket made by the real functions."""

from __future__ import annotations

import datetime
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import boto3

from kiray_imaging import config, orphans
from kiray_imaging.lambda_pipeline import Handler

if TYPE_CHECKING:
    from tests.handlers.s3_helpers import BUCKET, delete, event, invoke, jpeg, keys, state_key, upload
else:
    from s3_helpers import BUCKET, delete, event, invoke, jpeg, keys, state_key, upload

CLI = [sys.executable, "-m", "kiray_imaging", "backfill", "--bucket", BUCKET, "--orphans", "--min-age-minutes", "0"]
SETTINGS = config.load({"SOURCE_BUCKET": BUCKET, "DEST_BUCKET": BUCKET})


def bucket_with_every_kind(s3: Any, functions: dict[str, Handler]) -> dict[str, list[str]]:
    def deliver(record: dict[str, Any]) -> None:
        for h in functions.values():
            invoke(h, event(record))

    deliver(upload(s3, "uploads/l1/live.jpg", jpeg(640, 480)))
    s3.put_object(Bucket=BUCKET, Key="uploads/l1/waiting.jpg", Body=jpeg(640, 480))  # not rendered again yet
    deliver(upload(s3, "uploads/l1/lost.jpg", jpeg(640, 480)))
    lost = [k for k in keys(s3, "renditions/") if "/lost.jpg/" in k]
    s3.delete_object(Bucket=BUCKET, Key="uploads/l1/lost.jpg")  # its delete event never came
    deliver(upload(s3, "uploads/l1/deleted.jpg", jpeg(640, 480)))
    deliver(delete(s3, "uploads/l1/deleted.jpg"))
    legacy = {
        "renditions/thumbnail/l1/live.jpg": "legacy",  # rendered again since: obsolete
        "renditions/medium/l1/live.webp": "legacy",
        "renditions/thumbnail/l1/waiting.jpg": "kept",  # still what the site shows
        "renditions/thumbnail/l1/gone.jpg": "legacy",  # its upload is gone
        "renditions/thumbnail/l1/live.jpg/0123456789abcdef.jpg": "unreferenced",  # a crash's leftover
        "renditions/README.txt": "unknown",
    }
    for key in legacy:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    by_kind: dict[str, list[str]] = {"upload-gone": sorted(lost)}
    for key, kind in legacy.items():
        by_kind.setdefault(kind, []).append(key)
    return {kind: sorted(found) for kind, found in by_kind.items()}


def test_the_sweep_lists_then_deletes_only_orphans(s3: Any, functions: dict[str, Handler]) -> None:
    expected = bucket_with_every_kind(s3, functions)
    before = keys(s3, "renditions/")
    listed = subprocess.run(CLI, capture_output=True, text=True, timeout=300, check=False)
    assert listed.returncode == 0, listed.stderr
    for kind in ("legacy", "upload-gone", "unreferenced"):
        assert f"orphans: {kind}: {len(expected[kind])}\n" in listed.stdout, listed.stdout
        for key in expected[kind]:
            assert f"  s3://{BUCKET}/{key}\n" in listed.stdout
    assert "orphans: tombstone: 0" in listed.stdout  # a fresh one: the lifecycle rule's business
    assert "legacy-in-use 1" in listed.stdout
    assert "not of either key scheme (left alone): 1" in listed.stdout
    assert "# dry run: add --delete" in listed.stdout
    assert keys(s3, "renditions/") == before  # a listing deletes nothing

    deleted = subprocess.run([*CLI, "--delete"], capture_output=True, text=True, timeout=300, check=False)
    assert deleted.returncode == 0, deleted.stderr
    gone = expected["legacy"] + expected["upload-gone"] + expected["unreferenced"]
    assert f"deleted: {len(gone)} keys" in deleted.stdout
    assert keys(s3, "renditions/") == sorted(set(before) - set(gone))
    left = keys(s3, "renditions/")
    assert state_key("uploads/l1/live.jpg") in left
    assert "renditions/thumbnail/l1/waiting.jpg" in left
    assert state_key("uploads/l1/deleted.jpg") in left


def test_tombstones_go_after_the_rule_would_have_expired_them(s3: Any, functions: dict[str, Handler]) -> None:
    bucket_with_every_kind(s3, functions)
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=orphans.TOMBSTONE_DAYS, hours=1)
    sweep = orphans.find(boto3.client("s3"), SETTINGS, now=later)
    assert sweep.orphans["tombstone"] == sorted(state_key("uploads/l1/deleted.jpg", r) for r in ("medium", "thumbnail"))


def test_what_is_too_recent_is_never_an_orphan(s3: Any, functions: dict[str, Handler]) -> None:
    bucket_with_every_kind(s3, functions)
    sweep = orphans.find(boto3.client("s3"), SETTINGS)  # the default: an hour
    assert sweep.keys() == []
    assert sweep.kept["too recent to judge"] == len(keys(s3, "renditions/"))
