"""What our own AWS clients share (the S3 calls in s3_client.py, PutEvents in events_client.py): credentials as
botocore finds them, SigV4 signing, keep-alive connections, and the retries of botocore's standard mode, over the
standard library's HTTP client.

Why not boto3: importing boto3 and creating one client took 250–300 ms and 35 MB of every cold start (botocore loads
and parses its service models), four times the rest of the handler's import; the functions make five calls.

What it does the way botocore does: credentials from the environment (what Lambda provides), else botocore's own
chain (a developer's profile or SSO session, loaded only then); the payload's SHA-256 signed, so AWS rejects a body
damaged in transit; up to 5 retries with full-jitter exponential backoff (at most 20 s) on throttling, 5xx and
network errors, as botocore's ``standard`` retry mode did for us; errors carry the service's code and botocore's
wording; ``AWS_CA_BUNDLE``. Not supported, as nothing here needs them: proxy settings, FIPS and dual-stack endpoints,
following a redirect to another region (a function's trigger is always in its bucket's region).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import os
import random
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from kiray_imaging import __version__

MAX_ATTEMPTS = 6
"""Attempts per call: the first and 5 retries (what botocore's standard mode with ``max_attempts=5`` made)."""
MAX_BACKOFF_S = 20.0
SOCKET_TIMEOUT_S = 20.0
"""Per connect and per read. S3 answers in well under a second; a function's own timeout is 30 s, and a stalled
connection should be retried (or fail into Lambda's retry) within it rather than use all of it."""

# S3 and AWS error codes that a later attempt can succeed on (botocore's standard mode's throttling and transient
# lists, the ones S3 returns); besides these, every 5xx and every network error is retried.
_RETRYABLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "ProvisionedThroughputExceededException",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "InternalError",
        "ServiceUnavailable",
    }
)
_ERROR_BODY_LIMIT = 64 * 1024


class AwsError(Exception):
    """AWS refused a call (after the retries, if the refusal was one a retry might fix).

    ``code`` is the service's error code (``NoSuchKey``, ``AccessDenied``, ``ThrottlingException`` …), or the HTTP
    status as text when the answer had no body (every S3 HEAD error)."""

    def __init__(
        self, operation_name: str, status: int, code: str, message: str = "", request_id: str = "", retries: int = 0
    ) -> None:
        self.operation_name = operation_name
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.retries = retries
        """How many retries came before this answer, when it ended them."""
        super().__init__(code)

    def __str__(self) -> str:
        # botocore's wording, which the on-call engineer and the Batch Operations report already know.
        tried = f" (reached max retries: {self.retries})" if self.retries else ""
        return (
            f"An error occurred ({self.code}) when calling the {self.operation_name} operation{tried}: {self.message}"
        )


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None


CredentialSource = Callable[[], Credentials]


def environment_credentials(env: Mapping[str, str] | None = None) -> CredentialSource | None:
    """What Lambda (and our local setups) provide: keys in the environment."""
    env = os.environ if env is None else env
    access, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if not access or not secret:
        return None
    found = Credentials(access, secret, env.get("AWS_SESSION_TOKEN") or None)
    return lambda: found


class NoCredentialsError(RuntimeError):
    """Neither the environment nor botocore's chain has AWS credentials (raised by the first call, as botocore's)."""


def botocore_credentials() -> CredentialSource:
    """Anything else botocore finds (profile, SSO, container or instance role), refreshed as botocore refreshes it.
    Looked for at the first call, and only imported then: no function environment gets this far."""
    found: list[Any] = []

    def frozen() -> Credentials:
        if not found:
            import botocore.session

            resolved = botocore.session.get_session().get_credentials()
            if resolved is None:
                raise NoCredentialsError("no AWS credentials in the environment or in botocore's chain")
            found.append(resolved)
        c = found[0].get_frozen_credentials()
        return Credentials(str(c.access_key), str(c.secret_key), c.token or None)

    return frozen


def region_from(env: Mapping[str, str]) -> str:
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"


class Body:
    """The object's bytes, still on the wire until ``read()``; ``close()`` drops them unread (and the connection)."""

    def __init__(self, response: http.client.HTTPResponse, release: Callable[[bool], None]) -> None:
        self._response, self._release = response, release

    def read(self) -> bytes:
        try:
            data = self._response.read()
        except BaseException:
            self._release(False)
            raise
        self._release(True)
        return data

    def close(self) -> None:
        self._response.close()
        self._release(False)


@dataclass(frozen=True)
class Answer:
    """One HTTP answer as the retry loop sees it."""

    status: int
    headers: http.client.HTTPMessage
    response: http.client.HTTPResponse


