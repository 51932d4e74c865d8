"""`render_upload`: what a function makes of one upload. The thumbnail's @2x file from the same decode (never
upscaled), the upload's displayed size, and its facts: a ThumbHash the reference decoder (npm ``thumbhash``) reads
back as the photo's colour and shape, and a fingerprint that stays close for copies and far for other photos."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PIL import Image, ImageOps

from kiray_imaging import PRESETS, Preset, render_formats, render_upload

if TYPE_CHECKING:
    from tests import images
else:
    import images

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus"
THUMBHASH_JS = ROOT / "bench" / "node_modules" / "thumbhash" / "thumbhash.js"
THRESHOLD = 12
"""docs/integrating.md's near-duplicate threshold (bench/results/fingerprint.md measures it)."""


def _photo(size: tuple[int, int] = (4000, 3000), seed: int = 5) -> Image.Image:
    return images.noise((size[0] // 8, size[1] // 8), seed=seed).resize(size, Image.Resampling.BICUBIC)


def test_the_thumbnail_gets_a_2x_file_from_the_same_decode() -> None:
    upload = render_upload(images.jpeg(_photo()), "thumbnail")
    assert list(upload.files) == [(1, "jpeg"), (2, "jpeg")]
    one, two = upload.files[(1, "jpeg")], upload.files[(2, "jpeg")]
    assert (one.width, one.height, two.width, two.height) == (400, 300, 800, 600)
    assert one.timings_ms["decode"] == two.timings_ms["decode"]
    assert one.shrink_on_load == two.shrink_on_load
    assert (upload.width, upload.height, upload.source_format) == (4000, 3000, "jpeg")


@pytest.mark.parametrize(("size", "orientation", "has_2x"), [
    ((800, 600), 1, True),   # exactly the 2x box
    ((1600, 599), 1, False),  # one row short: the 2x would be upscaled
    ((700, 500), 1, False),
    ((800, 600), 6, True),   # stored 600x800, displayed 800x600
    ((600, 800), 6, False),  # displayed portrait: an 800x600 crop would need 1.33x
])  # fmt: skip
def test_a_2x_file_only_when_the_photo_fills_it(size: tuple[int, int], orientation: int, has_2x: bool) -> None:
    """``size`` as displayed."""
    upload = render_upload(images.oriented(_photo(size), orientation, "JPEG"), "thumbnail")
    assert ((2, "jpeg") in upload.files) is has_2x
    assert (upload.width, upload.height) == size


def test_the_medium_has_no_2x_and_no_facts_and_matches_render_formats() -> None:
    data = images.jpeg(_photo())
    upload = render_upload(data, "medium", ("jpeg", "webp"))
    assert list(upload.files) == [(1, "jpeg"), (1, "webp")]
    assert upload.placeholder is None
    assert upload.fingerprint is None
    alone = render_formats(data, "medium", ("jpeg", "webp"))
    assert upload.files[(1, "webp")].data == alone["webp"].data


def test_presets_ask_for_scales_and_facts() -> None:
    thumbnail = PRESETS["thumbnail"]
    assert (thumbnail.scales, thumbnail.facts) == ((1, 2), True)
    plain = dataclasses.replace(thumbnail, name="plain", scales=(1,), facts=False)
    upload = render_upload(images.jpeg(_photo()), plain)
    assert list(upload.files) == [(1, "jpeg")]
    assert upload.placeholder is None
    for scales in [(), (2,), (1, 3), (1, 1), (2, 1)]:
        with pytest.raises(ValueError, match="scales"):
            Preset(name="x", width=4, height=3, fit="cover", quality=80, scales=scales)


def _alpha_weighted_mean(image: Image.Image) -> tuple[float, float, float, float]:
    raw = image.tobytes()
    pixels = [raw[i : i + 4] for i in range(0, len(raw), 4)]
    opacity = sum(p[3] for p in pixels) or 1
    r, g, b = (sum(p[c] * p[3] for p in pixels) / opacity for c in range(3))
    return r, g, b, opacity / len(pixels)


def _corpus_photos() -> list[Path]:
    return [CORPUS / n for n in ("Dragonfly_by_Bolly.jpg", "derived_phone_pug_p3.jpg", "Wine_by_Jakub_Mede.jpg",
                                 "derived_wine_alpha.png", "rot1mir0_irot.avif")]  # fmt: skip


def test_the_reference_decoder_reads_the_placeholder_as_the_photos_colour_and_shape() -> None:
    assert THUMBHASH_JS.exists(), "bench/node_modules is installed by `make bench-deps` (make test runs it)"
    hashes, expected = {}, {}
    for path in _corpus_photos():
        data = path.read_bytes()
        upload = render_upload(data, "thumbnail")
        assert upload.placeholder is not None
        assert len(upload.placeholder) <= 25, (path.name, len(upload.placeholder))
        hashes[path.name] = base64.b64encode(upload.placeholder).decode()
        # The photo's own average colour and opacity, from our WebP medium (upright sRGB, alpha kept): ThumbHash's
        # average is of the colour where the photo is opaque, weighted by its alpha.
        medium = Image.open(io.BytesIO(render_formats(data, "medium", ("webp",))["webp"].data)).convert("RGBA")
        expected[path.name] = (_alpha_weighted_mean(medium), upload.width / upload.height)
    script = f"""
        import * as th from {json.dumps(THUMBHASH_JS.as_uri())};
        const hashes = {json.dumps(hashes)};
        const out = {{}};
        for (const [name, b64] of Object.entries(hashes)) {{
          const hash = Buffer.from(b64, "base64");
          const avg = th.thumbHashToAverageRGBA(hash);
          const img = th.thumbHashToRGBA(hash);
          out[name] = {{ avg: [avg.r * 255, avg.g * 255, avg.b * 255, avg.a * 255],
                        ratio: th.thumbHashToApproximateAspectRatio(hash), w: img.w, h: img.h }};
        }}
        console.log(JSON.stringify(out));
    """
    decoded = json.loads(subprocess.run(["node", "--input-type=module", "-e", script], check=True,
                                        capture_output=True, text=True).stdout)  # fmt: skip
    for name, (colour, ratio) in expected.items():
        got = decoded[name]
        assert images.close(got["avg"], colour, 12), (name, got["avg"], colour)
        # The decoder's own image keeps the aspect ratio to its 32-pixel side (coarser with alpha, which leaves
        # fewer bits for the shape); its quick estimate is coarser still.
        assert abs(got["w"] / got["h"] - ratio) / ratio < 0.15, (name, got, ratio)
        assert abs(got["ratio"] - ratio) / ratio < 0.35, (name, got, ratio)


def _fingerprint(data: bytes) -> int:
    fp = render_upload(data, "thumbnail").fingerprint
    assert fp is not None
    return fp


def _distance(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def test_copies_stay_within_the_threshold_and_other_photos_beyond_it() -> None:
    photos = [CORPUS / n for n in ("Dragonfly_by_Bolly.jpg", "derived_phone_pug_p3.jpg", "Grey_plasma_gray.jpg",
                                   "seeding_by_Clemens_Engelhardt.jpg")]  # fmt: skip
    prints = {}
    for path in photos:
        data = path.read_bytes()
        original = prints[path.name] = _fingerprint(data)
        assert 0 < original < 2**64
        upright = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
        half = upright.resize((upright.width // 2, upright.height // 2), Image.Resampling.LANCZOS)
        copies = {
            "half size": images.jpeg(half, quality=90),
            "q60": images.jpeg(upright, quality=60),
            "our WebP medium": render_formats(data, "medium", ("webp",))["webp"].data,
        }
        for what, copy in copies.items():
            assert _distance(original, _fingerprint(copy)) <= THRESHOLD, (path.name, what)
        mirrored = images.jpeg(ImageOps.mirror(half), quality=90)
        assert _distance(original, _fingerprint(mirrored)) > THRESHOLD, path.name
    names = list(prints)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert _distance(prints[a], prints[b]) > THRESHOLD, (a, b)
    # The corpus's WebP re-encode of the dragonfly is the same photo.
    webp = (CORPUS / "derived_dragonfly_q85.webp").read_bytes()
    assert _distance(prints["Dragonfly_by_Bolly.jpg"], _fingerprint(webp)) <= THRESHOLD


def test_facts_are_deterministic() -> None:
    data = (CORPUS / "derived_phone_pug_p3.jpg").read_bytes()
    a, b = render_upload(data, "thumbnail"), render_upload(data, "thumbnail")
    assert (a.placeholder, a.fingerprint) == (b.placeholder, b.fingerprint)
    assert a.files[(2, "jpeg")].data == b.files[(2, "jpeg")].data
