"""`kiray-imaging backfill` as a process, against moto: the Batch Operations manifest (what is listed, how keys are
encoded), the script it prints (run by a shell, with a stand-in `aws` that records its arguments and uploads the
manifest to moto for real), and `--local`, which renders through the pipeline itself."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
from PIL import Image

from kiray_imaging.output_keys import version_token

BUCKET = "kiray-backfill-photos"
CLI = [sys.executable, "-m", "kiray_imaging", "backfill"]
PHOTOS = ["uploads/l1/front door.jpg", "uploads/l1/a+b.jpg", "uploads/l2/café — façade.jpg", "uploads/l2/50%,x.jpg"]
LEFT_OUT = {
    "uploads/l1/": b"",  # a folder marker
    "uploads/l1/empty.jpg": b"",
    "renditions/thumbnail/l1/front door.jpg": b"r",
    "other/readme.txt": b"x",
}


def run(
    *args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=300, check=False,
                          env=env, cwd=cwd)  # fmt: skip


def jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture
def s3(local_aws: str) -> Any:
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    for key in PHOTOS:
        client.put_object(Bucket=BUCKET, Key=key, Body=jpeg(160, 120))
    for key, body in LEFT_OUT.items():
        client.put_object(Bucket=BUCKET, Key=key, Body=body)
    return client


def read_manifest(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_the_manifest_lists_the_photos_with_url_encoded_keys(s3: Any, tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    # The whole bucket: renditions, other keys and empty objects are listed, and left out of the manifest.
    result = run("--bucket", BUCKET, "--prefix", "", "--manifest-out", manifest, "--account-id", "123456789012")
    assert result.returncode == 0, result.stderr
    rows = read_manifest(manifest)
    assert {row[0] for row in rows} == {BUCKET}
    assert all(len(row) == 2 for row in rows)
    encoded = [row[1] for row in rows]
    # Percent-encoded UTF-8: no space, '+', ',' or non-ASCII left to be misread; decoding gives the keys back.
    assert all(c.isascii() and c not in " +," for key in encoded for c in key), encoded
    assert "uploads/l1/a%2Bb.jpg" in encoded
    assert "uploads/l1/front%20door.jpg" in encoded
    assert sorted(unquote(key) for key in encoded) == sorted(PHOTOS)
    assert "(left out: 2 empty, 1 outside-source, 1 recursion-guard)" in (result.stdout)


def test_a_prefix_narrows_the_listing_and_one_outside_the_source_is_refused(s3: Any, tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    assert run("--bucket", BUCKET, "--prefix", "uploads/l2/", "--manifest-out", manifest).returncode == 0
    assert sorted(unquote(row[1]) for row in read_manifest(manifest)) == sorted(p for p in PHOTOS if "/l2/" in p)
    refused = run("--bucket", BUCKET, "--prefix", "renditions/", "--manifest-out", manifest)
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: ValueError: --prefix 'renditions/' is outside the source prefix")


def test_version_ids_name_the_current_version_of_each_photo(local_aws: str, tmp_path: Path) -> None:
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    client.put_object(Bucket=BUCKET, Key="uploads/a.jpg", Body=jpeg(80, 60))
    current = client.put_object(Bucket=BUCKET, Key="uploads/a.jpg", Body=jpeg(90, 60))["VersionId"]
    client.put_object(Bucket=BUCKET, Key="uploads/gone.jpg", Body=jpeg(80, 60))
    client.delete_object(Bucket=BUCKET, Key="uploads/gone.jpg")  # its latest version is a delete marker
    manifest = tmp_path / "m.csv"
    result = run("--bucket", BUCKET, "--version-ids", "--manifest-out", manifest)
    assert result.returncode == 0, result.stderr
    assert read_manifest(manifest) == [[BUCKET, "uploads/a.jpg", current]]
    assert '"Fields":["Bucket","Key","VersionId"]' in result.stdout


FAKE_AWS = """\
#!{python}
# A stand-in for the AWS CLI: records its arguments; put-object really uploads to the local S3 (moto).
import json, os, sys
import boto3
args = sys.argv[1:]
with open(os.environ["FAKE_AWS_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
def opt(name):
    return args[args.index(name) + 1]
if args[:2] == ["s3api", "put-object"]:
    with open(opt("--body"), "rb") as body:
        etag = boto3.client("s3").put_object(Bucket=opt("--bucket"), Key=opt("--key"), Body=body.read())["ETag"]
    print(etag)  # as `--query ETag --output text` prints it: in quotes
elif args[:2] == ["sts", "get-caller-identity"]:
    print("123456789012")
elif args[:2] == ["cloudformation", "describe-stacks"]:
    print("arn:aws:iam::123456789012:role/kiray-imaging-dev-BackfillRole-1A2B3C")
"""


def run_script(script: str, tmp_path: Path) -> list[list[str]]:
    """Runs the printed script with `sh`, the stand-in `aws` first on PATH; returns each `aws` call's arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    aws = bin_dir / "aws"
    aws.write_text(FAKE_AWS.format(python=sys.executable))
    aws.chmod(0o755)
    log = tmp_path / "aws-calls.jsonl"
    log.unlink(missing_ok=True)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_AWS_LOG": str(log)}
    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
                            check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in log.read_text().splitlines()]


def options(call: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for i, word in enumerate(call):
        if word.startswith("--"):
            value = call[i + 1] if i + 1 < len(call) and not call[i + 1].startswith("--") else None
            out[word] = value
    return out


def test_the_printed_script_uploads_the_manifest_and_starts_one_job_per_function(s3: Any, tmp_path: Path) -> None:
    result = run("--bucket", BUCKET, "--manifest-out", "m.csv", "--region", "eu-west-1", "--stage", "prod",
                 cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    script = result.stdout
    assert script.startswith("#!/bin/sh\n")
    assert script.count("aws s3control create-job") == 2

    calls = run_script(script, tmp_path)

    put, sts, stack, *jobs = calls
    digest = hashlib.sha256((tmp_path / "m.csv").read_bytes()).hexdigest()
    manifest_key = f"backfills/manifests/{digest[:16]}.csv"
    assert put[:2] == ["s3api", "put-object"]
    assert options(put) | {"--output": None} == {"--bucket": BUCKET, "--key": manifest_key, "--body": "m.csv",
                                                  "--query": "ETag", "--output": None}  # fmt: skip
    uploaded = s3.get_object(Bucket=BUCKET, Key=manifest_key)
    assert uploaded["Body"].read() == (tmp_path / "m.csv").read_bytes()
    assert sts[:2] == ["sts", "get-caller-identity"]
    assert stack[:2] == ["cloudformation", "describe-stacks"]
    assert options(stack)["--stack-name"] == "kiray-imaging-prod"
    assert options(stack)["--query"] == "Stacks[0].Outputs[?OutputKey=='BackfillRoleArn'].OutputValue"

    functions = []
    for job in jobs:
        assert job[:2] == ["s3control", "create-job"]
        o = options(job)
        assert (o["--region"], o["--account-id"]) == ("eu-west-1", "123456789012")
        assert o["--role-arn"] == "arn:aws:iam::123456789012:role/kiray-imaging-dev-BackfillRole-1A2B3C"
        assert "--no-confirmation-required" in o
        operation = json.loads(str(o["--operation"]))["LambdaInvoke"]
        assert operation["InvocationSchemaVersion"] == "2.0"
        functions.append(operation["FunctionArn"])
        manifest = json.loads(str(o["--manifest"]))
        assert manifest == {
            "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
            # The ETag of the uploaded object, without the quotes the CLI prints.
            "Location": {"ObjectArn": f"arn:aws:s3:::{BUCKET}/{manifest_key}", "ETag": uploaded["ETag"].strip('"')},
        }
        assert json.loads(str(o["--report"])) == {
            "Bucket": f"arn:aws:s3:::{BUCKET}",
            "Prefix": "backfills/reports",
            "Format": "Report_CSV_20180820",
            "Enabled": True,
            "ReportScope": "AllTasks",
        }
        assert str(o["--client-request-token"]).endswith(digest[:32])
    assert functions == [
        "arn:aws:lambda:eu-west-1:123456789012:function:kiray-imaging-prod-generate-thumbnail",
        "arn:aws:lambda:eu-west-1:123456789012:function:kiray-imaging-prod-generate-medium",
    ]
    # Printing again for the same listing gives the same tokens: a second run of the script starts no second job.
    again = run("--bucket", BUCKET, "--manifest-out", "m.csv", "--region", "eu-west-1", "--stage", "prod",
                cwd=tmp_path)  # fmt: skip
    assert again.stdout == script


def test_given_account_and_role_are_used_as_they_are(s3: Any, tmp_path: Path) -> None:
    role = "arn:aws:iam::210987654321:role/backfills"
    result = run("--bucket", BUCKET, "--manifest-out", "m.csv", "--account-id", "210987654321", "--role-arn", role,
                 cwd=tmp_path)  # fmt: skip
    calls = run_script(result.stdout, tmp_path)
    assert [c[:2] for c in calls] == [["s3api", "put-object"], ["s3control", "create-job"], ["s3control", "create-job"]]
    assert {options(c)["--role-arn"] for c in calls[1:]} == {role}


def test_local_renders_through_the_pipeline(s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket=BUCKET, Key="uploads/l3/bad.jpg", Body=b"<html>not a photo</html>")
    result = run("--bucket", BUCKET, "--local", "--workers", "2")
    assert result.returncode == 1, result.stderr  # one photo failed
    lines = result.stdout.splitlines()
    summary = [line for line in lines if not line.startswith("{")]
    assert summary[0] == "photos: 5, rendered 4, skipped 0, failed 1"
    assert summary[1:4] == [
        "skipped: none",
        "failures: UnsupportedFormatError 1",
        "left out of the listing: empty 2",
    ]
    assert summary[4].startswith("time: ")
    assert summary[4].endswith(" s wall, 2 workers, 12 renditions written"), summary
    # Failures: one JSON line per rendition (the pipeline's own log) on stdout, one error line on stderr.
    logged = [json.loads(line) for line in lines if line.startswith("{")]
    errors = [e for e in logged if e.get("level") == "ERROR"]
    assert {(e["key"], e["error_class"]) for e in errors} == {("uploads/l3/bad.jpg", "UnsupportedFormatError")}
    bad = "s3://kiray-backfill-photos/uploads/l3/bad.jpg"
    assert result.stderr == f"error: {bad}: UnsupportedFormatError: HTML input is not supported\n"
    rendered = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="renditions/")["Contents"])
    formats = (("thumbnail", "jpg"), ("medium", "jpg"), ("medium", "webp"))
    token = version_token(s3.head_object(Bucket=BUCKET, Key=PHOTOS[0])["ETag"])  # the photos' bytes are the same
    files = {f"renditions/{r}/{p.removeprefix('uploads/')}/{token}.{ext}" for p in PHOTOS for r, ext in formats}
    states = {f"renditions/{r}/{p.removeprefix('uploads/')}/current.json" for p in [*PHOTOS, "uploads/l3/bad.jpg"]
              for r in ("thumbnail", "medium")}  # fmt: skip
    # The rendition of the old key scheme among LEFT_OUT went with the migration of its upload.
    assert set(rendered) == files | states
    thumb = s3.get_object(Bucket=BUCKET, Key=f"renditions/thumbnail/l1/a+b.jpg/{token}.jpg")
    assert Image.open(io.BytesIO(thumb["Body"].read())).size == (160, 120)
    assert thumb["Metadata"]["source-key"] == "uploads/l1/a%2Bb.jpg"
    # A second run replaces the renditions of the same versions (a backfill after a preset change).
    again = run("--bucket", BUCKET, "--local", "--workers", "2", "--prefix", "uploads/l1/")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[0] == "photos: 2, rendered 2, skipped 0, failed 0"


def test_bad_settings_exit_2(local_aws: str) -> None:
    result = run("--bucket", BUCKET, "--source-prefix", "a/", "--dest-prefix", "a/b/", "--local")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ConfigError: DEST_PREFIX 'a/b/' and SOURCE_PREFIX 'a/' overlap")


def test_a_missing_bucket_is_one_error_line(local_aws: str, tmp_path: Path) -> None:
    result = run("--bucket", "no-such-bucket", "--manifest-out", tmp_path / "m.csv")
    assert result.returncode == 2
    assert result.stderr.startswith("error: NoSuchBucket: listing s3://no-such-bucket/uploads/"), result.stderr
    assert not (tmp_path / "m.csv").exists()


def test_the_help_names_both_modes() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "--manifest-out FILE" in result.stdout
    assert "--local" in result.stdout
    assert "S3 Batch Operations" in result.stdout
