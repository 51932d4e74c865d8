"""bench/threads.py runs and reports one row per thread count (a report, not a timed test: no speed is asserted)."""

from __future__ import annotations

from pathlib import Path

from tests import images

from bench import threads


def test_threads_report(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.jpg").write_bytes(images.jpeg(images.noise((800, 600))))
    (corpus / "b.png").write_bytes(images.png(images.arrow_picture()))
    (corpus / "notes.txt").write_text("not a photo")
    (corpus / "broken.jpg").write_bytes(b"\xff\xd8\xff truncated")
    out = tmp_path / "threads.md"
    assert threads.main(["--corpus", str(corpus), "--rounds", "1", "--out", str(out)]) == 0
    text = out.read_text()
    assert "2 corpus photos" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [row.split("|")[1].strip() for row in rows][:2] == ["1", "2"]
    assert rows[0].endswith("| 1.00× |")
