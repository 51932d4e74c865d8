"""`make fuzz`: build the core with coverage instrumentation, seed the corpus, fuzz `kiray_imaging.render`.

    python fuzz/run.py [--seconds N] [--jobs N]

The instrumented build is not the shipping one: its own target directory and wheel (target/fuzz/), LTO off and
debug assertions plus overflow checks on (more bugs become visible panics), and `sancov` coverage in the Rust code
(the flags cargo-fuzz uses) and in the C code compiled by zig cc (libjpeg-turbo, libwebp). libFuzzer comes from
atheris's wheel, preloaded so that the extension's coverage hooks resolve to it.

Limits per input mirror the hostile-input budget loosely enough for an instrumented build on a busy machine:
10 s (the tests demand ~2 s of the real build) and 512 MB resident for the whole fuzzing process (Python included).
A crash, timeout or over-limit input is written to target/fuzz/findings/; keep it as a regression by copying it into
tests/fuzz/regressions/, which `make test` replays in the hostile-input sandbox.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "target" / "fuzz"
SITE = WORK / "site"
WHEELS = WORK / "wheels"
SEEDS = WORK / "seeds"
CORPUS = WORK / "corpus"
FINDINGS = WORK / "findings"
LOG = WORK / "fuzz.log"
REGRESSIONS = ROOT / "tests" / "fuzz" / "regressions"

SANCOV_RUSTFLAGS = " ".join(
    [
        "-Cpasses=sancov-module",
        "-Cllvm-args=-sanitizer-coverage-level=4",
        "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
        "-Cllvm-args=-sanitizer-coverage-pc-table",
        "-Cllvm-args=-sanitizer-coverage-trace-compares",
    ]
)
SANCOV_CFLAGS = "-fsanitize-coverage=inline-8bit-counters,pc-table,trace-cmp"
MAX_LEN = 32768
RSS_LIMIT_MB = 512
TIMEOUT_SECONDS = 10


def log(message: str) -> None:
    print(f"fuzz: {message}", flush=True)


def build() -> None:
    env = dict(os.environ)
    env.update(
        CARGO_TARGET_DIR=str(WORK),
        CARGO_PROFILE_RELEASE_LTO="false",
        CARGO_PROFILE_RELEASE_CODEGEN_UNITS="16",
        CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS="true",
        CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS="true",
        RUSTFLAGS=SANCOV_RUSTFLAGS,
        CFLAGS=SANCOV_CFLAGS,
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    )
    shutil.rmtree(WHEELS, ignore_errors=True)
    command = [
        sys.executable, "-m", "maturin", "build", "--release", "--zig", "--target", "x86_64-unknown-linux-gnu",
        "--compatibility", "manylinux2014", "--out", str(WHEELS),
    ]  # fmt: skip
    log("building the instrumented core (cargo caches it in target/fuzz)")
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    (wheel,) = WHEELS.glob("*.whl")
    shutil.rmtree(SITE, ignore_errors=True)
    with zipfile.ZipFile(wheel) as z:
        z.extractall(SITE)


def libfuzzer() -> Path:
    import atheris

    # The wheel ships libFuzzer linked with UBSan's runtime; preloaded, its symbols are global, which is what the
    # instrumented extension's __sanitizer_cov_* references need. The extension itself is not UBSan-instrumented.
    path = Path(atheris.__file__).resolve().parent.parent / "ubsan_with_fuzzer.so"
    if not path.is_file():
        raise SystemExit(f"fuzz: {path} is missing: is atheris installed from its manylinux wheel?")
    return path


def fuzz(seconds: int, jobs: int) -> int:
    for d in (CORPUS, FINDINGS, REGRESSIONS):
        d.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "fuzz.seeds", str(SEEDS)], cwd=ROOT, check=True)
    env = dict(os.environ, LD_PRELOAD=str(libfuzzer()), PYTHONPATH=os.pathsep.join([str(SITE), str(ROOT)]))
    command = [
        sys.executable, str(ROOT / "fuzz" / "fuzz_render.py"), str(CORPUS), str(SEEDS), str(REGRESSIONS),
        f"-max_total_time={seconds}", f"-max_len={MAX_LEN}", f"-rss_limit_mb={RSS_LIMIT_MB}",
        f"-timeout={TIMEOUT_SECONDS}", f"-artifact_prefix={FINDINGS}/", "-print_final_stats=1",
    ]  # fmt: skip
    if jobs > 1:
        # Fork mode keeps going after a finding, so a long run reports all it found rather than the first.
        command += [f"-fork={jobs}", "-ignore_crashes=1", "-ignore_timeouts=1", "-ignore_ooms=1"]
    log(f"fuzzing for {seconds} s (progress: tail -f {LOG}): {' '.join(command[1:])}")
    started = time.monotonic()
    with LOG.open("w") as progress:
        result = subprocess.run(command, cwd=ROOT, env=env, stderr=progress, check=False)
    output = LOG.read_text(errors="replace")
    sys.stderr.write(output[-4000:])
    stats = dict(re.findall(r"^stat::(\w+):\s+(\d+)", output, re.M))
    findings = sorted(p.name for p in FINDINGS.iterdir() if p.is_file())
    log(
        f"{time.monotonic() - started:.0f} s, {stats.get('number_of_executed_units', '?')} executions, "
        f"{stats.get('average_exec_per_sec', '?')}/s, corpus {sum(1 for _ in CORPUS.iterdir())} files, "
        f"peak RSS {stats.get('peak_rss_mb', '?')} MB, findings: {len(findings)} {findings}"
    )
    if findings:
        log(f"keep each finding as a regression: cp {FINDINGS}/<file> {REGRESSIONS}/")
    return 1 if findings or result.returncode != 0 else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=600, help="how long to fuzz (default: 600)")
    parser.add_argument("--jobs", type=int, default=1, help="libFuzzer fork-mode workers (default: 1)")
    parser.add_argument("--no-build", action="store_true", help="reuse the last instrumented build")
    args = parser.parse_args(argv)
    if not args.no_build:
        build()
    return fuzz(args.seconds, args.jobs)


if __name__ == "__main__":
    raise SystemExit(main())
