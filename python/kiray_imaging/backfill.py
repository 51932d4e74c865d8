"""`kiray-imaging backfill --bucket B`: re-render photos already in S3 (docs/backfills.md).

By default it lists the photos and writes the CSV manifest of an S3 Batch Operations job, then prints the commands
that upload it and start one job per function (``aws s3control create-job``): AWS's own machinery then invokes the
deployed functions once per photo, retries what fails transiently and writes a completion report. The output on
stdout is a shell script (commentary as ``#`` lines) to review, then run.

With ``--local`` it renders the photos itself instead, through the same pipeline code as the functions (conditional
reads and writes included), with a bounded pool of threads: for a few thousand photos, or a bucket on a local S3.
Either way each photo is rendered under today's key scheme, and its renditions of the scheme before versioned keys
are deleted. ``--orphans`` then finds what nothing needs any more (orphans.py), and ``--delete`` removes it.

Listed and left out: keys outside the source prefix, keys under the destination prefix (renditions), folder markers
and empty objects — the functions would skip them anyway, and each one a job invokes is billed.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import io
import json
import re
import shlex
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from kiray_imaging import config
from kiray_imaging.logs import configure
from kiray_imaging.presets import DEPLOYED_FORMATS, resolve
from kiray_imaging.progress import Progress, add_workers_option, bounded_map
from kiray_imaging.s3_events import S3Object

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from kiray_imaging.outcomes import Outcome

SERVICE = "kiray-imaging"
MANIFEST_PREFIX = "backfills/manifests/"
REPORT_PREFIX = "backfills/reports"
"""Where the manifest is uploaded and the job writes its report: the only places the job role may read and write
(serverless.yml, ``BackfillRole``). Outside ``uploads/``, so neither triggers the functions."""
MANIFEST_FORMAT = "S3BatchOperations_CSV_20180820"
REPORT_FORMAT = "Report_CSV_20180820"
EXIT_FAILURES = 1
_SHELL_VARIABLE = re.compile(r"\$(ACCOUNT_ID|ROLE_ARN|MANIFEST_ETAG)\b")


@dataclass
class Listing:
    """Keys kept for the backfill, and how many were left out and why."""

    objects: list[S3Object] = field(default_factory=list)
    left_out: Counter[str] = field(default_factory=Counter)


def list_photos(
    s3: S3Client, bucket: str, prefix: str, settings: config.Settings, *, version_ids: bool = False
) -> Listing:
    """The objects under ``prefix`` a backfill should render (paginated listing). With ``version_ids``, the
    current version of each (``ListObjectVersions``), so each task names the version the manifest saw and a
    photo replaced since is skipped as superseded rather than rendered twice."""
    listing = Listing()
    if version_ids:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
            for v in page.get("Versions", []):
                # A key whose latest version is a delete marker has no IsLatest version here: it is gone.
                if not v.get("IsLatest"):
                    continue
                key, size = v["Key"], int(v.get("Size", 0))
                reason = settings.left_out(bucket, key, size)
                if reason:
                    listing.left_out[reason.value] += 1
                    continue
                listing.objects.append(
                    S3Object(bucket, key, size, str(v.get("ETag", "")).strip('"') or None, None, v.get("VersionId"))
                )
        return listing
    for listed in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in listed.get("Contents", []):
            key, size = o["Key"], int(o.get("Size", 0))
            reason = settings.left_out(bucket, key, size)
            if reason:
                listing.left_out[reason.value] += 1
                continue
            listing.objects.append(S3Object(bucket, key, size, str(o.get("ETag", "")).strip('"') or None, None))
    return listing


def manifest_csv(objects: list[S3Object], *, version_ids: bool) -> bytes:
    """The job's manifest: ``bucket,key[,versionId]`` per line, keys URL-encoded as the Batch Operations CSV format
    requires (UTF-8, percent-encoded, ``/`` kept; a ``+`` in a key is ``%2B``, a space ``%20``). Version IDs
    for every row or for none, as the format requires."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for obj in objects:
        row = [obj.bucket, quote(obj.key, safe="/")]
        if version_ids:
            row.append(obj.version_id or "null")
        writer.writerow(row)
    return out.getvalue().encode()


