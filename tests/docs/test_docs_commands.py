"""Every shell command in the README and docs/ is exercised, so none goes stale.

The commands of fenced ``sh`` / ``console`` blocks are extracted. Those of docs/deploying.md, operations.md and
troubleshooting.md run for real, page by page in one bash each (so a block's shell variables carry to the next),
against moto: the deploy on the first page is the module's one deploy, its "Removing a stage" section runs last. The
AWS CLI is a pinned awscli installed in a folder of its own (its exact botocore pin conflicts with the project's),
and moto runs no Lambda code, so tests/docs/lambda_standin.py plays Lambda after an upload (see its docstring). The
README's `make demo` runs too. What other tests or CI run is in ``ALLOWED``, each with the test that runs it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from scripts.local_aws import aws_env, moto_server

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN_HERE = ("README.md", "docs/deploying.md", "docs/operations.md", "docs/troubleshooting.md")
REMOVAL = "Removing a stage"
STANDIN = ROOT / "tests" / "docs" / "lambda_standin.py"
AWSCLI_VERSION = "1.45.11"
AWSCLI_DIR = ROOT / "target" / f"awscli-{AWSCLI_VERSION}"
PROFILE = "kiray-dev"


@dataclass(frozen=True)
class Allowed:
    page: str
    prefix: str
    test: str
    evidence: str
    """A string the named test file must contain: it does run the command (or its script)."""


# Commands this module does not run, and what does. Keep it short: a command that can run against moto runs above.
ALLOWED = (
    # CI is `.ci/run`, which is `make test`.
    Allowed("README.md", "make test", ".ci/run", "make test"),
    # `make test` depends on `make setup`, which depends on `make layer`: every CI run builds through both.
    Allowed("docs/deploying.md", "make setup", "Makefile", "test: setup"),
    Allowed(
        "docs/supply-chain.md", "make layer", "Makefile", "setup: $(VENV)/.installed node_modules/.installed layer"
    ),
    # `make rehearse` is `make setup`, `make rehearse-tools`, then `python -m scripts.rehearse`, which tests/rehearse/
    # runs as it is, then with layers and function zips broken as the page describes.
    Allowed("docs/deploying.md", "make rehearse", "tests/rehearse/rehearse_helpers.py", '"-m", "scripts.rehearse"'),
    Allowed("docs/deploying.md", "REHEARSE_LAYER=", "tests/rehearse/test_rehearsal.py", '"--layer"'),
    # `make dev` is `make setup` then scripts/dev.py, which this test starts and stops, and uploads with.
    Allowed("docs/local-dev.md", "make dev", "tests/serverless/test_dev.py", "scripts/dev.py"),
    Allowed("docs/local-dev.md", ".venv/bin/python scripts/dev.py upload", "tests/serverless/test_dev.py", '"upload"'),
    # Run against moto (the S3 ones) and on the corpus, their output held to the page.
    Allowed("docs/backfills.md", "kiray-imaging backfill", "tests/core/test_docs_backfills.py", "def run("),
    Allowed("docs/backfills.md", "kiray-imaging batch", "tests/core/test_docs_backfills.py", "def run("),
    # An existing bucket: the command against moto (with notifications and rules of its own), the deploy rehearsed.
    Allowed("docs/deploying.md", "kiray-imaging bucket-setup", "tests/core/test_bucket_setup.py", '"bucket-setup"'),
    Allowed(
        "docs/deploying.md",
        'npx sls deploy --stage "$STAGE" --region "$AWS_REGION" --param="createBucket=false"',
        "scripts/deploy_local.py",
        "--param=createBucket=false",
    ),
    Allowed("docs/local-dev.md", ".venv/bin/python scripts/dev.py delete", "tests/serverless/test_dev.py", '"delete"'),
    # The create-job script the CLI prints: held equal to the CLI's output there, run by sh in test_backfill.py.
    Allowed("docs/backfills.md", "#!/bin/sh", "tests/core/test_backfill.py", '["sh", "-c", script]'),
)


@dataclass(frozen=True)
class Command:
    page: str
    section: str
    block: str
    """The block's first line, which names a whole sample script (``#!/bin/sh``)."""
    text: str


