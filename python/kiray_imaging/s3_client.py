"""The four S3 calls the functions make (GetObject, HeadObject, PutObject, DeleteObject), on our own AWS client
(aws_http.py: SigV4, retries, keep-alive). Names and shapes follow boto3's (``get_object(Bucket=…, Key=…)``,
``response["Body"].read()``, the error's code and ``operation_name``) so the pipeline reads the same either way. The
command-line tools keep boto3 for the rest of what they do (listing a bucket, creating Batch Operations jobs): they
run on a laptop, not at a cold start.

S3-specific: ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` are addressed path-style (as a local S3 needs), AWS
virtual-hosted (path-style for dotted bucket names); a refusal's code comes from its XML body, or is the bare HTTP
status for a HEAD, which has none.
"""

from __future__ import annotations

import http.client
import os
from collections.abc import Mapping
from typing import TypedDict
from urllib.parse import quote

from kiray_imaging.aws_http import (
    _ERROR_BODY_LIMIT,
    MAX_ATTEMPTS,
    MAX_BACKOFF_S,
    SOCKET_TIMEOUT_S,
    Answer,
    AwsClient,
    AwsError,
    Body,
    Credentials,
    CredentialSource,
    NoCredentialsError,
    Transport,
    botocore_credentials,
    endpoint_from,
    environment_credentials,
    region_from,
)

__all__ = ["MAX_ATTEMPTS", "MAX_BACKOFF_S", "SOCKET_TIMEOUT_S", "Answer", "Body", "CredentialSource", "Credentials",
           "NoCredentialsError", "PutObjectRequest", "S3Client", "S3Error", "Transport", "botocore_credentials",
           "environment_credentials", "from_environment", "region_from"]  # fmt: skip


class S3Error(AwsError):
    """S3 refused a call (after the retries, if the refusal was one a retry might fix).

    ``code`` is S3's error code (``NoSuchKey``, ``PreconditionFailed``, ``AccessDenied``, ``KMS.DisabledException``
    …), or the HTTP status as text when the answer had no body (every HEAD error)."""


class _ObjectFacts(TypedDict):
    ContentLength: int
    ETag: str
    Metadata: dict[str, str]
    ContentType: str


class HeadObjectOutput(_ObjectFacts, total=False):
    VersionId: str


class GetObjectOutput(HeadObjectOutput):
    Body: Body


class PutObjectOutput(TypedDict, total=False):
    ETag: str
    VersionId: str


class _PutObjectTarget(TypedDict):
    Bucket: str
    Key: str
    Body: bytes


class PutObjectRequest(_PutObjectTarget, total=False):
    ContentType: str
    CacheControl: str
    Metadata: Mapping[str, str]
    Tagging: str
    IfNoneMatch: str
    IfMatch: str


