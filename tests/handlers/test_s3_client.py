"""The functions' own S3 client (kiray_imaging.s3_client): signatures equal to botocore's, addressing, the calls
against moto, retries and connection reuse against a fake endpoint, and that the handlers no longer import boto3.
(moto checking our signatures under the functions' IAM policy is in test_failures.py.)"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotocoreCredentials

from kiray_imaging import aws_http, s3_client
from kiray_imaging.s3_client import Credentials, NoCredentialsError, S3Client, S3Error, from_environment

if TYPE_CHECKING:
    from tests.handlers.s3_helpers import BUCKET, fake_s3, jpeg, s3_error
else:
    from s3_helpers import BUCKET, fake_s3, jpeg, s3_error

ROOT = Path(__file__).resolve().parents[2]
KEYS = [
    "uploads/l1/front door+garden é.jpg",
    "uploads/100%/a b.png",
    "uploads/ünï/çødé €.webp",
    "uploads//twice/./../dots",
    "uploads/~x(1)!*'@$&=;:,?#[].jpg",
]


def client(token: str | None = "session/token+=", region: str = "eu-west-1", **kwargs: Any) -> S3Client:
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    return S3Client(region=region, credentials=lambda: creds, **kwargs)


@pytest.mark.parametrize("token", [None, "session/token+="])
@pytest.mark.parametrize("key", KEYS)
def test_signatures_equal_botocores(key: str, token: str | None) -> None:
    c = client(token)
    url = c.url("kiray-photos", key)
    headers = {"Content-Type": "image/jpeg", "If-None-Match": "*", "x-amz-meta-source-key": "uploads/a%20b.jpg",
               "Cache-Control": "public,  max-age=31536000"}  # fmt: skip
    signed = c.signed_headers("PUT", url, headers, b"photo", time.gmtime(1_700_000_000))

    request = AWSRequest("PUT", url, data=b"photo", headers={k: v for k, v in signed.items() if k != "Authorization"})
    request.context["timestamp"] = signed["X-Amz-Date"]
    auth = S3SigV4Auth(BotocoreCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token),
                       "s3", "eu-west-1")  # fmt: skip
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    assert signed["Authorization"].endswith(f"Signature={expected}")
    assert ("x-amz-security-token" in signed["Authorization"]) == (token is not None)


def test_addressing() -> None:
    assert client().url("photos", "a b/c.jpg") == "https://photos.s3.eu-west-1.amazonaws.com/a%20b/c.jpg"
    # A dotted bucket would not match the wildcard certificate of a virtual-hosted name.
    assert client().url("kiray.photos", "c.jpg") == "https://s3.eu-west-1.amazonaws.com/kiray.photos/c.jpg"
    assert client(region="cn-north-1").url("p", "c") == "https://p.s3.cn-north-1.amazonaws.com.cn/c"
    local = client(endpoint_url="http://127.0.0.1:5000/")
    assert local.url("photos", "a+b.jpg") == "http://127.0.0.1:5000/photos/a%2Bb.jpg"


def test_the_three_calls_against_moto(s3: Any) -> None:
    c = from_environment()
    key = KEYS[0]
    put = c.put_object(Bucket=BUCKET, Key=key, Body=b"first", ContentType="image/jpeg", CacheControl="max-age=60",
                       Metadata={"source-etag": "abc", "source-key": "uploads/x%20y.jpg"})  # fmt: skip
    head = c.head_object(Bucket=BUCKET, Key=key)
    assert (head["ETag"], head["ContentLength"], head["ContentType"]) == (put["ETag"], 5, "image/jpeg")
    assert head["Metadata"] == {"source-etag": "abc", "source-key": "uploads/x%20y.jpg"}
    assert s3.head_object(Bucket=BUCKET, Key=key)["CacheControl"] == "max-age=60"  # boto3 reads what we wrote

    got = c.get_object(Bucket=BUCKET, Key=key, IfMatch=put["ETag"])
    assert (got["Body"].read(), got["Metadata"]["source-etag"]) == (b"first", "abc")

    with pytest.raises(S3Error) as refused:
        c.put_object(Bucket=BUCKET, Key=key, Body=b"second", IfNoneMatch="*")
    assert (refused.value.code, refused.value.operation_name) == ("PreconditionFailed", "PutObject")
    c.put_object(Bucket=BUCKET, Key=key, Body=b"second", IfMatch=put["ETag"])
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"second"

    with pytest.raises(S3Error) as missing:
        c.get_object(Bucket=BUCKET, Key="uploads/none.jpg")
    assert (missing.value.code, missing.value.status) == ("NoSuchKey", 404)
    with pytest.raises(S3Error) as headless:
        c.head_object(Bucket=BUCKET, Key="uploads/none.jpg")
    assert headless.value.code == "404"  # HEAD answers have no body to name the error
    with pytest.raises(S3Error, match=r"\(PreconditionFailed\).*GetObject"):
        c.get_object(Bucket=BUCKET, Key=key, IfMatch='"0000"')


def test_version_ids_of_a_versioned_bucket(s3: Any) -> None:
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    c = from_environment()
    put = c.put_object(Bucket=BUCKET, Key="uploads/v.jpg", Body=b"v")
    got = c.get_object(Bucket=BUCKET, Key="uploads/v.jpg")
    assert put["VersionId"]
    assert got["VersionId"] == put["VersionId"]
    got["Body"].close()


def test_a_body_closed_unread_does_not_spoil_the_next_call(s3: Any) -> None:
    c = from_environment()
    c.put_object(Bucket=BUCKET, Key="uploads/big.jpg", Body=jpeg(1600, 1200))
    c.get_object(Bucket=BUCKET, Key="uploads/big.jpg")["Body"].close()
    c.get_object(Bucket=BUCKET, Key="uploads/big.jpg")  # never read nor closed
    assert c.head_object(Bucket=BUCKET, Key="uploads/big.jpg")["ContentLength"] > 1000
    assert c.get_object(Bucket=BUCKET, Key="uploads/big.jpg")["Body"].read()[:2] == b"\xff\xd8"


def test_throttling_is_retried_with_one_connection_and_a_refusal_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws_http, "MAX_BACKOFF_S", 0.0)
    answers = [s3_error(503, "SlowDown"), s3_error(500, "InternalError"), (200, {"ETag": '"e"'}, b"photo")]

    def answer(method: str) -> tuple[int, dict[str, str], bytes]:
        return answers.pop(0) if answers else s3_error(403, "AccessDenied")

    with fake_s3(answer) as (url, seen):
        c = client(endpoint_url=url)
        assert c.get_object(Bucket="b", Key="k")["Body"].read() == b"photo"
        assert seen == ["GET"] * 3
        with pytest.raises(S3Error) as refused:
            c.put_object(Bucket="b", Key="k", Body=b"x")
        assert seen == ["GET"] * 3 + ["PUT"]  # not retried
        assert str(refused.value) == "An error occurred (AccessDenied) when calling the PutObject operation: m"


def test_one_connection_carries_calls_and_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    # A routine 412 (the conditional write of a rendition that exists) must not cost a new connection (on AWS, a
    # TLS handshake); a body left unread must (it is still on the wire).
    answers = {"GET": (200, {"ETag": '"e"'}, b"photo"), "PUT": s3_error(412, "PreconditionFailed"),
               "HEAD": (200, {"ETag": '"e"', "x-amz-meta-source-etag": "e"}, b"")}  # fmt: skip
    peers: list[int] = []
    with fake_s3(lambda method: answers[method], peers=peers) as (url, seen):
        c = client(endpoint_url=url)
        assert c.get_object(Bucket="b", Key="k")["Body"].read() == b"photo"
        with pytest.raises(S3Error, match="PreconditionFailed"):
            c.put_object(Bucket="b", Key="k", Body=b"x", IfNoneMatch="*")
        assert c.head_object(Bucket="b", Key="k")["Metadata"] == {"source-etag": "e"}
        assert len(set(peers)) == 1, peers
        c.get_object(Bucket="b", Key="k")  # never read
        c.head_object(Bucket="b", Key="k")
        assert seen == ["GET", "PUT", "HEAD", "GET", "HEAD"]
        assert len(set(peers)) == 2, peers


def test_a_connection_the_server_closed_while_idle_costs_no_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    # S3 closes idle keep-alive connections; a warm function resumes holding one. The client must notice before
    # sending, not fail an attempt on it and sleep a backoff.
    monkeypatch.setattr(aws_http, "MAX_BACKOFF_S", 60.0)  # a wasted attempt would show as a long test
    attempts: list[str] = []
    with fake_s3(lambda method: (200, {"ETag": '"e"'}, b"photo"), close_after_reply=True) as (url, seen):
        c = client(endpoint_url=url)
        send = c.send

        def counted(method: str, url: str, headers: Any, body: bytes) -> Any:
            attempts.append(method)
            return send(method, url, headers, body)

        c.send = counted
        for _ in range(3):
            assert c.get_object(Bucket="b", Key="k")["Body"].read() == b"photo"
            time.sleep(0.05)  # the server's close reaches the client's socket
    assert attempts == seen == ["GET"] * 3


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, ssl.SSLContext]:
    """A certificate for 127.0.0.1 signed by nobody the system trusts, and a server context serving it."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)  # fmt: skip
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    return cert, server_tls


