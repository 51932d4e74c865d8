"""`make dev` end to end: the stack scripts/dev.py runs (serverless-offline + serverless-s3-local, stage `local`)
turns a real photo uploaded with boto3 into both renditions through the real handlers, in either event shape, and
Ctrl-C stops every process it started."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.exceptions import ClientError
from PIL import Image

from kiray_imaging.output_keys import rendition_key, scale_variant, version_token
from kiray_imaging.presets import DEPLOYED_FORMATS, PRESETS

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ROOT = Path(__file__).resolve().parents[2]
PHOTO = "Dragonfly_by_Bolly.jpg"  # 13.4 MP JPEG, orientation 1
SECOND_PHOTO = "Wine_by_Jakub_Mede.jpg"  # portrait: the medium's long side is its height
# serverless.yml's OUTPUT_FORMAT per function (tests/core/test_batch.py checks the template says so).
FORMATS = DEPLOYED_FORMATS
PIL_FORMATS = {"jpeg": "JPEG", "webp": "WEBP"}
START_TIMEOUT, RENDER_TIMEOUT, STOP_TIMEOUT = 180.0, 60.0, 40.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def processes_with(marker: str) -> list[int]:
    """Every live process whose environment holds ``marker``: the whole stack inherits it from scripts/dev.py, even
    processes that outlive their parent and are re-parented."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            environ = proc.joinpath("environ").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue
        if marker.encode() in environ:
            found.append(int(proc.name))
    return found


