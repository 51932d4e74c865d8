"""`kiray_imaging.render` refusing what it must: damaged and hostile input, limits, bad arguments — each a typed
error with a message that says what was expected and what was found."""

from __future__ import annotations

import random
import struct
from functools import cache
from typing import TYPE_CHECKING, Any

import pytest

from kiray_imaging import (
    DecodeError,
    ImageError,
    LimitExceededError,
    Preset,
    UnsupportedFormatError,
    render,
)

if TYPE_CHECKING:
    from tests import images
    from tests.images import BLUE, GREY, RED
else:
    import images
    from images import BLUE, GREY, RED

if TYPE_CHECKING:
    from tests.core.render_checks import (
        check_output,
    )
else:
    from render_checks import (
        check_output,
    )


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
