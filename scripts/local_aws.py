"""A local AWS for development and tests: moto in server mode on 127.0.0.1, with fake credentials.

    python scripts/local_aws.py -- npx sls package      # runs the command against a fresh moto, then stops it

An IP rather than `localhost` keeps S3 path-style (no bucket-name subdomains to resolve). The server is always
stopped when the command ends, even on failure, so nothing is left running.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from typing import Any

HOST = "127.0.0.1"
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def aws_env(endpoint: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) set up for boto3, osls and the handlers to talk to the local
    endpoint only: fake credentials, and never a developer's real profile or SSO session by accident."""
    env = {
        k: v
        for k, v in (os.environ if base is None else base).items()
        if k not in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")
    }
    return env | {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


def use_in_this_process(endpoint: str) -> dict[str, str]:
    """Points this process's boto3 at ``endpoint`` (and returns the environment for child processes)."""
    env = aws_env(endpoint)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        os.environ.pop(name, None)
    os.environ.update(env)
    return env


@contextlib.contextmanager
def moto_server(timeout: float = 30.0) -> Iterator[str]:
    """Starts moto, yields its endpoint URL, stops it."""
    port = _free_port()
    endpoint = f"http://{HOST}:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"moto server exited with status {proc.returncode}")
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not answer on {endpoint} within {timeout:.0f} s") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class BackendQueue:
    """What Kiray's backend would receive, in moto: on each bus the functions publish to, a rule sending everything
    from kiray.imaging to one SQS queue (production's subscription, docs/integrating.md)."""

    def __init__(self, endpoint: str, name: str, buses: Iterable[str] = ("default",),
                 credentials: tuple[str, str] = ("testing", "testing")) -> None:  # fmt: skip
        import boto3  # not at module level: moto's own start-up needs none of it

        key, secret = credentials
        self._sqs: Any = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=key,
                                      aws_secret_access_key=secret)  # fmt: skip
        bridge: Any = boto3.client("events", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=key,
                                   aws_secret_access_key=secret)  # fmt: skip
        self._url = self._sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=self._url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for bus in sorted(set(buses)):
            if bus != "default":
                bridge.create_event_bus(Name=bus)
            bridge.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps({"source": ["kiray.imaging"]}))
            bridge.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])

    def read(self, wait_s: int = 0) -> list[dict[str, Any]]:
        """The events delivered so far (the EventBridge envelopes), each once; waits up to ``wait_s`` for the first."""
        got: list[dict[str, Any]] = []
        receive = {"QueueUrl": self._url, "MaxNumberOfMessages": 10}
        while messages := self._sqs.receive_message(**receive, WaitTimeSeconds=0 if got else wait_s).get("Messages"):
            for m in messages:
                got.append(json.loads(m["Body"]))
                self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=m["ReceiptHandle"])
        return got


def describe(envelope: dict[str, Any]) -> str:
    """One line of what an event tells the backend: type, rendition, upload, and its files, error or removed keys."""
    d = envelope["detail"]

    def created() -> str:
        files = " ".join(f"{f['width']}x{f['height']} {f['key']}" for f in d["files"])
        return files + (f" (replacing {len(d['replaces'])} files)" if d.get("replaces") else "")

    said: dict[str, Callable[[], str]] = {
        "Rendition Created": created,
        "Rendition Failed": lambda: f"{d['error']['class']}: {d['error']['message']}",
        "Renditions Deleted": lambda: f"removed {len(d['keys'])} files",
    }
    what = said.get(envelope["detail-type"], lambda: json.dumps(d))()
    return f"{envelope['detail-type']} ({d['rendition']}) {d['upload']['key']}: {what}"


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print("usage: local_aws.py -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    command = argv[argv.index("--") + 1 :]
    with moto_server() as endpoint:
        print(f"local-aws: moto on {endpoint}", file=sys.stderr, flush=True)
        return subprocess.call(command, env=aws_env(endpoint))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
