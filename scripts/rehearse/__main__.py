"""Command line of the rehearsal (see __init__.py). Outside: check the machine, package. Inside a fresh network
namespace (the same command with --inside): moto, the sandboxes, the invocations, the checks."""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

# Run as `python -m scripts.rehearse` from the repository root, or as a file: either way the root is importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.local_aws import REGION, BackendQueue, aws_env, moto_server
from scripts.rehearse import cases as rehearsal_cases
from scripts.rehearse import sandbox, tools
from scripts.rehearse.cases import Case
from scripts.rehearse.package import Function, PackageError, read_package, sls_package
from scripts.rehearse.rie import Emulator, Invocation

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "target" / "rehearse"
CORPUS_PHOTO = ROOT.parent / "shared" / "corpus" / "Dragonfly_by_Bolly.jpg"  # 13.4 MP, as `make demo` uses
SHIPPED_PHOTO = ROOT / "demo" / "seeding_by_Clemens_Engelhardt_1600.jpg"  # when ../shared is absent
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "ASIAREHEARSAL",
    "AWS_SECRET_ACCESS_KEY": "rehearsal",
    "AWS_SESSION_TOKEN": "rehearsal",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scripts.rehearse", description=__doc__.splitlines()[0])
    parser.add_argument("--layer", type=Path, help="rehearse this layer zip (e.g. one downloaded from an account) "
                        "instead of the one `sls package` names")  # fmt: skip
    parser.add_argument("--package-dir", type=Path, help="what `sls package --package DIR` wrote; default: package now")
    parser.add_argument("--function", action="append", help="only this function (serverless.yml name); repeatable")
    parser.add_argument("--event", type=Path, help="invoke each function once with this event and print its "
                        "response, instead of the production cases and their checks")  # fmt: skip
    parser.add_argument("--json-report", type=Path, help="write the REPORT figures and responses here as JSON")
    parser.add_argument("--python", help="the CPython 3.12 to mount at /var/lang (default: pyenv's, or PATH's)")
    parser.add_argument("--verbose", action="store_true", help="print the emulator's own log lines too")
    parser.add_argument("--install-tools", action="store_true", help="build the emulator and install the runtime's "
                        "packages (make rehearse-tools), then exit")  # fmt: skip
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    python = args.python or os.environ.get("REHEARSE_PYTHON")
    if args.install_tools:
        tools.install(tools.find_python(python))
        return 0
    tools.check_host()
    interpreter = tools.find_python(python)
    tools.rie()
    tools.runtime_packages(interpreter)
    if args.inside:
        return inside(args, interpreter)
    if args.layer is not None and not args.layer.is_file():
        raise SystemExit(f"rehearse: no layer zip at {args.layer}")
    package_dir = args.package_dir
    if package_dir is None:
        package_dir = WORK / "package"
        shutil.rmtree(package_dir, ignore_errors=True)
        sls_package(package_dir)
    # A namespace of its own: a loopback interface and nothing else, so nothing the functions do reaches a network.
    python_path = interpreter.prefix / "bin" / f"python{tools.PYTHON_VERSION}"
    command = ["unshare", "--net", "--", sys.executable, "-m", "scripts.rehearse", "--inside",
               "--package-dir", str(package_dir.resolve()), "--python", str(python_path)]  # fmt: skip
    for name, value in (("--layer", args.layer), ("--event", args.event), ("--json-report", args.json_report)):
        if value is not None:
            command += [name, str(Path(value).resolve())]
    for function in args.function or []:
        command += ["--function", function]
    if args.verbose:
        command.append("--verbose")
    return subprocess.run(command, cwd=ROOT, check=False).returncode


