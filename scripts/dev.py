"""`make dev`: a local stack in which a photo uploaded to a local S3 makes its renditions appear, through the real
handlers. No AWS account, no Docker.

    python scripts/dev.py [--s3-port 4569] [--lambda-port 3002] [--event-shape eventbridge|s3]
    python scripts/dev.py upload PHOTO [--key uploads/...] [--s3-port 4569]   # from another terminal
    python scripts/dev.py delete uploads/...                                   # and its renditions go

The stack is `sls offline start --stage local`: serverless-s3-local's S3 on 127.0.0.1, serverless-offline's Lambda,
and scripts/serverless-dev-plugin.js handing every created and deleted object to the functions whose EventBridge rule in
serverless.yml matches it, as production's EventBridge does (docs/local-dev.md). It runs in the foreground in its own
process group; Ctrl-C or SIGTERM stops the whole group, the functions' Python processes included.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError, ResponseStreamingError

# Run as a script (`python scripts/x.py`): make the repo root importable, as it is for the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripts.local_aws import HOST, REGION, BackendQueue, aws_env, describe, moto_server

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ROOT = Path(__file__).resolve().parent.parent
SLS = ROOT / "node_modules" / ".bin" / "sls"
# serverless-s3-local checks signatures against its own fixed keys; any other fake key is refused.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "S3RVER", "AWS_SECRET_ACCESS_KEY": "S3RVER"}
# Printed by the dev plugin once S3 and the Lambda API both listen and uploads are wired to the functions.
READY_LINE = "kiray-dev: S3 events go to the functions"
SOURCE_PREFIX, DEST_PREFIX = "uploads/", "renditions/"
EXAMPLE_PHOTOS = (ROOT.parent / "shared" / "corpus" / "Dragonfly_by_Bolly.jpg",
                  ROOT / "demo" / "seeding_by_Clemens_Engelhardt_1600.jpg")  # fmt: skip


def endpoint(s3_port: int) -> str:
    return f"http://{HOST}:{s3_port}"


def s3_client(s3_port: int) -> S3Client:
    return boto3.client(
        "s3",
        endpoint_url=endpoint(s3_port),
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def the_bucket(s3: S3Client) -> str:
    """The stack's bucket: serverless-s3-local creates the one `PhotosBucket` names, and nothing else."""
    names = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    if len(names) != 1:
        raise SystemExit(f"dev: expected one bucket on the local S3, found {names}")
    return names[0]


def venv() -> Path:
    """The virtualenv whose python3 runs the functions: this one (make runs .venv/bin/python), else ./.venv."""
    return Path(sys.prefix) if sys.prefix != sys.base_prefix else ROOT / ".venv"


class StopRequestedError(Exception):
    """Ctrl-C (SIGINT), SIGTERM or SIGHUP: stop the stack."""


def _stop_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise StopRequestedError(signal.Signals(signum).name)


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group. Zombies are left out: where PID 1 does not reap orphans
    (some containers) they linger, but they hold nothing and run nothing."""
    if not Path("/proc").is_dir():  # macOS: only whether the group has any member at all
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [pgid]
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return members


class EventsTap:
    """Where the functions' events for the backend go in `make dev`: the local S3 has no EventBridge, so moto's
    serves it (its rule and queue: `BackendQueue`); a thread prints each event as the backend would receive it."""

    def __init__(self, moto: str) -> None:
        self.endpoint = moto
        keys = CREDENTIALS["AWS_ACCESS_KEY_ID"], CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
        self._queue = BackendQueue(moto, "kiray-dev-backend", credentials=keys)
        self._stop = threading.Event()
        threading.Thread(target=self._print, daemon=True).start()

    def _print(self) -> None:
        while not self._stop.is_set():
            try:
                events = self._queue.read(wait_s=1)
            except Exception:  # moto stopping under us at the end
                return
            for envelope in events:
                print(f"dev: event: {describe(envelope)}", flush=True)

    def close(self) -> None:
        self._stop.set()


class Stack:
    """`sls offline start --stage local` in a process group of its own, its output echoed to ours."""

    def __init__(self, s3_port: int, lambda_port: int, event_shape: str, data_dir: Path, events: str) -> None:
        env = {k: v for k, v in aws_env(endpoint(s3_port)).items() if k != "AWS_SESSION_TOKEN"} | CREDENTIALS
        # serverless-offline runs `python3` from $VIRTUAL_ENV/bin: the interpreter with the core installed.
        self.env = env | {
            "AWS_ENDPOINT_URL_EVENTS": events,
            "VIRTUAL_ENV": str(venv()),
            "KIRAY_DEV_S3_PORT": str(s3_port),
            "KIRAY_DEV_S3_DIR": str(data_dir),
            "KIRAY_DEV_LAMBDA_PORT": str(lambda_port),
            "KIRAY_DEV_EVENT_SHAPE": event_shape,
        }
        self.ready = threading.Event()
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float) -> None:
        if not SLS.exists():
            raise SystemExit("dev: node_modules is missing: run `make setup` first")
        self.proc = subprocess.Popen(
            [str(SLS), "offline", "start", "--stage", "local"],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # Its own group: Ctrl-C reaches us only, and we stop the stack in order, then everything left in the group.
            start_new_session=True,
        )
        threading.Thread(target=self._echo, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.2):
            if self.proc.poll() is not None:
                raise SystemExit(f"dev: the stack exited with status {self.proc.returncode} before it was ready")
            if time.monotonic() > deadline:
                raise SystemExit(f"dev: the stack was not ready within {timeout:.0f} s")

    def _echo(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            if line.startswith(READY_LINE):
                self.ready.set()

    def wait(self) -> int:
        assert self.proc is not None
        return self.proc.wait()

    def stop(self) -> None:
        """serverless-offline first (on SIGTERM it closes S3, its Lambda API and the functions), then whatever is left
        in the group: each function runs as `sh -c python3 …`, and a python3 whose shell is gone is nobody's to stop."""
        proc = self.proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            deadline = time.monotonic() + 5
            while group_members(proc.pid) and time.monotonic() < deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
                time.sleep(0.1)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        left = group_members(proc.pid)
        if left:
            print(f"dev: processes {left} of the stack did not stop", file=sys.stderr)


