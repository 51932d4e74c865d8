"""What every hostile-input test holds an outcome to (the issue's bounds: time, memory, no I/O, the input intact,
a freshly encoded image), and the small images and byte surgery the tests build their inputs from."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

from PIL import Image

if TYPE_CHECKING:
    from tests import images
    from tests.hostile import sandbox
    from tests.images import BLUE, GREY, RED
else:
    import sandbox

    import images
    from images import BLUE, GREY, RED

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
