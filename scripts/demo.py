"""`make demo`: a photo's life through the real handlers against a local S3 — uploaded, replaced, deleted.

Starts moto on 127.0.0.1 and runs both functions with `sls invoke local` on the EventBridge events production
delivers: "Object Created" for a real photo (its renditions are downloaded to ./out/, with their sizes and the
per-stage timings from the handlers' JSON log lines), "Object Created" again for a better photo under the same key
(new keys; the old ones are gone), and "Object Deleted" (nothing is left but each function's tombstone). After each
step it prints what the backend was told: the functions' events, through moto's EventBridge into a queue read back
(one in full, the first time). moto is stopped on the way out, always.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3

# Run as a script (`python scripts/x.py`): make the repo root importable, as it is for the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripts.local_aws import BackendQueue, describe, moto_server, use_in_this_process

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "out"
CORPUS_PHOTO = ROOT.parent / "shared" / "corpus" / "Dragonfly_by_Bolly.jpg"  # 13.4 MP, CC-BY-SA-4.0 ("Bolly")
SHIPPED_PHOTO = ROOT / "demo" / "seeding_by_Clemens_Engelhardt_1600.jpg"  # CC0, when ../shared is absent
BUCKET = "kiray-demo-photos"
# A space on purpose: S3 events carry it URL-encoded as '+', and the handlers must decode it.
KEY = "uploads/listing-1042/living room.jpg"
FUNCTIONS = {"generate-thumbnail": "thumbnail", "generate-medium": "medium"}
SEQUENCERS = iter(f"0062E99A88DC4074{n:02X}" for n in range(0x60, 0x100))


def eventbridge_event(kind: str, key: str, **facts: Any) -> dict[str, Any]:
    """The event EventBridge delivers for an upload or a deletion (S3 → EventBridge → rule → function)."""
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": kind,
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-29T12:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{BUCKET}"],
        "detail": {
            "version": "0",
            "bucket": {"name": BUCKET},
            "object": {"key": quote_plus(key, safe="/"), **facts, "sequencer": next(SEQUENCERS)},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "reason": "PutObject" if kind == "Object Created" else "DeleteObject",
        },
    }


def invoke_local(function: str, event: dict[str, Any], env: dict[str, str], expect: str) -> list[dict[str, Any]]:
    """Runs one function through `sls invoke local` on ``event``; returns its JSON log lines, which must include one
    whose message starts with ``expect``."""
    path = OUT / "events" / f"{function}-{event['detail']['object']['sequencer']}.json"
    path.write_text(json.dumps(event, indent=2))
    command = ["npx", "--no-install", "sls", "invoke", "local", "-f", function, "-p", str(path),
               f"--param=photosBucket={BUCKET}"]  # fmt: skip
    started = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    # Our handlers' log lines; osls also prints the handler's return value, which may span lines.
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"level"')]
    if result.returncode != 0 or not any(str(entry.get("message")).startswith(expect) for entry in lines):
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        raise SystemExit(f"demo: {function} did not log {expect!r} (exit {result.returncode})")
    print(f"demo: {function}: sls invoke local took {elapsed:.1f} s (node start-up included)")
    return lines


def renditions(s3: Any) -> list[str]:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="renditions/").get("Contents", [])
    return sorted(o["Key"] for o in listed)


def replacement(first: Path) -> tuple[str, bytes]:
    """A second photo for the same key: the shipped one, or (when it was the first) that photo mirrored."""
    if first != SHIPPED_PHOTO:
        return SHIPPED_PHOTO.name, SHIPPED_PHOTO.read_bytes()
    from PIL import Image, ImageOps

    out = io.BytesIO()
    ImageOps.mirror(Image.open(SHIPPED_PHOTO)).save(out, "JPEG", quality=90)
    return f"{SHIPPED_PHOTO.stem} (mirrored)", out.getvalue()


def upload(s3: Any, env: dict[str, str], name: str, data: bytes) -> list[tuple[str, dict[str, Any], Path, int]]:
    """Uploads ``data`` under KEY and runs both functions on its event; returns the rows of the table."""
    etag = s3.put_object(Bucket=BUCKET, Key=KEY, Body=data, ContentType="image/jpeg")["ETag"].strip('"')
    print(f"demo: uploaded {name} ({len(data)} bytes) to s3://{BUCKET}/{KEY}")
    event = eventbridge_event("Object Created", KEY, size=len(data), etag=etag)
    rows = []
    for function, rendition in FUNCTIONS.items():
        for rendered in (e for e in invoke_local(function, event, env, "rendered") if e.get("message") == "rendered"):
            body = s3.get_object(Bucket=BUCKET, Key=rendered["output_key"])["Body"].read()
            target = OUT / f"{rendition}.{rendered['output_format'].replace('jpeg', 'jpg')}"
            target.write_bytes(body)
            rows.append((rendition, rendered, target, len(body)))
    # The original upload must be untouched.
    assert s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == data, "the original upload changed"
    return rows


def table(rows: list[tuple[str, dict[str, Any], Path, int]]) -> None:
    print(f"\n{'rendition':<10} {'size':>9} {'bytes':>8}  {'stage ms':<70} key")
    for rendition, entry, _, size in rows:
        stages = "  ".join(f"{k} {v:.1f}" for k, v in entry["ms"].items())
        dims = f"{entry['output_width']}x{entry['output_height']}"
        print(f"{rendition:<10} {dims:>9} {size:>8}  {stages:<70} {entry['output_key']}")
    print()


def told(backend: BackendQueue, expected: int, in_full: str | None = None) -> None:
    """Prints the events the last step published (``expected`` of them); ``in_full`` names a detail-type whose
    thumbnail event is printed whole, as the backend receives it."""
    events = sorted(backend.read(), key=lambda e: (e["detail-type"], e["detail"]["rendition"]))
    if len(events) != expected:
        raise SystemExit(f"demo: expected {expected} events for the backend, got {len(events)}: {events}")
    print(f"events for the backend ({len(events)}):")
    print("\n".join(f"  {describe(e)}" for e in events))
    for envelope in (e for e in events if e["detail-type"] == in_full and e["detail"]["rendition"] == "thumbnail"):
        print(f"the thumbnail's {in_full!r} event (docs/integrating.md):\n{json.dumps(envelope, indent=2)}")
        break
    print()


def main() -> int:
    photo = CORPUS_PHOTO if CORPUS_PHOTO.is_file() else SHIPPED_PHOTO
    OUT.mkdir(exist_ok=True)
    (OUT / "events").mkdir(exist_ok=True)
    with moto_server() as endpoint:
        env = use_in_this_process(endpoint)
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket=BUCKET)
        backend = BackendQueue(endpoint, "kiray-demo-backend")
        print(f"demo: a local S3 and EventBridge (moto) on {endpoint}")

        first = upload(s3, env, photo.name, photo.read_bytes())
        table(first)
        source = first[0][1]
        print(f"source: {source['source_format']} {source['input_width']}x{source['input_height']}, "
              f"{source['input_bytes']} bytes; JSON log line of the thumbnail:\n{json.dumps(source)}\n")  # fmt: skip
        told(backend, len(FUNCTIONS), in_full="Rendition Created")

        # The agent replaces the photo: new keys (the old ones were cached as immutable), and the old ones go.
        replaced = upload(s3, env, *replacement(photo))
        table(replaced)
        old = {row[1]["output_key"] for row in first}
        assert not old & set(renditions(s3)), "the replaced photo's renditions are still there"
        print(f"replaced: {len(old)} renditions of the first photo removed; now under renditions/:")
        print("\n".join(f"  {key}" for key in renditions(s3)))
        told(backend, len(FUNCTIONS))

        # The seller deletes the photo: its renditions go with it.
        s3.delete_object(Bucket=BUCKET, Key=KEY)
        event = eventbridge_event("Object Deleted", KEY)
        removed = [key for function in FUNCTIONS for line in invoke_local(function, event, env, "removed")
                   for key in line.get("removed_keys", [])]  # fmt: skip
        left = renditions(s3)
        assert all(key.endswith("/current.json") for key in left), f"renditions left after the delete: {left}"
        print(f"\ndeleted: {len(removed)} renditions removed; left under renditions/ (tombstones, expired by the "
              "bucket's lifecycle rule):")  # fmt: skip
        print("\n".join(f"  {key}" for key in left))
        told(backend, len(FUNCTIONS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