def _shell_word(text: str) -> str:
    """``text`` as one shell word in which ``$NAME`` is expanded and nothing else is: quoted pieces (where needed),
    and the variables in double quotes between them (JSON is full of characters the shell would otherwise eat)."""
    pieces = []
    for i, part in enumerate(_SHELL_VARIABLE.split(text)):
        if i % 2:
            pieces.append(f'"${part}"')
        elif part:
            pieces.append(shlex.quote(part))
    return "".join(pieces) or "''"


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class JobPlan:
    bucket: str
    prefix: str
    manifest_file: Path
    manifest_key: str
    manifest_sha256: str
    objects: int
    left_out: Counter[str]
    region: str
    stage: str
    version_ids: bool
    account_id: str = "$ACCOUNT_ID"
    role_arn: str = "$ROLE_ARN"

    def function_arn(self, function: str) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{SERVICE}-{self.stage}-{function}"


def create_job_script(plan: JobPlan) -> str:
    """The commands that start the backfill on AWS: upload the manifest (a job names it by ARN *and* ETag, so it
    must be uploaded first), look up the role and account unless given, and one ``create-job`` per function."""
    left_out = ", ".join(f"{n} {reason}" for reason, n in sorted(plan.left_out.items())) or "none"
    lines = [
        "#!/bin/sh",
        f"# Backfill of s3://{plan.bucket}/{plan.prefix}: {plan.objects} photos in {plan.manifest_file} "
        f"(left out: {left_out}).",
        "# Review, then run with credentials for the account the stack is deployed in (docs/backfills.md).",
        "set -eu",
        "# 1. Upload the manifest: a job names it by ARN and ETag.",
        f"MANIFEST_ETAG=$(aws s3api put-object --bucket {_shell_word(plan.bucket)} "
        f"--key {_shell_word(plan.manifest_key)} --body {_shell_word(str(plan.manifest_file))} "
        "--query ETag --output text | tr -d '\"')",
    ]
    if plan.account_id == "$ACCOUNT_ID":
        lines += ["# 2. The account, and the role S3 Batch Operations assumes (stack output BackfillRoleArn)."]
        lines += ["ACCOUNT_ID=$(aws sts get-caller-identity --query Account --output text)"]
    if plan.role_arn == "$ROLE_ARN":
        # Double quotes: the JMESPath literal needs the single ones, and has nothing the shell expands.
        query = "\"Stacks[0].Outputs[?OutputKey=='BackfillRoleArn'].OutputValue\""
        lines += [
            f"ROLE_ARN=$(aws cloudformation describe-stacks --region {_shell_word(plan.region)} --stack-name "
            f"{_shell_word(f'{SERVICE}-{plan.stage}')} --query {query} --output text)"
        ]
    fields = ["Bucket", "Key", *(["VersionId"] if plan.version_ids else [])]
    manifest = {
        "Spec": {"Format": MANIFEST_FORMAT, "Fields": fields},
        "Location": {"ObjectArn": f"arn:aws:s3:::{plan.bucket}/{plan.manifest_key}", "ETag": "$MANIFEST_ETAG"},
    }
    report = {
        "Bucket": f"arn:aws:s3:::{plan.bucket}",
        "Prefix": REPORT_PREFIX,
        "Format": REPORT_FORMAT,
        "Enabled": True,
        # Every task, not only failures: a Succeeded task's resultString says whether it was rendered or skipped.
        "ReportScope": "AllTasks",
    }
    lines.append(
        f"# 3. One job per function, both on the same manifest; reports under s3://{plan.bucket}/{REPORT_PREFIX}/."
    )
    for preset in DEPLOYED_FORMATS:
        function = f"generate-{preset}"
        operation = {"LambdaInvoke": {"FunctionArn": plan.function_arn(function), "InvocationSchemaVersion": "2.0"}}
        # The same token for the same manifest and function: running the script twice starts no second job.
        token = f"{SERVICE}-{preset}-{plan.manifest_sha256[:32]}"
        arguments = [
            ("--region", plan.region),
            ("--account-id", plan.account_id),
            ("--operation", _compact(operation)),
            ("--manifest", _compact(manifest)),
            ("--report", _compact(report)),
            ("--priority", "10"),
            ("--role-arn", plan.role_arn),
            ("--client-request-token", token),
            ("--description", f"{SERVICE} backfill: {preset} of s3://{plan.bucket}/{plan.prefix}"[:256]),
            ("--no-confirmation-required", None),
        ]
        rendered = " \\\n  ".join(
            name if value is None else f"{name} {_shell_word(value)}" for name, value in arguments
        )
        lines.append(f"aws s3control create-job \\\n  {rendered}")
    return "\n".join(lines) + "\n"


