"""The role S3 Batch Operations assumes for a backfill, as `sls package` writes it: who may assume it, exactly what
it may do, and the stack output the printed create-job script reads (docs/backfills.md)."""

from __future__ import annotations

from typing import Any

from kiray_imaging.backfill import MANIFEST_PREFIX, REPORT_PREFIX

BUCKET_ARN = "arn:aws:s3:::kiray-imaging-dev-photos"
FUNCTIONS = ("GenerateDashthumbnailLambdaFunction", "GenerateDashmediumLambdaFunction")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_only_the_functions_role_and_the_backfill_role_exist(template: dict[str, Any]) -> None:
    roles = {name for name, r in template["Resources"].items() if r["Type"] == "AWS::IAM::Role"}
    assert roles == {"IamRoleLambdaExecution", "BackfillRole"}


def test_only_s3_batch_operations_may_assume_it(template: dict[str, Any]) -> None:
    trust = template["Resources"]["BackfillRole"]["Properties"]["AssumeRolePolicyDocument"]
    assert trust["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "batchoperations.s3.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]


def test_it_may_invoke_both_functions_read_manifests_and_write_reports_and_nothing_else(
    template: dict[str, Any],
) -> None:
    props = template["Resources"]["BackfillRole"]["Properties"]
    assert "ManagedPolicyArns" not in props
    statements = [s for p in props["Policies"] for s in p["PolicyDocument"]["Statement"]]
    granted = set()
    for s in statements:
        assert s["Effect"] == "Allow", s
        assert set(s) == {"Effect", "Action", "Resource"}, s  # no NotAction / NotResource
        for action in as_list(s["Action"]):
            assert "*" not in action, s
            for resource in as_list(s["Resource"]):
                assert resource != "*", s
                granted.add((action, str(resource)))
    assert granted == {
        ("lambda:InvokeFunction", str({"Fn::GetAtt": [FUNCTIONS[0], "Arn"]})),
        ("lambda:InvokeFunction", str({"Fn::GetAtt": [FUNCTIONS[1], "Arn"]})),
        # The prefixes the CLI uploads manifests to and asks for reports under.
        ("s3:GetObject", f"{BUCKET_ARN}/{MANIFEST_PREFIX}*"),
        ("s3:PutObject", f"{BUCKET_ARN}/{REPORT_PREFIX}/*"),
        ("s3:GetBucketLocation", BUCKET_ARN),
    }
    # Never the photos themselves: the functions read and write them with their own role.
    assert not any(r.endswith(("/uploads/*", "/renditions/*")) for _, r in granted)


def test_its_arn_is_a_stack_output(template: dict[str, Any]) -> None:
    assert template["Outputs"]["BackfillRoleArn"]["Value"] == {"Fn::GetAtt": ["BackfillRole", "Arn"]}