def extract(page: Path) -> list[Command]:
    """The commands of a page's ``sh`` and ``console`` blocks: continuation lines joined, a heredoc kept with its
    command, comments and ``console`` output left out."""
    name = page.relative_to(ROOT).as_posix()
    commands: list[Command] = []
    section, language, block, pending = "", None, "", []
    heredoc: str | None = None
    for line in page.read_text().splitlines():
        if language is None:
            if line.startswith("#"):
                section = line.lstrip("#").strip()
            elif line.startswith("```"):
                language, block = line[3:].strip(), ""
            continue
        if heredoc is None and line.startswith("```"):
            language = None
            continue
        if language not in ("sh", "console"):
            continue
        block = block or line
        if heredoc is not None:
            pending.append(line)
            if line == heredoc:
                heredoc = None
                commands.append(Command(name, section, block, "\n".join(pending)))
                pending = []
            continue
        if not pending:
            if language == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            if not line.strip() or line.lstrip().startswith("#"):
                continue
        pending.append(line)
        marker = re.search(r"<<-?\s*'?(\w+)'?", line)
        if marker:
            heredoc = marker.group(1)
        elif not line.endswith("\\"):
            commands.append(Command(name, section, block, "\n".join(pending)))
            pending = []
    return commands


def all_commands() -> list[Command]:
    return [c for page in PAGES for c in extract(page)]


def allowed(command: Command) -> Allowed | None:
    for entry in ALLOWED:
        if entry.page == command.page and (command.text.startswith(entry.prefix) or command.block == entry.prefix):
            return entry
    return None


def run_here(command: Command) -> bool:
    return command.page in RUN_HERE and allowed(command) is None


def test_every_command_is_run_here_or_by_a_named_test() -> None:
    commands = all_commands()
    ran_here = {c.text for c in commands if run_here(c)}
    # An identical command on another page (verify-layer in supply-chain.md) is covered by its run here.
    missing = [c for c in commands if not run_here(c) and allowed(c) is None and c.text not in ran_here]
    assert not missing, "commands in the docs that nothing runs:\n" + "\n".join(f"{c.page}: {c.text}" for c in missing)
    stale = [e for e in ALLOWED if not any(allowed(c) == e for c in commands)]
    assert not stale, f"ALLOWED entries for commands no longer in the docs: {stale}"
    for entry in ALLOWED:
        assert entry.evidence in (ROOT / entry.test).read_text(), f"{entry.test} does not run {entry.prefix}"
    # The pages this module runs are the ones the docs say it runs.
    for page in RUN_HERE:
        assert "tests/docs/test_docs_commands.py" in (ROOT / page).read_text(), page


def test_extract_joins_continuations_and_heredocs_and_skips_comments(tmp_path: Path) -> None:
    page = ROOT / "docs" / "operations.md"
    texts = [c.text for c in extract(page)]
    assert any(t.startswith("python3 - out/ops/message.json <<'EOF'\n") and t.endswith("\nEOF") for t in texts)
    readme = [c.text for c in extract(ROOT / "README.md")]
    assert [t.split("#")[0].strip() for t in readme] == ["make demo", "make test"]


# --- running the pages -----------------------------------------------------------------------------------------


def awscli() -> Path:
    """The pinned AWS CLI in a folder of its own, installed once per checkout (under target/, which git ignores)."""
    if not (AWSCLI_DIR / ".complete").exists():
        staging = AWSCLI_DIR.with_name(AWSCLI_DIR.name + f".{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target",
                        str(staging), f"awscli=={AWSCLI_VERSION}"], check=True, timeout=600)  # fmt: skip
        (staging / ".complete").touch()
        try:
            staging.rename(AWSCLI_DIR)
        except OSError:  # another run installed it meanwhile
            shutil.rmtree(staging, ignore_errors=True)
    return AWSCLI_DIR


@dataclass
class Shell:
    env: dict[str, str]
    outputs: dict[str, str]
    """The output (stdout and stderr) of each command of docs/deploying.md up to its removal section."""
    seconds: dict[str, float]
    """How long each took: the time budget is in the commands that deploy."""


def script(commands: list[Command]) -> str:
    """The commands as one bash script, each preceded by a marker line. The marker starts with a newline of its own
    (`run_commands` takes it off again): a command's output may not end with one (`aws s3 cp … -`)."""
    lines = ["set -euo pipefail"]
    for i, command in enumerate(commands):
        lines += [f'printf "\\n@@@ {i} %s\\n" "$(date +%s.%N)"', command.text]
        if re.match(r'aws s3 cp \S+ "?s3://\S*/uploads/', command.text):
            lines.append(f'{shlex.quote(sys.executable)} {shlex.quote(str(STANDIN))} "kiray-imaging-$STAGE"')
    return "\n".join(lines) + '\nprintf "\\n@@@ end %s\\n" "$(date +%s.%N)"\n'


