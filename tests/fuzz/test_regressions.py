"""Inputs the fuzzer found (tests/fuzz/regressions/: crashes, and the slowest inputs of each long run, kept by
`python -m fuzz.triage`) replayed in the hostile-input sandbox: each gives a rendition or a typed `ImageError`,
within the time and memory a hostile upload is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.hostile import sandbox

REGRESSIONS = Path(__file__).resolve().parent / "regressions"
INPUTS = sorted(p for p in REGRESSIONS.iterdir() if p.is_file()) if REGRESSIONS.is_dir() else []
TYPED = {"ok", "DecodeError", "UnsupportedFormatError", "LimitExceededError"}


def test_there_are_regression_inputs() -> None:
    # The folder is filled by fuzzing runs; an empty one would make the replay below vacuous.
    assert INPUTS, f"no inputs in {REGRESSIONS}"


@pytest.mark.parametrize("path", INPUTS, ids=[p.name for p in INPUTS])
@pytest.mark.parametrize("preset", ["thumbnail", "medium"])
def test_replayed_within_the_hostile_input_budget(path: Path, preset: str) -> None:
    outcome = sandbox.run(path.read_bytes(), preset)
    assert outcome.kind in TYPED, str(outcome)
    assert outcome.seconds <= sandbox.MAX_RENDER_SECONDS, str(outcome)
    assert outcome.peak_rss_bytes <= sandbox.MAX_RSS_BYTES, str(outcome)
    assert outcome.input_intact, str(outcome)
