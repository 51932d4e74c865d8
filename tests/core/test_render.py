"""`kiray_imaging.render` through its public Python API: sizes, orientation, colours, alpha, limits and errors.

Expected sizes are computed here from the preset rules, independently of geometry.rs; colours are checked by
decoding the output with Pillow and averaging regions well inside solid areas.
"""

from __future__ import annotations

import io
import math
import random
import struct
import threading
import time
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import pytest
from PIL import Image, ImageCms, ImageDraw, ImageOps, ImageStat

from kiray_imaging import (
    PRESETS,
    DecodeError,
    ImageError,
    LimitExceededError,
    Preset,
    Rendition,
    UnsupportedFormatError,
    render,
)

if TYPE_CHECKING:
    from tests import images
    from tests.images import BLACK, BLUE, GREEN, GREY, RED, RGB, WHITE
else:
    import images
    from images import BLACK, BLUE, GREEN, GREY, RED, RGB, WHITE

PRESET_NAMES = sorted(PRESETS)
Quadrant = Literal["tl", "tr", "bl", "br"]
QUADRANTS: tuple[Quadrant, ...] = ("tl", "tr", "bl", "br")
# Mean of a flat region after resampling and a q80 JPEG: a few levels off at most; a wrong colour is 100+ off.
TOLERANCE = 12.0
COLOUR: RGB = (0, 128, 255)


def _round(v: float) -> int:
    return max(1, math.floor(v + 0.5))


def expected_size(width: int, height: int, preset: Preset) -> tuple[int, int]:
    """The output size for a *displayed* `width`x`height` image: the product rules, restated."""
    bw, bh = preset.width, preset.height
    if preset.fit == "inside":
        scale = min(bw / width, bh / height, 1.0)
        return _round(width * scale), _round(height * scale)
    if width >= bw and height >= bh:
        return bw, bh
    # Smaller than the box on some side: never upscale, so the largest centred box-shaped rectangle it holds.
    return _round(min(bw, width, height * bw / bh)), _round(min(bh, height, width * bh / bw))


def jpeg_markers(data: bytes) -> list[int]:
    """The markers before the first scan, which is where metadata segments (APPn, COM) live."""
    assert data[:2] == b"\xff\xd8", data[:4]
    markers: list[int] = []
    at = 2
    while True:
        assert data[at] == 0xFF, f"no marker at {at}"
        marker = data[at + 1]
        markers.append(marker)
        if marker == 0xDA:
            return markers
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")


def check_output(r: Rendition, size: tuple[int, int]) -> Image.Image:
    """Asserts `r` is a JPEG of `size` with no metadata segments, and returns it decoded."""
    assert (r.width, r.height) == size
    assert (r.format, r.content_type) == ("jpeg", "image/jpeg")
    im = images.decode(r.data)
    assert im.format == "JPEG"
    assert im.size == size
    assert im.mode == "RGB"
    assert not im.getexif()
    assert "icc_profile" not in im.info
    assert "exif" not in im.info
    metadata = [hex(m) for m in jpeg_markers(r.data) if 0xE1 <= m <= 0xEF or m == 0xFE]
    assert metadata == [], "APPn/COM segments in the output"
    return im


def assert_quadrants(
    im: Image.Image, expected: Mapping[Quadrant, Sequence[float]], tolerance: float = TOLERANCE
) -> None:
    actual = {q: images.mean_colour(im, images.quadrant_box(im.size, q)) for q in expected}
    wrong = {
        q: tuple(round(c) for c in actual[q]) for q in expected if not images.close(actual[q], expected[q], tolerance)
    }
    assert not wrong, f"quadrant colours {wrong}, expected {expected}"


# --- the real-photo corpus --------------------------------------------------------------------------------------

CORPUS_PHOTOS = [
    ("seeding_by_Clemens_Engelhardt.jpg", "jpeg"),
    ("Dragonfly_by_Bolly.jpg", "jpeg"),
    ("Wine_by_Jakub_Mede.jpg", "jpeg"),
    ("Grey_plasma_gray.jpg", "jpeg"),
    ("derived_phone_pug_p3.jpg", "jpeg"),
    ("derived_dragonfly_q85.webp", "webp"),
    ("derived_cat_crop_16bit.png", "png"),
    ("derived_wine_alpha.png", "png"),
    ("iss634_anim.gif", "gif"),
]


