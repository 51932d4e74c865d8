"""The fidelity report (bench/quality.py) end to end on a tiny generated corpus, and its verdict rules.

The real report (make quality) needs sharp and minutes; these need neither: `--peers ours`, or a stand-in peer
registered as "sharp" so the comparison and --strict paths run too.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from bench.peers import Job, Outcome, Rendered, Skipped
from PIL import Image, ImageOps

from bench import cli, quality, scoring
from kiray_imaging import render, render_upload
from kiray_imaging.presets import PRESETS


def _photo(size: tuple[int, int], seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, size=(size[1] // 16, size[0] // 16, 3)).astype(np.uint8)
    return Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _photo((640, 480), 0).save(corpus / "photo.jpg", quality=92)
    alpha = _photo((500, 700), 1).convert("RGBA")
    alpha.putalpha(Image.radial_gradient("L").resize((500, 700)))
    alpha.save(corpus / "alpha.png")
    _photo((64, 48), 2).save(corpus / "scan.tiff")
    (corpus / "README.md").write_text("# not a photo\n")
    (corpus / ".DS_Store").write_bytes(b"\x00")
    return corpus


def _cells(report: str, file: str, preset: str) -> list[str]:
    for line in report.splitlines():
        if line.startswith(f"| `{file}` | {preset} |"):
            return [c.strip() for c in line.strip("|").split("|")]
    raise AssertionError(f"no row for {file} {preset} in:\n{report}")


class PillowAsSharp:
    """A stand-in baseline: Pillow at JPEG quality 95, far above our presets, so our rows miss on SSIM."""

    name = "sharp"

    def versions(self) -> dict[str, str]:
        return {"sharp": "stand-in"}

    def render_all(self, jobs: Sequence[Job]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for job in jobs:
            try:
                image = ImageOps.exif_transpose(Image.open(job.source)).convert("RGB")
            except OSError as e:
                outcomes.append(Skipped(str(e), unsupported=True))
                continue
            box = (job.preset.width, job.preset.height)
            if job.preset.fit == "cover":
                image = ImageOps.fit(image, box, Image.Resampling.LANCZOS)
            else:
                image.thumbnail(box, Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            image.save(buf, "JPEG", quality=95)
            outcomes.append(Rendered(data=buf.getvalue(), width=image.width, height=image.height, ms=0.0))
        return outcomes


def test_corpus_files_skip_documentation_and_hidden_files(small_corpus: Path) -> None:
    assert [p.name for p in cli.corpus_files(small_corpus)] == ["alpha.png", "photo.jpg", "scan.tiff"]


def test_report_with_our_core_alone(small_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results" / "quality.md"
    args = ["--corpus", str(small_corpus), "--peers", "ours", "--out", str(out), "--cache-dir", str(tmp_path / "c")]
    assert quality.main(args) == 0

    report = out.read_text()
    assert capsys.readouterr().out.strip() == report.strip()
    assert re.search(r"^Versions: kiray_imaging \S+", report, re.MULTILINE)
    # Cover crops to the box; inside never upscales.
    thumbnail = PRESETS["thumbnail"]
    assert _cells(report, "photo.jpg", "thumbnail")[2] == f"{thumbnail.width}×{thumbnail.height}"
    assert _cells(report, "photo.jpg", "medium")[2] == "640×480"
    assert _cells(report, "alpha.png", "medium")[2] == "500×700"
    for file in ("photo.jpg", "alpha.png"):
        for preset in ("thumbnail", "medium"):
            cells = _cells(report, file, preset)
            assert int(cells[3]) > 1000
            assert 0.9 < float(cells[4]) <= 1.0
            assert 25.0 < float(cells[5]) < 60.0
    # Not dropped silently: the TIFF has a row and a reason; the README has neither.
    assert _cells(report, "scan.tiff", "thumbnail")[2] == "—"
    assert "`scan.tiff` — ours declines the format: UnsupportedFormatError" in report
    assert "README" not in report.split("## ")[0].split("| file |")[1]
    assert "`alpha.png`: alpha flattened onto white" in report
    # Nothing to judge against without sharp.
    assert "verdict" not in report


def test_the_2x_file_is_scored_as_the_thumbnail_function_makes_it(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _photo((3200, 2400), 3).save(corpus / "large.jpg", quality=92)
    _photo((640, 480), 0).save(corpus / "small.jpg", quality=92)
    out, kept = tmp_path / "quality.md", tmp_path / "renditions"
    args = ["--corpus", str(corpus), "--peers", "ours", "--presets", "thumbnail@2x", "--out", str(out),
            "--outputs", str(kept), "--cache-dir", str(tmp_path / "c")]  # fmt: skip
    assert quality.main(args) == 0

    report = out.read_text()
    cells = _cells(report, "large.jpg", "thumbnail@2x")
    assert cells[2] == "800×600"
    assert 0.9 < float(cells[4]) <= 1.0
    # The very file the function writes: render_upload's scale-2 JPEG, not a render of an 800x600 preset.
    made = render_upload((corpus / "large.jpg").read_bytes(), "thumbnail").files[(2, "jpeg")]
    assert (kept / "ours" / "large.jpg.thumbnail@2x.jpg").read_bytes() == made.data
    # (render() would decode this one at 1/2, its margin; the function's 2x job takes the 1x file's 1/4.)
    assert made.shrink_on_load == 4
    assert made.data != render((corpus / "large.jpg").read_bytes(), quality.JOBS["thumbnail@2x"]).data
    # A photo smaller than 800x600 gets no @2x file: a row, no score, the reason.
    assert _cells(report, "small.jpg", "thumbnail@2x")[2] == "—"
    assert "`small.jpg` — ours makes none: no @2x file, the photo is smaller than twice the box" in report


def test_comparison_verdicts_and_strict(
    small_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(quality.PEERS, "sharp", PillowAsSharp)
    monkeypatch.setattr(quality, "unavailable_reason", lambda: None)
    out = tmp_path / "quality.md"
    args = ["--corpus", str(small_corpus), "--out", str(out), "--cache-dir", str(tmp_path / "c")]

    assert quality.main([*args, "--presets", "thumbnail"]) == 0
    report = out.read_text()
    cells = _cells(report, "photo.jpg", "thumbnail")
    assert cells[-1].startswith("**MISS: SSIM")
    # The iso-SSIM columns: our encoder pushed up to the stand-in's SSIM.
    assert re.fullmatch(r"q\d+|> q100 \(0\.\d{4}\)", cells[-3])
    assert "sharp SSIM − 0.0005" in report
    assert "of 2 compared rows pass" in report
    # The stand-in reads TIFF, which our core declines: listed and scored for it, not counted against us.
    tiff = _cells(report, "scan.tiff", "thumbnail")
    assert tiff[2] == "—"
    assert float(tiff[8]) > 0.9
    assert tiff[-1] == "not compared: format outside our scope"
    capsys.readouterr()

    assert quality.main([*args, "--presets", "thumbnail", "--strict", "--no-iso"]) == 1
    assert "ours q @ sharp SSIM" not in out.read_text()


def test_sharp_missing_is_an_error_not_an_empty_report(small_corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quality, "unavailable_reason", lambda: "node is not on PATH")
    assert quality.main(["--corpus", str(small_corpus), "--out", "/nonexistent/never-written.md"]) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--peers", "gimp"], "unknown peers"), (["--presets", "huge"], "expected presets")],
)
def test_bad_arguments_exit_2(
    small_corpus: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert quality.main(["--corpus", str(small_corpus), *args]) == 2
    assert message in capsys.readouterr().err


def _row(ours: quality.Result | None, sharp: quality.Result | None) -> quality.Row:
    row = quality.Row(file="f.jpg", preset="thumbnail")
    if ours is not None:
        row.results["ours"] = ours
    if sharp is not None:
        row.results["sharp"] = sharp
    return row


def _score(ssim: float, size: int) -> scoring.Score:
    thumbnail = PRESETS["thumbnail"]
    return scoring.Score(width=thumbnail.width, height=thumbnail.height, bytes=size, ssim=ssim, psnr=35.0)


@pytest.mark.parametrize(
    ("ours", "sharp", "verdict", "miss"),
    [
        (_score(0.98, 1000), _score(0.97, 1000), "pass", False),
        (_score(0.9696, 1000), _score(0.97, 1000), "pass", False),  # within the 0.0005 tolerance
        (_score(0.9694, 1000), _score(0.97, 1000), "MISS: SSIM", True),
        (_score(0.98, 1030), _score(0.97, 1000), "pass", False),  # within 3 %
        (_score(0.98, 1031), _score(0.97, 1000), "MISS: bytes", True),
        (_score(0.96, 2000), _score(0.97, 1000), "MISS: SSIM, bytes", True),
        (Skipped("HEIC", unsupported=True), _score(0.97, 1000), "not compared: format outside our scope", False),
        (Skipped("DecodeError: truncated"), _score(0.97, 1000), "MISS: ours failed where sharp rendered", True),
        (_score(0.97, 1000), Skipped("no codec", unsupported=True), "not compared: sharp cannot read it", False),
        (Skipped("x", unsupported=True), Skipped("y", unsupported=True), "not compared: neither reads it", False),
        (Skipped("no @2x file", not_made=True), _score(0.97, 1000), "not compared: no @2x file", False),
        (_score(0.97, 1000), None, "—", False),
    ],
)
def test_judge(ours: quality.Result, sharp: quality.Result | None, verdict: str, miss: bool) -> None:
    assert quality.judge(_row(ours, sharp)) == (verdict, miss)


def test_no_reference_means_not_scored() -> None:
    row = _row(_score(0.9, 10), _score(0.95, 10))
    row.reference_error = "Pillow cannot identify the format"
    assert quality.judge(row) == ("not scored: no reference", False)


def test_lowest_quality_reaching_bisects_a_monotone_curve() -> None:
    calls: list[int] = []

    def measure(q: int) -> tuple[float, int]:
        calls.append(q)
        return 0.9 + q / 1000, q * 100

    point = quality.lowest_quality_reaching(0.9855, measure, {80: (0.98, 8000)})
    assert (point.quality, point.bytes, point.reached) == (86, 8600, True)
    assert point.ssim == pytest.approx(0.986)
    assert all(q > 80 for q in calls)
    assert len(calls) <= 6

    below = quality.lowest_quality_reaching(0.95, measure, {80: (0.98, 8000)})
    assert below.quality == 50
    assert below.reached

    unreachable = quality.lowest_quality_reaching(1.0005, measure, {80: (0.98, 8000)})
    # Not reached: the best there is, quality 100, flagged as such.
    assert (unreachable.quality, unreachable.bytes, unreachable.reached) == (100, 10000, False)
