"""What fails, how: permanent errors are logged once and not raised (a retry cannot fix them), transient ones are
raised after the S3 client's retries so Lambda retries the event. Against moto, with faults injected where moto cannot
produce them (KMS, throttling, 5xx), and with moto enforcing the functions' own IAM policy from serverless.yml."""

from __future__ import annotations

import contextlib
import json
import re
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
import yaml  # type: ignore[import-untyped]

from kiray_imaging import aws_http, lambda_pipeline, s3_client
from kiray_imaging.lambda_pipeline import make_handler
from kiray_imaging.s3_client import S3Error

if TYPE_CHECKING:
    from tests.handlers.s3_helpers import (
        BUCKET,
        HookedS3,
        client_error,
        delete_record,
        event,
        fake_s3,
        files,
        invoke,
        jpeg,
        keys,
        log_lines,
        next_sequencer,
        raises,
        s3_error,
        state_key,
        upload,
        version_key,
    )
else:
    from s3_helpers import (
        BUCKET,
        HookedS3,
        client_error,
        delete_record,
        event,
        fake_s3,
        files,
        invoke,
        jpeg,
        keys,
        log_lines,
        next_sequencer,
        raises,
        s3_error,
        state_key,
        upload,
        version_key,
    )

ROOT = Path(__file__).resolve().parents[2]


def hooked_handler(s3: Any, monkeypatch: pytest.MonkeyPatch, hooks: dict[tuple[str, str], Any]) -> Any:
    monkeypatch.setattr(lambda_pipeline, "s3_client", lambda: HookedS3(hooks))
    return make_handler("thumbnail")


# --- Permanent: logged once, not raised -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "code", "status"),
    [
        ("get_object", "AccessDenied", 403),  # a missing permission, or (without ListBucket) a deleted object
        ("get_object", "KMS.DisabledException", 400),  # the object's KMS key is disabled
        ("get_object", "KMS.NotFoundException", 400),
        ("get_object", "InvalidObjectState", 403),  # archived: must be restored first
        ("put_object", "AccessDenied", 403),
        ("put_object", "KMS.KMSInvalidStateException", 400),  # the bucket's default key is pending deletion
    ],
)
def test_permanent_s3_errors_are_logged_once_and_not_raised(
    s3: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], operation: str, code: str, status: int
) -> None:
    record = upload(s3, "uploads/l1/a.jpg", jpeg(640, 480))
    key = "uploads/l1/a.jpg" if operation == "get_object" else version_key(s3, "uploads/l1/a.jpg")
    api = "GetObject" if operation == "get_object" else "PutObject"
    h = hooked_handler(s3, monkeypatch, {(operation, key): raises(client_error(code, status, api))})
    result = invoke(h, event(record))
    assert result["failed"] == [{"key": "uploads/l1/a.jpg", "error_class": code}]
    errors = [line for line in log_lines(capsys.readouterr().out) if line["level"] == "ERROR"]
    assert len(errors) == 1
    assert {k: errors[0].get(k) for k in ("bucket", "key", "error_class", "operation")} == {
        "bucket": BUCKET,
        "key": "uploads/l1/a.jpg",
        "error_class": code,
        "operation": api,
    }
    assert files(s3) == []


def test_head_of_an_existing_rendition_refused_is_permanent(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # HEAD errors have no body: the client reports "403". A rendition the state names is checked after the change
    # (rendition_writes.settle): refused there, it is a real refusal (a missing permission), not a retry's business.
    first = upload(s3, "uploads/l1/a.jpg", jpeg(640, 480))
    invoke(make_handler("thumbnail"), event(first))
    second = upload(s3, "uploads/l1/a.jpg", jpeg(640, 480, (0, 200, 0)))
    refused = raises(client_error("403", 403, "HeadObject"))
    h = hooked_handler(s3, monkeypatch, {("head_object", version_key(s3, "uploads/l1/a.jpg")): refused})
    assert invoke(h, event(second))["failed"] == [{"key": "uploads/l1/a.jpg", "error_class": "AccessDenied"}]


def test_a_permanent_error_in_the_middle_does_not_stop_the_others(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    records = [upload(s3, f"uploads/l1/{name}.jpg", jpeg(640, 480)) for name in "abc"]
    fault = raises(client_error("KMS.DisabledException", 400, "GetObject"))
    h = hooked_handler(s3, monkeypatch, {("get_object", "uploads/l1/b.jpg"): fault})
    result = invoke(h, event(*records))
    assert result["failed"] == [{"key": "uploads/l1/b.jpg", "error_class": "KMS.DisabledException"}]
    made = [version_key(s3, f"uploads/l1/{name}.jpg") for name in "ac"]
    assert result["rendered"] == made
    assert files(s3) == made


# --- Transient: raised, so Lambda retries -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "error"),
    [
        ("get_object", client_error("SlowDown", 503, "GetObject")),
        ("get_object", client_error("InternalError", 500, "GetObject")),
        ("get_object", client_error("KMS.ThrottlingException", 400, "GetObject")),
        ("get_object", TimeoutError("timed out")),  # a read timeout, after the client's retries
        ("put_object", client_error("ServiceUnavailable", 503, "PutObject")),
        ("put_object", client_error("NoSuchBucket", 404, "PutObject")),
    ],
)
def test_transient_errors_are_raised_so_lambda_retries(
    s3: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], operation: str, error: Exception
) -> None:
    record = upload(s3, "uploads/l1/a.jpg", jpeg(640, 480))
    key = "uploads/l1/a.jpg" if operation == "get_object" else version_key(s3, "uploads/l1/a.jpg")
    h = hooked_handler(s3, monkeypatch, {(operation, key): raises(error)})
    with pytest.raises(type(error)):
        invoke(h, event(record))
    (line,) = [line for line in log_lines(capsys.readouterr().out) if line["message"].startswith("retrying")]
    assert (line["key"], line["level"]) == ("uploads/l1/a.jpg", "WARNING")


