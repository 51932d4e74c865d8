"""The speed benchmark (`python -m bench.speed`: bench/speed.py and its pieces, bench/speed_runner.py,
bench/peers/sharp_bench.mjs): that it runs, with every peer, on a small generated corpus, and that its peers do what
the report says they do.

These are not timed tests: nothing here asserts a speed. `make test` installs the benchmark's peers (bench-deps:
sharp, pyvips); a bare pytest without them skips the tests that need them, except in CI, where a skip would hide a
broken peer.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bench.peers.sharp import BENCH_DIR
from bench.peers.sharp import SCRIPT as SHARP_RENDER
from bench.peers.sharp import unavailable_reason as sharp_unavailable
from PIL import Image

from bench import coldstart, speed, speed_runner, tools, verdicts
from kiray_imaging import plan, render
from kiray_imaging.presets import PRESETS

ROOT = Path(__file__).resolve().parents[2]
SPECS = [speed_runner.PresetSpec.of(tools.preset_json(p)) for p in PRESETS.values()]


def _missing_peers() -> str | None:
    reasons = [r for r in (sharp_unavailable(), tools.pyvips_unavailable_reason()) if r is not None]
    return "; ".join(reasons) or None


def needs_every_peer() -> None:
    reason = _missing_peers()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"a benchmark peer is missing in CI, where bench-deps installs them all: {reason}")
    pytest.skip(f"benchmark peers not installed (make bench-deps): {reason}")


def _photo(size: tuple[int, int], seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, size=(size[1] // 16, size[0] // 16, 3)).astype(np.uint8)
    return Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)


def _jpeg(path: Path, size: tuple[int, int], *, orientation: int = 1, mode: str = "RGB") -> Path:
    exif = Image.Exif()
    exif[0x0112] = orientation
    _photo(size, 0).convert(mode).save(path, quality=90, exif=exif)
    return path


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _jpeg(corpus / "photo.jpg", (1600, 1200))
    alpha = _photo((600, 800), 1).convert("RGBA")
    alpha.putalpha(Image.radial_gradient("L").resize((600, 800)))
    alpha.save(corpus / "alpha.png")
    # A format our core declines: the report must say so rather than drop it.
    _photo((64, 48), 2).save(corpus / "scan.tiff")
    return corpus


def _rows(report: str, file: str) -> dict[str, list[str]]:
    rows = {}
    for line in report.splitlines():
        if line.startswith(f"| `{file}` | "):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if len(cells) == 9:
                rows[cells[1]] = cells[2:]
    return rows


def _target(report: str, start: str) -> list[str]:
    for line in report.splitlines():
        if line.startswith(f"| {start}"):
            return [c.strip() for c in line.strip("|").split("|")]
    raise AssertionError(f"no target row starting {start!r} in:\n{report}")


def test_make_bench_runs_every_peer_on_a_small_corpus(
    small_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    needs_every_peer()
    out = tmp_path / "results" / "bench.md"
    args = ["--corpus", str(small_corpus), "--quick", "--out", str(out), "--cache-dir", str(tmp_path / "cache")]
    assert speed.main([*args, "--outputs", str(tmp_path / "outputs")]) == 0

    report = out.read_text()
    assert capsys.readouterr().out.strip() == report.strip()
    assert re.search(r"^\*\*Machine\*\*: .+, \d+ cores .*our SIMD level: \*\*\w+\*\*", report, re.MULTILINE)
    assert re.search(r"Load average \(1, 5, 15 min\) before: [\d.]+ [\d.]+ [\d.]+; after: [\d.]+", report)
    for name in ("kiray_imaging", "Pillow", "pyvips", "libvips", "sharp", "Node", "Python"):
        assert re.search(rf"\*\*Versions\*\*: .*{name} \d", report), name

    labels = {"ours", "Pillow-draft", "pyvips (1 thread)", "pyvips (defaults)"}
    # sharp's defaults are measured apart only where they differ from one thread (not on glibc Linux).
    sharp = {"sharp (1 thread = its default here)"} if tools.sharp_default_concurrency() == 1 else set()
    labels |= sharp or {"sharp (1 thread)", "sharp (defaults)"}
    for file in ("photo.jpg", "alpha.png"):
        rows = _rows(report, file)
        assert set(rows) == labels
        for label, cells in rows.items():
            thumb_ms, medium_ms, own_ms, one_ms, rss, sizes, ssims = cells
            assert min(float(thumb_ms), float(medium_ms), float(own_ms)) > 0, label
            # Both from one decode exists where the API allows it, and is said to be n/a where it does not.
            assert (one_ms == "n/a") == label.startswith("sharp"), label
            assert 5 < float(rss) < 2000, label
            assert all(int(b) > 1000 for b in sizes.split(" / ")), label
            assert all(0.9 < float(s) <= 1.0 for s in ssims.split(" / ")), label
    tiff = _rows(report, "scan.tiff")
    assert tiff["ours"][0] == "not read (declines the format)"
    assert "- `scan.tiff`: ours declines the format: UnsupportedFormatError" in report

    # Every target of the issue has a verdict.
    assert re.search(r"PASS|MISS", _target(report, "time per image, both renditions from own decodes: ours ≤ 0.5×")[2])
    for peer in ("Pillow-draft", "pyvips (1 thread)", "pyvips (defaults)"):
        assert re.search(
            r"PASS|MISS", _target(report, f"time per image, both from own decodes: ours ahead of {peer}")[2]
        )
    assert re.search(r"PASS|MISS", _target(report, "peak RSS per image")[2])
    assert re.search(r"(PASS on all|\*\*MISS\*\* on \d+ of) 4 renditions", _target(report, "SSIM ≥ sharp's")[2])
    assert re.search(r"(PASS on all|\*\*MISS\*\* on \d+ of) 4 renditions", _target(report, "bytes ≤ sharp's")[2])
    djpeg = _target(report, "baseline JPEGs")
    assert re.search(r"`photo.jpg` [\d.]+×", djpeg[1]) if shutil.which("djpeg") else djpeg[2] == "not measured"
    handler = _target(report, "cold start: `import py_handlers.generate_thumbnail`")
    assert re.fullmatch(r"median \d+ ms \(whole fresh process \d+ ms\)", handler[1])
    assert re.search(r"PASS|MISS|not measured", _target(report, "layer zip")[2])

    # Our per-stage breakdown, from Rendition.timings_ms.
    assert re.search(r"^\| `photo.jpg` \| thumbnail \| ours \| 1/[1248] \| [\d.]+ \|", report, re.MULTILINE)
    # The renditions scored are kept where asked, one per tool configuration.
    assert (tmp_path / "outputs" / "pillow" / "photo.jpg.medium.one.jpg").is_file()


def test_arguments_are_checked_before_anything_runs(tmp_path: Path) -> None:
    out = tmp_path / "bench.md"
    assert speed.main(["--peers", "ours,imagemagick", "--out", str(out)]) == 2
    assert speed.main(["--peers", "ours", "--warmup", "0", "--out", str(out)]) == 2
    assert speed.main(["--peers", "ours", "--corpus", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert not out.exists()


def _plans(path: Path, shrink: dict[str, int] | None = None) -> dict[str, speed_runner.PlanSpec]:
    """What the parent sends a peer with a photo: our core's plan, with the shrink ours took where it is given."""
    return speed_runner.plan_specs(tools.peer_plans(path, list(PRESETS.values()), shrink or {}))