def _settings(args: argparse.Namespace) -> config.Settings:
    # The functions' settings, from the command line rather than a function's environment.
    return config.load(
        {
            "SOURCE_BUCKET": args.bucket,
            "DEST_BUCKET": args.dest_bucket or args.bucket,
            "SOURCE_PREFIX": args.source_prefix,
            "DEST_PREFIX": args.dest_prefix,
            "LOG_LEVEL": args.log_level,
        }
    )


def _region(args: argparse.Namespace) -> str:
    if args.region:
        return str(args.region)
    import boto3

    return boto3.session.Session().region_name or "us-east-1"


def _client(workers: int) -> S3Client:
    import boto3
    from botocore.config import Config

    # For listing (paginators): standard retries, as the functions' client, with a connection per worker.
    return boto3.client(
        "s3", config=Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=workers + 2)
    )


def _write_manifest(args: argparse.Namespace, settings: config.Settings, listing: Listing) -> int:
    data = manifest_csv(listing.objects, version_ids=args.version_ids)
    args.manifest_out.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    plan = JobPlan(
        bucket=args.bucket,
        prefix=args.prefix,
        manifest_file=args.manifest_out,
        # Named by its content: a new listing is a new object, never an overwrite of a running job's manifest.
        manifest_key=f"{MANIFEST_PREFIX}{digest[:16]}.csv",
        manifest_sha256=digest,
        objects=len(listing.objects),
        left_out=listing.left_out,
        region=_region(args),
        stage=args.stage,
        version_ids=args.version_ids,
        **({"account_id": args.account_id} if args.account_id else {}),
        **({"role_arn": args.role_arn} if args.role_arn else {}),
    )
    sys.stdout.write(create_job_script(plan))
    return 0


@dataclass
class LocalSummary:
    objects: int = 0
    rendered: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    renditions: int = 0

    def add(self, outcomes: list[Outcome]) -> None:
        self.objects += 1
        self.renditions += sum(len(o.output_keys) for o in outcomes)
        failures = [o.error_class for o in outcomes if o.status == "failed"]
        skips = [o.skip.value for o in outcomes if o.skip is not None]
        if failures:
            self.failed[failures[0]] += 1
        elif any(o.status == "rendered" for o in outcomes):
            self.rendered += 1
        else:
            self.skipped[skips[0]] += 1


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))) or "none"


def _run_local(args: argparse.Namespace, settings: config.Settings, listing: Listing) -> int:
    from kiray_imaging import events, outcomes
    from kiray_imaging.failures import classify
    from kiray_imaging.process import process_object
    from kiray_imaging.s3_client import from_environment

    started = time.perf_counter()
    configure(settings.log_level)
    # The functions' own client, so a local run reads and writes exactly as they do (one connection per thread).
    s3 = from_environment(region=_region(args))
    # Told to the backend only when asked: a laptop's run should not surprise it (the stack's functions always do).
    publisher = events.Publisher(args.event_bus) if args.event_bus else None
    per_preset = [
        (resolve(name), dataclasses.replace(settings, output_formats=formats))
        for name, formats in DEPLOYED_FORMATS.items()
    ]

    def render(obj: S3Object) -> list[Outcome]:
        results = []
        for preset, preset_settings in per_preset:
            try:
                results.append(process_object(s3, preset_settings, preset, obj, publisher))
            except Exception as e:
                # What the functions would retry (the client has retried already): a failure of this run.
                results.append(outcomes.failed(obj.key, classify(e).error_class, str(e)))
        return results

    summary = LocalSummary()
    progress = Progress(len(listing.objects), "photos")
    try:
        for obj, results in bounded_map(render, listing.objects, args.workers):
            summary.add(results)
            for o in results:
                if o.status == "failed":
                    progress.note(f"error: s3://{obj.bucket}/{obj.key}: {o.error_class}: {o.message}")
                    break
            progress.advance()
    finally:
        progress.close()
    seconds = time.perf_counter() - started
    failed = sum(summary.failed.values())
    print(f"photos: {summary.objects}, rendered {summary.rendered}, skipped {sum(summary.skipped.values())}, "
          f"failed {failed}")  # fmt: skip
    print(f"skipped: {_counts(summary.skipped)}")
    print(f"failures: {_counts(summary.failed)}")
    print(f"left out of the listing: {_counts(listing.left_out)}")
    print(f"time: {seconds:.2f} s wall, {args.workers} workers, {summary.renditions} renditions written")
    return EXIT_FAILURES if failed else 0


