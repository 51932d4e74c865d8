"""Hostile and awkward uploads (issue 5) by structure: JPEG variants libjpeg lacks, progressive JPEGs with
thousands of scans, zero-sized sides, bad PNG CRCs, animations, extreme aspect ratios. Each in the sandbox, held
to the checks of hostile_checks.py."""

from __future__ import annotations

import struct
from functools import cache
from typing import TYPE_CHECKING

import pytest
from PIL import Image

if TYPE_CHECKING:
    from tests import images
    from tests.hostile import sandbox
    from tests.images import BLUE, GREY, RED, WHITE
else:
    import sandbox

    import images
    from images import BLUE, GREY, RED, WHITE

if TYPE_CHECKING:
    from tests.hostile.hostile_checks import (
        DECODE,
        LIMIT,
        OK,
        SMALL_RSS,
        UNSUPPORTED,
        Factory,
        _crc_offset,
        _flip,
        _patched,
        arrow_gif,
        arrow_jpeg,
        arrow_png,
        check,
        expected_size,
    )
else:
    from hostile_checks import (
        DECODE,
        LIMIT,
        OK,
        SMALL_RSS,
        UNSUPPORTED,
        Factory,
        _crc_offset,
        _flip,
        _patched,
        arrow_gif,
        arrow_jpeg,
        arrow_png,
        check,
        expected_size,
    )


# --- JPEG variants libjpeg was built without ---------------------------------------------------------------------


JPEG_VARIANTS = [
    # SOF1 is extended sequential Huffman: with 8-bit samples it is an ordinary JPEG and decodes.
    pytest.param(0xC1, 8, OK, None, id="sof1-8-bit"),
    pytest.param(0xC1, 12, UNSUPPORTED, "^JPEG: 12-bit samples are not supported", id="sof1-12-bit"),
    pytest.param(0xC0, 12, UNSUPPORTED, "^JPEG: 12-bit samples are not supported", id="sof0-12-bit"),
    pytest.param(0xC1, 16, UNSUPPORTED, "^JPEG: 16-bit samples are not supported", id="sof1-16-bit"),
    pytest.param(0xC3, 8, UNSUPPORTED, "^JPEG: lossless JPEG is not supported", id="sof3-lossless"),
    pytest.param(0xC9, 8, UNSUPPORTED, "^JPEG: arithmetic-coded JPEG is not supported$", id="sof9-arithmetic"),
    pytest.param(
        0xCA, 8, UNSUPPORTED, "^JPEG: arithmetic-coded JPEG is not supported$", id="sof10-arithmetic-progressive"
    ),
    pytest.param(
        0xCB, 8, UNSUPPORTED, "^JPEG: arithmetic-coded lossless JPEG is not supported", id="sof11-arithmetic-lossless"
    ),
    pytest.param(0xC5, 8, UNSUPPORTED, "^JPEG: hierarchical JPEG is not supported", id="sof5-hierarchical"),
    pytest.param(0xCD, 8, UNSUPPORTED, "^JPEG: arithmetic-coded hierarchical JPEG", id="sof13-arithmetic-hierarchical"),
    # SOF55 opens a JPEG-LS frame, another codec behind the same FF D8 magic.
    pytest.param(0xF7, 8, UNSUPPORTED, "^JPEG: JPEG-LS is not supported$", id="jpeg-ls"),
]


@pytest.mark.parametrize(("marker", "precision", "kind", "message"), JPEG_VARIANTS)
def test_jpeg_variant(marker: int, precision: int, kind: str, message: str | None) -> None:
    data = images.jpeg_with_sof(arrow_jpeg(), marker, precision=precision)
    check(sandbox.run(data), kind, message, max_rss=SMALL_RSS)


# --- progressive JPEG with thousands of scans ---------------------------------------------------------------------


SCANS = [
    # 883 valid scans over 49 MP (one component): each costs a few bytes and a pass over 765 000 blocks. Without
    # a scan limit this took ~12 s of CPU; the limit for an image that size is 52 scans.
    pytest.param(
        lambda: images.progressive_scan_bomb(7000, 7000, 1),
        LIMIT,
        "^JPEG: more than 52 progressive scans",
        id="883-scans-7000x7000-grey",
    ),
    # The largest 4:4:4 colour image whose coefficients fit the memory budget (223 MB): the floor of 32 scans.
    pytest.param(
        lambda: images.progressive_scan_bomb(6100, 6100, 3),
        LIMIT,
        "^JPEG: more than 32 progressive scans",
        id="2647-scans-6100x6100-colour",
    ),
    pytest.param(
        lambda: images.progressive_scan_bomb(2000, 2000, 3),
        LIMIT,
        "^JPEG: more than 100 progressive scans",
        id="2647-scans-2000x2000-colour",
    ),
    # The boundary at 2000x2000, where the limit is 100: exactly 100 scans is a (flat grey) image, 101 is refused.
    pytest.param(lambda: images.progressive_scan_bomb(2000, 2000, 3, scans=100), OK, None, id="100-scans"),
    pytest.param(
        lambda: images.progressive_scan_bomb(2000, 2000, 3, scans=101),
        LIMIT,
        "^JPEG: more than 100 progressive scans",
        id="101-scans",
    ),
]


@pytest.mark.parametrize(("factory", "kind", "message"), SCANS)
def test_progressive_scans_are_cpu_bounded(factory: Factory, kind: str, message: str | None) -> None:
    outcome = sandbox.run(factory())
    check(outcome, kind, message)
    if kind == OK:
        assert images.close(images.mean_colour(images.decode(outcome.output)), (128, 128, 128), 2)


# --- zero-sized sides -------------------------------------------------------------------------------------------


