"""Static checks on the CloudFormation template that `sls package` produces: what real AWS would get.

moto drops some of this wiring on deploy (layer attachment, bucket notifications), so it is checked here instead.
"""

from __future__ import annotations

import hashlib
import itertools
import zipfile
from pathlib import Path
from typing import Any

import pytest

from kiray_imaging import bucket_setup, orphans
from kiray_imaging.rendition_state import TOMBSTONE_TAG

FUNCTIONS = {
    "GenerateDashthumbnailLambdaFunction": "generate_thumbnail",
    "GenerateDashmediumLambdaFunction": "generate_medium",
}
NOTIFICATION_KINDS = ("LambdaConfigurations", "QueueConfigurations", "TopicConfigurations")


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def _filter_rules(config: dict[str, Any]) -> dict[str, str]:
    rules = config.get("Filter", {}).get("S3Key", {}).get("Rules", [])
    return {r["Name"].lower(): r["Value"] for r in rules}


def _events_overlap(a: str, b: str) -> bool:
    def matches(pattern: str, event: str) -> bool:
        return pattern == event or (pattern.endswith("*") and event.startswith(pattern[:-1]))

    return matches(a, b) or matches(b, a)


def overlapping_notifications(bucket_properties: dict[str, Any]) -> list[tuple[str, str]]:
    """Pairs of notification configurations that S3 would reject with "Configurations overlap": same event type,
    and prefixes and suffixes that can both match one key (one prefix starts the other, one suffix ends the other)."""
    notification = bucket_properties.get("NotificationConfiguration", {})
    configs = [(f"{kind}[{i}]", c) for kind in NOTIFICATION_KINDS for i, c in enumerate(notification.get(kind, []))]
    overlaps = []
    for (name_a, a), (name_b, b) in itertools.combinations(configs, 2):
        if not _events_overlap(a["Event"], b["Event"]):
            continue
        fa, fb = _filter_rules(a), _filter_rules(b)
        pa, pb = fa.get("prefix", ""), fb.get("prefix", "")
        sa, sb = fa.get("suffix", ""), fb.get("suffix", "")
        if (pa.startswith(pb) or pb.startswith(pa)) and (sa.endswith(sb) or sb.endswith(sa)):
            overlaps.append((name_a, name_b))
    return overlaps


def lambda_config(event: str, prefix: str = "", suffix: str = "") -> dict[str, Any]:
    rules = [{"Name": "prefix", "Value": prefix}] if prefix else []
    rules += [{"Name": "suffix", "Value": suffix}] if suffix else []
    return {"Event": event, "Function": "arn", "Filter": {"S3Key": {"Rules": rules}}}


def test_the_overlap_check_catches_what_s3_rejects() -> None:
    # The check itself: two functions on uploads/ for ObjectCreated overlap; distinct prefixes or events do not.
    same = {
        "NotificationConfiguration": {
            "LambdaConfigurations": [
                lambda_config("s3:ObjectCreated:*", "uploads/"),
                lambda_config("s3:ObjectCreated:Put", "uploads/l1/"),
            ]
        }
    }
    assert overlapping_notifications(same) == [("LambdaConfigurations[0]", "LambdaConfigurations[1]")]
    apart = {
        "NotificationConfiguration": {
            "LambdaConfigurations": [
                lambda_config("s3:ObjectCreated:*", "uploads/"),
                lambda_config("s3:ObjectCreated:*", "other/"),
                lambda_config("s3:ObjectRemoved:*", "uploads/"),
                lambda_config("s3:ObjectCreated:*", "x/", ".png"),
            ]
        }
    }
    assert overlapping_notifications(apart) == []
    suffixes = {
        "NotificationConfiguration": {
            "QueueConfigurations": [
                lambda_config("s3:ObjectCreated:*", "", ".jpg"),
                lambda_config("s3:ObjectCreated:*", "", "a.jpg"),
            ]
        }
    }
    assert len(overlapping_notifications(suffixes)) == 1  # fmt: skip


def test_no_two_s3_notification_configurations_overlap(template: dict[str, Any]) -> None:
    buckets = resources(template, "AWS::S3::Bucket")
    assert "PhotosBucket" in buckets
    for name, bucket in buckets.items():
        assert overlapping_notifications(bucket.get("Properties", {})) == [], name