def test_a_transient_error_in_the_middle_is_raised_after_the_others(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # The others are rendered now rather than after Lambda's retry (which renders them again, to the same bytes).
    records = [upload(s3, f"uploads/l1/{name}.jpg", jpeg(640, 480)) for name in "abc"]
    fault = raises(client_error("SlowDown", 503, "GetObject"))
    h = hooked_handler(s3, monkeypatch, {("get_object", "uploads/l1/b.jpg"): fault})
    with pytest.raises(S3Error, match="SlowDown"):
        invoke(h, event(*records))
    assert files(s3) == [version_key(s3, f"uploads/l1/{name}.jpg") for name in "ac"]


@pytest.mark.parametrize(("method", "status", "code"), [("GET", 503, "SlowDown"), ("PUT", 500, "InternalError")])
def test_the_client_retries_then_the_handler_raises(
    s3: Any, monkeypatch: pytest.MonkeyPatch, method: str, status: int, code: str
) -> None:
    # The real client from s3_client() against a fake endpoint: 5 retries (no backoff delays here), then the error.
    photo = jpeg(640, 480)
    monkeypatch.setattr(aws_http, "MAX_BACKOFF_S", 0.0)

    def answer(request_method: str, path: str) -> tuple[int, dict[str, str], bytes]:
        if path.endswith("/current.json") and request_method == "GET":
            return s3_error(404, "NoSuchKey")
        if request_method == method:
            return s3_error(status, code)
        return 200, {"ETag": '"e"', "Content-Type": "image/jpeg"}, photo

    with fake_s3(answer, by_path=True) as (url, seen):
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        h = make_handler("thumbnail")
        record = {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                  "s3": {"bucket": {"name": BUCKET}, "object": {"key": "uploads/a.jpg", "eTag": "e"}}}  # fmt: skip
        with pytest.raises(S3Error, match=re.escape(f"({code})") + r".*reached max retries: 5"):
            invoke(h, event(record))
    assert seen.count(method) == 6, seen  # the first attempt and 5 retries


# --- The functions under their own IAM policy (moto enforcing it) ----------------------------------------------


class _CfnLoader(yaml.SafeLoader):  # type: ignore[misc]
    """serverless.yml with its CloudFormation tags (!Ref, !GetAtt, …) read as None: only the S3 statements matter."""


_CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return list(action) if isinstance(action, list) else [str(action)]


def deployed_s3_statements() -> list[dict[str, Any]]:
    """The role's S3 statements as serverless.yml deploys them, for this test's bucket."""
    config = yaml.load((ROOT / "serverless.yml").read_text(), Loader=_CfnLoader)
    params = {**config["params"]["default"], "photosBucket": BUCKET}
    statements = config["provider"]["iam"]["role"]["statements"]
    s3_statements = [s for s in statements if all(a.startswith("s3:") for a in _actions(s))]
    resolved = re.sub(r"\$\{param:(\w+)\}", lambda m: str(params[m[1]]), json.dumps(s3_statements))
    assert "${" not in resolved, resolved
    loaded: list[dict[str, Any]] = json.loads(resolved)
    return loaded


def iam_user(name: str, statements: list[dict[str, Any]]) -> dict[str, str]:
    iam = boto3.client("iam")
    iam.create_user(UserName=name)
    document = {"Version": "2012-10-17", "Statement": statements}
    iam.put_user_policy(UserName=name, PolicyName="policy", PolicyDocument=json.dumps(document))
    access_key: dict[str, str] = iam.create_access_key(UserName=name)["AccessKey"]
    return access_key


@contextlib.contextmanager
def as_the_function(endpoint: str, monkeypatch: pytest.MonkeyPatch, extra: list[dict[str, Any]]) -> Iterator[Any]:
    """Runs the block with the credentials of an IAM user holding the functions' policy (plus ``extra``), with moto
    enforcing IAM; turns enforcement off again afterwards (the moto server is shared by the session). Yields an S3
    client of another user who may do anything, for uploads meanwhile."""
    access_key = iam_user("kiray-function", deployed_s3_statements() + extra)
    anything = iam_user("uploader", [{"Effect": "Allow", "Action": "*", "Resource": "*"}])
    uploader = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=anything["AccessKeyId"],
                            aws_secret_access_key=anything["SecretAccessKey"], aws_session_token=None)  # fmt: skip

    def set_auth(count: str) -> str:
        request = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=count.encode(), method="POST",
                                         headers={"Content-Type": "text/plain"})  # fmt: skip
        with urllib.request.urlopen(request) as response:
            return str(json.loads(response.read())["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"])

    with monkeypatch.context() as m:
        m.setenv("AWS_ACCESS_KEY_ID", access_key["AccessKeyId"])
        m.setenv("AWS_SECRET_ACCESS_KEY", access_key["SecretAccessKey"])
        m.delenv("AWS_SESSION_TOKEN", raising=False)
        boto3.DEFAULT_SESSION = None
        previous = set_auth("0")
        try:
            yield uploader
        finally:
            set_auth(previous)
            boto3.DEFAULT_SESSION = None


