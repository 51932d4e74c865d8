"""bench/fingerprint.py and bench/functions.py run and report (reports, not timed tests: no speed is asserted)."""

from __future__ import annotations

import glob
from pathlib import Path

from tests import images

from bench import fingerprint, functions

ROOT = Path(__file__).resolve().parents[2]


def _corpus(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.jpg").write_bytes(images.jpeg(images.noise((1200, 900), seed=1)))
    (corpus / "b.png").write_bytes(images.png(images.arrow_picture((900, 600))))
    (corpus / "broken.jpg").write_bytes(b"<html>not a photo</html>")
    return corpus


def test_fingerprint_report(tmp_path: Path) -> None:
    out = tmp_path / "fingerprint.md"
    assert fingerprint.main(["--corpus", str(_corpus(tmp_path)), "--out", str(out)]) == 0
    text = out.read_text()
    assert "2 photos (refused: `broken.jpg` (UnsupportedFormatError))" in text
    assert "| original vs resized 50 % | 2 |" in text
    assert "| **different photos** (every pair of originals but the derived copies) | 1 |" in text
    # Its row of the per-photo table (the pairs table has three columns).
    rows = [line for line in text.splitlines() if line.startswith("| `a.jpg` |") and line.count("|") > 5]
    assert len(rows) == 1, rows
    assert "| `a.jpg` | `b.png` |" in text  # the one pair of different photos
    # A copy at half size of a photo with this much detail keeps its fingerprint within the threshold.
    assert int(rows[0].split("|")[3]) <= fingerprint.THRESHOLD


def test_functions_report_against_a_wheel(tmp_path: Path) -> None:
    wheels = glob.glob(str(ROOT / "layer" / "build" / "wheels" / "*.whl"))
    assert wheels, "make setup builds the wheel (make test runs it first)"
    out = tmp_path / "functions.md"
    assert functions.main(["--before", wheels[0], "--corpus", str(_corpus(tmp_path)), "--runs", "1", "--out",
                           str(out)]) == 0  # fmt: skip
    text = out.read_text()
    for preset in ("thumbnail", "medium"):
        assert sum(line.startswith(f"| {preset} | `") for line in text.splitlines()) == 2  # the broken file is left out
        assert any(line.startswith(f"| {preset} | ") and "%" in line for line in text.splitlines())