def test_uploads_fan_out_to_both_functions_through_eventbridge(template: dict[str, Any]) -> None:
    photos = template["Resources"]["PhotosBucket"]["Properties"]
    assert photos["NotificationConfiguration"]["EventBridgeConfiguration"] == {"EventBridgeEnabled": True}
    bucket_name = photos["BucketName"]
    targets = {}
    for rule in resources(template, "AWS::Events::Rule").values():
        pattern = rule["Properties"]["EventPattern"]
        assert pattern["source"] == ["aws.s3"]
        assert pattern["detail-type"] == ["Object Created", "Object Deleted"]  # deleted uploads' renditions go too
        assert pattern["detail"]["bucket"]["name"] == [bucket_name]
        assert pattern["detail"]["object"]["key"] == [{"prefix": "uploads/"}]
        for target in rule["Properties"]["Targets"]:
            targets[target["Arn"]["Fn::GetAtt"][0]] = rule
    assert set(targets) == set(FUNCTIONS)
    # EventBridge may invoke each function (and only from its own rule).
    permissions = resources(template, "AWS::Lambda::Permission").values()
    invokable = {p["Properties"]["FunctionName"]["Fn::GetAtt"][0] for p in permissions
                 if p["Properties"]["Principal"] == "events.amazonaws.com"}  # fmt: skip
    assert invokable == set(FUNCTIONS)


def test_functions_runtime_architecture_layer_and_limits(template: dict[str, Any]) -> None:
    for logical, module in FUNCTIONS.items():
        props = template["Resources"][logical]["Properties"]
        assert props["Runtime"] == "python3.12"
        assert props["Architectures"] == ["x86_64"]
        assert props["Handler"] == f"py_handlers/{module}.handler"
        assert props["Layers"] == [{"Ref": "CoreLambdaLayer"}]
        assert 512 <= props["MemorySize"] <= 3008
        assert 10 <= props["Timeout"] <= 120
        env = props["Environment"]["Variables"]
        assert env["SOURCE_PREFIX"] == "uploads/"
        assert env["DEST_PREFIX"] == "renditions/"
        assert env["OUTPUT_FORMAT"] == {"generate_thumbnail": "jpeg", "generate_medium": "jpeg,webp"}[module]
        assert env["EVENT_BUS_NAME"] == "default"
    layer = template["Resources"]["CoreLambdaLayer"]["Properties"]
    assert layer["CompatibleRuntimes"] == ["python3.12"]
    assert layer["CompatibleArchitectures"] == ["x86_64"]
    for group in resources(template, "AWS::Logs::LogGroup").values():
        assert group["Properties"]["RetentionInDays"] == 14


QUEUE_ARN = {"Fn::GetAtt": ["FailureQueue", "Arn"]}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_iam_is_least_privilege(template: dict[str, Any]) -> None:
    # The functions' role (the Batch Operations role has its own test, test_backfill_role.py).
    role = template["Resources"]["IamRoleLambdaExecution"]
    statements = [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]
    for s in statements:
        assert s["Effect"] == "Allow", s
        assert set(s) == {"Effect", "Action", "Resource"}, s  # no NotAction / NotResource / conditions to widen it
        for action in as_list(s["Action"]):
            assert "*" not in action, s  # no s3:*, no sqs:*, no *
        for resource in as_list(s["Resource"]):
            assert resource not in ("*", "arn:aws:s3:::*"), s
    actions = {a for s in statements for a in as_list(s["Action"])}
    logs = {"logs:CreateLogStream", "logs:CreateLogGroup", "logs:TagResource", "logs:PutLogEvents"}
    assert actions == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:PutObjectTagging", "sqs:SendMessage",
                       "events:PutEvents", *logs}  # fmt: skip
    # EventBridge: publish to the one bus of the parameter eventBus (the account's default bus unless given).
    (bus,) = [s for s in statements if as_list(s["Action"]) == ["events:PutEvents"]]
    assert bus["Resource"] == {"Fn::Join": [":", ["arn", {"Ref": "AWS::Partition"}, "events", {"Ref": "AWS::Region"},
                                                  {"Ref": "AWS::AccountId"}, "event-bus/default"]]}  # fmt: skip
    # S3: read the uploads (and HEAD them); write, read back (current.json), delete and tag the renditions. Nothing on
    # the bucket itself (no ListBucket), nothing outside the two prefixes, and nothing but reading on uploads/.
    s3 = sorted((a, r) for s in statements for a in as_list(s["Action"]) if a.startswith("s3:")
                for r in as_list(s["Resource"]))  # fmt: skip
    renditions, uploads = (
        "arn:aws:s3:::kiray-imaging-dev-photos/renditions/*",
        "arn:aws:s3:::kiray-imaging-dev-photos/uploads/*",
    )
    assert s3 == [
        ("s3:DeleteObject", renditions),
        ("s3:GetObject", renditions),
        ("s3:GetObject", uploads),
        ("s3:PutObject", renditions),
        ("s3:PutObjectTagging", renditions),
    ]
    assert [a for a, r in s3 if r == uploads] == ["s3:GetObject"]  # an upload is never written, tagged or deleted
    # SQS: send to the failure queue (Lambda's on-failure destination), that exact queue and nothing else.
    sqs = [s for s in statements if any(a.startswith("sqs:") for a in as_list(s["Action"]))]
    assert sqs
    assert all((as_list(s["Action"]), as_list(s["Resource"])) == (["sqs:SendMessage"], [QUEUE_ARN]) for s in sqs), sqs
    # Logs: the framework's statements, scoped to this service's log groups.
    for s in statements:
        if any(a.startswith("logs:") for a in as_list(s["Action"])):
            for resource in as_list(s["Resource"]):
                assert ":log-group:/aws/lambda/kiray-imaging-dev" in resource["Fn::Sub"], s


