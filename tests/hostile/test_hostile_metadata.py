"""Hostile and awkward uploads (issue 5) by their metadata: malformed EXIF, huge or garbage ICC profiles. Each in
the sandbox, held to the checks of hostile_checks.py."""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from PIL import Image

if TYPE_CHECKING:
    from tests import images
    from tests.hostile import sandbox
    from tests.images import BLUE
else:
    import sandbox

    import images
    from images import BLUE

if TYPE_CHECKING:
    from tests.hostile.hostile_checks import (
        OK,
        SMALL_RSS,
        Factory,
        MiB,
        arrow_jpeg,
        arrow_png,
        check,
    )
else:
    from hostile_checks import (
        OK,
        SMALL_RSS,
        Factory,
        MiB,
        arrow_jpeg,
        arrow_png,
        check,
    )


# --- malformed EXIF -----------------------------------------------------------------------------------------------

ORIENTATION, MAKE, EXIF_IFD, SHORT, LONG, ASCII = 0x0112, 0x010F, 0x8769, 3, 4, 2


def _be(block: bytes) -> bytes:
    """A little-endian TIFF block re-labelled big-endian: every offset and count now reads as something else."""
    return b"MM\0*" + block[4:]


MALFORMED_EXIF = {
    # IFD0's next-IFD offset points back at IFD0; a reader that follows the chain never ends.
    "ifd0-loops-to-itself": images.exif_block(images.tiff_ifd([(MAKE, ASCII, 4, 0)], next_ifd=8)),
    # The EXIF sub-IFD pointer points at IFD0, which points at the sub-IFD...
    "exif-ifd-loops-to-ifd0": images.exif_block(images.tiff_ifd([(EXIF_IFD, LONG, 1, 8)], next_ifd=8)),
    "ifd0-offset-out-of-bounds": b"II*\0" + struct.pack("<I", 0xFFFF_FFF0) + b"\0" * 16,
    "ifd0-offset-2GB": b"II*\0" + struct.pack("<I", 0x8000_0000) + b"\0" * 16,
    # 65535 entries declared, one present.
    "entry-count-65535": images.exif_block(images.tiff_ifd([(MAKE, ASCII, 4, 0)]), entry_count=0xFFFF),
    # The orientation tag itself with absurd counts, types and values: none of them may be read as a rotation.
    "orientation-count-4G": images.exif_block(images.tiff_ifd([(ORIENTATION, SHORT, 0xFFFF_FFFF, 6)])),
    "orientation-as-LONG": images.exif_block(images.tiff_ifd([(ORIENTATION, LONG, 1, 6)])),
    "orientation-9": images.exif_block(images.tiff_ifd([(ORIENTATION, SHORT, 1, 9)])),
    "orientation-0": images.exif_block(images.tiff_ifd([(ORIENTATION, SHORT, 1, 0)])),
    "orientation-65535": images.exif_block(images.tiff_ifd([(ORIENTATION, SHORT, 1, 0xFFFF)])),
    "orientation-at-out-of-bounds-offset": images.exif_block(images.tiff_ifd([(ORIENTATION, SHORT, 2, 0x7FFF_FFF0)])),
    "big-endian-garbage": _be(images.exif_block(images.tiff_ifd([(ORIENTATION, SHORT, 1, 6)], next_ifd=8))),
    "header-only": b"II*\0",
    "empty": b"",
    "random": random.Random(7).randbytes(4096),
}


def exif_in(fmt: str, block: bytes) -> bytes:
    picture = images.arrow_picture((600, 400))
    if fmt == "JPEG":
        # Pillow writes APP1 without the Exif\0\0 identifier that marks it as EXIF; add it.
        return images.encode(picture, "JPEG", quality=92, exif=b"Exif\0\0" + block)
    if fmt == "PNG":
        return images.png_with_chunks(arrow_png(), [images.png_chunk(b"eXIf", block)])
    return images.encode(picture, "WEBP", quality=90, exif=block)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("variant", sorted(MALFORMED_EXIF))
def test_malformed_exif_reads_as_orientation_1(variant: str, fmt: str) -> None:
    outcome = sandbox.run(exif_in(fmt, MALFORMED_EXIF[variant]), "medium")
    check(outcome, OK, max_rss=SMALL_RSS)
    assert outcome.facts["orientation"] == 1
    assert (outcome.facts["width"], outcome.facts["height"]) == (600, 400)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_exif_control_a_well_formed_orientation_is_read(fmt: str) -> None:
    # The same injection with orientation 6 turns the picture: the malformed cases above reach the EXIF reader.
    outcome = sandbox.run(exif_in(fmt, images.exif_block(images.tiff_ifd([(ORIENTATION, SHORT, 1, 6)]))), "medium")
    check(outcome, OK, max_rss=SMALL_RSS)
    assert outcome.facts["orientation"] == 6
    assert (outcome.facts["width"], outcome.facts["height"]) == (400, 600)


