"""Deterministic test images: Pillow for the ordinary encodings, a few PNGs written byte by byte where Pillow cannot
(Adam7 interlacing, 16-bit RGB(A), a decompression bomb). No randomness without a fixed seed, so a failing test fails
the same way every time."""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Sequence
from typing import Any, Literal

from PIL import Image, ImageStat

RGB = tuple[int, int, int]

RED: RGB = (255, 0, 0)
BLUE: RGB = (0, 0, 255)
GREEN: RGB = (0, 160, 0)
GREY: RGB = (128, 128, 128)
WHITE: RGB = (255, 255, 255)
BLACK: RGB = (0, 0, 0)

OrientedFormat = Literal["JPEG", "PNG", "WEBP"]

# How each EXIF orientation turns the stored pixels into the displayed picture (the table Pillow's exif_transpose
# uses). Storing the *inverse* of it is what makes a viewer show the picture we meant.
_DISPLAY_TRANSFORM: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_INVERSE: dict[Image.Transpose, Image.Transpose] = {
    Image.Transpose.ROTATE_270: Image.Transpose.ROTATE_90,
    Image.Transpose.ROTATE_90: Image.Transpose.ROTATE_270,
}


def quadrants(size: tuple[int, int], mode: str, tl: Any, tr: Any, bl: Any, br: Any) -> Image.Image:
    """An image of `mode` whose four quadrants are solid colours (in that mode's terms)."""
    w, h = size
    im = Image.new(mode, size, tl)
    # Pasting solid images, not colour values: Pillow mangles an int colour pasted into an I;16 image.
    for colour, (left, top, right, bottom) in (
        (tr, (w // 2, 0, w, h // 2)),
        (bl, (0, h // 2, w // 2, h)),
        (br, (w // 2, h // 2, w, h)),
    ):
        im.paste(Image.new(mode, (right - left, bottom - top), colour), (left, top))
    return im


def arrow_picture(size: tuple[int, int] = (600, 400)) -> Image.Image:
    """Red top-left, blue top-right, grey below: each of the eight orientations puts the red and blue quadrants
    on a different pair of corners, so any wrong transform shows."""
    return quadrants(size, "RGB", RED, BLUE, GREY, GREY)


def noise(size: tuple[int, int], seed: int = 0) -> Image.Image:
    """Seeded pseudo-random RGB: full of detail, so a resize or encoder difference shows in the bytes."""
    w, h = size[0] // 8 + 1, size[1] // 8 + 1
    coarse = Image.frombytes("RGB", (w, h), random.Random(seed).randbytes(3 * w * h))
    # Blown up from 1/8 scale: photo-like detail rather than per-pixel static, which no JPEG encoder handles typically.
    return coarse.resize(size, Image.Resampling.BILINEAR)


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def jpeg(
    image: Image.Image,
    *,
    subsampling: Literal["4:4:4", "4:2:2", "4:2:0"] = "4:2:0",
    progressive: bool = False,
    quality: int = 92,
) -> bytes:
    """Greyscale when `image` is mode L (subsampling is then meaningless and ignored)."""
    if image.mode == "L":
        return encode(image, "JPEG", quality=quality, progressive=progressive)
    return encode(image, "JPEG", quality=quality, progressive=progressive, subsampling=subsampling)


def png(image: Image.Image, **params: Any) -> bytes:
    return encode(image, "PNG", **params)


def webp(image: Image.Image, *, lossless: bool, quality: int = 90) -> bytes:
    # exact=True keeps the colour of fully transparent pixels (black here) instead of letting libwebp replace it,
    # so the tests see the worst case for a resizer that ignores alpha.
    return encode(image, "WEBP", lossless=lossless, quality=quality, exact=True, method=4)


def gif(frames: Sequence[Image.Image], *, transparency: int | None = None) -> bytes:
    """An animated GIF of palette (mode P) frames; `transparency` is a palette index."""
    params: dict[str, Any] = {"save_all": True, "append_images": list(frames[1:]), "duration": 100, "loop": 0}
    if transparency is not None:
        params["transparency"] = transparency
    return encode(frames[0], "GIF", **params)


def palette_image(size: tuple[int, int], colours: Sequence[RGB], tl: int, tr: int, bl: int, br: int) -> Image.Image:
    """A mode P image drawn with palette indices, so no quantiser can move a colour."""
    im = quadrants(size, "P", tl, tr, bl, br)
    im.putpalette([c for rgb in colours for c in rgb])
    return im


def oriented(image: Image.Image, orientation: int, fmt: OrientedFormat) -> bytes:
    """Stores `image` so that, displayed with EXIF `orientation` applied, it looks like `image`."""
    if orientation not in range(1, 9):
        raise ValueError(f"orientation must be 1..8, got {orientation}")
    stored = image
    if orientation != 1:
        display = _DISPLAY_TRANSFORM[orientation]
        stored = image.transpose(_INVERSE.get(display, display))
    exif = Image.Exif()
    exif[0x0112] = orientation
    if fmt == "JPEG":
        return encode(stored, "JPEG", quality=92, exif=exif)
    if fmt == "PNG":
        return encode(stored, "PNG", exif=exif)
    return encode(stored, "WEBP", quality=90, exif=exif)


# --- PNGs written by hand ---------------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# (x0, y0, dx, dy) of the seven Adam7 passes.
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_ihdr(width: int, height: int, bit_depth: int, colour_type: int, interlaced: bool = False) -> bytes:
    return png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, int(interlaced)))


def raw_png(
    width: int, height: int, pixels: bytes, *, bit_depth: int, colour_type: int, interlaced: bool = False
) -> bytes:
    """A PNG of packed, row-major `pixels` (bit depth 8 or 16), every scanline with filter 0."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
    bpp = channels * bit_depth // 8
    stride = width * bpp
    if len(pixels) != stride * height:
        raise ValueError(f"{len(pixels)} bytes of pixels for {width}x{height} at {bpp} bytes per pixel")
    scanlines = bytearray()
    passes = _ADAM7 if interlaced else ((0, 0, 1, 1),)
    for x0, y0, dx, dy in passes:
        xs = range(x0, width, dx)
        # Empty passes have no scanlines at all (not even filter bytes), as the spec requires.
        if not xs:
            continue
        for y in range(y0, height, dy):
            row = pixels[y * stride : (y + 1) * stride]
            scanlines.append(0)
            if dx == 1:
                scanlines += row
            else:
                for x in xs:
                    scanlines += row[x * bpp : (x + 1) * bpp]
    return (
        PNG_SIGNATURE
        + png_ihdr(width, height, bit_depth, colour_type, interlaced)
        + png_chunk(b"IDAT", zlib.compress(bytes(scanlines)))
        + png_chunk(b"IEND", b"")
    )


def adam7_png(image: Image.Image) -> bytes:
    """`image` (RGB, RGBA or L) as an Adam7-interlaced 8-bit PNG, which Pillow cannot write."""
    colour_type = {"L": 0, "RGB": 2, "RGBA": 6}[image.mode]
    return raw_png(*image.size, image.tobytes(), bit_depth=8, colour_type=colour_type, interlaced=True)


def png16(size: tuple[int, int], tl: Sequence[int], tr: Sequence[int], bl: Sequence[int], br: Sequence[int]) -> bytes:
    """A 16-bit-per-sample PNG of four quadrants, RGB or RGBA by the number of samples given (in 16-bit units)."""
    w, h = size
    colour_type = {3: 2, 4: 6}[len(tl)]
    fmt = f">{len(tl)}H"
    rows = bytearray()
    for y in range(h):
        left, right = (tl, tr) if y < h // 2 else (bl, br)
        rows += struct.pack(fmt, *left) * (w // 2) + struct.pack(fmt, *right) * (w - w // 2)
    return raw_png(w, h, bytes(rows), bit_depth=16, colour_type=colour_type)


def png_bomb(width: int, height: int) -> bytes:
    """A PNG that declares `width`x`height` 8-bit RGB and carries a little zlib of zeros: what a decompression bomb
    looks like. Only a decoder that trusts the header and allocates first gets hurt."""
    zeros = zlib.compress(b"\0" * (1 << 20), 9)
    return PNG_SIGNATURE + png_ihdr(width, height, 8, 2) + png_chunk(b"IDAT", zeros) + png_chunk(b"IEND", b"")


# --- looking at outputs -----------------------------------------------------------------------------------------


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def mean_colour(image: Image.Image, box: tuple[int, int, int, int] | None = None) -> tuple[float, ...]:
    region = image.crop(box) if box else image
    return tuple(ImageStat.Stat(region.convert("RGB")).mean)


def quadrant_box(size: tuple[int, int], which: Literal["tl", "tr", "bl", "br"]) -> tuple[int, int, int, int]:
    """The inner half of a quadrant: far enough from the centre lines and edges that resampling and JPEG blocks
    there see only that quadrant's colour."""
    w, h = size
    left = w // 8 if which in ("tl", "bl") else w // 2 + w // 8
    top = h // 8 if which in ("tl", "tr") else h // 2 + h // 8
    return (left, top, left + max(1, w // 4), top + max(1, h // 4))


def close(actual: Sequence[float], expected: Sequence[float], tolerance: float) -> bool:
    return len(actual) == len(expected) and all(abs(a - e) <= tolerance for a, e in zip(actual, expected))


# --- hostile inputs (tests/hostile) -----------------------------------------------------------------------------


def deflate_zeros(n: int) -> bytes:
    """A zlib stream that inflates to `n` zero bytes, built without ever holding them: one mebibyte of zeros
    compressed after a sync flush is byte-aligned and refers back only to zeros, so the same ~1 KB piece can be
    repeated; the Adler-32 of `n` zeros has a closed form (a = 1, b = n mod 65521). A real bomb: ~1000:1."""
    piece = 1 << 20
    c = zlib.compressobj(9)
    first = c.compress(b"\0" * min(n, piece)) + c.flush(zlib.Z_SYNC_FLUSH)
    done = min(n, piece)
    repeated = b""
    if n - done >= piece:
        repeated = c.compress(b"\0" * piece) + c.flush(zlib.Z_SYNC_FLUSH)
    whole, rest = divmod(n - done, piece)
    tail = c.compress(b"\0" * rest) + c.flush(zlib.Z_SYNC_FLUSH) if rest else b""
    # An empty final fixed-Huffman block (BFINAL=1, BTYPE=01, end-of-block), then the checksum of all n bytes.
    return first + repeated * whole + tail + b"\x03\x00" + struct.pack(">I", ((n % 65521) << 16) | 1)


def png_zlib_bomb(
    width: int, height: int, colour_type: int = 2, *, inflated: int | None = None, chunks: Sequence[bytes] = ()
) -> bytes:
    """An 8-bit PNG of all-zero scanlines whose IDAT is a real zlib bomb: `inflated` bytes (by default exactly what
    the header declares) from a stream ~1000 times smaller. `chunks` go before IDAT (a PLTE for colour type 3: all
    pixels are then palette entry 0, and a tRNS makes that entry's alpha whatever it says)."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour_type]
    size = height * (1 + width * channels) if inflated is None else inflated
    return (
        PNG_SIGNATURE
        + png_ihdr(width, height, 8, colour_type)
        + b"".join(chunks)
        + png_chunk(b"IDAT", deflate_zeros(size))
        + png_chunk(b"IEND", b"")
    )


def png_with_chunks(data: bytes, chunks: Sequence[bytes]) -> bytes:
    """`data` (a PNG) with `chunks` inserted straight after IHDR, where ancillary chunks such as eXIf and iCCP go."""
    end_of_ihdr = len(PNG_SIGNATURE) + 8 + 13 + 4
    return data[:end_of_ihdr] + b"".join(chunks) + data[end_of_ihdr:]


def jpeg_segment(marker: int, payload: bytes) -> bytes:
    if len(payload) > 0xFFFF - 2:
        raise ValueError(f"a JPEG segment holds at most 65533 bytes, got {len(payload)}")
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def jpeg_with_segments(data: bytes, segments: Sequence[bytes]) -> bytes:
    """`data` (a JPEG) with `segments` inserted straight after SOI, before anything else."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    return data[:2] + b"".join(segments) + data[2:]


def jpeg_sof(data: bytes) -> int:
    """The offset of the first start-of-frame marker (SOF0–SOF15 except DHT, JPG and DAC) in `data`."""
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            raise ValueError(f"no marker at {at}")
        marker = data[at + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return at
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    raise ValueError("no SOF marker")


def jpeg_with_sof(data: bytes, marker: int, *, precision: int = 8, size: tuple[int, int] | None = None) -> bytes:
    """`data` (a JPEG) with its frame header relabelled: another SOF type (e.g. 0xC3 lossless, 0xC9 arithmetic),
    another sample precision, another declared width x height. The entropy-coded data is left as it was, so only
    a decoder that refuses the header up front gets it right."""
    at = jpeg_sof(data)
    out = bytearray(data)
    out[at + 1] = marker
    out[at + 4] = precision
    if size is not None:
        out[at + 5 : at + 9] = struct.pack(">HH", size[1], size[0])
    return bytes(out)


def progressive_scan_bomb(width: int, height: int, components: int, *, scans: int | None = None) -> bytes:
    """A valid progressive JPEG (4:4:4, every coefficient zero: flat grey) with the most scans the format allows:
    one DC scan, then for each component and each of the 63 AC coefficients a first scan at Al=13 and 13
    successive-approximation refinements. Each AC scan is a few bytes (runs of 32767 empty blocks, EOB14), yet a
    decoder visits every block of the component in every scan: 1 + 882 scans per component of CPU for a file
    that is a few KB per scan. `scans` keeps only that many (still a valid progression, grey where coefficients
    are never sent)."""
    dqt = jpeg_segment(0xDB, b"\x00" + b"\x01" * 64)
    sof = jpeg_segment(
        0xC2,
        struct.pack(">BHHB", 8, height, width, components)
        + b"".join(bytes([i + 1, 0x11, 0]) for i in range(components)),
    )
    # DC table 0: the only symbol is 0 (no difference), coded "0". AC table 0: the only symbol is 0xE0 (EOB14, a run
    # of 2**14 + its 14 extra bits empty blocks), coded "0".
    one_code = b"\x01" + b"\x00" * 15
    dht = jpeg_segment(0xC4, b"\x00" + one_code + b"\x00" + b"\x10" + one_code + b"\xe0")

    def scan(component_ids: Sequence[int], ss: int, se: int, ah: int, al: int, entropy: bytes) -> bytes:
        header = bytes([len(component_ids)]) + b"".join(bytes([c, 0x00]) for c in component_ids)
        return jpeg_segment(0xDA, header + bytes([ss, se, (ah << 4) | al])) + entropy

    def stuffed(bits: str) -> bytes:
        bits += "1" * (-len(bits) % 8)
        raw = int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""
        return raw.replace(b"\xff", b"\xff\x00")

    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    # DC scan: one "0" per block per component (interleaved, one block of each component per MCU).
    dc = stuffed("0" * blocks * components)
    # AC scans: EOB14 with 14 one-bits is a run of 32767 blocks; enough runs to cover every block.
    runs = -(-blocks // 32767)
    ac = stuffed(("0" + "1" * 14) * runs)
    all_scans = [scan(range(1, components + 1), 0, 0, 0, 0, dc)]
    for component in range(1, components + 1):
        for k in range(1, 64):
            all_scans.append(scan([component], k, k, 0, 13, ac))
            all_scans.extend(scan([component], k, k, ah, ah - 1, ac) for ah in range(13, 0, -1))
    return b"\xff\xd8" + dqt + sof + dht + b"".join(all_scans[:scans]) + b"\xff\xd9"


def tiff_ifd(entries: Sequence[tuple[int, int, int, int]], next_ifd: int = 0) -> bytes:
    """A little-endian IFD: (tag, type, count, value-or-offset) entries as given, in that order (no sorting or
    checking: malformed is the point), then the offset of the next IFD."""
    out = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        out += struct.pack("<HHII", tag, kind, count, value)
    return out + struct.pack("<I", next_ifd)


def exif_block(ifd0: bytes, extra: bytes = b"", *, entry_count: int | None = None) -> bytes:
    """A TIFF-structured EXIF payload (no ``Exif\\0\\0`` prefix): header, IFD0 at offset 8, then `extra`.
    `entry_count` overrides the IFD0 entry count, to declare more entries than there are."""
    if entry_count is not None:
        ifd0 = struct.pack("<H", entry_count) + ifd0[2:]
    return b"II*\0" + struct.pack("<I", 8) + ifd0 + extra


def gif_frames(first: Image.Image, later: Image.Image, count: int) -> bytes:
    """An animated GIF of `first` then `count - 1` copies of `later`: each copy's graphic-control extension and
    image block, taken from Pillow's encoding of `later`, repeated byte for byte (Pillow itself would merge
    identical frames into one)."""
    two = gif([first, later])
    blocks = two[two.index(b"\x21\xf9") : -1]  # from the first graphic-control extension to before the trailer
    second = blocks.index(b"\x21\xf9", 1)
    return two[: two.index(b"\x21\xf9")] + blocks[:second] + blocks[second:] * (count - 1) + b"\x3b"


def gif_js_polyglot(script: bytes) -> bytes:
    """A GIF that is also JavaScript: the logical-screen width is the bytes ``/*`` (10799 px), which opens a
    comment that the appended ``*/`` closes, so `script` after the GIF trailer would run if served as JS."""
    frame = gif([palette_image((60, 40), [RED, BLUE], 0, 1, 1, 0)])
    screen = b"/*" + struct.pack("<H", 40)
    return frame[:6] + screen + frame[10:] + b"*/=1;" + script


def gif_with_comments(data: bytes, count: int, comment: bytes = b"x") -> bytes:
    """`data` (a GIF) with `count` comment extensions before its first frame, all of which a decoder must step over
    to reach any pixels."""
    first_block = data.index(b"\x21\xf9") if b"\x21\xf9" in data else data.index(b"\x2c")
    block = b"\x21\xfe" + bytes([len(comment)]) + comment + b"\x00"
    return data[:first_block] + block * count + data[first_block:]


def icc_profile(
    tags: Sequence[tuple[bytes, bytes]],
    *,
    colour_space: bytes = b"RGB ",
    tag_count: int | None = None,
    size: int | None = None,
) -> bytes:
    """An ICC v4 display profile (PCS XYZ) with `tags` ((signature, data) pairs, laid out after the tag table).
    `tag_count` and `size` override what the header and table declare, to make them lie."""
    table_len = 4 + 12 * len(tags)
    offset = 128 + table_len
    table = struct.pack(">I", len(tags) if tag_count is None else tag_count)
    body = b""
    for signature, payload in tags:
        table += signature + struct.pack(">II", offset + len(body), len(payload))
        body += payload + b"\0" * (-len(payload) % 4)
    total = 128 + table_len + len(body)
    header = (
        struct.pack(">I", total if size is None else size)
        + b"lcms"
        + b"\x04\x30\x00\x00"
        + b"mntr"
        + colour_space
        + b"XYZ "
        + b"\0" * 12  # date
        + b"acsp"
        + b"\0" * 24  # platform, flags, manufacturer, model, attributes
        + b"\0\0\0\0"  # rendering intent
        + struct.pack(">iii", 63190, 65536, 54061)  # D50 illuminant, s15.16
        + b"\0" * 4  # creator
        + b"\0" * 16  # profile ID
        + b"\0" * 28
    )
    assert len(header) == 128, len(header)
    return header + table + body


def jpeg_with_icc(data: bytes, profile: bytes, *, chunk: int = 65519, count: int | None = None) -> bytes:
    """`data` (a JPEG) with `profile` split over APP2 ``ICC_PROFILE`` segments of `chunk` bytes each, numbered 1..n
    of `count` (n by default: a consistent chain)."""
    parts = [profile[i : i + chunk] for i in range(0, len(profile), chunk)] or [b""]
    total = len(parts) if count is None else count
    segments = [
        jpeg_segment(0xE2, b"ICC_PROFILE\0" + bytes([(i + 1) % 256, total % 256]) + part)
        for i, part in enumerate(parts)
    ]
    return jpeg_with_segments(data, segments)
