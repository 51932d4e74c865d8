"""The rehearsal's execution environment is python3.12's, seen from a handler inside it, and it reports a timeout and
an out-of-memory kill as Lambda names them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.rehearse.rehearse_helpers import THUMBNAIL, Run, craft_package, rehearse
else:
    from rehearse_helpers import THUMBNAIL, Run, craft_package, rehearse

# What the handler reports about the place it runs in.
PROBE = b"""
import errno, importlib.metadata, os, socket, sys

def writable(path):
    try:
        with open(os.path.join(path, ".probe"), "w"):
            return True
    except OSError:
        return False

def connect(address):
    try:
        socket.create_connection(address, timeout=2).close()
        return "connected"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e))

def handler(event, context):
    import boto3, jmespath
    return {
        "sys.path": sys.path,
        "version": "%d.%d" % sys.version_info[:2],
        "uid": os.getuid(), "gid": os.getgid(),
        "boto3": [boto3.__version__, boto3.__file__],
        "jmespath": [importlib.metadata.version("jmespath"), jmespath.__file__],
        "site-packages": sorted(os.listdir("/var/lang/lib/python3.12/site-packages")),
        "writable": {p: writable(p) for p in ("/tmp", "/var/task", "/opt", "/var/runtime", "/", "/etc")},
        "network": {"internet": connect(("192.0.2.1", 443)), "interfaces": [n for _, n in socket.if_nameindex()]},
        "env": dict(os.environ),
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
"""

SLEEP = b"import time\ndef handler(event, context):\n    time.sleep(event['seconds'])\n"
EXIT = b"import os\nos._exit(3)\n"
ALLOCATE = b"""
def handler(event, context):
    blocks = [bytearray(b"x" * (1 << 20)) for _ in range(event["mb"])]
    return len(blocks)
"""


def _probe_run(package: Path, tmp_path: Path, code: bytes, event: dict[str, Any], **settings: int) -> Run:
    crafted = craft_package(package, tmp_path / "package", code={"py_handlers/probe.py": code},
                            handler="py_handlers/probe.handler", **settings)  # fmt: skip
    (tmp_path / "event.json").write_text(json.dumps(event))
    return rehearse("--package-dir", str(crafted), "--event", str(tmp_path / "event.json"), tmp=tmp_path)


def test_the_handler_runs_where_python3_12_runs_it(package: Path, tmp_path: Path) -> None:
    run = _probe_run(package, tmp_path, PROBE, {})
    assert run.returncode == 0, run.output[-4000:]
    (invocation,) = run.report["functions"][THUMBNAIL]
    seen = invocation["response"]
    assert seen["sys.path"] == [
        "/var/task",
        "/opt/python/lib/python3.12/site-packages",
        "/opt/python",
        "/var/lang/lib/python3.12/site-packages",
        "/var/runtime",
        "/var/lang/lib/python312.zip",
        "/var/lang/lib/python3.12",
        "/var/lang/lib/python3.12/lib-dynload",
    ]
    assert seen["version"] == "3.12"
    assert (seen["uid"], seen["gid"]) == (993, 990)
    # The SDK the runtime bundles, and nothing else in its site-packages (the host interpreter's pip is hidden)...
    assert seen["boto3"] == ["1.38.36", "/var/lang/lib/python3.12/site-packages/boto3/__init__.py"]
    assert not any(name.startswith("pip") for name in seen["site-packages"])
    # ...behind the layer, whose own jmespath (layer/requirements.txt) is the one imported.
    assert seen["jmespath"] == ["1.1.0", "/opt/python/jmespath/__init__.py"]
    assert seen["writable"] == {"/tmp": True, "/var/task": False, "/opt": False, "/var/runtime": False, "/": False,
                                "/etc": False}  # fmt: skip
    assert seen["network"] == {"internet": "ENETUNREACH", "interfaces": ["lo"]}
    env = seen["env"]
    assert env["_HANDLER"] == "py_handlers/probe.handler"
    assert env["LAMBDA_TASK_ROOT"] == "/var/task"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.12"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "kiray-imaging-dev-generate-thumbnail"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "1024"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_RUNTIME_API"].startswith("127.0.0.1:")
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} <= set(env)
    # The template's environment (serverless.yml), as deployed.
    assert env["OUTPUT_FORMAT"] == "jpeg"
    assert env["GLIBC_TUNABLES"].startswith("glibc.malloc.mmap_threshold=")
    assert env["SOURCE_BUCKET"] == env["DEST_BUCKET"] == "kiray-imaging-dev-photos"
    # Nothing of the machine's own environment reaches it.
    assert not {"HOME", "VIRTUAL_ENV", "PYTEST_CURRENT_TEST"} & set(env)
    assert 0 < seen["remaining_ms"] <= 30_000


def test_a_handler_over_its_timeout_is_reported_as_lambda_reports_it(package: Path, tmp_path: Path) -> None:
    run = _probe_run(package, tmp_path, SLEEP, {"seconds": 5}, timeout_s=1)
    assert run.returncode == 1, run.output[-4000:]
    assert "the runtime reported Sandbox.Timedout: Task timed out after 1.00 seconds" in run.stderr
    (invocation,) = run.report["functions"][THUMBNAIL]
    assert "\tStatus: timeout\t" in invocation["report"]["line"]
    assert 1000 <= invocation["report"]["duration_ms"] < 1100


def test_memory_over_the_memory_size_is_an_out_of_memory_error(package: Path, tmp_path: Path) -> None:
    run = _probe_run(package, tmp_path, ALLOCATE, {"mb": 300}, memory_mb=128)
    assert run.returncode == 1, run.output[-4000:]
    assert "the runtime reported Runtime.OutOfMemory:" in run.stderr
    (invocation,) = run.report["functions"][THUMBNAIL]
    assert invocation["report"]["line"].endswith("\tStatus: error\tError Type: Runtime.OutOfMemory")
    assert invocation["report"]["memory_size_mb"] == 128
    assert 120 <= invocation["report"]["max_memory_used_mb"] <= 128
    # Under the limit, the same handler is fine: the cap is the memory size, not something lower.
    fine = _probe_run(package, tmp_path / "fine", ALLOCATE, {"mb": 40}, memory_mb=128)
    assert fine.returncode == 0, fine.output[-4000:]


def test_a_runtime_that_dies_before_it_can_report_is_an_exit_error(package: Path, tmp_path: Path) -> None:
    """A native crash or an exit at import leaves the runtime no chance to post an init error: Lambda and the
    emulator name it Runtime.ExitError, with the exit status."""
    run = _probe_run(package, tmp_path, EXIT, {})
    assert run.returncode == 1, run.output[-4000:]
    assert "the runtime reported Runtime.ExitError: Runtime exited with error: exit status 3" in run.stderr