class S3Client(AwsClient):
    """Thread-safe: each thread keeps its own keep-alive connection per host."""

    service = "s3"

    # --- the calls ------------------------------------------------------------------------------------------

    def get_object(self, *, Bucket: str, Key: str, IfMatch: str | None = None) -> GetObjectOutput:  # noqa: N803
        headers = {"If-Match": IfMatch} if IfMatch else {}
        answer = self.call("GetObject", "GET", self.url(Bucket, Key), headers, b"", stream=True)
        return {**_object_facts(answer.headers), "Body": Body(answer.response, self._release)}

    def head_object(self, *, Bucket: str, Key: str) -> HeadObjectOutput:  # noqa: N803
        return _object_facts(self.call("HeadObject", "HEAD", self.url(Bucket, Key), {}, b"").headers)

    def put_object(
        self,
        *,
        Bucket: str,  # noqa: N803
        Key: str,  # noqa: N803
        Body: bytes,  # noqa: N803
        ContentType: str | None = None,  # noqa: N803
        CacheControl: str | None = None,  # noqa: N803
        Metadata: Mapping[str, str] | None = None,  # noqa: N803
        Tagging: str | None = None,  # noqa: N803
        IfNoneMatch: str | None = None,  # noqa: N803
        IfMatch: str | None = None,  # noqa: N803
    ) -> PutObjectOutput:
        headers = {
            name: value
            for name, value in (
                ("Content-Type", ContentType),
                ("Cache-Control", CacheControl),
                ("x-amz-tagging", Tagging),
                ("If-None-Match", IfNoneMatch),
                ("If-Match", IfMatch),
            )
            if value
        }
        for name, value in (Metadata or {}).items():
            headers[f"x-amz-meta-{name}"] = value
        answer = self.call("PutObject", "PUT", self.url(Bucket, Key), headers, bytes(Body))
        out: PutObjectOutput = {"ETag": answer.headers.get("ETag", "")}
        version = answer.headers.get("x-amz-version-id")
        if version:
            out["VersionId"] = version
        return out

    def delete_object(self, *, Bucket: str, Key: str) -> None:  # noqa: N803
        """Deleting a key that is not there succeeds (S3 answers 204 either way)."""
        self.call("DeleteObject", "DELETE", self.url(Bucket, Key), {}, b"")

    # --- addressing and refusals ----------------------------------------------------------------------------------

    def url(self, bucket: str, key: str) -> str:
        path = quote(key, safe="/~")
        if self._endpoint is not None:
            # A local S3 (moto, s3rver) has no bucket subdomains: path-style, below whatever path the URL has.
            base = self._endpoint.path.rstrip("/")
            return f"{self._endpoint.scheme}://{self._endpoint.netloc}{base}/{bucket}/{path}"
        suffix = "amazonaws.com.cn" if self.region.startswith("cn-") else "amazonaws.com"
        if "." in bucket:
            # A dotted name breaks the wildcard certificate of the virtual-hosted name.
            return f"https://s3.{self.region}.{suffix}/{bucket}/{path}"
        return f"https://{bucket}.s3.{self.region}.{suffix}/{path}"

    def error(self, operation: str, answer: Answer) -> S3Error:
        raw = answer.response.read(_ERROR_BODY_LIMIT)
        code, message = str(answer.status), answer.response.reason
        if raw.strip():
            # Only on this path: parsing XML is not worth importing on a cold start that may never see an error.
            from xml.etree import ElementTree

            try:
                root = ElementTree.fromstring(raw)
                code = root.findtext("Code") or code
                message = root.findtext("Message") or message
            except ElementTree.ParseError:
                message = raw[:200].decode("utf-8", "replace")
        return S3Error(operation, answer.status, code, message, answer.headers.get("x-amz-request-id", ""))


def _object_facts(headers: http.client.HTTPMessage) -> HeadObjectOutput:
    facts: HeadObjectOutput = {
        "ContentLength": int(headers.get("Content-Length") or 0),
        "ETag": headers.get("ETag", ""),
        "ContentType": headers.get("Content-Type", ""),
        # S3 keeps metadata names lower-case; boto3 gives them without the prefix.
        "Metadata": {
            name.lower()[len("x-amz-meta-") :]: value
            for name, value in headers.items()
            if name.lower().startswith("x-amz-meta-")
        },
    }
    version = headers.get("x-amz-version-id")
    if version:
        facts["VersionId"] = version
    return facts


def from_environment(env: Mapping[str, str] | None = None, *, region: str | None = None) -> S3Client:
    """The client a function makes at cold start; ``region`` for a bucket elsewhere than ``AWS_REGION`` says (the
    client follows no redirects: a function's trigger is always in its bucket's region)."""
    env = os.environ if env is None else env
    return S3Client(
        region=region or region_from(env),
        credentials=environment_credentials(env) or botocore_credentials(),
        endpoint_url=endpoint_from(env, "AWS_ENDPOINT_URL_S3"),
        ca_bundle=env.get("AWS_CA_BUNDLE") or None,
    )