def test_huge_png_exif_chunk() -> None:
    # 8 MB of eXIf declaring 65535 entries of zeros: read (it is in the file anyway), bounded, orientation 1.
    block = images.exif_block(images.tiff_ifd([]) + b"\0" * (8 * MiB), entry_count=0xFFFF)
    outcome = sandbox.run(images.png_with_chunks(arrow_png(), [images.png_chunk(b"eXIf", block)]), "medium")
    check(outcome, OK)
    assert outcome.facts["orientation"] == 1


# --- huge or garbage ICC profiles -----------------------------------------------------------------------------------


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ \0\0\0\0" + struct.pack(">iii", *(round(v * 65536) for v in (x, y, z)))


_CURVE = b"curv\0\0\0\0" + struct.pack(">IH", 1, 0x0233)  # gamma 2.2
_MATRIX_SHAPER = [
    (b"rXYZ", _xyz(0.4361, 0.2225, 0.0139)),
    (b"gXYZ", _xyz(0.3851, 0.7169, 0.0971)),
    (b"bXYZ", _xyz(0.1431, 0.0606, 0.7141)),
    (b"wtpt", _xyz(0.9642, 1.0, 0.8249)),
    (b"rTRC", _CURVE),
    (b"gTRC", _CURVE),
    (b"bTRC", _CURVE),
]


def _with_tag(signature: bytes, payload: bytes) -> list[tuple[bytes, bytes]]:
    return [(s, payload if s == signature else p) for s, p in _MATRIX_SHAPER] + (
        [] if any(s == signature for s, _ in _MATRIX_SHAPER) else [(signature, payload)]
    )


def _tag_offset_out_of_bounds() -> bytes:
    profile = bytearray(images.icc_profile(_MATRIX_SHAPER))
    profile[128 + 4 + 4 : 128 + 4 + 8] = struct.pack(">I", 0xFFFF_FF00)  # the first tag's offset
    return bytes(profile)


# lut16 declaring a 255^3 grid of 3 outputs and 4096-entry curves (~100 MB of tables), with none of the data.
_LUT16_HUGE = (
    b"mft2\0\0\0\0"
    + bytes([3, 3, 255, 0])
    + struct.pack(">9i", *([65536, 0, 0, 0, 65536, 0, 0, 0, 65536]))
    + struct.pack(">HH", 4096, 4096)
)
# lutAtoB whose CLUT (offset 32) declares a 255x255x255 grid of 2-byte entries, and offsets past the end.
_MAB_HUGE = (
    b"mAB \0\0\0\0"
    + bytes([3, 3, 0, 0])
    + struct.pack(">5I", 0x7FFF_FFF0, 0, 0, 32, 0)
    + bytes([255] * 3 + [0] * 13)
    + bytes([2, 0, 0, 0])
)

HOSTILE_PROFILES: dict[str, Callable[[], bytes]] = {
    "garbage-100KB": lambda: random.Random(11).randbytes(100_000),
    "tag-count-4G": lambda: images.icc_profile(_MATRIX_SHAPER, tag_count=0xFFFF_FFFF),
    "declared-size-4G": lambda: images.icc_profile(_MATRIX_SHAPER, size=0xFFFF_FFFF),
    "declared-size-0": lambda: images.icc_profile(_MATRIX_SHAPER, size=0),
    "tag-offset-out-of-bounds": _tag_offset_out_of_bounds,
    "curve-count-4G": lambda: images.icc_profile(
        _with_tag(b"rTRC", b"curv\0\0\0\0" + struct.pack(">I", 0xFFFF_FFFF) + b"\0\0")
    ),
    "parametric-type-65535": lambda: images.icc_profile(
        _with_tag(b"gTRC", b"para\0\0\0\0" + struct.pack(">HH", 0xFFFF, 0))
    ),
    "lut16-255-grid-no-data": lambda: images.icc_profile(_with_tag(b"A2B0", _LUT16_HUGE)),
    "mAB-255-grid-no-data": lambda: images.icc_profile(_with_tag(b"A2B0", _MAB_HUGE)),
    "cmyk-lut16-255-grid-on-rgb": lambda: images.icc_profile([(b"A2B0", _LUT16_HUGE)], colour_space=b"CMYK"),
    # Just under the 4 MiB profile cap: a 2M-entry curve, parsed and applied (or refused) within bounds.
    "curve-2M-entries": lambda: images.icc_profile(
        _with_tag(b"rTRC", b"curv\0\0\0\0" + struct.pack(">I", 2_000_000) + bytes(4_000_000))
    ),
}


def icc_in(fmt: str, profile: bytes) -> bytes:
    if fmt == "JPEG":
        return images.jpeg_with_icc(arrow_jpeg((64, 48)), profile)
    picture = images.arrow_picture((64, 48))
    if fmt == "PNG":
        return images.encode(picture, "PNG", icc_profile=profile)
    return images.encode(picture, "WEBP", lossless=True, icc_profile=profile)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("variant", sorted(HOSTILE_PROFILES))
