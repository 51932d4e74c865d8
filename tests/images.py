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