class Transport(Protocol):
    def __call__(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> Answer: ...


class AwsClient:
    """What every call of ours to AWS shares: SigV4 signing for ``service``, the retries, and a keep-alive connection
    per thread and host. Thread-safe. Subclasses name the service, address the calls and read the refusals."""

    service = ""
    """The SigV4 signing name: ``s3``, ``events``."""

    def __init__(
        self,
        *,
        region: str,
        credentials: CredentialSource,
        endpoint_url: str | None = None,
        ca_bundle: str | None = None,
    ) -> None:
        self.region = region
        self._credentials = credentials
        self._endpoint = urlsplit(endpoint_url) if endpoint_url else None
        self._ca_bundle = ca_bundle
        self._tls: ssl.SSLContext | None = None
        self._local = threading.local()
        self.send: Transport = self._send
        """The one seam to the network (tests put faults here)."""

    def signed_headers(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes, when: time.struct_time | None = None
    ) -> dict[str, str]:
        """``headers`` plus Host, the date, the payload hash and the SigV4 Authorization over all of them."""
        creds = self._credentials()
        parts = urlsplit(url)
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", when or time.gmtime())
        day = amz_date[:8]
        out = {k: " ".join(str(v).split()) for k, v in headers.items()}
        out["Host"] = parts.netloc
        out["X-Amz-Date"] = amz_date
        out["X-Amz-Content-SHA256"] = hashlib.sha256(body).hexdigest()
        if creds.token:
            out["X-Amz-Security-Token"] = creds.token
        canonical = sorted((k.lower(), v) for k, v in out.items())
        signed = ";".join(k for k, _ in canonical)
        request = "\n".join(
            [
                method,
                parts.path or "/",
                parts.query,
                "".join(f"{k}:{v}\n" for k, v in canonical),
                signed,
                out["X-Amz-Content-SHA256"],
            ]
        )
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(request.encode()).hexdigest()}"
        key = f"AWS4{creds.secret_key}".encode()
        for part in (day, self.region, self.service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        out["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
        )
        return out

    def call(
        self, operation: str, method: str, url: str, headers: Mapping[str, str], body: bytes, *, stream: bool = False
    ) -> Answer:
        """One request, signed and retried: the answer of the first success, or the refusal ``error`` makes of the
        last answer (raised at once when no retry can help)."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            last = attempt == MAX_ATTEMPTS
            try:
                # Signed per attempt: the date is part of the signature and a retry may come much later.
                answer = self.send(method, url, self.signed_headers(method, url, headers, body), body)
            except (OSError, http.client.HTTPException):
                if last:
                    raise
            else:
                if 200 <= answer.status < 300:
                    if not stream:
                        answer.response.read()
                        self._release(reuse=True)
                    return answer
                error = self.error(operation, answer)
                # A refusal read to its end (S3's are a few hundred bytes) leaves the connection usable: a 412 on
                # a conditional write is routine and the next call follows at once.
                self._release(reuse=answer.response.isclosed())
                if not retryable(error):
                    raise error
                if last:
                    error.retries = attempt - 1
                    raise error
            time.sleep(random.random() * min(MAX_BACKOFF_S, 2.0 ** (attempt - 1)))
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> Answer:
        parts = urlsplit(url)
        conn = self._connection(parts.scheme, parts.netloc)
        try:
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            sent = {**headers, "User-Agent": f"kiray-imaging/{__version__}"}
            conn.request(method, target, body=body if method in ("PUT", "POST") else None, headers=sent)
            response = conn.getresponse()
        except BaseException:
            self._drop(parts.netloc)
            raise
        self._local.busy = parts.netloc
        return Answer(response.status, response.headers, response)

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        pool: dict[str, http.client.HTTPConnection] = self._pool()
        busy = getattr(self._local, "busy", None)
        if busy is not None:
            # The previous answer was never read to its end: its connection cannot carry another request.
            self._drop(busy)
        conn = pool.get(netloc)
        if conn is not None and conn.sock is not None and _closed_by_peer(conn.sock):
            # S3 closes idle connections, and a warm function wakes up holding one: reconnect now rather than
            # fail an attempt on it and sleep a backoff (urllib3 checks its pool the same way).
            conn.close()
        if conn is None:
            if scheme == "https":
                conn = http.client.HTTPSConnection(netloc, timeout=SOCKET_TIMEOUT_S, context=self._tls_context())
            else:
                conn = http.client.HTTPConnection(netloc, timeout=SOCKET_TIMEOUT_S)
            pool[netloc] = conn
        return conn

    def _tls_context(self) -> ssl.SSLContext:
        # One per client: loading the trust store is slow (bench/results/history.md), and new connections come with
        # each bucket's host and after any answer not read to its end. ``ca_bundle``: AWS_CA_BUNDLE as botocore reads
        # it.
        if self._tls is None:
            self._tls = ssl.create_default_context(cafile=self._ca_bundle)
        return self._tls

    def _pool(self) -> dict[str, http.client.HTTPConnection]:
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        return pool

    def _drop(self, netloc: str) -> None:
        conn = self._pool().pop(netloc, None)
        if conn is not None:
            conn.close()
        self._local.busy = None

    def _release(self, reuse: bool) -> None:
        """The answer has been read to its end (``reuse``: the connection may carry the next request) or dropped."""
        netloc = getattr(self._local, "busy", None)
        if netloc is None:
            return
        if reuse:
            self._local.busy = None
        else:
            self._drop(netloc)

    def error(self, operation: str, answer: Answer) -> AwsError:
        """The refusal an unsuccessful answer carries (its body read)."""
        raise NotImplementedError


def _closed_by_peer(sock: socket.socket) -> bool:
    """An idle keep-alive socket that is readable has been closed (or reset) by the other end."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def retryable(error: AwsError) -> bool:
    return error.status >= 500 or error.status == 429 or error.code in _RETRYABLE_CODES


def endpoint_from(env: Mapping[str, str], service_variable: str) -> str | None:
    """``AWS_ENDPOINT_URL_<SERVICE>``, else ``AWS_ENDPOINT_URL``: a local AWS (moto, s3rver), as botocore reads them."""
    return env.get(service_variable) or env.get("AWS_ENDPOINT_URL") or None