def _env(url: str, **extra: str) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", "AWS_ENDPOINT_URL": url, **extra}


def test_https_with_the_ca_bundle_botocore_would_use(
    monkeypatch: pytest.MonkeyPatch, self_signed: tuple[Path, ssl.SSLContext]
) -> None:
    # The production path is HTTPS: a certificate for 127.0.0.1 signed by nobody the system trusts is refused,
    # and accepted once AWS_CA_BUNDLE names it (as botocore accepts it).
    cert, server_tls = self_signed
    monkeypatch.setattr(aws_http, "MAX_BACKOFF_S", 0.0)
    with fake_s3(lambda method: (200, {"ETag": '"e"'}, b"photo"), tls=server_tls) as (url, seen):
        assert url.startswith("https://")
        with pytest.raises(ssl.SSLCertVerificationError):
            from_environment(_env(url)).head_object(Bucket="b", Key="k")
        assert seen == []  # refused before any request was sent
        trusting = from_environment(_env(url, AWS_CA_BUNDLE=str(cert)))
        assert trusting.get_object(Bucket="b", Key="k")["Body"].read() == b"photo"


def test_one_tls_context_serves_every_new_connection(
    monkeypatch: pytest.MonkeyPatch, self_signed: tuple[Path, ssl.SSLContext]
) -> None:
    # Loading the trust store takes ~25 ms. New connections come with every bucket's own host on AWS and after any
    # answer not read to its end (here: bodies left unread).
    cert, server_tls = self_signed
    made: list[object] = []
    real = ssl.create_default_context

    def counted(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        made.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counted)
    peers: list[int] = []
    with fake_s3(lambda method: (200, {"ETag": '"e"'}, b"photo"), tls=server_tls, peers=peers) as (url, _):
        c = from_environment(_env(url, AWS_CA_BUNDLE=str(cert)))
        for _ in range(3):
            c.get_object(Bucket="b", Key="k")  # never read: the next call needs a new connection
    assert len(set(peers)) == 3
    assert len(made) == 1