def banner(s3: S3Client, s3_port: int, event_shape: str, started: float) -> None:
    bucket = the_bucket(s3)
    photo = next((p for p in EXAMPLE_PHOTOS if p.is_file()), EXAMPLE_PHOTOS[-1])
    port_arg = "" if s3_port == 4569 else f" --s3-port {s3_port}"
    lines = [
        f"dev: ready in {time.monotonic() - started:.1f} s — Ctrl-C stops everything",
        f"dev: S3 endpoint {endpoint(s3_port)} (region {REGION}, access key and secret S3RVER)",
        f"dev: bucket {bucket}: objects created under {SOURCE_PREFIX} go to both functions as {event_shape} events;"
        f" renditions appear under {DEST_PREFIX}",
        "dev: the functions' events for the backend are printed here as they come (dev: event: …)",
        f"dev: try, from another terminal: .venv/bin/python scripts/dev.py upload "
        f"{os.path.relpath(photo, ROOT)}{port_arg}",
    ]
    if shutil.which("aws"):
        lines.append(
            f"dev: or: AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER aws --endpoint-url {endpoint(s3_port)}"
            f" s3 cp {os.path.relpath(photo, ROOT)} s3://{bucket}/{SOURCE_PREFIX}{photo.name}"
        )
    print("\n".join(lines), flush=True)


def serve(args: argparse.Namespace) -> int:
    # SIGINT too, explicitly: a shell starting us in the background leaves it ignored, and Python then never raises
    # KeyboardInterrupt.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop_on_signal)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kiray-dev-s3-") as scratch:
        data_dir = Path(args.data_dir).resolve() if args.data_dir else Path(scratch)
        data_dir.mkdir(parents=True, exist_ok=True)
        moto = contextlib.ExitStack()
        tap = EventsTap(moto.enter_context(moto_server()))
        moto.callback(tap.close)
        stack = Stack(args.s3_port, args.lambda_port, args.event_shape, data_dir, tap.endpoint)
        try:
            stack.start(timeout=args.start_timeout)
            banner(s3_client(args.s3_port), args.s3_port, args.event_shape, started)
            status = stack.wait()
            print(f"dev: the stack exited with status {status}", file=sys.stderr)
            return status or 1
        except (KeyboardInterrupt, StopRequestedError) as stop:
            print(f"\ndev: stopping ({stop or 'Ctrl-C'})", flush=True)
            return 0
        finally:
            # A second Ctrl-C must not cut the shutdown short and leave processes behind.
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)
            stack.stop()
            moto.close()
            print("dev: stopped", flush=True)


def _states(key: str) -> dict[str, str]:
    """Each deployed function's ``current.json`` of ``key``, from the core installed in this virtualenv (the one the
    functions run): the pipeline's own naming."""
    from kiray_imaging.output_keys import pointer_key
    from kiray_imaging.presets import DEPLOYED_FORMATS

    return {r: pointer_key(key, source_prefix=SOURCE_PREFIX, dest_prefix=DEST_PREFIX, rendition=r)
            for r in DEPLOYED_FORMATS}  # fmt: skip


