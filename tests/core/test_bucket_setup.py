"""`kiray-imaging bucket-setup`: an existing bucket gets EventBridge notifications and the tombstone rule without
losing the notifications and lifecycle rules it already has (S3 replaces both configurations whole)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from typing import Any
from urllib.parse import unquote

import boto3
import pytest

from kiray_imaging import bucket_setup

BUCKET = "acme-listing-photos"
CLI = [sys.executable, "-m", "kiray_imaging", "bucket-setup", "--bucket", BUCKET]
THEIR_RULE = {"ID": "expire-exports", "Status": "Enabled", "Filter": {"Prefix": "exports/"},
              "Expiration": {"Days": 30}}  # fmt: skip


@pytest.fixture
def s3(local_aws: str) -> Any:
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def their_notifications(s3: Any) -> dict[str, Any]:
    """What the bucket already sends elsewhere: an SQS queue for its exports, an SNS topic for its invoices."""
    queue_url = boto3.client("sqs").create_queue(QueueName="exports")["QueueUrl"]
    queue = boto3.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    topic = boto3.client("sns").create_topic(Name="invoices")["TopicArn"]
    config = {
        "QueueConfigurations": [{"Id": "exports", "QueueArn": queue["Attributes"]["QueueArn"],
                                 "Events": ["s3:ObjectCreated:*"],
                                 "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "exports/"}]}}}],
        "TopicConfigurations": [{"Id": "invoices", "TopicArn": topic, "Events": ["s3:ObjectRemoved:*"]}],
    }  # fmt: skip
    s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration=config)
    return config


def notifications(s3: Any) -> dict[str, Any]:
    return {k: v for k, v in s3.get_bucket_notification_configuration(Bucket=BUCKET).items() if k != "ResponseMetadata"}


def test_what_the_bucket_has_is_kept_and_ours_is_added(s3: Any) -> None:
    before = their_notifications(s3)
    s3.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": [THEIR_RULE]})
    result = subprocess.run(CLI, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "keeping 1 TopicConfigurations, 1 QueueConfigurations" in result.stdout
    after = notifications(s3)
    # (moto keeps EventBridgeConfiguration but does not return it: what it does with it is checked below.)
    for kind in ("QueueConfigurations", "TopicConfigurations"):
        assert [c["Id"] for c in after[kind]] == [c["Id"] for c in before[kind]]
        assert after[kind][0]["Events"] == before[kind][0]["Events"]
    assert after["QueueConfigurations"][0]["Filter"] == before["QueueConfigurations"][0]["Filter"]
    rules = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert [r["ID"] for r in rules] == ["expire-exports", "kiray-imaging-tombstones"]
    ours = rules[1]
    assert ours["Expiration"] == {"Days": 15}
    assert ours["Filter"]["And"] == {"Prefix": "renditions/", "Tags": [{"Key": "kiray-imaging", "Value": "deleted"}]}
    # Both work: an upload reaches EventBridge (as the functions' rules see it), an export still reaches its queue.
    sqs, events = boto3.client("sqs"), boto3.client("events")
    ours = sqs.create_queue(QueueName="ours")["QueueUrl"]
    ours_arn = sqs.get_queue_attributes(QueueUrl=ours, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="uploads", EventPattern=json.dumps({"source": ["aws.s3"], "detail-type": ["Object Created"]}))
    events.put_targets(Rule="uploads", Targets=[{"Id": "q", "Arn": ours_arn}])
    s3.put_object(Bucket=BUCKET, Key="uploads/l1/a.jpg", Body=b"photo")
    s3.put_object(Bucket=BUCKET, Key="exports/x.csv", Body=b"x")
    (message,) = sqs.receive_message(QueueUrl=ours, MaxNumberOfMessages=10, WaitTimeSeconds=2)["Messages"][:1]
    assert json.loads(message["Body"])["detail"]["object"]["key"] == "uploads/l1/a.jpg"
    theirs = sqs.get_queue_url(QueueName="exports")["QueueUrl"]
    bodies = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=theirs, MaxNumberOfMessages=10,
                                                                  WaitTimeSeconds=2).get("Messages", [])]  # fmt: skip
    keys = [unquote(r["s3"]["object"]["key"]) for b in bodies for r in b.get("Records", [])]
    assert keys == ["exports/x.csv"], bodies
    # Run again: nothing added twice. (moto does not return EventBridgeConfiguration, so the command sets it again
    # here; against S3 it says "on already": test_the_switch_is_read_before_it_is_set.)
    again = subprocess.run(CLI, capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stderr
    assert "lifecycle rule kiray-imaging-tombstones is in place" in again.stdout
    assert s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"] == rules
    assert notifications(s3) == after


def test_the_switch_is_read_before_it_is_set() -> None:
    on = {"EventBridgeConfiguration": {}, "QueueConfigurations": [{"Id": "q"}]}
    assert bucket_setup.merged_notifications(on) is None
    off = {"QueueConfigurations": [{"Id": "q"}], "TopicConfigurations": [], "LambdaFunctionConfigurations": []}
    assert bucket_setup.merged_notifications(off) == {"QueueConfigurations": [{"Id": "q"}],
                                                      "EventBridgeConfiguration": {}}  # fmt: skip


def test_a_bare_bucket_and_a_dry_run(s3: Any) -> None:
    out = io.StringIO()
    changed = bucket_setup.setup(s3, BUCKET, "photos/renditions/", dry_run=True, out=out)
    assert changed == ["EventBridgeConfiguration", "kiray-imaging-tombstones"]
    assert "dry run, nothing written" in out.getvalue()
    assert "EventBridgeConfiguration" not in notifications(s3)
    with pytest.raises(s3.exceptions.ClientError, match="NoSuchLifecycleConfiguration"):
        s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)
    assert bucket_setup.setup(s3, BUCKET, "photos/renditions/", dry_run=False, out=out) == changed
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert rule["Filter"]["And"]["Prefix"] == "photos/renditions/"


def test_an_outdated_rule_of_ours_is_replaced_not_duplicated(s3: Any) -> None:
    old = {**bucket_setup.tombstone_rule("renditions/"), "Expiration": {"Days": 3}}
    s3.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": [THEIR_RULE, old]})
    bucket_setup.setup(s3, BUCKET, "renditions/", dry_run=False, out=io.StringIO())
    rules = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert [(r["ID"], r["Expiration"]["Days"]) for r in rules] == [("expire-exports", 30),
                                                                    ("kiray-imaging-tombstones", 15)]  # fmt: skip


def test_a_refusal_is_one_line(s3: Any) -> None:
    result = subprocess.run([*CLI[:-1], "no-such-bucket"], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("error: NoSuchBucket: s3://no-such-bucket:"), result.stderr
    json.dumps(result.stdout)
