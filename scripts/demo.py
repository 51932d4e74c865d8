"""`make demo`: a real photo in, a thumbnail and a medium out, through the real handlers against a local S3.

Starts moto on 127.0.0.1, uploads the photo under uploads/, runs both functions with `sls invoke local` and the
EventBridge "Object Created" event that production delivers, downloads the renditions to ./out/ and prints their
sizes and the per-stage timings from the handlers' JSON log lines. moto is stopped on the way out, always.
"""

from __future__ import annotations

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
from scripts.local_aws import moto_server, use_in_this_process

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "out"
CORPUS_PHOTO = ROOT.parent / "shared" / "corpus" / "Dragonfly_by_Bolly.jpg"  # 13.4 MP, CC-BY-SA-4.0 ("Bolly")
SHIPPED_PHOTO = ROOT / "demo" / "seeding_by_Clemens_Engelhardt_1600.jpg"  # CC0, when ../shared is absent
BUCKET = "kiray-demo-photos"
# A space on purpose: S3 events carry it URL-encoded as '+', and the handlers must decode it.
KEY = "uploads/listing-1042/living room.jpg"
FUNCTIONS = {"generate-thumbnail": "thumbnail", "generate-medium": "medium"}


def eventbridge_event(key: str, size: int, etag: str) -> dict[str, Any]:
    """The event EventBridge delivers for an upload (S3 → EventBridge → rule → function)."""
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-29T12:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{BUCKET}"],
        "detail": {
            "version": "0",
            "bucket": {"name": BUCKET},
            "object": {"key": quote_plus(key, safe="/"), "size": size, "etag": etag, "sequencer": "0062E99A88DC407460"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "reason": "PutObject",
        },
    }


def invoke_local(function: str, event_path: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    """Runs one function through `sls invoke local`; returns its JSON log lines."""
    command = ["npx", "--no-install", "sls", "invoke", "local", "-f", function, "-p", str(event_path),
               f"--param=photosBucket={BUCKET}"]  # fmt: skip
    started = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    # Our handlers' log lines; osls also prints the handler's return value, which may span lines.
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"level"')]
    if result.returncode != 0 or not any(entry.get("message") == "rendered" for entry in lines):
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        raise SystemExit(f"demo: {function} did not render (exit {result.returncode})")
    print(f"demo: {function}: sls invoke local took {elapsed:.1f} s (node start-up included)")
    return lines


def main() -> int:
    photo = CORPUS_PHOTO if CORPUS_PHOTO.is_file() else SHIPPED_PHOTO
    data = photo.read_bytes()
    OUT.mkdir(exist_ok=True)
    (OUT / "events").mkdir(exist_ok=True)
    with moto_server() as endpoint:
        env = use_in_this_process(endpoint)
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket=BUCKET)
        etag = s3.put_object(Bucket=BUCKET, Key=KEY, Body=data, ContentType="image/jpeg")["ETag"].strip('"')
        print(f"demo: uploaded {photo.name} ({len(data)} bytes) to s3://{BUCKET}/{KEY} on {endpoint}")

        rows = []
        for function, rendition in FUNCTIONS.items():
            event_path = OUT / "events" / f"{function}.json"
            event_path.write_text(json.dumps(eventbridge_event(KEY, len(data), etag), indent=2))
            logs = invoke_local(function, event_path, env)
            for rendered in (entry for entry in logs if entry.get("message") == "rendered"):
                body = s3.get_object(Bucket=BUCKET, Key=rendered["output_key"])["Body"].read()
                target = OUT / f"{rendition}.{rendered['output_format'].replace('jpeg', 'jpg')}"
                target.write_bytes(body)
                rows.append((rendition, rendered, target, len(body)))
        # The original upload must be untouched.
        assert s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == data, "the original upload changed"

    print()
    print(f"{'rendition':<10} {'size':>9} {'bytes':>8}  {'stage ms':<70} file")
    for rendition, entry, target, size in rows:
        stages = "  ".join(f"{k} {v:.1f}" for k, v in entry["ms"].items())
        dims = f"{entry['output_width']}x{entry['output_height']}"
        print(f"{rendition:<10} {dims:>9} {size:>8}  {stages:<70} {target.relative_to(ROOT)}")
    source = rows[0][1]
    print(f"\nsource: {source['source_format']} {source['input_width']}x{source['input_height']}, "
          f"{source['input_bytes']} bytes; JSON log line of the thumbnail:\n{json.dumps(source)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
