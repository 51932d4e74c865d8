"""What `sls package` made, read back the way Lambda would be configured from it: each function's handler, runtime,
memory size, timeout, environment, code zip and layer zips, from the CloudFormation template it wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = "cloudformation-template-update-stack.json"
STATE = "serverless-state.json"


class PackageError(Exception):
    """The package cannot be rehearsed as it is (a value only CloudFormation could resolve, a missing zip)."""


@dataclass(frozen=True)
class Function:
    name: str
    """The function's name in serverless.yml (``generate-thumbnail``), which is also its zip's."""
    function_name: str
    """What Lambda calls it (``kiray-imaging-dev-generate-thumbnail``)."""
    handler: str
    runtime: str
    architecture: str
    memory_mb: int
    timeout_s: int
    environment: dict[str, str]
    code: Path
    layers: tuple[Path, ...]


def sls_package(dest: Path) -> None:
    """`sls package` into ``dest`` against a throwaway moto, as `make package` does; the Serverless plugin builds and
    verifies the layer first."""
    command = [sys.executable, str(ROOT / "scripts" / "local_aws.py"), "--", "npx", "--no-install", "sls", "package",
               "--package", str(dest)]  # fmt: skip
    subprocess.run(command, cwd=ROOT, check=True)


def _strings(name: str, variables: dict[str, Any]) -> dict[str, str]:
    unresolved = sorted(k for k, v in variables.items() if not isinstance(v, str))
    if unresolved:
        raise PackageError(f"{name}: environment {unresolved} are CloudFormation expressions, not values")
    return {k: str(v) for k, v in variables.items()}


def _layer_artifacts(package_dir: Path) -> dict[str, Path]:
    """Layer zips by file name: in the package folder, or where serverless.yml's `package.artifact` names them (the
    template only holds the S3 key they will be uploaded to)."""
    artifacts = {p.name: p for p in package_dir.glob("*.zip")}
    state_file = package_dir / STATE
    if state_file.is_file():
        service = json.loads(state_file.read_text())["service"]
        for layer in (service.get("initialServerlessConfig", {}).get("layers") or {}).values():
            artifact = (layer.get("package") or {}).get("artifact")
            if isinstance(artifact, str):
                path = Path(artifact) if Path(artifact).is_absolute() else ROOT / artifact
                artifacts.setdefault(path.name, path)
    return artifacts


def read_package(package_dir: Path) -> list[Function]:
    """The functions of the template in ``package_dir``, in template order."""
    template = json.loads((package_dir / TEMPLATE).read_text())
    resources: dict[str, Any] = template["Resources"]
    artifacts = _layer_artifacts(package_dir)
    functions = []
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        props = resource["Properties"]
        zip_name = PurePosixPath(props["Code"]["S3Key"]).name
        layers = []
        for ref in props.get("Layers", []):
            layer_id = ref.get("Ref") if isinstance(ref, dict) else None
            if layer_id not in resources:
                raise PackageError(f"{logical_id}: layer {ref} is not a layer of this template")
            layer_zip = PurePosixPath(resources[layer_id]["Properties"]["Content"]["S3Key"]).name
            if layer_zip not in artifacts:
                raise PackageError(f"{logical_id}: layer zip {layer_zip} is neither in {package_dir} nor an artifact")
            layers.append(artifacts[layer_zip])
        functions.append(
            Function(
                name=zip_name.removesuffix(".zip"),
                function_name=props["FunctionName"],
                handler=props["Handler"],
                runtime=props["Runtime"],
                architecture=(props.get("Architectures") or ["x86_64"])[0],
                # Lambda's defaults when the template leaves them out.
                memory_mb=int(props.get("MemorySize", 128)),
                timeout_s=int(props.get("Timeout", 3)),
                environment=_strings(logical_id, props.get("Environment", {}).get("Variables", {})),
                code=package_dir / zip_name,
                layers=tuple(layers),
            )
        )
    if not functions:
        raise PackageError(f"no AWS::Lambda::Function in {package_dir / TEMPLATE}")
    return functions