def test_network_errors_are_retried_then_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws_http, "MAX_BACKOFF_S", 0.0)
    attempts: list[str] = []
    c = client(endpoint_url="http://127.0.0.1:9")  # discard port: nothing listens

    real_send = c.send

    def counted(method: str, url: str, headers: Any, body: bytes) -> Any:
        attempts.append(method)
        return real_send(method, url, headers, body)

    c.send = counted
    with pytest.raises(ConnectionRefusedError):
        c.head_object(Bucket="b", Key="k")
    assert len(attempts) == s3_client.MAX_ATTEMPTS == 6


def test_credentials_come_from_botocore_when_the_environment_has_none(
    s3: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A developer's profile (sls invoke local against their account): found the way the AWS CLI finds it.
    creds = tmp_path / "credentials"
    creds.write_text(
        f"[default]\naws_access_key_id = {os.environ['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {os.environ['AWS_SECRET_ACCESS_KEY']}\n"
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    c = from_environment()
    c.put_object(Bucket=BUCKET, Key="uploads/p.jpg", Body=b"p")
    assert s3.get_object(Bucket=BUCKET, Key="uploads/p.jpg")["Body"].read() == b"p"


def test_no_credentials_anywhere_fails_the_call_not_the_cold_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    c = from_environment()
    with pytest.raises(NoCredentialsError, match="no AWS credentials"):
        c.head_object(Bucket="b", Key="k")


def test_the_handlers_import_neither_boto3_nor_botocore() -> None:
    # What the client is for: a cold start without botocore's 250-300 ms and 35 MB.
    code = "import sys, py_handlers.generate_thumbnail, py_handlers.generate_medium; print(sorted(sys.modules))"
    env = {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", "AWS_REGION": "eu-west-1",
           "SOURCE_BUCKET": "s", "DEST_BUCKET": "d", "PATH": "/usr/bin:/bin"}  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    modules = set(out.stdout.strip().strip("[]").replace("'", "").split(", "))
    assert "kiray_imaging.s3_client" in modules
    # Powertools imports the bare botocore package (its __init__, about 1 ms) to see whether it is there.
    heavy = {m for m in modules if m.split(".")[0] in {"boto3", "s3transfer", "urllib3"} or m.startswith("botocore.")}
    assert not heavy
