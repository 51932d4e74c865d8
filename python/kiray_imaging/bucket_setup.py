"""`kiray-imaging bucket-setup --bucket B`: make a bucket the stack does not own (``--param="createBucket=false"``)
ready for the functions, without disturbing what it has already (docs/deploying.md, "An existing bucket").

Two settings, each of which S3 only ever replaces whole — so each is read, merged and written back:

1. **EventBridge notifications on** (``PutBucketNotificationConfiguration``): the bucket's SNS, SQS and Lambda
   notification configurations are kept as they are; only ``EventBridgeConfiguration`` is added.
2. **The tombstone rule** (``PutBucketLifecycleConfiguration``): the rule that expires deleted uploads'
   ``current.json`` (the tag ``kiray-imaging=deleted`` under the destination prefix, after 15 days) is added, or
   replaced by its ID ``kiray-imaging-tombstones``; every other rule is kept.

Permissions: ``s3:GetBucketNotification``, ``s3:PutBucketNotification``, ``s3:GetLifecycleConfiguration``,
``s3:PutLifecycleConfiguration`` on the bucket. ``--dry-run`` prints what would change and writes nothing. Running
it again changes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from kiray_imaging.orphans import TOMBSTONE_DAYS
from kiray_imaging.rendition_state import TOMBSTONE_TAG

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

RULE_ID = "kiray-imaging-tombstones"
_NOTIFICATION_KINDS = ("TopicConfigurations", "QueueConfigurations", "LambdaFunctionConfigurations")


def tombstone_rule(dest_prefix: str) -> dict[str, Any]:
    key, value = TOMBSTONE_TAG.split("=", 1)
    return {
        "ID": RULE_ID,
        "Status": "Enabled",
        "Filter": {"And": {"Prefix": dest_prefix, "Tags": [{"Key": key, "Value": value}]}},
        "Expiration": {"Days": TOMBSTONE_DAYS},
    }


def merged_notifications(current: dict[str, Any]) -> dict[str, Any] | None:
    """The configuration to write, or ``None`` when EventBridge is on already."""
    if "EventBridgeConfiguration" in current:
        return None
    kept = {kind: current[kind] for kind in _NOTIFICATION_KINDS if current.get(kind)}
    return {**kept, "EventBridgeConfiguration": {}}


def merged_rules(current: list[dict[str, Any]], dest_prefix: str) -> list[dict[str, Any]] | None:
    """The lifecycle rules to write, or ``None`` when ours is there as it should be."""
    ours = tombstone_rule(dest_prefix)
    others = [rule for rule in current if rule.get("ID") != RULE_ID]
    if len(others) < len(current) and ours in current:
        return None
    return [*others, ours]


def _lifecycle_rules(s3: S3Client, bucket: str) -> list[dict[str, Any]]:
    from botocore.exceptions import ClientError

    try:
        rules: list[dict[str, Any]] = list(s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"])  # type: ignore[arg-type]
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "NoSuchLifecycleConfiguration":
            return []
        raise
    return rules


def setup(s3: S3Client, bucket: str, dest_prefix: str, *, dry_run: bool, out: Any = sys.stdout) -> list[str]:
    """Turns on what is missing; returns what it changed (or would change)."""
    changed = []
    answer: dict[str, Any] = dict(s3.get_bucket_notification_configuration(Bucket=bucket))
    current = {k: v for k, v in answer.items() if k != "ResponseMetadata"}
    notifications = merged_notifications(current)
    kept = ", ".join(f"{len(current[k])} {k}" for k in _NOTIFICATION_KINDS if current.get(k)) or "none"
    if notifications is None:
        print(f"bucket-setup: s3://{bucket}: EventBridge notifications are on already", file=out)
    else:
        print(f"bucket-setup: s3://{bucket}: turning on EventBridge notifications (keeping {kept})", file=out)
        changed.append("EventBridgeConfiguration")
        if not dry_run:
            # The notification shapes S3 gave us, written back as they came (boto3's TypedDicts, not ours).
            configuration: Any = notifications
            s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration=configuration, SkipDestinationValidation=True
            )
    rules = _lifecycle_rules(s3, bucket)
    merged = merged_rules(rules, dest_prefix)
    if merged is None:
        print(f"bucket-setup: s3://{bucket}: lifecycle rule {RULE_ID} is in place", file=out)
    else:
        others = len([r for r in rules if r.get("ID") != RULE_ID])
        print(f"bucket-setup: s3://{bucket}: adding lifecycle rule {RULE_ID} (keeping {others} other rules): "
              f"{json.dumps(tombstone_rule(dest_prefix))}", file=out)  # fmt: skip
        changed.append(RULE_ID)
        if not dry_run:
            s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": merged})  # type: ignore[typeddict-item]
    if dry_run and changed:
        print("bucket-setup: dry run, nothing written", file=out)
    return changed


def _main(args: argparse.Namespace) -> int:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from kiray_imaging.config import _prefix

    try:
        setup(boto3.client("s3"), args.bucket, _prefix(args.dest_prefix), dry_run=args.dry_run)
    except (BotoCoreError, ClientError) as e:
        name = str(e.response.get("Error", {}).get("Code")) if isinstance(e, ClientError) else type(e).__name__
        print(f"error: {name}: s3://{args.bucket}: {e}", file=sys.stderr)
        return 2
    return 0


def register(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser(
        "bucket-setup",
        help="turn on EventBridge notifications and the tombstone rule on an existing photos bucket",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--bucket", required=True, help="the photos bucket (the stack's photosBucket parameter)")
    p.add_argument("--dest-prefix", default="renditions/", help="the stack's destPrefix (default: %(default)s)")
    p.add_argument("--dry-run", action="store_true", help="print what would change, write nothing")
    p.set_defaults(run=_main)