@pytest.mark.parametrize("orientation", [1, 6])
@pytest.mark.parametrize("size", [(1600, 1200), (5000, 3000), (700, 900), (245, 245)])
def test_peers_crop_and_shrink_as_our_core_does(tmp_path: Path, size: tuple[int, int], orientation: int) -> None:
    """Pillow-draft crops by our core's plan and drafts to our core's shrink when given it; the plan's own shrink,
    used where ours did not read the photo, never decodes fewer pixels than the output needs."""
    path = _jpeg(tmp_path / "in.jpg", size, orientation=orientation)
    data = path.read_bytes()
    pillow = speed_runner.PillowDraft()
    pillow.load()
    for spec in SPECS:
        ours = render(data, spec.name)
        core = plan(size[0], size[1], spec.name, orientation=orientation)
        stored = (core.out_width, core.out_height)
        shown = stored[::-1] if orientation in (5, 6, 7, 8) else stored
        assert shown == (ours.width, ours.height)

        pillow.plans = _plans(path, {spec.name: ours.shrink_on_load})
        drafted = pillow.render(data, spec)
        assert drafted.shrink == ours.shrink_on_load
        assert (drafted.width, drafted.height) == (ours.width, ours.height)

        d = _plans(path)[spec.name].shrink_on_load
        assert d >= ours.shrink_on_load or d == 8
        assert size[0] // d >= stored[0]
        assert size[1] // d >= stored[1]