def test_the_deployed_policy_is_enough_and_a_refused_read_is_permanent(
    s3: Any, local_aws: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A three-record event whose middle object the role may not read (as with a foreign KMS key or a deny policy).
    # Real S3 also answers 403 for a deleted object when the role has no ListBucket; moto answers 404 there, but
    # the 403 takes the same path as this one.
    records = [upload(s3, key, jpeg(640, 480)) for key in ("uploads/l1/a.jpg", "uploads/locked/b.jpg",
                                                           "uploads/l1/c.jpg")]  # fmt: skip
    first, third = version_key(s3, "uploads/l1/a.jpg"), version_key(s3, "uploads/l1/c.jpg")
    deny = {"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/uploads/locked/*"}
    with as_the_function(local_aws, monkeypatch, [deny]) as uploader:
        h = make_handler("thumbnail")
        result = invoke(h, event(*records))
        # A new upload of a rendered key: its files, its current.json, and the old version's files deleted.
        replaced = upload(uploader, "uploads/l1/a.jpg", jpeg(640, 480, (0, 200, 0)))
        again = invoke(h, event(replaced))
        # And a deletion: the renditions go, the tombstone is tagged for the lifecycle rule.
        uploader.delete_object(Bucket=BUCKET, Key="uploads/l1/c.jpg")
        gone = invoke(h, event(delete_record("uploads/l1/c.jpg", next_sequencer())))
    second = version_key(s3, "uploads/l1/a.jpg")
    assert result["failed"] == [{"key": "uploads/locked/b.jpg", "error_class": "AccessDenied"}]
    assert result["rendered"] == [first, third]
    assert again["rendered"] == [second], again
    assert gone["removed"] == [third], gone
    errors = [line for line in log_lines(capsys.readouterr().out) if line["level"] == "ERROR"]
    assert [(e["key"], e["error_class"], e["operation"]) for e in errors] == [
        ("uploads/locked/b.jpg", "AccessDenied", "GetObject")
    ]
    assert files(s3) == [second]
    assert keys(s3, "renditions/") == sorted([second, state_key("uploads/l1/a.jpg"), state_key("uploads/l1/c.jpg")])
    tags = s3.get_object_tagging(Bucket=BUCKET, Key=state_key("uploads/l1/c.jpg"))["TagSet"]
    assert tags == [{"Key": "kiray-imaging", "Value": "deleted"}]


def test_the_deployed_policy_never_reaches_uploads_or_other_prefixes(
    s3: Any, local_aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Least privilege, exercised: the role may not write or delete an upload, nor touch another prefix.
    photo = jpeg(80, 60)
    s3.put_object(Bucket=BUCKET, Key="uploads/l1/a.jpg", Body=photo)
    s3.put_object(Bucket=BUCKET, Key="other/x.jpg", Body=b"x")
    with as_the_function(local_aws, monkeypatch, []):
        client = s3_client.from_environment()
        refused: list[Callable[[], object]] = [
            lambda: client.delete_object(Bucket=BUCKET, Key="uploads/l1/a.jpg"),
            lambda: client.put_object(Bucket=BUCKET, Key="uploads/l1/a.jpg", Body=b"overwritten"),
            lambda: client.delete_object(Bucket=BUCKET, Key="other/x.jpg"),
            lambda: client.get_object(Bucket=BUCKET, Key="other/x.jpg"),
        ]
        for call in refused:
            with pytest.raises(S3Error, match="AccessDenied"):
                call()
        client.delete_object(Bucket=BUCKET, Key="renditions/thumbnail/l1/a.jpg/0123456789abcdef.jpg")
    assert s3.get_object(Bucket=BUCKET, Key="uploads/l1/a.jpg")["Body"].read() == photo
    assert s3.get_object(Bucket=BUCKET, Key="other/x.jpg")["Body"].read() == b"x"