def test_hostile_icc_profile_is_ignored_or_applied(variant: str, fmt: str) -> None:
    outcome = sandbox.run(icc_in(fmt, HOSTILE_PROFILES[variant]()))
    check(outcome, OK, max_rss=SMALL_RSS)
    assert (outcome.facts["width"], outcome.facts["height"]) == (64, 48)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_icc_control_a_well_formed_profile_is_applied(fmt: str) -> None:
    # Red and blue primaries swapped: the red quadrant must come out blue, so the hostile profiles above (built on
    # the same matrix-shaper) do reach the colour-management code in each format.
    swapped = [(b"rXYZ", p) if s == b"bXYZ" else (b"bXYZ", p) if s == b"rXYZ" else (s, p) for s, p in _MATRIX_SHAPER]
    outcome = sandbox.run(icc_in(fmt, images.icc_profile(swapped)))
    check(outcome, OK, max_rss=SMALL_RSS)
    im = images.decode(outcome.output)
    assert images.close(images.mean_colour(im, images.quadrant_box(im.size, "tl")), BLUE, 40)


def _cmyk_jpeg_with(profile: bytes) -> bytes:
    return images.jpeg_with_icc(images.encode(Image.new("CMYK", (64, 48), (0, 255, 255, 0)), "JPEG"), profile)


HUGE_ICC = [
    # 10 MB of APP2 chunks, consistently numbered: over the 4 MiB cap, so never concatenated or parsed.
    pytest.param(
        lambda: images.jpeg_with_icc(arrow_jpeg((64, 48)), random.Random(1).randbytes(10 * MiB)), id="jpeg-10MB-chain"
    ),
    # The most a chain can hold: 255 chunks of 65519 bytes.
    pytest.param(lambda: images.jpeg_with_icc(arrow_jpeg((64, 48)), bytes(255 * 65519)), id="jpeg-255-chunks"),
    # 300 chunks all claiming to be 1 of 1.
    pytest.param(
        lambda: images.jpeg_with_segments(
            arrow_jpeg((64, 48)), [images.jpeg_segment(0xE2, b"ICC_PROFILE\0\x01\x01" + bytes(60_000))] * 300
        ),
        id="jpeg-300-duplicate-chunks",
    ),
    pytest.param(
        lambda: _cmyk_jpeg_with(images.icc_profile([(b"A2B0", _LUT16_HUGE)], colour_space=b"CMYK")),
        id="cmyk-jpeg-hostile-lut",
    ),
    pytest.param(lambda: _cmyk_jpeg_with(random.Random(3).randbytes(50_000)), id="cmyk-jpeg-garbage"),
    # iCCP is zlib: 1 MB that inflates to 1 GB. The profile is inflated under a small cap, so it costs nothing.
    pytest.param(
        lambda: images.png_with_chunks(
            arrow_png((64, 48)), [images.png_chunk(b"iCCP", b"bomb\0\0" + images.deflate_zeros(1 << 30))]
        ),
        id="png-iccp-zlib-bomb-1GB",
    ),
    pytest.param(
        lambda: images.png_with_chunks(
            arrow_png((64, 48)), [images.png_chunk(b"zTXt", b"bomb\0\0" + images.deflate_zeros(1 << 30))]
        ),
        id="png-ztxt-zlib-bomb-1GB",
    ),
    pytest.param(
        lambda: images.encode(images.arrow_picture((64, 48)), "WEBP", lossless=True, icc_profile=bytes(20 * MiB)),
        id="webp-20MB-iccp",
    ),
    # Many tiny APP1 and APP2 segments: libjpeg's saved-marker list was quadratic in their number (minutes).
    pytest.param(
        lambda: images.jpeg_with_segments(arrow_jpeg((64, 48)), [images.jpeg_segment(0xE1, b"x")] * 200_000),
        id="jpeg-200000-app1",
    ),
    pytest.param(
        lambda: images.jpeg_with_segments(
            arrow_jpeg((64, 48)), [images.jpeg_segment(0xE2, b"ICC_PROFILE\0\x01\x01")] * 200_000
        ),
        id="jpeg-200000-icc-chunks",
    ),
    pytest.param(
        lambda: images.jpeg_with_segments(arrow_jpeg((64, 48)), [images.jpeg_segment(0xEE, b"Adobe")] * 200_000),
        id="jpeg-200000-app14",
    ),
]


@pytest.mark.parametrize("factory", HUGE_ICC)
def test_huge_metadata_is_bounded(factory: Factory) -> None:
    data = factory()
    outcome = sandbox.run(data)
    # The input itself is resident (up to 20 MB here); beyond it, little.
    check(outcome, OK, max_rss=SMALL_RSS + len(data))
    assert (outcome.facts["width"], outcome.facts["height"]) == (64, 48)
