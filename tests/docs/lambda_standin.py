"""Lambda's part, for the docs' commands against moto: moto runs no function code without Docker.

    python tests/docs/lambda_standin.py STACK

Hands every object in the deployed functions' source bucket that it has not handed over yet to each function whose
deployed EventBridge rule matches it (the rule's pattern), as the EventBridge "Object Created" event production
sends. The handler runs as the deployed function is configured (its handler path and environment variables, read
from moto), in a process of its own; what it prints goes to the function's log group with Lambda's START / END /
REPORT lines, and its EMF documents become CloudWatch metrics, as CloudWatch would extract them. So `sls logs`,
`aws logs` and `aws cloudwatch` in the docs read what the real handlers wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parents[2]
EVENT_TEMPLATE = ROOT / "tests" / "events" / "eventbridge_object_created.json"
RUNNER = """
import importlib, json, sys, types
module, _, name = sys.argv[1].rpartition(".")
handler = getattr(importlib.import_module(module.replace("/", ".")), name)
handler(json.loads(sys.argv[2]), types.SimpleNamespace(aws_request_id=sys.argv[3]))
"""


def matches(pattern: Any, event: Any) -> bool:
    """EventBridge pattern matching, for what the rules use: value lists, nesting and ``prefix`` (moto's
    TestEventPattern is not implemented)."""
    if isinstance(pattern, dict):
        return isinstance(event, dict) and all(k in event and matches(v, event[k]) for k, v in pattern.items())
    return any(
        event.startswith(option["prefix"]) if isinstance(option, dict) else event == option for option in pattern
    )


def event_for(bucket: str, key: str, head: Any, region: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(EVENT_TEMPLATE.read_text())
    event.update(id=str(uuid.uuid4()), region=region, resources=[f"arn:aws:s3:::{bucket}"])
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"] = {
        "key": key,
        "size": head["ContentLength"],
        "etag": head["ETag"].strip('"'),
        "sequencer": f"{time.time_ns():020X}",
    }
    return event


def run(function: dict[str, Any], event: dict[str, Any]) -> tuple[list[str], float, int]:
    """The handler's output lines, duration in ms and peak RSS in MB, in a process with the function's settings."""
    request_id = str(uuid.uuid4())
    env = os.environ | function["Environment"]["Variables"] | {"AWS_LAMBDA_FUNCTION_NAME": function["FunctionName"]}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", RUNNER, function["Handler"], json.dumps(event), request_id],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    ms = (time.perf_counter() - started) * 1000
    lines = [f"START RequestId: {request_id} Version: $LATEST", *output.splitlines()]
    if proc.returncode:
        lines.append(f"RequestId: {request_id} Error: the handler exited with status {proc.returncode}")
    lines += [
        f"END RequestId: {request_id}",
        f"REPORT RequestId: {request_id}\tDuration: {ms:.2f} ms\tBilled Duration: {int(ms) + 1} ms\t"
        f"Memory Size: {function['MemorySize']} MB\tMax Memory Used: {usage.ru_maxrss // 1024} MB",
    ]
    return lines, ms, usage.ru_maxrss // 1024


def publish(function: dict[str, Any], lines: list[str]) -> None:
    logs, cloudwatch = boto3.client("logs"), boto3.client("cloudwatch")
    group = f"/aws/lambda/{function['FunctionName']}"
    stream = time.strftime("%Y/%m/%d/") + "[$LATEST]" + uuid.uuid4().hex
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group, logStreamName=stream, logEvents=[{"timestamp": now, "message": m} for m in lines]
    )
    for line in lines:
        if not line.startswith("{"):
            continue
        document = json.loads(line)
        for directive in document.get("_aws", {}).get("CloudWatchMetrics", []):
            for dimension_set in directive["Dimensions"]:
                dimensions = [{"Name": name, "Value": str(document[name])} for name in dimension_set]
                data = []
                for metric in directive["Metrics"]:
                    value = document[metric["Name"]]
                    values = [float(v) for v in value] if isinstance(value, list) else [float(value)]
                    data.append({"MetricName": metric["Name"], "Dimensions": dimensions, "Values": values,
                                 "Unit": metric.get("Unit", "None")})  # fmt: skip
                cloudwatch.put_metric_data(Namespace=directive["Namespace"], MetricData=data)


def main(stack: str) -> int:
    state_file = Path(os.environ["KIRAY_DOCS_STANDIN_STATE"])
    delivered = set(json.loads(state_file.read_text())) if state_file.exists() else set()
    lam, events, s3 = boto3.client("lambda"), boto3.client("events"), boto3.client("s3")
    region = lam.meta.region_name
    functions = {f["FunctionArn"]: f for f in lam.list_functions()["Functions"] if f["FunctionName"].startswith(stack)}
    for rule in events.list_rules(NamePrefix=stack)["Rules"]:
        for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
            function = functions[target["Arn"]]
            bucket = function["Environment"]["Variables"]["SOURCE_BUCKET"]
            for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
                done = f"{function['FunctionName']} {obj['Key']} {obj['ETag']}"
                if done in delivered:
                    continue
                event = event_for(bucket, obj["Key"], s3.head_object(Bucket=bucket, Key=obj["Key"]), region)
                if not matches(json.loads(rule["EventPattern"]), event):
                    continue
                lines, ms, rss = run(function, event)
                publish(function, lines)
                delivered.add(done)
                print(f"lambda-standin: {function['FunctionName']} s3://{bucket}/{obj['Key']}: {ms:.0f} ms, {rss} MB")
    state_file.write_text(json.dumps(sorted(delivered)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
