"""The sharp peer (bench/peers/sharp.py + sharp_render.mjs): configured from our presets, honest about failures.

Needs Node and `npm ci --prefix bench` (make quality installs it); skipped with the reason otherwise, except the
checks that need neither.
"""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest
from bench.peers import Job, Rendered, Skipped
from bench.peers.sharp import BENCH_DIR, SCRIPT, Sharp, job_json, unavailable_reason
from PIL import Image

from kiray_imaging.presets import PRESETS

REASON = unavailable_reason()
needs_sharp = pytest.mark.skipif(REASON is not None, reason=f"sharp unavailable: {REASON}")


def _jpeg(path: Path, size: tuple[int, int], orientation: int = 1) -> Path:
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = orientation
    image.save(path, quality=90, exif=exif)
    return path


def test_jobs_carry_our_preset_numbers(tmp_path: Path) -> None:
    for preset in PRESETS.values():
        sent = job_json(Job(tmp_path / "in.jpg", preset, tmp_path / "out.jpg"))
        assert sent == {
            "input": str(tmp_path / "in.jpg"),
            "output": str(tmp_path / "out.jpg"),
            "preset": preset.name,
            "width": preset.width,
            "height": preset.height,
            "fit": preset.fit,
            "quality": preset.quality,
        }


def test_sharp_is_pinned_exactly() -> None:
    pinned = json.loads((BENCH_DIR / "package.json").read_text())["devDependencies"]["sharp"]
    assert pinned[0].isdigit(), f"expected an exact version, got {pinned!r}"
    lock = json.loads((BENCH_DIR / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/sharp"]["version"] == pinned


@needs_sharp
def test_versions_are_the_pinned_ones() -> None:
    versions = Sharp().versions()
    assert versions["sharp"] == json.loads((BENCH_DIR / "package.json").read_text())["devDependencies"]["sharp"]
    assert versions["libvips"][0].isdigit()


@needs_sharp
def test_renders_both_presets_without_upscaling(tmp_path: Path) -> None:
    source = _jpeg(tmp_path / "wide.jpg", (1600, 900))
    small = _jpeg(tmp_path / "small.jpg", (320, 200))
    jobs = [
        Job(source, PRESETS["thumbnail"], tmp_path / "out" / "t.jpg"),
        Job(source, PRESETS["medium"], tmp_path / "out" / "m.jpg"),
        Job(small, PRESETS["medium"], tmp_path / "out" / "s.jpg"),
    ]
    outcomes = Sharp().render_all(jobs)
    assert all(isinstance(o, Rendered) for o in outcomes)
    sizes = [(o.width, o.height) for o in outcomes if isinstance(o, Rendered)]
    thumbnail, medium = PRESETS["thumbnail"], PRESETS["medium"]
    inside = min(medium.width / 1600, medium.height / 900)
    assert sizes == [(thumbnail.width, thumbnail.height), (round(1600 * inside), round(900 * inside)), (320, 200)]
    for job, outcome in zip(jobs, outcomes):
        assert isinstance(outcome, Rendered)
        assert job.output.read_bytes() == outcome.data
        with Image.open(io.BytesIO(outcome.data)) as image:
            assert image.format == "JPEG"
            assert image.size == (outcome.width, outcome.height)


@needs_sharp
def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    source = _jpeg(tmp_path / "rotated.jpg", (800, 600), orientation=6)
    [outcome] = Sharp().render_all([Job(source, PRESETS["medium"], tmp_path / "r.jpg")])
    assert isinstance(outcome, Rendered)
    assert (outcome.width, outcome.height) == (600, 800)


@needs_sharp
def test_unreadable_inputs_are_skipped_with_a_reason(tmp_path: Path) -> None:
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"this is not an image" * 10)
    missing = tmp_path / "missing.jpg"
    good = _jpeg(tmp_path / "good.jpg", (800, 600))
    outcomes = Sharp().render_all(
        [Job(p, PRESETS["thumbnail"], tmp_path / f"{p.stem}.out.jpg") for p in (junk, missing, good)]
    )
    assert outcomes[0] == Skipped("Input buffer contains unsupported image format", unsupported=True)
    assert isinstance(outcomes[1], Skipped)
    assert not outcomes[1].unsupported
    assert "no such file" in outcomes[1].reason
    assert isinstance(outcomes[2], Rendered)


@needs_sharp
def test_a_malformed_job_list_is_refused(tmp_path: Path) -> None:
    thumbnail = PRESETS["thumbnail"]
    box = {"fit": thumbnail.fit, "width": thumbnail.width, "height": thumbnail.height}
    bad = [{"input": "a.jpg", "output": "b.jpg", "preset": "thumbnail", **box}]
    proc = subprocess.run(
        ["node", str(SCRIPT), json.dumps(bad)], capture_output=True, text=True, cwd=BENCH_DIR, check=False
    )
    assert proc.returncode == 2
    assert "quality" in proc.stderr
    assert proc.stdout == ""
