"""The fuzz target (fuzz/fuzz_render.py) itself: it must run, and it must call a finding a finding.

The hour-long, coverage-instrumented runs are `make fuzz`; here the harness runs briefly against the shipping build
(Python coverage only), so a broken harness or seed generator is caught by `make test`, not on the next fuzzing day.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import kiray_imaging
from fuzz import fuzz_render, seeds
from kiray_imaging import DecodeError, ImageError, Rendition

ROOT = Path(__file__).resolve().parents[2]


def rendition(data: bytes, width: int = 400, height: int = 300) -> Rendition:
    return Rendition(
        data=data,
        width=width,
        height=height,
        format="jpeg",
        content_type="image/jpeg",
        source_format="jpeg",
        source_width=800,
        source_height=600,
        orientation=1,
        shrink_on_load=1,
        timings_ms={},
    )


def test_seeds_cover_every_input_class(tmp_path: Path) -> None:
    assert seeds.write(tmp_path) >= 30
    sniffed = set()
    for path in tmp_path.iterdir():
        r = kiray_imaging.render(path.read_bytes(), "thumbnail")
        sniffed.add(r.source_format)
    assert sniffed == {"jpeg", "png", "webp", "gif", "avif"}


def test_harness_runs_on_the_seeds(tmp_path: Path) -> None:
    corpus, seed_dir = tmp_path / "corpus", tmp_path / "seeds"
    corpus.mkdir()
    seeds.write(seed_dir)
    result = subprocess.run(
        [sys.executable, "fuzz/fuzz_render.py", str(corpus), str(seed_dir), "-runs=400", "-max_len=32768",
         "-rss_limit_mb=1024", "-timeout=30", f"-artifact_prefix={tmp_path}/"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"Done \d+ runs", result.stderr), result.stderr[-3000:]
    assert not list(tmp_path.glob("crash-*")), result.stderr[-3000:]


def test_typed_errors_are_not_findings(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> Rendition:
        raise DecodeError("truncated")

    monkeypatch.setattr(kiray_imaging, "render", refuse)
    fuzz_render.test_one_input(b"\xff\xd8\xff")


def test_a_caught_panic_is_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    def panic(*_: object, **__: object) -> Rendition:
        raise ImageError("internal error: index out of bounds")

    monkeypatch.setattr(kiray_imaging, "render", panic)
    with pytest.raises(ImageError, match="internal error"):
        fuzz_render.test_one_input(b"\xff\xd8\xff")


def test_other_exceptions_are_findings(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object, **__: object) -> Rendition:
        raise ValueError("not an ImageError")

    monkeypatch.setattr(kiray_imaging, "render", broken)
    with pytest.raises(ValueError, match="not an ImageError"):
        fuzz_render.test_one_input(b"GIF89a")


@pytest.mark.parametrize(
    ("output", "preset", "fmt", "problem"),
    [
        (rendition(b"RIFF....WEBP"), "thumbnail", "jpeg", "starts with"),
        (rendition(b"\xff\xd8\xff\xe0", width=401), "thumbnail", "jpeg", "outside"),
        (rendition(b"\xff\xd8\xff\xe0", height=0), "thumbnail", "jpeg", "outside"),
        (rendition(b"\xff\xd8\xff\xe0input"), "thumbnail", "jpeg", "byte for byte"),
    ],
)
def test_contract_breaks_are_findings(output: Rendition, preset: str, fmt: str, problem: str) -> None:
    with pytest.raises(fuzz_render.ContractError, match=problem):
        fuzz_render.check(b"\xff\xd8\xff\xe0input", preset, fmt, output)


def test_a_good_rendition_passes() -> None:
    fuzz_render.check(b"\xff\xd8\xff\xe0source", "thumbnail", "jpeg", rendition(b"\xff\xd8\xff\xe0out"))
