"""AVIF input through the public API: Pillow 13 (libavif + aom) writes the files, the core decodes them, and the
results are compared with what was encoded and with Pillow's own decoding of the same file.

Pillow writes 8-bit only (no 10/12-bit AVIF from Python here); those paths are covered by the Rust unit tests of
the converter. irot/imir: Pillow turns an EXIF orientation into irot/imir when saving (and drops the EXIF tag), so
all eight orientations are made that way.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pytest
from PIL import Image, ImageChops, ImageCms, ImageOps, ImageStat

from kiray_imaging import PRESETS, DecodeError, UnsupportedFormatError, render

if TYPE_CHECKING:
    from tests import images
    from tests.images import BLUE, GREEN, GREY, RED, RGB, WHITE
else:
    import images
    from images import BLUE, GREEN, GREY, RED, RGB, WHITE

PRESET_NAMES = sorted(PRESETS)
Subsampling = Literal["4:2:0", "4:2:2", "4:4:4"]
# Mean of a flat quadrant after AV1 at q90, our YUV->RGB, the resize and a JPEG: a few levels off at most.
TOLERANCE = 8.0


def avif(image: Image.Image, **params: Any) -> bytes:
    return images.encode(image, "AVIF", **{"quality": 90, **params})


def decoded(data: bytes) -> Image.Image:
    return images.decode(data)


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size, (a.size, b.size)
    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean) / 3


def quadrant_means(im: Image.Image) -> dict[str, tuple[float, ...]]:
    return {q: images.mean_colour(im, images.quadrant_box(im.size, q)) for q in ("tl", "tr", "bl", "br")}


def assert_quadrants(im: Image.Image, expected: dict[str, RGB], tolerance: float = TOLERANCE) -> None:
    actual = quadrant_means(im)
    wrong = {
        q: tuple(round(c) for c in actual[q]) for q in expected if not images.close(actual[q], expected[q], tolerance)
    }
    assert not wrong, f"quadrant colours {wrong}, expected {expected}"


COLOURS: dict[str, RGB] = {"tl": RED, "tr": BLUE, "bl": GREEN, "br": (230, 200, 40)}


@cache
def quadrant_avif(subsampling: Subsampling, range_: str = "full") -> bytes:
    im = images.quadrants((1600, 1200), "RGB", COLOURS["tl"], COLOURS["tr"], COLOURS["bl"], COLOURS["br"])
    return avif(im, subsampling=subsampling, range=range_)


@pytest.mark.parametrize("preset_name", PRESET_NAMES)
@pytest.mark.parametrize("subsampling", ["4:2:0", "4:2:2", "4:4:4"])
def test_subsamplings_keep_size_and_colours(subsampling: Subsampling, preset_name: str) -> None:
    r = render(quadrant_avif(subsampling), preset_name)
    preset = PRESETS[preset_name]
    assert (r.source_format, r.source_width, r.source_height) == ("avif", 1600, 1200)
    assert (r.width, r.height) == ((400, 300) if preset.fit == "cover" else (1280, 960))
    assert_quadrants(decoded(r.data), COLOURS)


def test_limited_range() -> None:
    r = render(quadrant_avif("4:2:0", "limited"), "thumbnail")
    assert_quadrants(decoded(r.data), COLOURS)


def test_monochrome_is_grey() -> None:
    im = images.quadrants((800, 600), "L", 30, 90, 160, 230)
    data = avif(im)
    assert b"av1C" in data
    out = decoded(render(data, "thumbnail").data)
    expected = {"tl": (30,) * 3, "tr": (90,) * 3, "bl": (160,) * 3, "br": (230,) * 3}
    assert_quadrants(out, expected, 4.0)


def test_gradient_matches_pillows_decoding() -> None:
    # A smooth gradient checks the upsampling and the matrix everywhere, not only on flat patches.
    w, h = 1280, 960
    gradient = Image.merge(
        "RGB",
        (
            Image.linear_gradient("L").resize((w, h)),
            Image.linear_gradient("L").rotate(90).resize((w, h)),
            Image.new("L", (w, h), 128),
        ),
    )
    data = avif(gradient)
    ours = decoded(render(data, "medium", format="webp").data)
    with Image.open(io.BytesIO(data)) as pillow:
        theirs = pillow.convert("RGB")
    assert mean_abs_diff(ours, theirs) < 2.0


# --- alpha ------------------------------------------------------------------------------------------------------


def _rgba_avif(**params: Any) -> bytes:
    # Opaque red top-left, half-transparent blue top-right, fully transparent (black) bottom half.
    im = Image.new("RGBA", (1600, 1200), (0, 0, 0, 0))
    im.paste(Image.new("RGBA", (800, 600), (*RED, 255)), (0, 0))
    im.paste(Image.new("RGBA", (800, 600), (*BLUE, 128)), (800, 0))
    return avif(im, **params)


@pytest.mark.parametrize("premultiplied", [False, True])
def test_alpha_to_jpeg_is_flattened_onto_white(premultiplied: bool) -> None:
    data = _rgba_avif(alpha_premultiplied=premultiplied)
    assert (b"prem" in data) == premultiplied
    out = decoded(render(data, "thumbnail").data)
    # Blue at alpha 128/255 over white.
    a = 128 / 255
    half_blue = tuple(round(c * a + 255 * (1 - a)) for c in BLUE)
    assert_quadrants(out, {"tl": RED, "tr": half_blue, "bl": WHITE, "br": WHITE})  # type: ignore[dict-item]


def test_alpha_to_webp_is_kept() -> None:
    out = decoded(render(_rgba_avif(), "thumbnail", format="webp").data)
    assert out.mode == "RGBA"
    alpha = out.getchannel("A")

    def mean_alpha(q: Literal["tl", "tr", "bl", "br"]) -> float:
        return float(ImageStat.Stat(alpha.crop(images.quadrant_box(alpha.size, q))).mean[0])

    assert mean_alpha("tl") > 250
    assert abs(mean_alpha("tr") - 128) < 4
    assert mean_alpha("bl") < 2


# --- orientation (irot/imir) ------------------------------------------------------------------------------------


@cache
def oriented_avif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = avif(images.arrow_picture((600, 400)), exif=exif.tobytes())
    # Pillow stores the orientation as irot/imir, not as EXIF.
    assert (b"irot" in data or b"imir" in data) == (orientation != 1)
    return data


@pytest.mark.parametrize("orientation", range(1, 9))
def test_irot_imir_match_pillow(orientation: int) -> None:
    data = oriented_avif(orientation)
    r = render(data, "medium")
    assert (r.source_width, r.source_height) == (600, 400)
    with Image.open(io.BytesIO(data)) as im:
        assert im.getexif().get(0x0112, 1) == orientation
        shown = ImageOps.exif_transpose(im).convert("RGB")
    ours = decoded(r.data)
    assert ours.size == shown.size
    assert mean_abs_diff(ours, shown) < 3.0


@pytest.mark.parametrize("preset_name", PRESET_NAMES)
def test_corpus_irot_file_renders_upright_like_pillow(corpus: Path, preset_name: str) -> None:
    path = corpus / "rot1mir0_irot.avif"
    r = render(path.read_bytes(), preset_name)
    assert (r.source_format, r.source_width, r.source_height) == ("avif", 427, 640)
    with Image.open(path) as im:
        shown = ImageOps.exif_transpose(im).convert("RGB")
    # Stored 427x640; irot=1 then imir=0 (top and bottom exchanged) is EXIF 5: shown 640x427.
    assert shown.size == (640, 427)
    ours = decoded(r.data)
    if ours.size != shown.size:
        shown = ImageOps.fit(shown, ours.size, Image.Resampling.LANCZOS)
    assert mean_abs_diff(ours, shown) < 6.0


# --- colour -----------------------------------------------------------------------------------------------------


def _patch_nclx(data: bytes, *, primaries: int | None = None, transfer: int | None = None) -> bytes:
    at = data.index(b"colrnclx") + 8
    p, t, m, f = struct.unpack(">HHHB", data[at : at + 7])
    patched = struct.pack(">HHHB", p if primaries is None else primaries, t if transfer is None else transfer, m, f)
    return data[:at] + patched + data[at + 7 :]


def test_display_p3_primaries_are_converted_to_srgb(corpus: Path) -> None:
    source: RGB = (200, 60, 60)
    data = avif(Image.new("RGB", (800, 600), source))
    p3 = _patch_nclx(data, primaries=12)
    with Image.open(corpus / "derived_phone_pug_p3.jpg") as jpeg:
        p3_profile = ImageCms.ImageCmsProfile(io.BytesIO(jpeg.info["icc_profile"]))
    converted_by_pillow = ImageCms.profileToProfile(
        Image.new("RGB", (1, 1), source), p3_profile, ImageCms.createProfile("sRGB")
    )
    assert converted_by_pillow is not None
    expected = converted_by_pillow.getpixel((0, 0))
    assert isinstance(expected, tuple)
    plain = images.mean_colour(decoded(render(data, "thumbnail").data))
    converted = images.mean_colour(decoded(render(p3, "thumbnail").data))
    assert images.close(plain, source, 4.0), plain
    # P3 red is more saturated than sRGB's: the converted red is redder, and where a colour-managed Pillow puts it.
    assert images.close(converted, expected, 4.0), (converted, expected)
    assert converted[0] > plain[0] + 10


@pytest.mark.parametrize("transfer", [16, 18])
def test_hdr_transfer_is_refused(transfer: int) -> None:
    data = _patch_nclx(avif(Image.new("RGB", (64, 48), GREY)), transfer=transfer)
    with pytest.raises(UnsupportedFormatError, match=r"^AVIF: HDR \(PQ/HLG\) is not supported$"):
        render(data, "thumbnail")


def test_icc_profile_is_applied(corpus: Path) -> None:
    with Image.open(corpus / "derived_phone_pug_p3.jpg") as jpeg:
        icc = jpeg.info["icc_profile"]
    source: RGB = (200, 60, 60)
    tagged = avif(Image.new("RGB", (800, 600), source), icc_profile=icc)
    untagged = avif(Image.new("RGB", (800, 600), source))
    assert b"prof" in tagged
    a = images.mean_colour(decoded(render(tagged, "thumbnail").data))
    b = images.mean_colour(decoded(render(untagged, "thumbnail").data))
    assert a[0] > b[0] + 10, (a, b)


# --- damaged and foreign files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.6, 0.9, 0.99])
def test_truncated_avif_is_a_decode_error(fraction: float) -> None:
    data = quadrant_avif("4:2:0")
    with pytest.raises(DecodeError, match=r"^AVIF: "):
        render(data[: int(len(data) * fraction)], "thumbnail")


def test_garbage_after_ftyp_is_a_decode_error() -> None:
    data = quadrant_avif("4:2:0")
    ftyp_len = int.from_bytes(data[:4], "big")
    with pytest.raises(DecodeError, match=r"^AVIF: "):
        render(data[:ftyp_len] + bytes(range(256)) * 8, "thumbnail")


def test_flipped_bytes_in_the_av1_data_never_crash() -> None:
    # rav1d panics on some damaged AV1 data; the core must turn that into an error, not abort the process.
    data = images.encode(images.noise((96, 64)), "AVIF", quality=50)
    mdat = data.index(b"mdat") + 4
    outcomes = set()
    for at in range(mdat, len(data)):
        for flip in (0x01, 0x80, 0xFF):
            bad = data[:at] + bytes([data[at] ^ flip]) + data[at + 1 :]
            try:
                render(bad, "thumbnail")
                outcomes.add("ok")
            except DecodeError as e:
                outcomes.add(str(e)[:6])
    # Every failure is a DecodeError that names the format (an abort would have ended the test run).
    assert outcomes - {"ok"} == {"AVIF: "}, outcomes


def test_heic_is_still_refused(corpus: Path) -> None:
    with pytest.raises(UnsupportedFormatError, match=r"^HEIF/HEIC input is not supported$"):
        render((corpus / "pug_iphone13pro.heic").read_bytes(), "thumbnail")


def test_sequence_without_a_primary_item_is_unsupported() -> None:
    ftyp = b"ftypavis\0\0\0\0avismsf1"
    with pytest.raises(UnsupportedFormatError, match=r"^AVIF: image sequences"):
        render(struct.pack(">I", 4 + len(ftyp)) + ftyp + b"\0\0\0\x08moov", "thumbnail")


# --- grids ------------------------------------------------------------------------------------------------------
# Pillow cannot write a grid, so one is assembled here from Pillow-made tiles: their av1C and AV1 data, under a
# 'grid' item whose ImageGrid (in 'idat') crops the tiles to the output size.


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full(kind: bytes, version: int, body: bytes) -> bytes:
    return _box(kind, struct.pack(">I", version << 24) + body)


def _children(data: bytes, start: int, end: int) -> dict[bytes, bytes]:
    boxes, at = {}, start
    while at < end:
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        boxes[kind] = data[at + 8 : at + size]
        at += size
    return boxes


def _tile(image: Image.Image) -> tuple[bytes, bytes]:
    """A Pillow AVIF's av1C box and its one item's AV1 data."""
    data = avif(image, subsampling="4:4:4")
    meta = _children(data, 0, len(data))[b"meta"]
    boxes = _children(meta, 4, len(meta))
    ipco = _children(boxes[b"iprp"], 0, len(boxes[b"iprp"]))[b"ipco"]
    av1c = _box(b"av1C", _children(ipco, 0, len(ipco))[b"av1C"])
    iloc = boxes[b"iloc"]
    # Version 0, 4-byte offsets and lengths, one item with one extent: how libavif writes a small still image.
    assert iloc[0] == 0, iloc[:16].hex()
    assert iloc[4:8] == b"\x44\x00\x00\x01", iloc[:16].hex()
    offset, length = struct.unpack(">II", iloc[14:22])
    return av1c, data[offset : offset + length]


def grid_avif(tiles: list[Image.Image], rows: int, columns: int, size: tuple[int, int], grid_id: int = 100) -> bytes:
    """Tiles are items 1, 2, ...; the grid is `grid_id` (which must not be one of theirs)."""
    parts = [_tile(t) for t in tiles]
    tw, th = tiles[0].size
    ispe = [_full(b"ispe", 0, struct.pack(">II", tw, th)), _full(b"ispe", 0, struct.pack(">II", *size))]
    ipco = _box(b"ipco", ispe[0] + parts[0][0] + ispe[1])
    entries = [struct.pack(">HB", i + 1, 2) + bytes([1, 0x82]) for i in range(len(tiles))]
    entries.append(struct.pack(">HB", grid_id, 1) + bytes([3]))
    ipma = _full(b"ipma", 0, struct.pack(">I", len(entries)) + b"".join(entries))
    image_grid = bytes([0, 0, rows - 1, columns - 1]) + struct.pack(">HH", *size)
    infe = [_full(b"infe", 2, struct.pack(">HH", i + 1, 0) + b"av01\0") for i in range(len(tiles))]
    infe.append(_full(b"infe", 2, struct.pack(">HH", grid_id, 0) + b"grid\0"))
    iref = _full(
        b"iref",
        0,
        _box(
            b"dimg",
            struct.pack(">HH", grid_id, len(tiles)) + b"".join(struct.pack(">H", i + 1) for i in range(len(tiles))),
        ),
    )

    def meta(mdat_start: int) -> bytes:
        locations, at = [], mdat_start
        for i, (_, av1) in enumerate(parts):
            locations.append(struct.pack(">HHHHII", i + 1, 0, 0, 1, at, len(av1)))
            at += len(av1)
        locations.append(struct.pack(">HHHHII", grid_id, 1, 0, 1, 0, len(image_grid)))
        iloc = _full(b"iloc", 1, b"\x44\x00" + struct.pack(">H", len(locations)) + b"".join(locations))
        return _full(
            b"meta",
            0,
            _full(b"hdlr", 0, b"\0\0\0\0pict" + b"\0" * 13)
            + _full(b"pitm", 0, struct.pack(">H", grid_id))
            + _full(b"iinf", 0, struct.pack(">H", len(infe)) + b"".join(infe))
            + iloc
            + iref
            + _box(b"iprp", ipco + ipma)
            + _box(b"idat", image_grid),
        )

    ftyp = _box(b"ftyp", b"avif\0\0\0\0avifmif1miaf")
    start = len(ftyp) + len(meta(0)) + 8
    return ftyp + meta(start) + _box(b"mdat", b"".join(av1 for _, av1 in parts))


def test_grid_tiles_are_composited_and_cropped() -> None:
    # 2 x 3 tiles of 320x240, each one flat colour, cropped to 900x400 (the last column and row overhang).
    colours: list[RGB] = [RED, GREEN, BLUE, (230, 200, 40), GREY, (40, 200, 200)]
    tiles = [Image.new("RGB", (320, 240), c) for c in colours]
    data = grid_avif(tiles, rows=2, columns=3, size=(900, 400))
    r = render(data, "medium", format="webp")
    assert (r.source_width, r.source_height, r.width, r.height) == (900, 400, 900, 400)
    out = decoded(r.data)
    for i, colour in enumerate(colours):
        x, y = (i % 3) * 320 + 100, (i // 3) * 240 + 80
        box = (x, y, min(x + 100, 900), min(y + 60, 400))
        assert images.close(images.mean_colour(out, box), colour, 6.0), (i, images.mean_colour(out, box), colour)


def test_grid_with_missing_tiles_is_a_decode_error() -> None:
    tiles = [Image.new("RGB", (320, 240), RED) for _ in range(3)]
    data = grid_avif(tiles, rows=2, columns=2, size=(640, 480))
    with pytest.raises(DecodeError, match=r"^AVIF: grid item 100 has 3 tiles, expected 2 x 2 = 4$"):
        render(data, "thumbnail")


RAV1D_PANIC = Path(__file__).resolve().parents[1] / "fuzz" / "regressions" / "rav1d-panic-07190ebab4f9bbd4"


def test_a_rav1d_panic_is_a_decode_error_and_prints_nothing() -> None:
    # Found by the fuzzer: rav1d unwraps a None on this damaged AV1 (vendor/rav1d/KIRAY-PATCH.md). The panic must
    # come back as DecodeError carrying its message, and print nothing itself: on Lambda a stderr line is a stray
    # non-JSON log event beside the handler's own ERROR line. RUST_BACKTRACE=1 makes the default hook louder still.
    script = (
        "import sys, kiray_imaging\n"
        "try:\n"
        "    kiray_imaging.render(open(sys.argv[1], 'rb').read(), 'thumbnail')\n"
        "except kiray_imaging.DecodeError as e:\n"
        "    print(e)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(RAV1D_PANIC)],
        capture_output=True, text=True, check=True, env={**os.environ, "RUST_BACKTRACE": "1"},
    )  # fmt: skip
    assert "the AV1 decoder failed on this data (called `Option::unwrap()` on a `None` value)" in result.stdout
    assert result.stderr == ""
