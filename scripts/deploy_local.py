"""`make deploy-local`: rehearse `sls deploy` and `sls remove` against moto and check what the deploy created —
once as the stack usually is, once against an existing bucket (`--param="createBucket=false"`, after
`kiray-imaging bucket-setup`), which must come out of it with what it had.

moto keeps the stack, the functions, the layer version and the role, but drops some wiring (the layer attachment
on functions, bucket notifications): tests/serverless/test_template.py checks those on the packaged template.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3

# Run as a script (`python scripts/x.py`): make the repo root importable, as it is for the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripts.local_aws import moto_server, use_in_this_process

ROOT = Path(__file__).resolve().parent.parent
STACK = "kiray-imaging-dev"
FUNCTIONS = ("kiray-imaging-dev-generate-thumbnail", "kiray-imaging-dev-generate-medium")


EXISTING = "acme-existing-photos"


def sls(*args: str, env: dict[str, str]) -> None:
    print(f"deploy-local: sls {' '.join(args)}", flush=True)
    subprocess.run(["npx", "--no-install", "sls", *args], cwd=ROOT, env=env, check=True)


def check(endpoint: str) -> list[str]:
    problems = []
    cfn = boto3.client("cloudformation", endpoint_url=endpoint)
    status = cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"]
    if status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        problems.append(f"stack {STACK} is {status}")
    lam = boto3.client("lambda", endpoint_url=endpoint)
    for name in FUNCTIONS:
        fn = lam.get_function(FunctionName=name)["Configuration"]
        if fn["Runtime"] != "python3.12" or fn.get("Architectures") != ["x86_64"]:
            problems.append(f"{name}: {fn['Runtime']} {fn.get('Architectures')}")
        print(f"deploy-local: function {name}: {fn['Runtime']}, {fn['MemorySize']} MB, {fn['CodeSize']} bytes")
    layers = lam.list_layers()["Layers"]
    if not layers:
        problems.append("no layer version was published")
    for layer in layers:
        version = layer["LatestMatchingVersion"]
        print(f"deploy-local: layer {layer['LayerName']} version {version['Version']}")
    roles = [r["RoleName"] for r in boto3.client("iam", endpoint_url=endpoint).list_roles()["Roles"]]
    if not any(r.startswith("kiray-imaging-dev") for r in roles):
        problems.append(f"no kiray-imaging role among {roles}")
    print(f"deploy-local: roles {roles}")
    return problems


def stacks_left(endpoint: str) -> list[str]:
    summaries = boto3.client("cloudformation", endpoint_url=endpoint).list_stacks()["StackSummaries"]
    return [s["StackName"] for s in summaries if s["StackStatus"] != "DELETE_COMPLETE"]


def existing_bucket(endpoint: str, env: dict[str, str]) -> list[str]:
    """The stack against a bucket it does not own: an SQS notification and a lifecycle rule of the bucket's own
    survive bucket-setup, deploy and remove; the template has no bucket of its own."""
    s3, sqs = boto3.client("s3", endpoint_url=endpoint), boto3.client("sqs", endpoint_url=endpoint)
    s3.create_bucket(Bucket=EXISTING)
    queue = sqs.get_queue_attributes(QueueUrl=sqs.create_queue(QueueName="exports")["QueueUrl"],
                                     AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]  # fmt: skip
    s3.put_bucket_notification_configuration(Bucket=EXISTING, NotificationConfiguration={"QueueConfigurations": [
        {"Id": "exports", "QueueArn": queue, "Events": ["s3:ObjectCreated:*"]}]})  # fmt: skip
    rule: Any = {"ID": "theirs", "Status": "Enabled", "Filter": {"Prefix": "exports/"}, "Expiration": {"Days": 30}}
    s3.put_bucket_lifecycle_configuration(Bucket=EXISTING, LifecycleConfiguration={"Rules": [rule]})
    print(f"deploy-local: kiray-imaging bucket-setup --bucket {EXISTING}", flush=True)
    subprocess.run([sys.executable, "-m", "kiray_imaging", "bucket-setup", "--bucket", EXISTING], env=env, check=True)
    sls("deploy", "--param=createBucket=false", f"--param=photosBucket={EXISTING}", env=env)
    problems = check(endpoint)
    body = boto3.client("cloudformation", endpoint_url=endpoint).get_template(StackName=STACK)["TemplateBody"]
    template = json.loads(body) if isinstance(body, str) else body
    buckets = sorted(name for name, r in template["Resources"].items() if r["Type"] == "AWS::S3::Bucket")
    print(f"deploy-local: createBucket=false: the stack's buckets {buckets}")
    if buckets != ["ServerlessDeploymentBucket"]:
        problems.append(f"createBucket=false: the stack has buckets {buckets}")
    sls("remove", "--param=createBucket=false", f"--param=photosBucket={EXISTING}", env=env)
    kept = s3.get_bucket_notification_configuration(Bucket=EXISTING).get("QueueConfigurations", [])
    rules = [r["ID"] for r in s3.get_bucket_lifecycle_configuration(Bucket=EXISTING)["Rules"]]
    print(f"deploy-local: after remove, {EXISTING} has queue notifications {[q['Id'] for q in kept]}, rules {rules}")
    if [q["Id"] for q in kept] != ["exports"] or rules != ["theirs", "kiray-imaging-tombstones"]:
        problems.append(f"{EXISTING} lost its own settings: {kept}, {rules}")
    return problems


def main() -> int:
    with moto_server() as endpoint:
        env = use_in_this_process(endpoint)
        sls("deploy", env=env)
        problems = check(endpoint)
        sls("remove", env=env)
        if stacks_left(endpoint):
            problems.append(f"stacks left after remove: {stacks_left(endpoint)}")
        problems += existing_bucket(endpoint, env)
        if stacks_left(endpoint):
            problems.append(f"stacks left after the existing bucket's remove: {stacks_left(endpoint)}")
    for p in problems:
        print(f"deploy-local: PROBLEM: {p}", file=sys.stderr)
    print("deploy-local: ok" if not problems else "deploy-local: FAILED")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
