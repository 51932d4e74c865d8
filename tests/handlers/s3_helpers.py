"""Shared by the handler tests: test photos, events shaped as S3 delivers them, and an S3 client that fails on cue."""

from __future__ import annotations

import contextlib
import http.client
import io
import itertools
import json
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote_plus

from PIL import Image

from kiray_imaging.lambda_pipeline import Handler
from kiray_imaging.output_keys import version_token
from kiray_imaging.s3_client import Answer, S3Error, from_environment

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


def files(s3: Any, prefix: str = "renditions/") -> list[str]:
    """The rendition files under ``prefix``, without the uploads' ``current.json``."""
    return [key for key in keys(s3, prefix) if not key.endswith("/current.json")]


def version_key(s3: Any, upload_key: str, rendition: str = "thumbnail", ext: str = ".jpg", etag: str = "") -> str:
    """Where the rendition of ``upload_key``'s current version (or of the version with ``etag``) is written."""
    etag = etag or s3.head_object(Bucket=BUCKET, Key=upload_key)["ETag"]
    return f"renditions/{rendition}/{upload_key.removeprefix('uploads/')}/{version_token(etag)}{ext}"


def state_key(upload_key: str, rendition: str = "thumbnail") -> str:
    return f"renditions/{rendition}/{upload_key.removeprefix('uploads/')}/current.json"


def state_of(s3: Any, upload_key: str, rendition: str = "thumbnail") -> dict[str, Any] | None:
    """The upload's ``current.json`` for ``rendition``, parsed; ``None`` when there is none."""
    try:
        body = s3.get_object(Bucket=BUCKET, Key=state_key(upload_key, rendition))["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    state: dict[str, Any] = json.loads(body)
    return state


def delete_record(
    key: str, sequencer: str, *, bucket: str = BUCKET, name: str = "ObjectRemoved:Delete"
) -> dict[str, Any]:
    """The notification record S3 sends for a deletion (no size, no ETag)."""
    obj = {"key": quote_plus(key, safe="/"), "sequencer": sequencer}
    return {"eventSource": "aws:s3", "eventName": name, "s3": {"bucket": {"name": bucket}, "object": obj}}


def delete(s3: Any, key: str) -> dict[str, Any]:
    """Deletes ``key`` and returns the record S3 would send."""
    s3.delete_object(Bucket=BUCKET, Key=key)
    return delete_record(key, next_sequencer())


def client_error(code: str, status: int, operation: str) -> S3Error:
    return S3Error(operation, status, code, code, "r")


class _Wire:
    """Bytes posing as a socket, for http.client to parse an answer from."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self.raw)


def s3_answer(status: int, code: str) -> Answer:
    """An S3 error answer as it arrives off the wire (status line, headers, XML body), parsed by http.client."""
    _, headers, body = s3_error(status, code, message=code)
    lines = [f"HTTP/1.1 {status} X", *(f"{k}: {v}" for k, v in headers.items()), f"Content-Length: {len(body)}"]
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    response = http.client.HTTPResponse(_Wire(raw))  # type: ignore[arg-type]
    response.begin()
    return Answer(response.status, response.headers, response)


Hook = Callable[[dict[str, Any]], None]


class HookedS3:
    """The functions' S3 client (against moto), except that a call matching ``hooks`` ((method, key) → hook) runs
    the hook first: it may raise (a fault S3 would return) or act (another writer getting in between). Calls are
    recorded."""

    def __init__(self, hooks: Mapping[tuple[str, str], Hook]) -> None:
        self.real, self.hooks = from_environment(), dict(hooks)
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


@contextlib.contextmanager
def fake_s3(
    answer: Callable[..., tuple[int, dict[str, str], bytes]],
    *,
    by_path: bool = False,
    tls: ssl.SSLContext | None = None,
    peers: list[int] | None = None,
    close_after_reply: bool = False,
) -> Iterator[tuple[str, list[str]]]:
    """An HTTP server speaking just enough S3 for one GetObject/PutObject; ``answer(method)`` decides the reply
    (``answer(method, path)`` with ``by_path``).
    Yields its URL and the methods of the requests it saw, in order; ``peers`` gets each request's client port (one
    port, one connection), ``tls`` makes it HTTPS, ``close_after_reply`` closes each connection after answering
    without saying so (as a server does to an idle keep-alive connection)."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append(self.command)
            if peers is not None:
                peers.append(self.client_address[1])
            status, headers, body = answer(self.command, self.path) if by_path else answer(self.command)
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":  # as S3: a HEAD answer has headers only
                self.wfile.write(body)
            self.close_connection = close_after_reply

        do_GET = do_PUT = do_HEAD = do_DELETE = _reply  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if tls else "http"
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def s3_error(status: int, code: str, message: str = "m") -> tuple[int, dict[str, str], bytes]:
    """S3's error answer: status, headers, XML body."""
    body = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return status, {"Content-Type": "application/xml"}, body.encode()
