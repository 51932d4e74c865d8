"""`make deploy-local`: rehearse `sls deploy` and `sls remove` against moto and check what the deploy created.

moto keeps the stack, the functions, the layer version and the role, but drops some wiring (the layer attachment
on functions, bucket notifications): tests/serverless/test_template.py checks those on the packaged template.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import boto3

# Run as a script (`python scripts/x.py`): make the repo root importable, as it is for the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripts.local_aws import moto_server, use_in_this_process

ROOT = Path(__file__).resolve().parent.parent
STACK = "kiray-imaging-dev"
FUNCTIONS = ("kiray-imaging-dev-generate-thumbnail", "kiray-imaging-dev-generate-medium")


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


def main() -> int:
    with moto_server() as endpoint:
        env = use_in_this_process(endpoint)
        sls("deploy", env=env)
        problems = check(endpoint)
        sls("remove", env=env)
        remaining = [s["StackName"] for s in boto3.client("cloudformation", endpoint_url=endpoint).list_stacks()
                     ["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE"]  # fmt: skip
        if remaining:
            problems.append(f"stacks left after remove: {remaining}")
    for p in problems:
        print(f"deploy-local: PROBLEM: {p}", file=sys.stderr)
    print("deploy-local: ok" if not problems else "deploy-local: FAILED")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
