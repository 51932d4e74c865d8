"""`kiray_imaging.render` through its public Python API: sizes, orientation, colours, alpha, limits and errors.

Expected sizes are computed here from the preset rules, independently of geometry.rs; colours are checked by
decoding the output with Pillow and averaging regions well inside solid areas.


This file: real photos, EXIF orientation and every input format; alpha and geometry, damaged input and threads
have files of their own (test_render_*.py).
"""

from __future__ import annotations

import io
import struct
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import pytest
from PIL import Image, ImageCms, ImageOps

from kiray_imaging import (
    PRESETS,
    Preset,
    UnsupportedFormatError,
    render,
)

if TYPE_CHECKING:
    from tests import images
    from tests.images import BLACK, BLUE, GREEN, GREY, RED, WHITE
else:
    import images
    from images import BLACK, BLUE, GREEN, GREY, RED, WHITE

if TYPE_CHECKING:
    from tests.core.render_checks import (
        ARROW,
        COLOUR,
        PRESET_NAMES,
        QUADRANTS,
        TOLERANCE,
        Quadrant,
        assert_quadrants,
        check_output,
        expected_size,
        pink,
    )
else:
    from render_checks import (
        ARROW,
        COLOUR,
        PRESET_NAMES,
        QUADRANTS,
        TOLERANCE,
        Quadrant,
        assert_quadrants,
        check_output,
        expected_size,
        pink,
    )


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
        (RED, WHITE, pink(128), WHITE),
    ),
    (
        "L",
        lambda: images.png(images.quadrants(PNG_SIZE, "L", 0, 255, 100, 200)),
        ((0, 0, 0), WHITE, (100, 100, 100), (200, 200, 200)),
    ),
    (
        "LA",
        lambda: images.png(images.quadrants(PNG_SIZE, "LA", (0, 255), (0, 0), (0, 128), (200, 255))),
        (BLACK, WHITE, pink(128, BLACK), (200, 200, 200)),
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
        (RED, WHITE, pink(128, GREY), GREEN),
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
        (RED, WHITE, pink(128), (0, 156, 0)),
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
        (RED, WHITE, pink(128), GREEN),
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
