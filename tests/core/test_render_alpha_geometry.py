"""`kiray_imaging.render` on transparency (premultiplied, flattened onto white) and on geometry's edge cases:
extreme aspect ratios, never upscaling, the centre crop, custom presets, the facts of a rendition."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import pytest
from PIL import Image, ImageDraw, ImageStat

from kiray_imaging import (
    PRESETS,
    Preset,
    render,
)

if TYPE_CHECKING:
    from tests import images
    from tests.images import BLACK, BLUE, GREEN, RED, RGB, WHITE
else:
    import images
    from images import BLACK, BLUE, GREEN, RED, RGB, WHITE

if TYPE_CHECKING:
    from tests.core.render_checks import (
        ARROW,
        COLOUR,
        PRESET_NAMES,
        TOLERANCE,
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
        TOLERANCE,
        assert_quadrants,
        check_output,
        expected_size,
        pink,
    )


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
    assert images.close(images.mean_colour(im), pink(128), 3.0), images.mean_colour(im)


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