def test_peers_shrink_as_far_as_ours_did_not_as_far_as_the_plan_says(tmp_path: Path) -> None:
    """A progressive JPEG gives our decoder a cheap eighth, which the plan cannot know (it depends on the scans):
    the peers are given the shrink ours took, so they decode as few pixels as ours, not more."""
    path = tmp_path / "progressive.jpg"
    _photo((4000, 3000), 4).save(path, quality=90, progressive=True)
    data = path.read_bytes()
    spec = SPECS[0]
    ours = render(data, spec.name)
    planned = _plans(path)[spec.name].shrink_on_load
    assert ours.shrink_on_load > planned, "no cheap eighth here: the test photo no longer tells the two apart"
    pillow = speed_runner.PillowDraft()
    pillow.load()
    pillow.plans = _plans(path, {spec.name: ours.shrink_on_load})
    drafted = pillow.render(data, spec)
    assert drafted.shrink == ours.shrink_on_load
    assert (drafted.width, drafted.height) == (ours.width, ours.height)


def _render_python(tool: str, path: Path) -> list[dict[str, object]]:
    """Renders through the runner's own tool classes in this process (pyvips reads its environment at import), with
    our core's plan and no render of ours: the shrink is the plan's own."""
    impl = speed_runner.TOOLS[tool]()
    impl.load()
    impl.plans = _plans(path)
    data = path.read_bytes()
    results: list[dict[str, object]] = []
    for spec in SPECS:
        out = impl.render(data, spec)
        with Image.open(io.BytesIO(out.data)) as image:
            results.append({"size": (out.width, out.height), "mode": image.mode, "shrink": out.shrink})
    if impl.one_decode:
        for spec, out in zip(SPECS, impl.render_one_decode(data, SPECS)):
            with Image.open(io.BytesIO(out.data)) as image:
                results.append({"one": spec.name, "size": (out.width, out.height), "mode": image.mode})
    return results


@pytest.mark.parametrize("tool", ["pillow", "pyvips"])
def test_python_peers_write_what_every_tool_writes(tmp_path: Path, tool: str) -> None:
    if tool == "pyvips":
        needs_every_peer()
    got = _render_python(tool, _jpeg(tmp_path / "rotated.jpg", (1600, 1200), orientation=6))
    sizes = [r["size"] for r in got]
    # Orientation applied (a quarter turn: shown 1200 wide, 1600 high), and one decode gives the same sizes as own
    # decodes: the thumbnail fills its box, the medium fits inside its own.
    thumbnail, medium = PRESETS["thumbnail"], PRESETS["medium"]
    inside = min(medium.width / 1200, medium.height / 1600)
    assert sizes == [(thumbnail.width, thumbnail.height), (round(1200 * inside), round(1600 * inside))] * 2
    # 3-channel JPEGs from grey and from alpha, so bytes compare like with like.
    grey = _jpeg(tmp_path / "grey.jpg", (800, 600), mode="L")
    rgba = _photo((600, 800), 3).convert("RGBA")
    rgba.putalpha(Image.radial_gradient("L").resize((600, 800)))
    rgba.save(tmp_path / "alpha.png", "PNG")
    for path in (grey, tmp_path / "alpha.png"):
        assert {r["mode"] for r in _render_python(tool, path)} == {"RGB"}
    if tool == "pillow":
        # draft() by our core's plan (no render of ours given): turned a quarter, the 1600x1200 photo must cover the
        # thumbnail's box on its side with the core's margin, so it shrinks by 2 (not 4), and not at all for the
        # medium.
        assert [r["shrink"] for r in got[:2]] == [2, 1]


