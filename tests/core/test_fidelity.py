"""Colour management and multi-frame containers: ICC profiles (single and split over APP2 chunks, broken ones),
the Display P3 → sRGB conversion checked against LittleCMS, MPO and APNG first frames, WebP output."""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PIL import Image, ImageCms

from kiray_imaging import render, render_formats

if TYPE_CHECKING:
    from tests import images
else:
    import images

P3_RED = (200, 30, 30)
GREENISH = (40, 180, 90)


@pytest.fixture(scope="module")
def p3_icc(corpus: Path) -> bytes:
    """The Display P3 profile a phone embeds, taken from the corpus photo (we ship no profile of our own)."""
    icc = Image.open(corpus / "derived_phone_pug_p3.jpg").info["icc_profile"]
    assert isinstance(icc, bytes)
    return icc


def littlecms_srgb(icc: bytes, colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """What LittleCMS makes of `colour` in the profile's space, in sRGB (relative colorimetric)."""
    src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    out = ImageCms.profileToProfile(Image.new("RGB", (1, 1), colour), src, ImageCms.createProfile("sRGB"),
                                    renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)  # fmt: skip
    assert out is not None
    pixel = out.getpixel((0, 0))
    assert isinstance(pixel, tuple)
    return (int(pixel[0]), int(pixel[1]), int(pixel[2]))


def patches_jpeg(icc: bytes | None) -> bytes:
    """Two flat patches, 4:4:4 at q100 so JPEG itself moves the colours by at most a unit or two."""
    image = images.quadrants((640, 480), "RGB", P3_RED, GREENISH, P3_RED, GREENISH)
    params = {"quality": 100, "subsampling": 0} | ({"icc_profile": icc} if icc else {})
    return images.encode(image, "JPEG", **params)


def patch_colours(data: bytes) -> tuple[tuple[float, ...], tuple[float, ...]]:
    out = images.decode(data)
    w, h = out.size
    return (images.mean_colour(out, (w // 8, h // 8, w // 3, h // 3)),
            images.mean_colour(out, (w * 2 // 3, h // 8, w * 7 // 8, h // 3)))  # fmt: skip


def test_display_p3_patches_land_on_the_littlecms_srgb_values(p3_icc: bytes) -> None:
    red, green = patch_colours(render(patches_jpeg(p3_icc), "medium").data)
    assert images.close(red, littlecms_srgb(p3_icc, P3_RED), 3), red
    assert images.close(green, littlecms_srgb(p3_icc, GREENISH), 3), green
    # And the conversion is visible: unmanaged, P3 red would have stayed (200, 30, 30).
    assert not images.close(red, P3_RED, 8)


# A real press profile: Ghostscript's default CMYK (a SWOP-like LUT profile, 187 KB), read where the OS has it rather
# than committed (it is AGPL, so it is not shipped). Debian: apt-get install libgs-common; macOS: brew install
# ghostscript.
PRESS_PROFILE_PLACES = (
    "/usr/share/color/icc/ghostscript/default_cmyk.icc",
    "/opt/homebrew/share/ghostscript/*/iccprofiles/default_cmyk.icc",
    "/usr/local/share/ghostscript/*/iccprofiles/default_cmyk.icc",
)
# Ink mixes an RGB photo separates into, from light to rich: the transform is a 4-D LUT, so every corner matters.
INKS = (
    (0, 0, 0, 0),
    (255, 0, 0, 0),
    (0, 255, 0, 0),
    (0, 0, 255, 0),
    (40, 180, 200, 20),
    (200, 80, 10, 60),
    (90, 60, 60, 160),
    (0, 0, 0, 255),
)


@pytest.fixture(scope="module")
def press_profile() -> bytes:
    for pattern in PRESS_PROFILE_PLACES:
        for path in sorted(Path("/").glob(pattern.lstrip("/"))):
            return path.read_bytes()
    pytest.fail("Ghostscript's default_cmyk.icc is needed (apt-get install libgs-common / brew install ghostscript)")


def test_cmyk_with_a_real_press_profile_lands_on_the_littlecms_srgb_values(press_profile: bytes) -> None:
    size = 96
    image = Image.new("CMYK", (size * len(INKS), size))
    for i, ink in enumerate(INKS):
        image.paste(ink, (i * size, 0, (i + 1) * size, size))
    data = images.encode(image, "JPEG", quality=100, subsampling=0, icc_profile=press_profile)
    expected = ImageCms.profileToProfile(image, ImageCms.ImageCmsProfile(io.BytesIO(press_profile)),
                                         ImageCms.createProfile("sRGB"), outputMode="RGB",
                                         renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)  # fmt: skip
    assert expected is not None

    r = render(data, "medium")

    out = images.decode(r.data)
    assert out.size == image.size
    for i, ink in enumerate(INKS):
        box = (i * size + size // 4, size // 4, (i + 1) * size - size // 4, size * 3 // 4)
        ours, theirs = images.mean_colour(out, box), images.mean_colour(expected, box)
        assert images.close(ours, theirs, 4), (ink, ours, theirs)
    # Without the profile the core's fallback press (FOGRA39, not this SWOP-like one) gives a visibly different
    # magenta: the embedded profile was applied, not the fallback.
    fallback = images.decode(render(images.encode(image, "JPEG", quality=100, subsampling=0), "medium").data)
    magenta = (2 * size + size // 4, size // 4, 3 * size - size // 4, size * 3 // 4)
    assert not images.close(images.mean_colour(fallback, magenta), images.mean_colour(out, magenta), 20)


def _split_icc_into_chunks(jpeg: bytes, parts: int, drop: int | None = None) -> bytes:
    """Rewrites the single APP2 ICC_PROFILE segment as `parts` numbered chunks (optionally losing one)."""
    start = jpeg.index(b"\xff\xe2")
    length = struct.unpack(">H", jpeg[start + 2 : start + 4])[0]
    segment = jpeg[start + 4 : start + 2 + length]
    assert segment.startswith(b"ICC_PROFILE\0\x01\x01")
    profile = segment[14:]
    size = -(-len(profile) // parts)
    chunks = [profile[i * size : (i + 1) * size] for i in range(parts)]
    out = b""
    # Written in reverse order on purpose: readers must order by sequence number, not by position.
    for seq in reversed(range(1, parts + 1)):
        if seq == drop:
            continue
        body = b"ICC_PROFILE\0" + bytes([seq, parts]) + chunks[seq - 1]
        out += b"\xff\xe2" + struct.pack(">H", len(body) + 2) + body
    return jpeg[:start] + out + jpeg[start + 2 + length :]


def test_icc_profile_split_over_many_app2_chunks_is_reassembled(p3_icc: bytes) -> None:
    whole = render(patches_jpeg(p3_icc), "medium").data
    split = render(_split_icc_into_chunks(patches_jpeg(p3_icc), 5), "medium").data
    assert patch_colours(split) == patch_colours(whole)


def test_incomplete_or_garbage_profiles_are_ignored(p3_icc: bytes) -> None:
    unmanaged = patch_colours(render(patches_jpeg(None), "medium").data)
    assert images.close(unmanaged[0], P3_RED, 3)
    for broken in (
        _split_icc_into_chunks(patches_jpeg(p3_icc), 4, drop=2),
        patches_jpeg(b"\0" * 128 + b"acsp" + b"garbage" * 40),
        patches_jpeg(p3_icc[: len(p3_icc) // 2]),
    ):
        assert patch_colours(render(broken, "medium").data) == unmanaged


def test_png_and_webp_profiles_are_applied_too(p3_icc: bytes) -> None:
    image = images.quadrants((640, 480), "RGB", P3_RED, GREENISH, P3_RED, GREENISH)
    expected = littlecms_srgb(p3_icc, P3_RED)
    for data in (images.encode(image, "PNG", icc_profile=p3_icc),
                 images.encode(image, "WEBP", lossless=True, icc_profile=p3_icc)):  # fmt: skip
        red, _ = patch_colours(render(data, "medium").data)
        assert images.close(red, expected, 3), red


def test_mpo_renders_its_first_frame() -> None:
    # An MPO (phone "portrait" or 3D photo) is JPEGs back to back, the first being the main image; libjpeg stops at
    # the first EOI. The APP2 "MPF" index that cameras add is not needed to find the first frame.
    first = images.encode(Image.new("RGB", (800, 600), (220, 20, 20)), "JPEG", quality=95)
    second = images.encode(Image.new("RGB", (800, 600), (20, 20, 220)), "JPEG", quality=95)
    out = images.decode(render(first + second, "thumbnail").data)
    assert images.close(images.mean_colour(out), (220, 20, 20), 4)


def test_apng_renders_its_first_frame() -> None:
    frames = [Image.new("RGB", (500, 400), c) for c in ((10, 200, 10), (200, 10, 10), (10, 10, 200))]
    buf = io.BytesIO()
    frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert b"acTL" in buf.getvalue()
    out = images.decode(render(buf.getvalue(), "thumbnail").data)
    assert images.close(images.mean_colour(out), (10, 200, 10), 4)


def test_webp_output_keeps_alpha_and_jpeg_flattens_it() -> None:
    rgba = Image.new("RGBA", (600, 400), (255, 0, 0, 0))
    rgba.paste(Image.new("RGBA", (300, 400), (0, 0, 255, 255)), (0, 0))
    both = render_formats(images.encode(rgba, "PNG"), "medium", ("jpeg", "webp"))
    webp = Image.open(io.BytesIO(both["webp"].data))
    assert (webp.format, webp.mode, webp.size) == ("WEBP", "RGBA", (600, 400))
    alpha = webp.getchannel("A")
    assert alpha.getpixel((50, 200)) == 255
    assert alpha.getpixel((550, 200)) == 0
    jpeg = images.decode(both["jpeg"].data)
    assert images.close(images.mean_colour(jpeg, (400, 50, 590, 350)), (255, 255, 255), 2)
    assert both["webp"].content_type == "image/webp"
    # One decode: the shared stages report the same timings for both outputs.
    assert both["jpeg"].timings_ms["decode"] == both["webp"].timings_ms["decode"]