ZERO_SIDES = [
    pytest.param(
        lambda: images.jpeg_with_sof(arrow_jpeg(), 0xC0, size=(600, 0)),
        DECODE,
        "^JPEG: Empty JPEG image",
        id="jpeg-height-0",
    ),
    pytest.param(
        lambda: images.jpeg_with_sof(arrow_jpeg(), 0xC0, size=(0, 400)),
        DECODE,
        "^JPEG: Empty JPEG image",
        id="jpeg-width-0",
    ),
    pytest.param(lambda: images.raw_png(0, 0, b"", bit_depth=8, colour_type=2), DECODE, "^PNG: ", id="png-0x0"),
    pytest.param(lambda: images.png_zlib_bomb(600, 0), DECODE, "^PNG: ", id="png-height-0"),
    pytest.param(lambda: _patched(arrow_gif(), 8, b"\0\0"), DECODE, "size of 600x0", id="gif-screen-height-0"),
]


@pytest.mark.parametrize(("factory", "kind", "message"), ZERO_SIDES)
def test_zero_sized_side(factory: Factory, kind: str, message: str) -> None:
    check(sandbox.run(factory()), kind, message, max_rss=SMALL_RSS)


# --- PNG with bad CRCs ----------------------------------------------------------------------------------------------


@cache
def palette_png() -> bytes:
    return images.png(images.palette_image((600, 400), [RED, BLUE, GREY], 0, 1, 2, 2))


@cache
def png_with_gama() -> bytes:
    return images.png_with_chunks(arrow_png(), [images.png_chunk(b"gAMA", struct.pack(">I", 45455))])


BAD_CRC = [
    pytest.param(lambda: _flip(arrow_png(), 29), DECODE, "^PNG: CRC error", id="IHDR"),
    pytest.param(
        lambda: _flip(palette_png(), _crc_offset(palette_png(), b"PLTE")), DECODE, "^PNG: CRC error", id="PLTE"
    ),
    pytest.param(lambda: _flip(arrow_png(), _crc_offset(arrow_png(), b"IDAT")), DECODE, "^PNG: CRC error", id="IDAT"),
    pytest.param(lambda: _flip(arrow_png(), len(arrow_png()) - 1), DECODE, "^PNG: CRC error", id="IEND"),
    # An ancillary chunk that fails its CRC is skipped (as libpng does): the pixels are intact.
    pytest.param(lambda: _flip(png_with_gama(), _crc_offset(png_with_gama(), b"gAMA")), OK, None, id="ancillary-gAMA"),
]


@pytest.mark.parametrize(("factory", "kind", "message"), BAD_CRC)
def test_png_with_a_bad_crc(factory: Factory, kind: str, message: str | None) -> None:
    check(sandbox.run(factory()), kind, message, max_rss=SMALL_RSS)


# --- animations ---------------------------------------------------------------------------------------------------


def red_then_blue(count: int, size: tuple[int, int]) -> bytes:
    first = images.palette_image(size, [RED, BLUE], 0, 0, 0, 0)
    later = images.palette_image(size, [RED, BLUE], 1, 1, 1, 1)
    return images.gif_frames(first, later, count)


def apng_red_then_alternating(count: int, size: tuple[int, int]) -> bytes:
    frames = [Image.new("RGB", size, RED)] + [
        Image.new("RGB", size, BLUE if i % 2 else WHITE) for i in range(count - 1)
    ]
    return images.encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=40)


ANIMATIONS = [
    # 500 frames of 3 MP: decoding them all would be 1.5 G pixels of LZW, seconds of CPU. Only the first is read.
    pytest.param(lambda: red_then_blue(500, (2000, 1500)), id="gif-500-frames"),
    # 200 000 comment blocks before the first frame: stepped over, not stored.
    pytest.param(lambda: images.gif_with_comments(red_then_blue(2, (600, 400)), 200_000), id="gif-200000-comments"),
    pytest.param(lambda: apng_red_then_alternating(150, (1200, 900)), id="apng-150-frames"),
]


@pytest.mark.parametrize("factory", ANIMATIONS)
def test_animation_renders_only_its_first_frame(factory: Factory) -> None:
    outcome = sandbox.run(factory(), "medium")
    check(outcome, OK)
    assert images.close(images.mean_colour(images.decode(outcome.output)), RED, 12)


# --- extreme aspect ratios ----------------------------------------------------------------------------------------


def stripe(fmt: str, size: tuple[int, int]) -> Factory:
    def make() -> bytes:
        im = Image.new("RGB", size, RED)
        if fmt == "GIF":
            return images.gif([im.convert("P")])
        if fmt == "WEBP":
            return images.webp(im, lossless=True)
        return images.encode(im, fmt)

    return make


ASPECTS = [
    pytest.param(stripe(fmt, size), size, id=f"{fmt.lower()}-{size[0]}x{size[1]}")
    for fmt, sizes in (
        ("JPEG", [(1, 20_000), (20_000, 1), (65_500, 2), (2, 65_500)]),
        ("PNG", [(1, 20_000), (20_000, 1), (65_500, 2), (2, 65_500)]),
        ("GIF", [(1, 20_000), (20_000, 1), (65_500, 2), (2, 65_500)]),
        ("WEBP", [(1, 16_383), (16_383, 1), (16_383, 2)]),
    )
    for size in sizes
]


@pytest.mark.parametrize("preset", ["thumbnail", "medium"])
@pytest.mark.parametrize(("factory", "size"), ASPECTS)
def test_extreme_aspect_ratio(factory: Factory, size: tuple[int, int], preset: str) -> None:
    outcome = sandbox.run(factory(), preset)
    check(outcome, OK, max_rss=SMALL_RSS)
    assert (outcome.facts["width"], outcome.facts["height"]) == expected_size(*size, preset)
