"""The fences of `sandbox.py` themselves: a crash, an escaping exception, a runaway allocation or a hang in the
child must each fail the test that caused it (and only it), and `check` must reject what the issue forbids."""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.hostile import sandbox
    from tests.hostile.hostile_checks import check
else:
    import sandbox
    from hostile_checks import check


@pytest.mark.parametrize(
    ("script", "message"),
    [
        # A signal, as a segfault or abort() in native code would raise.
        pytest.param("import os; os.abort()", "died of signal 6", id="abort"),
        pytest.param("import ctypes; ctypes.string_at(0)", "died of signal 11", id="segfault"),
        # PyO3's PanicException derives from BaseException: not caught in the child, so it exits non-zero.
        pytest.param("raise BaseException('PanicException stand-in')", "exited with 1", id="base-exception"),
        # 2 GB in one go is over the 1 GiB address-space limit: a MemoryError in the child, not in the test run.
        pytest.param("bytearray(2 << 30)", "MemoryError", id="over-the-address-space-limit"),
        pytest.param("pass", "printed nothing", id="no-report"),
    ],
)
def test_a_child_that_does_not_report_fails(script: str, message: str) -> None:
    with pytest.raises(sandbox.ChildFailedError, match=message):
        sandbox.run_script(script)


def test_a_hanging_child_is_killed() -> None:
    with pytest.raises(sandbox.ChildFailedError, match="did not finish in 1 s and was killed"):
        sandbox.run_script("while True: pass", kill_after=1)


def test_the_child_measures_its_own_peak_not_the_parent() -> None:
    # The child's resident peak includes a 100 MB allocation it made, and not a 300 MB buffer the parent holds.
    parent_ballast = bytearray(300 << 20)
    parent_ballast[::4096] = b"\1" * len(parent_ballast[::4096])
    report = sandbox.run_script(
        "b = bytearray(100 << 20); b[::4096] = b'1' * len(b[::4096]); print(json.dumps({'kb': peak_rss_kb()}))"
    )
    assert 100 << 10 < report["kb"] < 200 << 10
    del parent_ballast


def test_io_is_seen() -> None:
    # Reading a file during the measured window is counted: the XXE/SSRF check would notice a core that does.
    report = sandbox.run_script(
        "before = io_calls(); open(sys.executable, 'rb').read(1); "
        "print(json.dumps({'calls': io_calls() - before - IO_OVERHEAD}))"
    )
    assert report["calls"] >= 1


GOOD = sandbox.Outcome(
    kind="ok",
    message="",
    seconds=0.01,
    cpu_seconds=0.01,
    io_calls=0,
    peak_rss_bytes=30 << 20,
    baseline_rss_bytes=20 << 20,
    input_intact=True,
)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "DecodeError"}, "DecodeError"),
        ({"seconds": 2.5}, "took 2.50 s"),
        ({"cpu_seconds": 2.5}, "2.50 s of CPU"),
        ({"peak_rss_bytes": 300 << 20}, "peak RSS 300 MiB"),
        ({"io_calls": 3}, "3 read/write system calls"),
        ({"input_intact": False}, "changed the input"),
    ],
)
def test_check_rejects_what_the_issue_forbids(change: dict[str, object], message: str) -> None:
    with pytest.raises(AssertionError, match=re.escape(message)):
        check(dataclasses.replace(GOOD, **change), "ok")  # type: ignore[arg-type]