@pytest.mark.parametrize("tool", ["pillow", "pyvips"])
def test_python_peers_convert_an_embedded_profile_to_srgb(corpus: Path, tmp_path: Path, tool: str) -> None:
    if tool == "pyvips":
        needs_every_peer()
    with Image.open(corpus / "derived_phone_pug_p3.jpg") as phone:
        p3 = phone.info["icc_profile"]
    # P3's red lies outside sRGB's: the same numbers tagged P3 mean a more saturated red, so in sRGB the red rises
    # and green falls.
    image = Image.new("RGB", (800, 600), (200, 60, 40))
    image.save(tmp_path / "p3.jpg", quality=95, icc_profile=p3)
    image.save(tmp_path / "plain.jpg", quality=95)
    impl = speed_runner.TOOLS[tool]()
    impl.load()
    impl.plans = _plans(tmp_path / "p3.jpg")  # the same size as plain.jpg
    tagged = impl.render((tmp_path / "p3.jpg").read_bytes(), SPECS[0])
    plain = impl.render((tmp_path / "plain.jpg").read_bytes(), SPECS[0])
    with Image.open(io.BytesIO(tagged.data)) as a, Image.open(io.BytesIO(plain.data)) as b:
        red, untouched = a.convert("RGB").getpixel((200, 150)), b.convert("RGB").getpixel((200, 150))
        assert isinstance(red, tuple)
        assert isinstance(untouched, tuple)
        assert red[0] > untouched[0] + 5
        assert red[1] < untouched[1] - 5
        # Nothing is left for a viewer to apply a second time.
        assert "icc_profile" not in a.info


def test_sharp_bench_writes_the_bytes_of_sharp_render(tmp_path: Path) -> None:
    """Two copies of the production pipeline (one script runs its main on import): they must not drift apart."""
    needs_every_peer()
    source = _jpeg(tmp_path / "in.jpg", (1600, 900), orientation=6)
    jobs = [
        {
            "input": str(source),
            "output": str(tmp_path / f"render.{p.name}.jpg"),
            **{k: v for k, v in tools.preset_json(p).items() if k != "name"},
            "preset": p.name,
        }
        for p in PRESETS.values()
    ]
    subprocess.run(["node", str(SHARP_RENDER), json.dumps(jobs)], cwd=BENCH_DIR, check=True, capture_output=True)
    presets = [tools.preset_json(p) for p in PRESETS.values()]
    requests = [
        {"op": "open", "file": str(source), "presets": presets, "warmup": 1},
        {"op": "own"},
        {"op": "one"},
        {"op": "save", "outputs": str(tmp_path / "bench")},
    ]
    proc = subprocess.run(
        ["node", str(tools.SHARP_SCRIPT), "--serve", "1"],
        input="".join(json.dumps(r) + "\n" for r in requests),
        cwd=BENCH_DIR,
        check=True,
        capture_output=True,
        text=True,
    )
    opened, own, one, saved = [json.loads(x) for x in proc.stdout.splitlines()]
    assert opened["ok"]
    assert sorted(own["ms"]) == sorted(PRESETS)
    assert one == {"ms": None}
    for p in PRESETS.values():
        produced = Path(saved["renditions"][p.name]["output"]).read_bytes()
        assert produced == (tmp_path / f"render.{p.name}.jpg").read_bytes()


def test_rss_children_hold_only_their_own_library(tmp_path: Path) -> None:
    """A peer's peak-RSS process must not also load our core (bench.peers imports it) or the parent's numpy."""
    code = (
        "import sys, bench.speed_runner as r; t = r.PillowDraft(); t.load();"
        "print(','.join(m for m in ('kiray_imaging', 'numpy', 'bench.peers') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == ""


def test_importtime_names_the_largest_imports_and_the_module_body() -> None:
    stderr = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:      1500 |       1500 |       botocore.compat",
            "import time:       500 |       2000 |     botocore",
            "import time:      2000 |       4000 |   boto3",
            "import time:       300 |       4300 |   kiray_imaging.lambda_pipeline",
            "import time:       700 |        700 |   kiray_imaging",
            "import time:      3000 |       8000 | py_handlers.generate_thumbnail",
        ]
    )
    largest, body = coldstart.importtime_largest(stderr, "py_handlers.generate_thumbnail", count=3)
    assert largest == [("boto3", 4.0), ("botocore", 2.0), ("kiray_imaging", 0.7)]
    assert body == 3.0
    largest, body = coldstart.importtime_largest(stderr, "kiray_imaging")
    assert ("kiray_imaging.lambda_pipeline", 4.3) in largest
    assert body == 0.7


def test_margins_are_a_share_of_the_target() -> None:
    assert verdicts._pass_by(0.4, 0.5) == "PASS (20 % to spare)"
    assert verdicts._pass_by(0.75, 0.5) == "**MISS** (over by 50 %)"
    assert verdicts._pass_by(0.5, 0.5).startswith("PASS")