class DevStack:
    """scripts/dev.py as `make dev` runs it, its output collected line by line."""

    def __init__(self, *args: str) -> None:
        self.marker = f"KIRAY_DEV_TEST_MARKER={uuid.uuid4()}"
        name, value = self.marker.split("=", 1)
        self.proc = subprocess.Popen(
            [sys.executable, "scripts/dev.py", *args],
            cwd=ROOT,
            env=os.environ | {name: value},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            self._queue.put(line)

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                assert self.proc.poll() is None, f"dev.py exited ({self.proc.returncode}):\n{self.output()[-4000:]}"
                continue
            if match := re.search(pattern, line):
                return match
        raise AssertionError(f"no line matching {pattern!r} within {timeout:.0f} s:\n{self.output()[-4000:]}")

    def has_printed(self, pattern: str, timeout: float) -> re.Match[str]:
        """A line matching ``pattern`` among all it printed so far, or within ``timeout`` (unlike wait_for_line, which
        reads on from the last line it matched)."""
        deadline = time.monotonic() + timeout
        while True:
            for line in list(self.lines):
                if match := re.search(pattern, line):
                    return match
            if time.monotonic() > deadline:
                raise AssertionError(f"no line matching {pattern!r} within {timeout:.0f} s:\n{self.output()[-4000:]}")
            time.sleep(0.1)

    def kill_everything(self) -> None:
        """Clean-up after a failed test: nothing of this stack may outlive it."""
        for pid in processes_with(self.marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


def wait_for_renditions(s3: S3Client, bucket: str, keys: set[str], etag: str, timeout: float) -> dict[str, float]:
    """When (seconds from now) each rendition made from this very upload (its source etag) appeared."""
    started, seen = time.monotonic(), dict[str, float]()
    while len(seen) < len(keys) and time.monotonic() - started < timeout:
        for key in keys - set(seen):
            try:
                head = s3.head_object(Bucket=bucket, Key=key)
            except ClientError:
                continue
            if head["Metadata"].get("source-etag") == etag:
                seen[key] = time.monotonic() - started
        time.sleep(0.05)
    return seen


def expected_size(rendition: str, width: int, height: int, key: str = "") -> tuple[int, int]:
    """The size of ``rendition`` of a ``width``×``height`` photo; an ``@2x`` ``key`` is of twice the box."""
    preset = PRESETS[rendition]
    if preset.fit == "cover":
        density = 2 if "@2x." in key else 1
        return preset.width * density, preset.height * density
    scale = min(preset.width / width, preset.height / height, 1.0)
    return round(width * scale), round(height * scale)


@pytest.mark.parametrize("event_shape", ["eventbridge", "s3"])
def test_an_upload_to_the_local_s3_makes_both_renditions(corpus: Path, tmp_path: Path, event_shape: str) -> None:
    s3_port, lambda_port = free_port(), free_port()
    # One of the two runs keeps the local S3's objects in a folder of ours (the default is a temporary one).
    data_dir = tmp_path / "s3-data"
    keep = ["--data-dir", str(data_dir)] if event_shape == "s3" else []
    started = time.monotonic()
    stack = DevStack("--s3-port", str(s3_port), "--lambda-port", str(lambda_port), "--event-shape", event_shape, *keep)
    try:
        stack.wait_for_line(r"^dev: ready in", START_TIMEOUT)
        startup = time.monotonic() - started
        endpoint = stack.wait_for_line(r"^dev: S3 endpoint (http://\S+)", 5).group(1)
        bucket = stack.wait_for_line(r"^dev: bucket (\S+):", 5).group(1)
        assert endpoint == f"http://127.0.0.1:{s3_port}"
        assert f"as {event_shape} events" in stack.output()
        # The example it prints is the command run below.
        assert f"scripts/dev.py upload ../shared/corpus/{PHOTO} --s3-port {s3_port}" in stack.output()

        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="S3RVER",
                          aws_secret_access_key="S3RVER")  # fmt: skip
        data = (corpus / PHOTO).read_bytes()
        # A space and a plus: S3 puts keys in events URL-encoded, and the local stage must encode them the same way.
        key = f"uploads/t-{uuid.uuid4().hex[:8]}/dragon fly+1.jpg"
        uploaded = time.monotonic()
        etag = s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="image/jpeg")["ETag"].strip('"')
        wanted = {
            rendition_key(key, source_prefix="uploads/", dest_prefix="renditions/", rendition=r, fmt=f,
                          token=version_token(etag), variant=scale_variant(scale)): (r, f)
            for r, formats in FORMATS.items()
            for scale in PRESETS[r].scales  # the photo fills 800x600: the thumbnail's @2x too
            for f in formats
        }  # fmt: skip
        seen = wait_for_renditions(s3, bucket, set(wanted), etag, RENDER_TIMEOUT)
        to_both = time.monotonic() - uploaded
        assert set(seen) == set(wanted), f"missing {set(wanted) - set(seen)}:\n{stack.output()[-4000:]}"

        if keep:
            assert list((data_dir / bucket / "uploads").rglob("dragon fly+1.jpg*")), "the objects are not in --data-dir"
        with Image.open(corpus / PHOTO) as source:
            source_size = source.size
        for out_key, (rendition, fmt) in wanted.items():
            obj = s3.get_object(Bucket=bucket, Key=out_key)
            image = Image.open(io.BytesIO(obj["Body"].read()))
            image.load()  # decodes the whole image: a truncated file fails here
            assert image.format == PIL_FORMATS[fmt], out_key
            assert image.size == expected_size(rendition, *source_size, out_key), out_key
            assert obj["ContentType"] == f"image/{fmt}", out_key

        # Exactly one invocation per function, for the upload: the renditions written under renditions/ did not
        # trigger anything (the rule's prefix), and nothing failed.
        stack.wait_for_line(r"kiray-dev: generate-(thumbnail|medium) .*: done", 10)
        stack.wait_for_line(r"kiray-dev: generate-(thumbnail|medium) .*: done", 10)
        time.sleep(1.0)  # room for a recursive invocation to show up, if there were one
        deliveries = [line for line in stack.lines if line.startswith("kiray-dev: generate-")]
        assert len(deliveries) == 2, deliveries  # (before the deletion below, which makes two more)
        assert all(f"s3://{bucket}/{key}: done in" in line for line in deliveries), deliveries
        # And what the backend would be told, printed by the stack (moto's EventBridge into a queue it reads).
        for rendition in ("thumbnail", "medium"):
            told = stack.has_printed(rf"^dev: event: Rendition Created \({rendition}\) {re.escape(key)}: (.*)", 20)
            assert all(k in told.group(1) for k, (r, _) in wanted.items() if r == rendition), told.group(0)
        rendered = [json.loads(line) for line in stack.lines if line.startswith('{"level"')]
        made = {(r["rendition"], r["output_format"], r["key"]) for r in rendered if r["message"] == "rendered"}
        assert made == {(r, f, key) for r, f in wanted.values()}, rendered

        # The command docs/local-dev.md gives, against the running stack; portrait this time.
        out = tmp_path / "out"
        command = ["scripts/dev.py", "upload", f"../shared/corpus/{SECOND_PHOTO}", "--s3-port", str(s3_port)]
        result = subprocess.run(
            [sys.executable, *command, "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stdout + result.stderr
        with Image.open(corpus / SECOND_PHOTO) as source:
            second_size = source.size
        token = version_token(hashlib.md5((corpus / SECOND_PHOTO).read_bytes(), usedforsecurity=False).hexdigest())
        saved = sorted(p for p in out.rglob("*") if p.is_file())
        assert [p.relative_to(out).as_posix() for p in saved] == [
            f"renditions/medium/Wine_by_Jakub_Mede.jpg/{token}.jpg",
            f"renditions/medium/Wine_by_Jakub_Mede.jpg/{token}.webp",
            f"renditions/thumbnail/Wine_by_Jakub_Mede.jpg/{token}.jpg",
            f"renditions/thumbnail/Wine_by_Jakub_Mede.jpg/{token}@2x.jpg",
        ]
        for path in saved:
            with Image.open(path) as image:
                assert image.size == expected_size(path.parent.parent.name, *second_size, path.name), path

        # And its deletion: the command docs/local-dev.md gives removes every rendition of it.
        command = ["scripts/dev.py", "delete", f"uploads/{SECOND_PHOTO}", "--s3-port", str(s3_port)]
        result = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "delete: medium: 2 renditions removed" in result.stdout, result.stdout
        assert "delete: thumbnail: 2 renditions removed" in result.stdout, result.stdout
        stack.has_printed(rf"^dev: event: Renditions Deleted \(medium\) uploads/{SECOND_PHOTO}: removed 2 files", 20)
        left = s3.list_objects_v2(Bucket=bucket, Prefix="renditions/").get("Contents", [])
        assert not [o["Key"] for o in left if "Wine" in o["Key"] and not o["Key"].endswith("current.json")]
        each = ", ".join(f"{k.split('/')[1]} {Path(k).suffix} {t:.2f} s" for k, t in sorted(seen.items()))
        print(f"\ndev ({event_shape}): ready after {startup:.1f} s; upload → all renditions {to_both:.2f} s ({each})")

        # dev.py, node, and each function's `sh -c python3` and python3: what the check below must find none of.
        members = processes_with(stack.marker)
        assert len(members) >= 4, members

        # Ctrl-C: dev.py stops the stack, then checks its process group; nothing of it may be left.
        stack.proc.send_signal(signal.SIGINT)
        assert stack.proc.wait(timeout=STOP_TIMEOUT) == 0, stack.output()[-4000:]
        assert stack.lines[-1] == "dev: stopped", stack.output()[-2000:]
        assert "did not stop" not in stack.output()
        deadline = time.monotonic() + 5
        while processes_with(stack.marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert processes_with(stack.marker) == []
    finally:
        stack.kill_everything()


def test_make_dev_runs_the_script_the_test_runs() -> None:
    result = subprocess.run(["make", "-n", "dev", "DEV_ARGS=--event-shape s3"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert ".venv/bin/python scripts/dev.py --event-shape s3" in result.stdout.splitlines()