def run_commands(shell: Shell, commands: list[Command], timeout: float = 600) -> dict[str, str]:
    result = subprocess.run(["bash", "-c", script(commands)], cwd=ROOT, env=shell.env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=timeout, check=False)  # fmt: skip
    parts = re.split(r"\n@@@ (\d+|end) ([\d.]+)\n", result.stdout)
    marks = list(zip(parts[1::3], [float(s) for s in parts[2::3]], parts[3::3]))
    outputs = {commands[int(i)].text: out for i, _, out in marks if i != "end"}
    for (i, start, _), (_, end, _) in zip(marks, marks[1:]):
        shell.seconds[commands[int(i)].text] = end - start
    last = marks[-1][0] if marks else "none"
    failed = "" if last == "end" else commands[int(last)].text if last != "none" else "(before the first command)"
    assert last == "end", f"failed: {failed}\n{result.stdout[-6000:]}"
    assert result.returncode == 0, result.stdout[-6000:]
    return outputs


def page_commands(page: str) -> list[Command]:
    return [c for c in extract(ROOT / page) if run_here(c)]


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shell]:
    """moto, a profile named as the docs name it, the pinned AWS CLI first on PATH, and docs/deploying.md run up to
    its removal section (the module's one deploy)."""
    home = tmp_path_factory.mktemp("docs-shell")
    bin_dir = home / "bin"
    bin_dir.mkdir()
    # awscli v1 pins some services' endpoints (SQS) over AWS_ENDPOINT_URL; an explicit --endpoint-url wins.
    (bin_dir / "aws").write_text(
        f"#!/bin/sh\nPYTHONPATH={shlex.quote(str(awscli()))} exec {shlex.quote(sys.executable)} -m awscli "
        '--endpoint-url "$AWS_ENDPOINT_URL" "$@"\n'
    )
    (bin_dir / "aws").chmod(0o755)
    with moto_server() as endpoint:
        request = urllib.request.Request(f"{endpoint}/moto-api/config", method="POST",
                                         data=json.dumps({"lambda": {"use_docker": False}}).encode())  # fmt: skip
        urllib.request.urlopen(request).close()
        env = {
            k: v for k, v in aws_env(endpoint).items() if not k.startswith(("AWS_ACCESS", "AWS_SECRET", "AWS_SESSION"))
        }
        (home / "config").write_text(f"[profile {PROFILE}]\nregion = eu-west-1\n")
        (home / "credentials").write_text(
            f"[{PROFILE}]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
        )
        env.pop("VIRTUAL_ENV", None)  # the plugin finds .venv by itself (troubleshooting.md says so)
        env |= {
            "AWS_CONFIG_FILE": str(home / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
            "PATH": f"{bin_dir}:{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
            "KIRAY_DOCS_STANDIN_STATE": str(home / "standin.json"),
        }
        shutil.rmtree(ROOT / "out" / "ops", ignore_errors=True)
        result = Shell(env, {}, {})
        result.outputs = run_commands(result, [c for c in page_commands("docs/deploying.md") if c.section != REMOVAL])
        yield result
        slowest = sorted(result.seconds.items(), key=lambda item: -item[1])[:8]
        print("\nslowest doc commands:\n" + "\n".join(f"{s:6.1f} s  {c.splitlines()[0][:100]}" for c, s in slowest))
    shutil.rmtree(ROOT / "out" / "ops", ignore_errors=True)
    shutil.rmtree(ROOT / "out" / "smoke", ignore_errors=True)


def output(outputs: dict[str, str], prefix: str) -> str:
    (match,) = [text for text in outputs if text.startswith(prefix)]
    return outputs[match]


def log_lines(text: str) -> list[dict[str, Any]]:
    """The handlers' JSON log lines in a command's output (however the command spaces them)."""
    return [json.loads(line) for line in text.splitlines() if re.match(r'\{"level": ?"', line)]


def moto_client(shell: Shell, service: Any) -> Any:
    return boto3.client(service, endpoint_url=shell.env["AWS_ENDPOINT_URL"], region_name="eu-west-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip


def test_deploying_page(shell: Shell) -> None:
    assert '"Account": "123456789012"' in output(shell.outputs, "aws sts get-caller-identity")
    assert "kiray-imaging-dev-generate-medium" in output(shell.outputs, "npx sls info")
    built = (ROOT / "layer" / "dist" / "kiray-imaging-layer.sha256").read_text().split()[0]
    assert output(shell.outputs, '[ "$DEPLOYED" = "$BUILT" ]') == f"layer: deployed = built, sha256 {built}\n"
    medium = 'aws lambda get-function-configuration --function-name "kiray-imaging-$STAGE-generate-medium"'
    assert output(shell.outputs, medium).split() == ["python3.12", "x86_64", "1024", "jpeg,webp"]
    rules = output(shell.outputs, "aws events list-rules")
    assert (
        rules.count('"bucket": {"name": ["acme-kiray-photos-dev"]}, "object": {"key": [{"prefix": "uploads/"}]}') == 2
    )
    assert output(shell.outputs, "aws events list-targets-by-rule").split() == [
        "arn:aws:lambda:eu-west-1:123456789012:function:kiray-imaging-dev-generate-thumbnail",
        "arn:aws:sqs:eu-west-1:123456789012:kiray-imaging-dev-failures",
        "20",
    ]
    assert "acme-kiray-photos-dev/renditions/*" in output(shell.outputs, "aws iam get-role-policy")
    listing = output(shell.outputs, 'aws s3 ls "s3://$BUCKET/renditions/" --recursive')
    keys = sorted(line.split()[-1] for line in listing.splitlines())
    token = upload_token(shell)
    files = [f"renditions/medium/smoke/seeding.jpg/{token}.jpg", f"renditions/medium/smoke/seeding.jpg/{token}.webp"]
    assert keys == sorted([*files, "renditions/medium/smoke/seeding.jpg/current.json",
                           f"renditions/thumbnail/smoke/seeding.jpg/{token}.jpg",
                           f"renditions/thumbnail/smoke/seeding.jpg/{token}@2x.jpg",
                           "renditions/thumbnail/smoke/seeding.jpg/current.json"])  # fmt: skip
    state = json.loads(
        output(shell.outputs, 'aws s3 cp "s3://$BUCKET/renditions/medium/smoke/seeding.jpg/current.json" -')
    )
    assert state["state"] == "current"
    assert sorted(f["key"] for f in state["files"]) == files
    logs = output(shell.outputs, "npx sls logs -f generate-thumbnail")
    assert {"cold start", "rendered"} <= {line.get("message") for line in log_lines(logs)}
    assert f"renditions/thumbnail/smoke/seeding.jpg/{token}.jpg" in {line.get("output_key") for line in log_lines(logs)}


def upload_token(shell: Shell) -> str:
    """The renditions' version token: the first 16 hex digits of the smoke upload's ETag."""
    head = moto_client(shell, "s3").head_object(Bucket="acme-kiray-photos-dev", Key="uploads/smoke/seeding.jpg")
    return str(head["ETag"].strip('"')[:16])


def seed_failure(shell: Shell) -> dict[str, Any]:
    """What Lambda's on-failure destination sends after the retries: the smoke upload's event, wrapped."""
    s3, sqs = moto_client(shell, "s3"), moto_client(shell, "sqs")
    head = s3.head_object(Bucket="acme-kiray-photos-dev", Key="uploads/smoke/seeding.jpg")
    event: dict[str, Any] = json.loads((ROOT / "tests" / "events" / "eventbridge_object_created.json").read_text())
    event["detail"]["bucket"]["name"] = "acme-kiray-photos-dev"
    event["detail"]["object"].update(key="uploads/smoke/seeding.jpg", size=head["ContentLength"],
                                     etag=head["ETag"].strip('"'))  # fmt: skip
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:kiray-imaging-dev-generate-thumbnail"
    record = {
        "version": "1.0",
        "requestContext": {
            "functionArn": f"{arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": event,
        "responsePayload": {"errorType": "ClientError", "errorMessage": "SlowDown"},
    }
    url = sqs.get_queue_url(QueueName="kiray-imaging-dev-failures")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))
    return event


def query_fields(query: str) -> set[str]:
    """The log fields a Logs Insights query reads: its identifiers, less the language's words, functions, aliases and
    Lambda's @-fields."""
    words = {"filter", "stats", "fields", "sort", "by", "as", "asc", "desc", "and", "or", "not", "like", "in"}
    functions = set(re.findall(r"(\w+)\(", query))
    aliases = set(re.findall(r"\bas (\w+)", query))
    without_strings = re.sub(r'"[^"]*"', "", query)
    identifiers = set(re.findall(r"(?<![@\w.])([a-z_][\w.]*)", without_strings))
    return identifiers - words - functions - aliases


def test_operations_page(shell: Shell) -> None:
    event = seed_failure(shell)
    outputs = run_commands(shell, page_commands("docs/operations.md"))
    assert f"renditions/medium/smoke/seeding.jpg/{upload_token(shell)}.webp" in output(
        outputs, "aws logs filter-log-events"
    )
    metrics = output(outputs, "aws cloudwatch list-metrics --namespace KirayImaging --query")
    assert "RenditionsMade\tmedium,kiray-imaging-dev" in metrics
    assert "DecodeMs\tthumbnail,kiray-imaging-dev" in metrics
    assert '"Sum": 2.0' in output(outputs, "aws cloudwatch get-metric-statistics")  # the medium's JPEG and WebP
    replay = output(outputs, "python3 - out/ops/message.json")
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:kiray-imaging-dev-generate-thumbnail"
    assert replay.split() == [f"{arn}:$LATEST", "uploads/smoke/seeding.jpg"]
    assert json.loads((ROOT / "out" / "ops" / "event.json").read_text()) == event
    assert '"StatusCode": 202' in output(outputs, "aws lambda invoke")
    sqs = moto_client(shell, "sqs")
    url = sqs.get_queue_url(QueueName="kiray-imaging-dev-failures")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]) == (
        "0",
        "0",
    )
    # The Logs Insights queries read fields the handlers write: in this run's log lines, or named by the pipeline's
    # log calls (a permanent failure's `operation` did not happen here).
    logs = moto_client(shell, "logs")
    groups = [f"/aws/lambda/kiray-imaging-dev-generate-{name}" for name in ("thumbnail", "medium")]
    events = [e["message"] for group in groups for e in logs.filter_log_events(logGroupName=group)["events"]]
    # Log lines, not EMF documents (whose keys are metric names).
    lines = [line for line in map(json.loads, (m for m in events if m.startswith("{"))) if "_aws" not in line]
    known = {k for line in lines for k in line} | {f"ms.{k}" for line in lines for k in line.get("ms", {})}
    for module in ("lambda_pipeline.py", "process.py", "report.py"):  # the modules that log
        known |= set(re.findall(r"(\w+)=", (ROOT / "python" / "kiray_imaging" / module).read_text()))
    page = (ROOT / "docs" / "operations.md").read_text()
    queries = re.findall(r"^```text\n(.*?)^```$", page, flags=re.M | re.S)
    assert len(queries) == 5
    for query in queries:
        assert query_fields(query) <= known, query
    assert {"rendered", "cold start"} <= {line["message"] for line in lines}