def test_failed_events_are_retried_twice_then_sent_to_the_failure_queue(template: dict[str, Any]) -> None:
    configs = resources(template, "AWS::Lambda::EventInvokeConfig").values()
    by_function = {c["Properties"]["FunctionName"]["Ref"]: c["Properties"] for c in configs}
    assert set(by_function) == set(FUNCTIONS)
    for props in by_function.values():
        assert props["Qualifier"] == "$LATEST"
        assert props["MaximumRetryAttempts"] == 2
        assert props["MaximumEventAgeInSeconds"] == 3600
        assert props["DestinationConfig"] == {"OnFailure": {"Destination": QUEUE_ARN}}


def test_eventbridge_retries_delivery_then_dead_letters_to_the_same_queue(template: dict[str, Any]) -> None:
    rules = resources(template, "AWS::Events::Rule").values()
    senders = set()
    for rule in rules:
        (target,) = rule["Properties"]["Targets"]
        assert target["DeadLetterConfig"] == {"Arn": QUEUE_ARN}
        assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 20}
        senders.add(rule["Properties"]["Name"])
    assert len(senders) == len(FUNCTIONS)
    # The queue admits EventBridge's dead letters from exactly these rules (Lambda's go through the role).
    (policy,) = resources(template, "AWS::SQS::QueuePolicy").values()
    assert policy["Properties"]["Queues"] == [{"Ref": "FailureQueue"}]
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == QUEUE_ARN
    arns = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert {arn["Fn::Join"][1][-1] for arn in arns} == {f"rule/{name}" for name in senders}
    for arn in arns:
        assert arn["Fn::Join"][0] == ":"
        assert arn["Fn::Join"][1][:3] == ["arn", {"Ref": "AWS::Partition"}, "events"]


def test_the_failure_queue_keeps_messages_and_alarms_on_the_first(template: dict[str, Any]) -> None:
    (name,) = resources(template, "AWS::SQS::Queue")
    assert name == "FailureQueue"
    queue = template["Resources"][name]["Properties"]
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert queue["SqsManagedSseEnabled"] is True
    # The alarm on the queue (the other alarm watches permanent failures: test_template_observability.py).
    (props,) = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()
                if a["Properties"]["Namespace"] == "AWS/SQS"]  # fmt: skip
    assert (props["Namespace"], props["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert props["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["FailureQueue", "QueueName"]}}]
    assert (props["ComparisonOperator"], props["Threshold"]) == ("GreaterThanThreshold", 0)
    assert props["EvaluationPeriods"] == 1
    assert props["TreatMissingData"] == "notBreaching"
    assert template["Outputs"]["FailureQueueUrl"]["Value"] == {"Ref": "FailureQueue"}


@pytest.mark.parametrize("function", ["generate-thumbnail", "generate-medium"])
def test_function_zips_are_tiny_and_hold_only_their_handler(packaged: Path, function: str) -> None:
    path = packaged / f"{function}.zip"
    assert path.stat().st_size < 10 * 1024
    with zipfile.ZipFile(path) as z:
        assert z.namelist() == [f"py_handlers/{function.replace('-', '_')}.py"]