def _main(args: argparse.Namespace) -> int:
    try:
        settings = _settings(args)
    except config.ConfigError as e:
        print(f"error: ConfigError: {e}", file=sys.stderr)
        return 2
    args.prefix = settings.source_prefix if args.prefix is None else args.prefix
    if not (args.prefix.startswith(settings.source_prefix) or settings.source_prefix.startswith(args.prefix)):
        print(f"error: ValueError: --prefix {args.prefix!r} is outside the source prefix {settings.source_prefix!r}: "
              "nothing there is rendered", file=sys.stderr)  # fmt: skip
        return 2
    from botocore.exceptions import BotoCoreError, ClientError

    if args.orphans:
        return _orphans(args, settings)
    try:
        listing = list_photos(_client(args.workers), args.bucket, args.prefix, settings, version_ids=args.version_ids)
    except (BotoCoreError, ClientError) as e:
        name = str(e.response.get("Error", {}).get("Code")) if isinstance(e, ClientError) else type(e).__name__
        print(f"error: {name}: listing s3://{args.bucket}/{args.prefix}: {e}", file=sys.stderr)
        return 2
    if args.local:
        return _run_local(args, settings, listing)
    return _write_manifest(args, settings, listing)


def _orphans(args: argparse.Namespace, settings: config.Settings) -> int:
    import datetime

    from botocore.exceptions import BotoCoreError, ClientError

    from kiray_imaging import orphans

    s3 = _client(args.workers)
    try:
        sweep = orphans.find(s3, settings, min_age=datetime.timedelta(minutes=args.min_age_minutes))
        orphans.report(sweep, settings.dest_bucket)
        if args.delete:
            deleted = orphans.delete(s3, settings.dest_bucket, sweep.keys())
            print(f"deleted: {deleted} keys")
        elif sweep.keys():
            print(f"# dry run: add --delete to delete these {len(sweep.keys())} keys")
    except (BotoCoreError, ClientError, RuntimeError) as e:
        name = str(e.response.get("Error", {}).get("Code")) if isinstance(e, ClientError) else type(e).__name__
        print(f"error: {name}: {e}", file=sys.stderr)
        return 2
    return 0


def register(commands: Any) -> None:
    """Adds the ``backfill`` subcommand to the CLI's subparsers."""
    p: argparse.ArgumentParser = commands.add_parser(
        "backfill",
        help="re-render photos already in S3: an S3 Batch Operations manifest and job commands, or --local",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--bucket", required=True, help="the photos bucket")
    p.add_argument("--prefix", help="only keys under this prefix (default: the source prefix)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--manifest-out", type=Path, default=Path("backfill-manifest.csv"), metavar="FILE",
                      help="where to write the manifest (default: %(default)s)")  # fmt: skip
    mode.add_argument("--local", action="store_true", help="render the photos here instead, through the pipeline")
    mode.add_argument(
        "--orphans",
        action="store_true",
        help="list renditions nothing needs any more (old key scheme, deleted uploads, leftovers)",
    )
    p.add_argument("--version-ids", action="store_true",
                   help="name each photo's current version in the manifest (versioned buckets)")  # fmt: skip
    deployed = p.add_argument_group("the deployment (defaults: serverless.yml's)")
    deployed.add_argument("--source-prefix", default="uploads/")
    deployed.add_argument("--dest-prefix", default="renditions/")
    deployed.add_argument("--dest-bucket", help="default: --bucket")
    deployed.add_argument("--stage", default="dev", help="names the functions and the stack (default: %(default)s)")
    deployed.add_argument("--region", help="default: the AWS CLI/boto3 region, else us-east-1")
    deployed.add_argument("--account-id", help="default: looked up by the printed script (aws sts)")
    deployed.add_argument("--role-arn", help="default: looked up by the printed script (stack output BackfillRoleArn)")
    sweep = p.add_argument_group("--orphans")
    sweep.add_argument("--delete", action="store_true", help="delete the orphans found (default: only list them)")
    sweep.add_argument(
        "--min-age-minutes",
        type=float,
        default=60.0,
        help="only keys older than this are orphans (a function may be mid-write; default: 60)",
    )
    local = p.add_argument_group("--local")
    add_workers_option(local)
    local.add_argument(
        "--event-bus",
        metavar="NAME",
        help="publish the functions' events to this EventBridge bus, as they do (default: none)",
    )
    local.add_argument("--log-level", default="ERROR", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                       help="JSON log lines on stdout from this level (default: %(default)s)")  # fmt: skip
    p.set_defaults(run=_main)