def test_troubleshooting_page(shell: Shell) -> None:
    # The page invokes locally the event docs/operations.md took from the failure queue: the pages run in order.
    assert (ROOT / "out" / "ops" / "event.json").exists(), "test_operations_page runs first"
    outputs = run_commands(shell, page_commands("docs/troubleshooting.md"))
    assert "verify-layer: passed (1 shared object)" in output(outputs, "kiray-imaging verify-layer")
    assert output(outputs, "aws lambda get-function-configuration").split() == ["python3.12", "x86_64"]
    assert "python/kiray_imaging/_core.abi3.so" in output(outputs, "python3 -m zipfile")
    assert "Max Memory Used: " in output(
        outputs, 'aws logs filter-log-events --log-group-name "/aws/lambda/kiray-imaging-$STAGE-generate-medium"'
    )
    local = output(outputs, "npx sls invoke local")
    rendered = [line for line in log_lines(local) if line.get("message") == "rendered"]
    token = upload_token(shell)
    assert [line["output_key"] for line in rendered] == [
        f"renditions/thumbnail/smoke/seeding.jpg/{token}.jpg",
        f"renditions/thumbnail/smoke/seeding.jpg/{token}@2x.jpg",
    ]
    assert "NASM version" in output(outputs, "nasm -v")
    assert output(outputs, "aws events list-targets-by-rule").strip().endswith("kiray-imaging-dev-generate-medium")


def test_removing_a_stage(shell: Shell) -> None:
    deploying = extract(ROOT / "docs" / "deploying.md")
    # The shell variables of the page's first runnable block, then the removal section, as a reader would.
    first = next(c.block for c in deploying if run_here(c))
    preamble = [c for c in deploying if c.block == first and run_here(c)]
    outputs = run_commands(shell, preamble + [c for c in deploying if c.section == REMOVAL])
    assert output(outputs, "aws cloudformation list-stacks").strip() == "DELETE_COMPLETE"
    # The stack let go of the photos bucket (DeletionPolicy Retain): it was still there for the page to delete.
    assert "remove_bucket:" in output(outputs, "aws s3 rb")


def test_readme_commands() -> None:
    """`make demo` as the README shows it: its table of renditions."""
    (demo,) = [c for c in extract(ROOT / "README.md") if allowed(c) is None]
    result = subprocess.run(
        ["bash", "-c", demo.text], cwd=ROOT, capture_output=True, text=True, timeout=900, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(r"^thumbnail +400x300 ", result.stdout, flags=re.M), result.stdout[-3000:]
    assert re.search(r"^medium +1280x\d+ ", result.stdout, flags=re.M), result.stdout[-3000:]