def _state(s3: S3Client, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError:
        return None
    except (ResponseStreamingError, ValueError):
        # The local S3 (s3rver) streams the file as it is on disk: read while a function rewrites it, it is cut
        # short. Polled again; S3 itself never serves half an object.
        return None
    return state


def _wait(s3: S3Client, bucket: str, states: dict[str, str], done: Callable[[dict[str, Any]], bool],
          timeout: float) -> dict[str, tuple[dict[str, Any], float]] | None:  # fmt: skip
    """Polls each ``current.json`` until ``done`` says so of all; their contents and the seconds each took."""
    started, seen = time.monotonic(), dict[str, tuple[dict[str, Any], float]]()
    while len(seen) < len(states):
        for rendition, state_key in states.items():
            state = None if rendition in seen else _state(s3, bucket, state_key)
            if state is not None and done(state):
                seen[rendition] = (state, time.monotonic() - started)
        if time.monotonic() - started > timeout:
            return None
        time.sleep(0.1)
    return seen


def _bucket_and_key(args: argparse.Namespace, s3: S3Client, default: str) -> tuple[str, str]:
    key = args.key or default
    if not key.startswith(SOURCE_PREFIX):
        raise SystemExit(f"{args.command}: {key!r} is not under {SOURCE_PREFIX}: no function would run")
    return args.bucket or the_bucket(s3), key


def upload(args: argparse.Namespace) -> int:
    """Uploads a photo, waits until each function's ``current.json`` names this very upload, saves its files."""
    photo = Path(args.photo)
    s3 = s3_client(args.s3_port)
    bucket, key = _bucket_and_key(args, s3, f"{SOURCE_PREFIX}{photo.name}")
    states = _states(key)
    # The state of an earlier upload of the same bytes would name this one's files already: start from none.
    for state_key in states.values():
        s3.delete_object(Bucket=bucket, Key=state_key)
    etag = s3.put_object(Bucket=bucket, Key=key, Body=photo.read_bytes())["ETag"].strip('"')
    print(f"upload: s3://{bucket}/{key} ({photo.stat().st_size} bytes)", flush=True)
    seen = _wait(s3, bucket, states, lambda state: state["upload"].get("etag") == etag, args.timeout)
    if seen is None:
        print(f"upload: no rendition within {args.timeout:.0f} s (see the stack's log)")
        return 1
    out = Path(args.out)
    for rendition, (state, seconds) in sorted(seen.items()):
        if state["state"] == "failed":
            error = state["error"]
            print(f"upload: {rendition}: failed after {seconds:.2f} s: {error['class']}: {error['message']}")
        for f in state["files"]:
            body = s3.get_object(Bucket=bucket, Key=f["key"])["Body"].read()
            target = out / f["key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
            print(f"upload: {f['key']}: {f['width']}x{f['height']}, {len(body)} bytes after {seconds:.2f} s "
                  f"→ {os.path.relpath(target)}")  # fmt: skip
    return 0


def delete(args: argparse.Namespace) -> int:
    """Deletes an upload, waits until each function has removed its renditions, lists what went."""
    s3 = s3_client(args.s3_port)
    bucket, key = _bucket_and_key(args, s3, args.key)
    states = _states(key)
    s3.delete_object(Bucket=bucket, Key=key)
    print(f"delete: s3://{bucket}/{key}", flush=True)
    seen = _wait(s3, bucket, states, lambda state: state["state"] == "deleted", args.timeout)
    if seen is None:
        print(f"delete: the renditions were not removed within {args.timeout:.0f} s (see the stack's log)")
        return 1
    left = 0
    for rendition, (state, seconds) in sorted(seen.items()):
        gone = state.get("superseded", [])
        still = [k for k in gone if _exists(s3, bucket, k)]
        left += len(still)
        print(f"delete: {rendition}: {len(gone)} renditions removed after {seconds:.2f} s"
              + (f"; still there: {still}" if still else ""))  # fmt: skip
        for k in gone:
            print(f"delete:   {k}")
    return 1 if left else 0


def _exists(s3: S3Client, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--s3-port", type=int, default=4569, help="the local S3's port (default 4569)")
    parser.add_argument("--lambda-port", type=int, default=3002, help="serverless-offline's Lambda API port")
    parser.add_argument(
        "--event-shape",
        choices=("eventbridge", "s3"),
        default="eventbridge",
        help="what the functions get: EventBridge events (production's) or S3 notification records",
    )
    parser.add_argument("--data-dir", help="keep the local S3's objects here (default: a temporary folder)")
    parser.add_argument("--start-timeout", type=float, default=120.0)
    sub = parser.add_subparsers(dest="command")
    up = sub.add_parser("upload", help="upload a photo to the running stack and wait for its renditions")
    up.add_argument("photo")
    up.add_argument("--key", help=f"object key (default {SOURCE_PREFIX}<file name>)")
    up.add_argument("--out", default=str(ROOT / "out" / "dev"), help="where to save the renditions")
    rm = sub.add_parser("delete", help="delete an upload from the running stack and wait for its renditions to go")
    rm.add_argument("key", help=f"the upload's key, under {SOURCE_PREFIX}")
    for command in (up, rm):
        command.add_argument("--bucket", help="default: the stack's only bucket")
        command.add_argument("--s3-port", type=int, default=4569)
        command.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    commands = {"upload": upload, "delete": delete}
    return commands[args.command](args) if args.command in commands else serve(args)


if __name__ == "__main__":
    raise SystemExit(main())