def loopback_only() -> None:
    """Brings up this namespace's loopback interface; refuses to go on if there is any other."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(s, siocgifflags, request))[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sH14s", b"lo", flags | iff_up, b""))
    interfaces = [name for _, name in socket.if_nameindex()]
    if interfaces != ["lo"]:
        raise SystemExit(f"rehearse: expected a namespace with loopback only, found {interfaces}")


def print_invocation(fn: Function, invocation: Invocation, verbose: bool) -> None:
    print(f"{fn.name}: {invocation.event_name}", flush=True)
    shown = invocation.lines if verbose else invocation.runtime_output
    if invocation.error or verbose:
        for line in shown:
            print(f"  | {line}")
    print(f"  {invocation.report.line()}", flush=True)


def rehearse_function(fn: Function, layers: tuple[Path, ...], interpreter: tools.Interpreter, endpoint: str,
                      cases: list[Case], verbose: bool) -> tuple[list[Invocation], list[str]]:  # fmt: skip
    """Every case through one execution environment (the first is its cold start); stops at the first error the
    runtime reports. Returns the invocations and what failed."""
    # One folder per rehearsal, so that two at once (make rehearse beside make test) do not share one.
    work = WORK / "run" / str(os.getpid()) / fn.name
    work.mkdir(parents=True)
    task, opt = sandbox.lay_out(fn, layers, work)
    runtime, sdk = tools.runtime_packages(interpreter)
    # What only the rehearsal adds: where S3 and EventBridge are (moto), and the timeout (the emulator's setting;
    # Lambda knows it itself).
    extra = {"AWS_ENDPOINT_URL_S3": endpoint, "AWS_ENDPOINT_URL_EVENTS": endpoint,
             "AWS_LAMBDA_FUNCTION_TIMEOUT": str(fn.timeout_s)}  # fmt: skip
    env = sandbox.lambda_environment(fn, region=REGION, credentials=CREDENTIALS, extra=extra)
    invocations, failures = [], []
    with sandbox.memory_cgroup(f"kiray-rehearse-{os.getpid()}-{fn.name}", fn.memory_mb) as cgroup:
        bootstrap = sandbox.write_bootstrap(work / "bootstrap", cgroup.procs,
                                            sandbox.bwrap_command(task, opt, interpreter, runtime, sdk))  # fmt: skip
        with Emulator(tools.rie(), bootstrap, fn.handler, env, cgroup, fn.memory_mb, fn.timeout_s,
                      work / "emulator.log") as rie:  # fmt: skip
            for case in cases:
                invocation = rie.invoke(case.name, case.event)
                invocations.append(invocation)
                print_invocation(fn, invocation, verbose)
                if invocation.error:
                    failures.append(f"{fn.name}: {case.name}: the runtime reported {invocation.error}")
                    break
                try:
                    case.check(fn, invocation.result)
                except rehearsal_cases.RehearsalError as e:
                    failures.append(f"{fn.name}: {case.name}: {e}")
    return invocations, failures


def inside(args: argparse.Namespace, interpreter: tools.Interpreter) -> int:
    loopback_only()
    functions = read_package(args.package_dir)
    if args.function:
        functions = [fn for fn in functions if fn.name in args.function]
        if not functions:
            raise SystemExit(f"rehearse: no function named {args.function} in the package")
    for fn in functions:
        if fn.runtime != tools.RUNTIME or fn.architecture != "x86_64":
            raise PackageError(f"{fn.name}: {fn.runtime} {fn.architecture}; the rehearsal runs {tools.RUNTIME} x86_64")
    photo = (CORPUS_PHOTO if CORPUS_PHOTO.is_file() else SHIPPED_PHOTO).read_bytes()
    report: dict[str, Any] = {"layer": str(args.layer) if args.layer else None, "functions": {}}
    failures: list[str] = []
    with moto_server() as endpoint:
        import boto3  # after moto is up: only the rehearsal's own checks use it

        env = aws_env(endpoint, base={})
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])  # fmt: skip
        for bucket in sorted({fn.environment[k] for fn in functions for k in ("SOURCE_BUCKET", "DEST_BUCKET")}):
            s3.create_bucket(Bucket=bucket)
        buses = {fn.environment.get("EVENT_BUS_NAME", "default") for fn in functions}
        backend = BackendQueue(
            endpoint, "rehearsal-backend", buses, (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
        )
        if args.event is not None:
            event = json.loads(args.event.read_text())
            cases = [Case(args.event.name, event, check=lambda fn, response: None)]
        else:
            cases = rehearsal_cases.seed(s3, functions[0].environment["SOURCE_BUCKET"], photo)
        for fn in functions:
            layers = (args.layer,) if args.layer else fn.layers
            invocations, failed = rehearse_function(fn, layers, interpreter, endpoint, cases, args.verbose)
            failures += failed
            report["functions"][fn.name] = [
                {"event": i.event_name, "status_code": i.status_code, "response": i.result, "error": i.error,
                 "report": asdict(i.report) | {"billed_ms": i.report.billed_ms, "line": i.report.line()}}
                for i in invocations
            ]  # fmt: skip
        if args.event is None and not failures:
            try:
                lines = rehearsal_cases.check_bucket(s3, functions, cases)
            except rehearsal_cases.RehearsalError as e:
                failures.append(str(e))
            else:
                print(f"renditions in the bucket ({len(lines)}):")
                print("\n".join(lines))
            received = backend.read()
            report["events"] = received
            try:
                told = rehearsal_cases.check_events(received, functions, cases)
            except rehearsal_cases.RehearsalError as e:
                failures.append(str(e))
            else:
                print(f"events for the backend ({len(told)}):")
                print("\n".join(told))
    if args.event is not None:
        for name, invocations in report["functions"].items():
            for invocation in invocations:
                print(f"{name} response: {json.dumps(invocation['response'])}")
    summary(report)
    if args.json_report is not None:
        args.json_report.parent.mkdir(parents=True, exist_ok=True)
        args.json_report.write_text(json.dumps(report, indent=2) + "\n")
    if failures:
        logs = WORK / "run" / str(os.getpid())
        print(
            "rehearse: FAILED\n" + "\n".join(f"  {f}" for f in failures) + f"\n  (emulator logs: {logs})",
            file=sys.stderr,
        )
        return 1
    shutil.rmtree(WORK / "run" / str(os.getpid()), ignore_errors=True)
    print(f"rehearse: passed ({sum(len(v) for v in report['functions'].values())} invocations)")
    return 0


def summary(report: dict[str, Any]) -> None:
    """Cold start and memory per function, as Lambda reports them."""
    print("function             Init Duration  first Duration  Max Memory Used  Memory Size")
    for name, invocations in report["functions"].items():
        if not invocations:
            continue
        first, peak = invocations[0]["report"], max(i["report"]["max_memory_used_mb"] for i in invocations)
        init = f"{first['init_ms']:.2f} ms" if first["init_ms"] is not None else "-"
        print(f"{name:20} {init:>13}  {first['duration_ms']:>11.2f} ms  {peak:>12} MB  {first['memory_size_mb']:>8} MB")


if __name__ == "__main__":
    raise SystemExit(main())