@cache
def pillow_view(path: Path) -> tuple[tuple[int, int], tuple[int, int], Image.Image]:
    """Stored size, displayed size, and a small displayed copy flattened onto white, all from Pillow: an independent
    decoder to compare the core's colours against."""
    with Image.open(path) as im:
        stored = im.size
        displayed = stored[::-1] if im.getexif().get(0x0112, 1) >= 5 else stored
        if im.format == "JPEG":
            # DCT-domain 1/8 decode: only means are compared, and a 16 MP photo decodes in milliseconds.
            im.draft(im.mode, (im.width // 8, im.height // 8))
        shown = ImageOps.exif_transpose(im).convert("RGBA")
    shown.thumbnail((800, 800), Image.Resampling.BOX)
    return stored, displayed, Image.alpha_composite(Image.new("RGBA", shown.size, (*WHITE, 255)), shown).convert("RGB")


def centre_crop(image: Image.Image, aspect: float) -> Image.Image:
    """The largest centred region of `image` with `aspect` (width / height): what a cover preset keeps."""
    w, h = image.size
    cw, ch = (h * aspect, float(h)) if w / h > aspect else (float(w), w / aspect)
    return image.crop((round((w - cw) / 2), round((h - ch) / 2), round((w + cw) / 2), round((h + ch) / 2)))


@pytest.mark.parametrize("preset_name", PRESET_NAMES)
@pytest.mark.parametrize(("name", "source_format"), CORPUS_PHOTOS)
def test_corpus_photo(corpus: Path, name: str, source_format: str, preset_name: str) -> None:
    path = corpus / name
    preset = PRESETS[preset_name]
    stored, displayed, reference = pillow_view(path)

    r = render(path.read_bytes(), preset_name)

    assert r.source_format == source_format
    assert (r.source_width, r.source_height) == stored
    im = check_output(r, expected_size(*displayed, preset))
    if preset.fit == "cover":
        reference = centre_crop(reference, preset.width / preset.height)
    # The picture as a whole keeps its colour: no channel swap, no darkening, no lost alpha, no crop off-centre.
    assert images.close(images.mean_colour(im), images.mean_colour(reference), 4.0), (
        images.mean_colour(im),
        images.mean_colour(reference),
    )


# (AVIF is decoded: tests/core/test_avif.py.)
@pytest.mark.parametrize(("name", "message"), [("pug_iphone13pro.heic", "HEIF/HEIC")])
def test_corpus_heif_family_is_unsupported(corpus: Path, name: str, message: str) -> None:
    with pytest.raises(UnsupportedFormatError, match=f"^{message} input is not supported$"):
        render((corpus / name).read_bytes(), "thumbnail")


# --- EXIF orientation -------------------------------------------------------------------------------------------

# Not 4:3, and larger than both boxes, so both presets really resize and thumbnail also crops.
ORIENTED_SIZE = (1600, 1000)
ARROW: dict[Quadrant, RGB] = {"tl": RED, "tr": BLUE, "bl": GREY, "br": GREY}


@cache
def oriented_input(fmt: images.OrientedFormat, orientation: int) -> bytes:
    return images.oriented(images.arrow_picture(ORIENTED_SIZE), orientation, fmt)


@pytest.mark.parametrize("preset_name", PRESET_NAMES)
@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_orientation(fmt: images.OrientedFormat, orientation: int, preset_name: str) -> None:
    r = render(oriented_input(fmt, orientation), preset_name)

    assert r.orientation == orientation
    stored = ORIENTED_SIZE[::-1] if orientation >= 5 else ORIENTED_SIZE
    assert (r.source_width, r.source_height) == stored
    # The box applies to the displayed picture, so 5–8 give the same output size as 1–4.
    im = check_output(r, {"thumbnail": (400, 300), "medium": (1280, 800)}[preset_name])
    assert_quadrants(im, ARROW)


# --- every JPEG and PNG flavour ---------------------------------------------------------------------------------

JPEG_VARIANTS: list[tuple[str, bool, str]] = [
    ("4:4:4", False, "RGB"),
    ("4:2:2", False, "RGB"),
    ("4:2:0", False, "RGB"),
    ("4:4:4", True, "RGB"),
    ("4:2:2", True, "RGB"),
    ("4:2:0", True, "RGB"),
    ("4:2:0", False, "L"),
    ("4:2:0", True, "L"),
]
GREY_OF = {RED: 76, BLUE: 29, GREY: 128}  # ITU-R 601 luma, what Pillow's L conversion gives


@pytest.mark.parametrize("preset_name", PRESET_NAMES)
# Odd sizes leave partial MCUs at the right and bottom edges; the large one is decoded shrunk (DCT scaling).
@pytest.mark.parametrize("size", [(1001, 667), (3203, 2401)], ids=["small", "large"])
@pytest.mark.parametrize(
    ("subsampling", "progressive", "mode"),
    JPEG_VARIANTS,
    ids=[f"{m}-{s}-{'progressive' if p else 'baseline'}" for s, p, m in JPEG_VARIANTS],
)
def test_jpeg_variant(
    subsampling: Literal["4:4:4", "4:2:2", "4:2:0"],
    progressive: bool,
    mode: str,
    size: tuple[int, int],
    preset_name: str,
) -> None:
    picture = images.arrow_picture(size).convert(mode)
    data = images.jpeg(picture, subsampling=subsampling, progressive=progressive)

    r = render(data, preset_name)

    assert r.source_format == "jpeg"
    im = check_output(r, expected_size(*size, PRESETS[preset_name]))
    if mode == "L":
        expected = {q: (GREY_OF[c],) * 3 for q, c in ARROW.items()}
        assert_quadrants(im, expected)
    else:
        assert_quadrants(im, ARROW)


@pytest.mark.parametrize(("preset_name", "shrink"), [("thumbnail", 4), ("medium", 2)])
def test_jpeg_shrink_on_load(preset_name: str, shrink: int) -> None:
    # Each decode keeps at least 1.5 source px per output px: 4000x3000 → 400x300 is 1/10, so 1/4 (2.5 px) but not
    # 1/8 (1.25 px); → 1280x960 is 0.32, so 1/2 (1.56 px) but not 1/4 (0.78 px).
    r = render(images.jpeg(images.arrow_picture((4000, 3000))), preset_name)

    assert r.shrink_on_load == shrink
    assert_quadrants(check_output(r, expected_size(4000, 3000, PRESETS[preset_name])), ARROW)


@pytest.mark.parametrize(
    ("size", "shrink"),
    # Odd sizes where libjpeg's shrunk size (rounded up: ceil(w/d)) has a slightly different aspect ratio from the
    # stored one: planning on it would make the short side one pixel longer than the rule says.
    [((1921, 3855), 2), ((3855, 1921), 2), ((7683, 113), 4), ((4001, 2003), 2)],
    ids=lambda v: f"{v[0]}x{v[1]}" if isinstance(v, tuple) else str(v),
)
def test_jpeg_shrink_on_load_keeps_the_planned_size(size: tuple[int, int], shrink: int) -> None:
    picture = images.arrow_picture(size)

    jpeg = render(images.jpeg(picture), "medium")
    png = render(images.png(picture), "medium")

    assert jpeg.shrink_on_load == shrink
    assert (jpeg.width, jpeg.height) == (png.width, png.height) == expected_size(*size, PRESETS["medium"])
    assert_quadrants(check_output(jpeg, expected_size(*size, PRESETS["medium"])), ARROW)


def test_shrink_on_load_reports_the_denominator_used() -> None:
    # 13 columns at 1/8 decode to ceil(13/8) = 2, and 13/2 rounded up is 7: not a denominator libjpeg can use.
    r = render(images.jpeg(Image.new("RGB", (13, 20000), COLOUR)), "medium")

    assert r.shrink_on_load == 8
    assert images.close(images.mean_colour(check_output(r, (1, 1280))), COLOUR, TOLERANCE)


def _pink(alpha: int, over: RGB = RED) -> tuple[float, ...]:
    """`over` at `alpha` composited on white."""
    return tuple(c * alpha / 255 + 255 * (255 - alpha) / 255 for c in over)


PNG_SIZE = (801, 601)
PALETTE = [RED, BLUE, GREY, GREEN]
PNG_CASES: list[tuple[str, Any, tuple[tuple[float, ...], ...]]] = [
    # (id, image factory, expected displayed colours tl, tr, bl, br)
    ("RGB", lambda: images.png(images.quadrants(PNG_SIZE, "RGB", RED, BLUE, GREY, GREEN)), (RED, BLUE, GREY, GREEN)),
    (
        "RGBA-opaque",
        lambda: images.png(images.quadrants(PNG_SIZE, "RGBA", (*RED, 255), (*BLUE, 255), (*GREY, 255), (*GREEN, 255))),
        (RED, BLUE, GREY, GREEN),
    ),
    (
        "RGBA",
        lambda: images.png(images.quadrants(PNG_SIZE, "RGBA", (*RED, 255), (*BLUE, 0), (*RED, 128), (0, 0, 0, 0))),
        (RED, WHITE, _pink(128), WHITE),
    ),
    (
        "L",
        lambda: images.png(images.quadrants(PNG_SIZE, "L", 0, 255, 100, 200)),
        ((0, 0, 0), WHITE, (100, 100, 100), (200, 200, 200)),
    ),
    (
        "LA",
        lambda: images.png(images.quadrants(PNG_SIZE, "LA", (0, 255), (0, 0), (0, 128), (200, 255))),
        (BLACK, WHITE, _pink(128, BLACK), (200, 200, 200)),
    ),
    (
        "P",
        lambda: images.png(images.palette_image(PNG_SIZE, PALETTE, 0, 1, 2, 3)),
        (RED, BLUE, GREY, GREEN),
    ),
    (
        "P-tRNS-index",
        lambda: images.png(images.palette_image(PNG_SIZE, PALETTE, 0, 1, 2, 3), transparency=1),
        (RED, WHITE, GREY, GREEN),
    ),
    (
        "P-tRNS-alpha",
        lambda: images.png(images.palette_image(PNG_SIZE, PALETTE, 0, 1, 2, 3), transparency=bytes([255, 0, 128, 255])),
        (RED, WHITE, _pink(128, GREY), GREEN),
    ),
    (
        "1-bit",
        lambda: images.png(images.quadrants(PNG_SIZE, "1", 0, 1, 1, 0)),
        (BLACK, WHITE, WHITE, BLACK),
    ),
    (
        "L-tRNS",
        lambda: images.png(images.quadrants(PNG_SIZE, "L", 0, 255, 100, 200), transparency=100),
        (BLACK, WHITE, WHITE, (200, 200, 200)),
    ),
    (
        "RGB-tRNS",
        lambda: images.png(images.quadrants(PNG_SIZE, "RGB", RED, BLUE, GREY, GREEN), transparency=BLUE),
        (RED, WHITE, GREY, GREEN),
    ),
    (
        "I;16",
        # 16-bit samples are reduced to their high byte: 40000 = 0x9C40 → 156, 10000 = 0x2710 → 39.
        lambda: images.png(images.quadrants(PNG_SIZE, "I;16", 0, 65535, 40000, 10000)),
        (BLACK, WHITE, (156, 156, 156), (39, 39, 39)),
    ),
    (
        "RGB-16bit",
        lambda: images.png16(PNG_SIZE, (65535, 0, 0), (0, 0, 65535), (0x8080, 0x8080, 0x8080), (0, 40000, 0)),
        (RED, BLUE, GREY, (0, 156, 0)),
    ),
    (
        "RGBA-16bit",
        lambda: images.png16(
            PNG_SIZE, (65535, 0, 0, 65535), (0, 0, 65535, 0), (65535, 0, 0, 0x8080), (0, 40000, 0, 65535)
        ),
        (RED, WHITE, _pink(128), (0, 156, 0)),
    ),
    (
        "P-2bit",
        # Four colours: Pillow packs the indices two bits each.
        lambda: images.png(images.palette_image(PNG_SIZE, PALETTE, 0, 1, 2, 3), bits=2),
        (RED, BLUE, GREY, GREEN),
    ),
    # Adam7 at a size where every pass is non-empty and the last columns and rows fall in partial 8x8 blocks.
    (
        "RGB-Adam7",
        lambda: images.adam7_png(images.quadrants((203, 157), "RGB", RED, BLUE, GREY, GREEN)),
        (RED, BLUE, GREY, GREEN),
    ),
    (
        "RGBA-Adam7",
        lambda: images.adam7_png(
            images.quadrants((203, 157), "RGBA", (*RED, 255), (*BLUE, 0), (*RED, 128), (*GREEN, 255))
        ),
        (RED, WHITE, _pink(128), GREEN),
    ),
    (
        "L-Adam7",
        lambda: images.adam7_png(images.quadrants((203, 157), "L", 0, 255, 100, 200)),
        (BLACK, WHITE, (100, 100, 100), (200, 200, 200)),
    ),
]


@pytest.mark.parametrize("preset_name", PRESET_NAMES)
@pytest.mark.parametrize(("factory", "colours"), [c[1:] for c in PNG_CASES], ids=[c[0] for c in PNG_CASES])
def test_png_mode(factory: Any, colours: tuple[tuple[float, ...], ...], preset_name: str) -> None:
    data: bytes = factory()
    with Image.open(io.BytesIO(data)) as source:
        size = source.size

    r = render(data, preset_name)

    assert r.source_format == "png"
    assert (r.source_width, r.source_height) == size
    im = check_output(r, expected_size(*size, PRESETS[preset_name]))
    assert_quadrants(im, dict(zip(QUADRANTS, colours)))


@pytest.mark.parametrize("preset_name", PRESET_NAMES)
@pytest.mark.parametrize("lossless", [True, False], ids=["lossless", "lossy"])
def test_webp(lossless: bool, preset_name: str) -> None:
    r = render(images.webp(images.arrow_picture((1001, 667)), lossless=lossless), preset_name)

    assert r.source_format == "webp"
    assert_quadrants(check_output(r, expected_size(1001, 667, PRESETS[preset_name])), ARROW)


FALLBACK_CMYK_PROFILE = Path(__file__).resolve().parents[2] / "rust_core" / "profiles" / "fogra39l-coated.icc"


def test_cmyk_jpeg_without_a_profile_gets_the_press_fallback() -> None:
    # Pillow writes CMYK the way Photoshop does: Adobe APP14 marker, values stored inverted.
    inks: dict[Quadrant, tuple[int, int, int, int]] = {
        "tl": (0, 255, 255, 0),
        "tr": (255, 255, 0, 0),
        "bl": (0, 0, 0, 128),
        "br": (0, 0, 0, 0),
    }
    cmyk = images.quadrants((801, 601), "CMYK", *inks.values())
    # LittleCMS with the profile the core falls back to (rust_core/profiles/README.md), relative colorimetric.
    press = ImageCms.getOpenProfile(str(FALLBACK_CMYK_PROFILE))
    srgb = ImageCms.createProfile("sRGB")
    swatches = Image.new("CMYK", (len(inks), 1))
    swatches.putdata(list(inks.values()))
    expected_image = ImageCms.profileToProfile(swatches, press, srgb, outputMode="RGB",
                                               renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)  # fmt: skip
    assert expected_image is not None
    expected = {q: cast("tuple[int, int, int]", expected_image.getpixel((i, 0))) for i, q in enumerate(inks)}
    # A press's red is not the screen's: the naive (1 − C)(1 − K) would give (255, 0, 0) and (0, 0, 255).
    assert not images.close(expected["tl"], RED, 20)
    assert not images.close(expected["tr"], BLUE, 20)

    r = render(images.encode(cmyk, "JPEG", quality=92), "thumbnail")

    assert_quadrants(check_output(r, (400, 300)), expected)


def test_big_endian_exif_orientation() -> None:
    # Many cameras write Motorola-order EXIF; Pillow would write Intel order, so this block is built by hand.
    exif = b"Exif\0\0MM\0*\0\0\0\x08\0\x01" + struct.pack(">HHIHH", 0x0112, 3, 1, 6, 0) + b"\0\0\0\0"
    stored = images.arrow_picture((600, 400)).transpose(Image.Transpose.ROTATE_90)

    r = render(images.encode(stored, "JPEG", quality=92, exif=exif), "medium")

    assert r.orientation == 6
    assert_quadrants(check_output(r, (600, 400)), ARROW)


def test_quality_reaches_the_encoder() -> None:
    data = images.png(images.noise((800, 600)))
    low, high = (Preset(name=f"q{q}", width=400, height=300, fit="cover", quality=q) for q in (10, 95))

    small, large = render(data, low), render(data, high)

    assert len(small.data) * 3 < len(large.data), (len(small.data), len(large.data))


@pytest.mark.parametrize("lossless", [True, False], ids=["lossless", "lossy"])
def test_animated_webp_renders_its_first_frame(lossless: bool) -> None:
    first, second = images.arrow_picture((640, 480)), Image.new("RGB", (640, 480), GREEN)
    data = images.encode(first, "WEBP", save_all=True, append_images=[second], lossless=lossless, duration=100)

    r = render(data, "medium")

    assert r.source_format == "webp"
    assert_quadrants(check_output(r, (640, 480)), ARROW)


@pytest.mark.parametrize("preset_name", PRESET_NAMES)
def test_gif_renders_its_first_frame(preset_name: str) -> None:
    first = images.palette_image((500, 400), [RED, BLUE, GREY], 0, 1, 2, 2)
    second = images.palette_image((500, 400), [GREEN], 0, 0, 0, 0)

    r = render(images.gif([first, second]), preset_name)

    assert r.source_format == "gif"
    assert_quadrants(check_output(r, expected_size(500, 400, PRESETS[preset_name])), ARROW)


# --- alpha ------------------------------------------------------------------------------------------------------

AlphaFormat = Literal["png", "webp-lossless", "webp-lossy", "gif"]


def _with_alpha(fmt: AlphaFormat, size: tuple[int, int], draw: Any, colour: RGB) -> bytes:
    """Transparent *black* with `draw(ImageDraw, fill)` opaque in `colour`: transparent pixels that are black are
    the worst case for a resizer that forgets to premultiply."""
    if fmt == "gif":
        im = Image.new("P", size, 0)
        im.putpalette([*BLACK, *colour])
        draw(ImageDraw.Draw(im), 1)
        return images.gif([im], transparency=0)
    rgba = Image.new("RGBA", size, (0, 0, 0, 0))
    draw(ImageDraw.Draw(rgba), (*colour, 255))
    if fmt == "png":
        return images.png(rgba)
    return images.webp(rgba, lossless=fmt == "webp-lossless")


@pytest.mark.parametrize("preset_name", PRESET_NAMES)
@pytest.mark.parametrize("fmt", ["png", "webp-lossless", "webp-lossy", "gif"])
def test_transparent_regions_become_white(fmt: AlphaFormat, preset_name: str) -> None:
    size = (1600, 1200)
    data = _with_alpha(fmt, size, lambda d, fill: d.rectangle((800, 0, 1599, 599), fill=fill), RED)

    im = check_output(render(data, preset_name), expected_size(*size, PRESETS[preset_name]))

    assert_quadrants(im, {"tl": WHITE, "tr": RED, "bl": WHITE, "br": WHITE})


@pytest.mark.parametrize("fmt", ["png", "webp-lossless"])
def test_half_transparent_red_is_pink(fmt: str) -> None:
    rgba = Image.new("RGBA", (640, 480), (*RED, 128))
    data = images.png(rgba) if fmt == "png" else images.webp(rgba, lossless=True)

    im = check_output(render(data, "thumbnail"), (400, 300))

    # Red at alpha 128/255 over white is (255, 127, 127); JPEG keeps a flat colour within a level or two.
    assert images.close(images.mean_colour(im), _pink(128), 3.0), images.mean_colour(im)


@pytest.mark.parametrize("preset_name", PRESET_NAMES)
@pytest.mark.parametrize("fmt", ["png", "webp-lossless", "gif"])
def test_no_dark_fringe_around_opaque_shapes(fmt: AlphaFormat, preset_name: str) -> None:
    # White on transparent black flattened onto white is white everywhere, edges included; a straight-alpha resize
    # mixes the black in and leaves a grey ring (around 190 where alpha is one half).
    size = (2000, 1500)
    data = _with_alpha(fmt, size, lambda d, fill: d.ellipse((300, 200, 1700, 1300), fill=fill), WHITE)

    im = check_output(render(data, preset_name), expected_size(*size, PRESETS[preset_name]))

    darkest = min(low for low, _ in ImageStat.Stat(im).extrema)
    assert darkest >= 250


# --- geometry edge cases ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset_name", PRESET_NAMES)
@pytest.mark.parametrize("size", [(20000, 1), (1, 20000), (65500, 2), (2, 65500)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_extreme_aspect_ratios(fmt: str, size: tuple[int, int], preset_name: str) -> None:
    preset = PRESETS[preset_name]
    data = images.encode(Image.new("RGB", size, COLOUR), fmt)

    im = check_output(render(data, preset_name), expected_size(*size, preset))

    assert 1 <= im.width <= preset.width
    assert 1 <= im.height <= preset.height
    assert images.close(images.mean_colour(im), COLOUR, TOLERANCE), images.mean_colour(im)


@pytest.mark.parametrize(
    ("size", "thumbnail", "medium"),
    [
        ((200, 100), (133, 100), (200, 100)),
        ((100, 200), (100, 75), (100, 200)),
        ((300, 400), (300, 225), (300, 400)),
        ((400, 300), (400, 300), (400, 300)),
        ((1, 1), (1, 1), (1, 1)),
        ((1280, 1280), (400, 300), (1280, 1280)),
        ((1281, 1), (1, 1), (1280, 1)),
    ],
    ids=lambda v: f"{v[0]}x{v[1]}",
)
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_never_upscales(fmt: str, size: tuple[int, int], thumbnail: tuple[int, int], medium: tuple[int, int]) -> None:
    data = images.encode(images.arrow_picture(size), fmt)
    for preset_name, want in (("thumbnail", thumbnail), ("medium", medium)):
        # The literal sizes are the spec; expected_size must agree with them, or it is the helper that is wrong.
        assert expected_size(*size, PRESETS[preset_name]) == want
        check_output(render(data, preset_name), want)


def _stripes(size: tuple[int, int], colours: Sequence[RGB], cuts: Sequence[int]) -> Image.Image:
    """Bands of `colours` along the long side, the second starting at `cuts[0]`, the third at `cuts[1]`."""
    w, h = size
    im = Image.new("RGB", size, colours[0])
    for colour, start in zip(colours[1:], cuts):
        im.paste(colour, (start, 0, w, h) if w > h else (0, start, w, h))
    return im


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize(
    ("size", "cuts"),
    # The 4:3 window of a 1200x300 picture is its middle 400 columns; of a 400x1200 one, its middle 300 rows.
    [((1200, 300), (400, 800)), ((400, 1200), (450, 750))],
    ids=["wide", "tall"],
)
def test_cover_crops_the_centre(
    size: tuple[int, int], cuts: tuple[int, int], fmt: images.OrientedFormat, orientation: int
) -> None:
    picture = _stripes(size, [RED, GREEN, BLUE], cuts)

    im = check_output(render(images.oriented(picture, orientation, fmt), "thumbnail"), (400, 300))

    # Only the green band is kept: an off-centre crop brings in red or blue at one side.
    for box in ((0, 0, 40, 300), (180, 0, 220, 300), (360, 0, 400, 300), (0, 0, 400, 30), (0, 270, 400, 300)):
        assert images.close(images.mean_colour(im, box), GREEN, 30.0), (box, images.mean_colour(im, box))


def test_custom_preset() -> None:
    data = images.png(images.arrow_picture((600, 400)))

    square = render(data, Preset(name="square", width=100, height=100, fit="cover", quality=90))
    narrow = render(data, Preset(name="narrow", width=50, height=400, fit="inside", quality=50))

    assert_quadrants(check_output(square, (100, 100)), ARROW)
    assert_quadrants(check_output(narrow, (50, 33)), ARROW)


def test_rendition_facts() -> None:
    data = images.png(images.arrow_picture((600, 400)))

    r = render(bytearray(data), "thumbnail")

    assert (r.source_format, r.source_width, r.source_height) == ("png", 600, 400)
    assert (r.orientation, r.shrink_on_load) == (1, 1)
    assert {"decode", "resize", "orient", "encode"} <= set(r.timings_ms)
    assert all(v >= 0 for v in r.timings_ms.values())


# --- damaged and hostile input ----------------------------------------------------------------------------------


@cache
def good_jpeg(progressive: bool = False) -> bytes:
    return images.jpeg(images.arrow_picture((640, 480)), progressive=progressive)


def _after_first_sos(data: bytes, *, header: bool) -> int:
    sos = data.index(b"\xff\xda")
    return sos + 2 + (int.from_bytes(data[sos + 2 : sos + 4], "big") if header else 0)


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(lambda d: d[: len(d) // 2], id="half"),
        pytest.param(lambda d: d[: _after_first_sos(d, header=False)], id="after-SOS-marker"),
        pytest.param(lambda d: d[: _after_first_sos(d, header=True)], id="after-SOS-header"),
        pytest.param(lambda d: d[: d.index(b"\xff\xda")], id="before-SOS"),
        # Every entropy-coded byte is there, only the 2-byte EOI is gone. libjpeg could show all the pixels, but a
        # missing EOI is exactly what a cut at a scan boundary looks like (for a progressive file the picture is
        # then complete-looking but unrefined), so the core treats it as the truncation it usually is.
        pytest.param(lambda d: d[:-2], id="EOI-removed"),
    ],
)
@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
def test_truncated_jpeg_is_a_decode_error(cut: Any, progressive: bool) -> None:
    data = good_jpeg(progressive)
    assert data.endswith(b"\xff\xd9")

    with pytest.raises(DecodeError, match=r"^JPEG: Premature end of JPEG file$"):
        render(cut(data), "thumbnail")


def test_progressive_jpeg_cut_between_scans_is_a_decode_error() -> None:
    data = good_jpeg(progressive=True)
    last_scan = data.rindex(b"\xff\xda")

    with pytest.raises(DecodeError, match="Premature end"):
        render(data[:last_scan], "thumbnail")


def test_jpeg_magic_only_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match=r"^JPEG: "):
        render(b"\xff\xd8\xff", "thumbnail")


def test_trailing_bytes_after_jpeg_eoi_are_ignored() -> None:
    # Some phones append data after EOI; the picture is whole, so this is not damage.
    check_output(render(good_jpeg() + b"trailer" * 10, "thumbnail"), (400, 300))


@cache
def good_png() -> bytes:
    return images.png(images.arrow_picture((640, 480)))


def _flip(data: bytes, at: int) -> bytes:
    damaged = bytearray(data)
    damaged[at] ^= 0xFF
    return bytes(damaged)


def _idat_crc_offset(data: bytes) -> int:
    at = data.index(b"IDAT")
    return at + 4 + int.from_bytes(data[at - 4 : at], "big")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        pytest.param(lambda d: d[: len(d) // 2], "PNG: unexpected end of file", id="half"),
        pytest.param(lambda d: d[:-12], "PNG: unexpected end of file", id="IEND-removed"),
        pytest.param(lambda d: d[:33], "PNG: unexpected end of file", id="header-only"),
        pytest.param(lambda d: _flip(d, 29), "PNG: CRC error", id="IHDR-CRC"),
        pytest.param(lambda d: _flip(d, _idat_crc_offset(d)), "PNG: CRC error", id="IDAT-CRC"),
        pytest.param(lambda d: _flip(d, d.index(b"IDAT") + 20), "PNG: ", id="IDAT-data"),
    ],
)
def test_damaged_png_is_a_decode_error(damage: Any, message: str) -> None:
    with pytest.raises(DecodeError, match=f"^{message}"):
        render(damage(good_png()), "thumbnail")


@pytest.mark.parametrize("lossless", [True, False], ids=["lossless", "lossy"])
def test_truncated_webp_is_a_decode_error(lossless: bool) -> None:
    data = images.webp(images.noise((300, 200)), lossless=lossless)
    with pytest.raises(DecodeError, match=r"^WebP: "):
        render(data[: len(data) // 2], "thumbnail")


def test_truncated_gif_is_a_decode_error() -> None:
    data = images.gif([images.palette_image((500, 400), [RED, BLUE, GREY], 0, 1, 2, 2)])
    with pytest.raises(DecodeError, match=r"^GIF: "):
        render(data[: len(data) // 2], "thumbnail")


def test_empty_input_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match=r"^input is empty \(0 bytes\)$"):
        render(b"", "thumbnail")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"hello, world\n", "not a supported image .* starts with 68 65 6c 6c 6f 2c 20 77$", id="text"),
        pytest.param(b"\n<!DOCTYPE html><html><body>hi</body></html>", "^HTML input is not supported$", id="html"),
        pytest.param(b"<svg xmlns='http://www.w3.org/2000/svg'/>", "^SVG/XML input is not supported$", id="svg"),
        pytest.param(b"%PDF-1.7\n", "^PDF input is not supported$", id="pdf"),
        pytest.param(b"BM" + b"\0" * 60, "^BMP input is not supported$", id="bmp"),
        # Seeded, and the first byte forced to one no supported format starts with.
        pytest.param(b"\x00" + random.Random(1234).randbytes(4095), "not a supported image", id="random"),
        pytest.param(b"\xff\xd8", "not a supported image", id="half-JPEG-magic"),
        pytest.param(b"\x89PNG\r\n", "not a supported image", id="half-PNG-magic"),
    ],
)
def test_not_an_image_is_unsupported(data: bytes, message: str) -> None:
    with pytest.raises(UnsupportedFormatError, match=message):
        render(data, "thumbnail")


def _patched(data: bytes, at: int, value: bytes) -> bytes:
    return data[:at] + value + data[at + len(value) :]


def _jpeg_declaring(width: int, height: int) -> bytes:
    data = good_jpeg()
    sof = data.index(b"\xff\xc0")
    return _patched(data, sof + 5, struct.pack(">HH", height, width))


def _gif_declaring(width: int, height: int) -> bytes:
    data = images.gif([images.palette_image((50, 40), [RED, BLUE], 0, 1, 1, 0)])
    return _patched(data, 6, struct.pack("<HH", width, height))


def _webp_declaring(width: int, height: int) -> bytes:
    # An EXIF chunk makes Pillow write the extended (VP8X) header, whose canvas size is 24-bit "minus one" fields.
    data = images.oriented(images.arrow_picture((64, 48)), 1, "WEBP")
    assert data[12:16] == b"VP8X"
    return _patched(data, 24, (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little"))


@pytest.mark.parametrize(
    ("data", "size"),
    [
        pytest.param(images.png_bomb(100_000, 100_000), "100000x100000", id="png"),
        pytest.param(_jpeg_declaring(60_000, 60_000), "60000x60000", id="jpeg"),
        pytest.param(_gif_declaring(65_535, 65_535), "65535x65535", id="gif"),
        pytest.param(_webp_declaring(16_384, 16_384), "16384x16384", id="webp"),
    ],
)
def test_huge_declared_size_is_refused_from_the_header(data: bytes, size: str) -> None:
    # The message names the declared size: refused by the core's own header check, before any pixel buffer.
    with pytest.raises(LimitExceededError, match=f"^image is {size} = \\d+ pixels, more than the limit of 50000000"):
        render(data, "thumbnail")


def test_gif_frame_larger_than_its_screen_is_a_limit_error() -> None:
    # The screen (50x40) passes the header check; the frame descriptor claims 65535x65535, 17 GB as RGBA.
    data = images.gif([images.palette_image((50, 40), [RED, BLUE], 0, 1, 1, 0)])
    descriptor = data.index(b"\x2c\0\0\0\0\x32\0\x28\0")

    with pytest.raises(LimitExceededError, match=r"^GIF: "):
        render(_patched(data, descriptor + 5, struct.pack("<HH", 65_535, 65_535)), "thumbnail")


def test_max_pixels_override() -> None:
    data = good_png()
    check_output(render(data, "thumbnail", max_pixels=640 * 480), (400, 300))
    with pytest.raises(LimitExceededError, match="more than the limit of 307199 pixels"):
        render(data, "thumbnail", max_pixels=640 * 480 - 1)


def test_max_input_bytes_override() -> None:
    data = good_jpeg()
    check_output(render(data, "thumbnail", max_input_bytes=len(data)), (400, 300))
    with pytest.raises(
        LimitExceededError, match=f"^input is {len(data)} bytes, more than the limit of {len(data) - 1}"
    ):
        render(data, "thumbnail", max_input_bytes=len(data) - 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"preset": "large"}, "expected a preset in"),
        ({"preset": ""}, "expected a preset in"),
        ({"format": "png"}, "expected format in"),
        ({"format": "JPEG"}, "expected format in"),
        ({"max_pixels": 0}, "expected max_pixels ≥ 1"),
        ({"max_pixels": -5}, "expected max_pixels ≥ 1"),
        ({"max_input_bytes": 0}, "expected max_input_bytes ≥ 1"),
        # Too big for the native integer: a ValueError here, not an OverflowError from the boundary.
        ({"max_pixels": 2**70}, "expected max_pixels < 2\\*\\*63"),
        ({"format": "webp", "max_input_bytes": 2**64}, "expected max_input_bytes < 2\\*\\*63"),
        # A well-formed Preset the core still refuses: its ValueError comes across the native boundary.
        ({"preset": Preset(name="huge", width=20_000, height=10, fit="inside", quality=80)}, "16384x16384"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs: dict[str, Any], message: str) -> None:
    kwargs.setdefault("preset", "thumbnail")
    with pytest.raises(ValueError, match=message):
        render(good_png(), **kwargs)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": ""}, "expected a preset name"),
        ({"width": 0}, "at least 1x1"),
        ({"height": -1}, "at least 1x1"),
        ({"fit": "fill"}, "expected fit"),
        ({"quality": 0}, "quality in 1..100"),
        ({"quality": 101}, "quality in 1..100"),
    ],
)
def test_bad_preset_fields_raise_value_error(fields: dict[str, Any], message: str) -> None:
    good: dict[str, Any] = {"name": "p", "width": 10, "height": 10, "fit": "cover", "quality": 80}
    with pytest.raises(ValueError, match=message):
        Preset(**{**good, **fields})


@pytest.mark.parametrize("data", ["text", None, memoryview(b"\xff\xd8\xff"), [0xFF, 0xD8], 42])
def test_non_bytes_raise_type_error(data: object) -> None:
    with pytest.raises(TypeError, match=f"^expected bytes, got {type(data).__name__}$"):
        render(data, "thumbnail")  # type: ignore[arg-type]


def test_error_classes() -> None:
    for cls in (DecodeError, UnsupportedFormatError, LimitExceededError):
        assert issubclass(cls, ImageError)
    assert issubclass(ImageError, Exception)
    # Handlers tell a bad upload (ImageError) from a bug in the caller (ValueError): the two must not overlap.
    assert not issubclass(ImageError, ValueError)


# Not tested: that a Rust panic never escapes as PyO3's PanicException. Every known panic path (libjpeg errors) is
# caught and typed above, and there is no input known to reach an uncaught one.


# --- concurrency ------------------------------------------------------------------------------------------------


def test_concurrent_renders_match_a_sequential_one() -> None:
    # Large and detailed, so two renders overlap in the native code (the GIL is released there) and any shared
    # mutable state between them would change bytes.
    data = images.jpeg(images.noise((3000, 2000)), quality=90)
    expected = {name: render(data, name).data for name in PRESET_NAMES}
    assert render(data, "thumbnail").data == expected["thumbnail"], "a render is not deterministic"

    barrier = threading.Barrier(2)
    results: dict[str, list[bytes]] = {name: [] for name in PRESET_NAMES}
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            barrier.wait()
            for _ in range(3):
                results[name].append(render(data, name).data)
        except BaseException as e:  # surfaced below; an exception in a thread would otherwise be lost
            errors.append(e)

    threads = [threading.Thread(target=work, args=(name,)) for name in PRESET_NAMES]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    for name in PRESET_NAMES:
        assert results[name] == [expected[name]] * 3, name


def test_the_gil_is_released_while_rendering() -> None:
    # Another Python thread can only run inside a render's time span if the core let go of the GIL; holding it, the
    # native call would freeze every other thread for its whole duration (the batch CLI's worker pool relies on it).
    data = images.jpeg(images.noise((3000, 2000)), quality=90)
    done = threading.Event()
    ticks: list[float] = []

    def tick() -> None:
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    ticker = threading.Thread(target=tick)
    ticker.start()
    spans = []
    try:
        for _ in range(3):
            started = time.perf_counter()
            render(data, "medium")
            spans.append((started, time.perf_counter()))
    finally:
        done.set()
        ticker.join()
    for started, ended in spans:
        # The middle half of the span: well clear of the Python code just before and after the native call.
        quarter = (ended - started) / 4
        inside = [t for t in ticks if started + quarter < t < ended - quarter]
        assert inside, f"no other thread ran during a {(ended - started) * 1000:.0f} ms render"