def test_layer_zip_is_small_and_has_python_at_its_root(packaged: Path) -> None:
    # The layer is a prebuilt artifact (package.artifact): packaging references it where the plugin built it.
    path = Path(__file__).resolve().parents[2] / "layer" / "dist" / "kiray-imaging-layer.zip"
    assert path.stat().st_size <= 3 * 1024 * 1024
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    assert all(n.startswith("python/") for n in names)
    assert "python/kiray_imaging/_core.abi3.so" in names
    assert "python/kiray_imaging/lambda_pipeline.py" in names
    assert not any("boto3" in n for n in names)  # the runtime has it


def test_the_stack_records_the_layer_sha256(template: dict[str, Any]) -> None:
    # The build is reproducible, so this hash ties a deployed layer to the commit that gives the same bytes
    # (docs/supply-chain.md); the plugin reads it from what `make layer` wrote.
    dist = Path(__file__).resolve().parents[2] / "layer" / "dist"
    sha = hashlib.sha256((dist / "kiray-imaging-layer.zip").read_bytes()).hexdigest()
    assert (dist / "kiray-imaging-layer.sha256").read_text() == f"{sha}  kiray-imaging-layer.zip\n"
    assert template["Outputs"]["CoreLambdaLayerSha256"]["Value"] == sha
    description = template["Resources"]["CoreLambdaLayer"]["Properties"]["Description"]
    assert description.startswith("kiray_imaging native core")
    assert description.endswith(f" sha256 {sha}")
    assert len(description) <= 256


def test_deleted_uploads_tombstones_expire_by_the_rule_the_functions_tag_them_for(template: dict[str, Any]) -> None:
    (rule,) = template["Resources"]["PhotosBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule == {
        "Id": bucket_setup.RULE_ID,
        "Status": "Enabled",
        "Prefix": "renditions/",
        "TagFilters": [{"Key": key, "Value": value} for key, value in [TOMBSTONE_TAG.split("=", 1)]],
        "ExpirationInDays": orphans.TOMBSTONE_DAYS,
    }
    # The same rule as `kiray-imaging bucket-setup` adds to an existing bucket, in the S3 API's spelling.
    ours = bucket_setup.tombstone_rule("renditions/")
    assert (ours["Filter"]["And"]["Prefix"], ours["Filter"]["And"]["Tags"], ours["Expiration"]["Days"]) == (
        rule["Prefix"], rule["TagFilters"], rule["ExpirationInDays"],
    )  # fmt: skip


def test_an_existing_bucket_is_not_the_stacks(existing_bucket_template: dict[str, Any]) -> None:
    # --param="createBucket=false": no bucket resource at all; everything else is there, aimed at the given bucket.
    t = existing_bucket_template
    assert resources(t, "AWS::S3::Bucket").keys() <= {"ServerlessDeploymentBucket"}
    for kind in ("AWS::Lambda::Function", "AWS::Events::Rule", "AWS::SQS::Queue", "AWS::CloudWatch::Alarm"):
        assert resources(t, kind), kind
    assert {r["Properties"]["EventPattern"]["detail"]["bucket"]["name"][0]
            for r in resources(t, "AWS::Events::Rule").values()} == {"acme-listing-photos"}  # fmt: skip
    statements = [s for p in t["Resources"]["IamRoleLambdaExecution"]["Properties"]["Policies"]
                  for s in p["PolicyDocument"]["Statement"]]  # fmt: skip
    s3 = {
        r for s in statements if any(a.startswith("s3:") for a in as_list(s["Action"])) for r in as_list(s["Resource"])
    }
    assert s3 == {"arn:aws:s3:::acme-listing-photos/uploads/*", "arn:aws:s3:::acme-listing-photos/renditions/*"}
    assert t["Outputs"]["PhotosBucketName"]["Value"] == "acme-listing-photos"


def test_removing_or_replacing_the_stack_keeps_the_photos_bucket(template: dict[str, Any]) -> None:
    # The originals are the one thing no retry or redeploy can bring back.
    bucket = template["Resources"]["PhotosBucket"]
    assert bucket["DeletionPolicy"] == "Retain"
    assert bucket["UpdateReplacePolicy"] == "Retain"
