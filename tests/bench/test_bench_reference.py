"""The reference rendition (bench/reference.py): every step a peer is judged against must itself be right."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image, ImageCms

from bench import reference

# How each EXIF orientation turns the stored pixels into the displayed picture.
DISPLAY = {
    3: Image.Transpose.ROTATE_180,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    8: Image.Transpose.ROTATE_90,
}
INVERSE = {Image.Transpose.ROTATE_270: Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_90: Image.Transpose.ROTATE_270}


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def png16(samples: NDArray[np.uint16]) -> bytes:
    """A 16-bit RGB (HxWx3) or RGBA (HxWx4) PNG, which Pillow cannot write; rows alternate filters 0 and 1 (Sub) so
    the decode goes through real unfiltering."""
    h, w, channels = samples.shape
    bpp = 2 * channels
    raw = bytearray()
    for y in range(h):
        row = samples[y].astype(">u2").tobytes()
        if y % 2:
            sub = bytes((row[i] - (row[i - bpp] if i >= bpp else 0)) & 0xFF for i in range(len(row)))
            raw += b"\x01" + sub
        else:
            raw += b"\x00" + row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    colour_type = {3: 2, 4: 6}[channels]
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(bytes(raw)))
        + chunk(b"IEND", b"")
    )


def same_size(data: bytes) -> NDArray[np.float32]:
    """The reference at the source's own (displayed) size, where Lanczos is the identity: the decode laid bare."""
    decoded = reference.decode(data)
    return reference.render(decoded, "inside", decoded.size)


def test_crop_box_covers_with_the_output_aspect_centred() -> None:
    assert reference.crop_box((800, 600), "inside", (400, 300)) == (0, 0, 800, 600)
    # Wider source than 4:3: full height, centred width.
    assert reference.crop_box((1000, 600), "cover", (400, 300)) == (100, 0, 900, 600)
    # Taller: full width, centred height.
    assert reference.crop_box((600, 1000), "cover", (400, 300)) == (0, 275, 600, 725)
    # The output's own aspect, not the preset's: a peer that kept a small source square gets a square crop.
    assert reference.crop_box((245, 245), "cover", (245, 245)) == (0, 0, 245, 245)
    with pytest.raises(ValueError, match="fit"):
        reference.crop_box((10, 10), "fill", (5, 5))


def test_cover_reference_shows_the_centre() -> None:
    # Black | white | black thirds: a centred square crop of the 3:1 picture is white. Only the outermost columns
    # see black, through the filter's support, as they would in a resize of the whole picture.
    image = Image.new("L", (300, 100), 0)
    image.paste(255, (100, 0, 200, 100))
    ref = reference.render(reference.decode(encode(image, "PNG")), "cover", (50, 50))
    assert ref.shape == (50, 50, 3)
    assert ref[:, 2:-2].min() > 254
    assert ref[:, 0].max() < 250


@pytest.mark.parametrize("orientation", sorted(DISPLAY))
def test_exif_orientation_is_applied(orientation: int) -> None:
    shown = Image.new("RGB", (60, 40), (0, 0, 255))
    shown.paste((255, 0, 0), (0, 0, 30, 20))
    display = DISPLAY[orientation]
    stored = shown.transpose(INVERSE.get(display, display))
    exif = Image.Exif()
    exif[0x0112] = orientation
    decoded = reference.decode(encode(stored, "PNG", exif=exif))
    assert decoded.size == (60, 40)
    assert f"EXIF orientation {orientation}" in decoded.notes
    np.testing.assert_array_equal(reference.render(decoded, "inside", (60, 40)), np.asarray(shown, dtype=np.float32))


def test_alpha_is_flattened_onto_white() -> None:
    image = Image.new("RGBA", (30, 20), (0, 0, 0, 0))
    image.paste((0, 0, 0, 255), (0, 0, 10, 20))
    image.paste((0, 0, 0, 128), (10, 0, 20, 20))
    ref = same_size(encode(image, "PNG"))
    np.testing.assert_allclose(ref[:, :10], 0.0)
    np.testing.assert_allclose(ref[:, 10:20], 255 * (1 - 128 / 255), rtol=1e-6)
    np.testing.assert_allclose(ref[:, 20:], 255.0)


def test_palette_transparency_is_flattened_and_only_the_first_frame_counts() -> None:
    first = Image.new("P", (16, 16), 1)
    first.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 9))
    first.paste(0, (0, 0, 8, 16))
    second = Image.new("P", (16, 16), 2)
    second.putpalette(first.getpalette() or [])
    data = encode(first, "GIF", save_all=True, append_images=[second], transparency=0, duration=100)
    decoded = reference.decode(data)
    assert "first of 2 frames" in decoded.notes
    ref = reference.render(decoded, "inside", (16, 16))
    np.testing.assert_array_equal(ref[0, 0], [255, 255, 255])  # transparent index → white
    np.testing.assert_array_equal(ref[0, 15], [255, 0, 0])  # frame 1's red, not frame 2's green


def test_sixteen_bit_rgb_png_keeps_its_low_bytes() -> None:
    rng = np.random.default_rng(4)
    samples = rng.integers(0, 65536, size=(6, 9, 3), dtype=np.uint16)
    decoded = reference.decode(png16(samples))
    assert "16-bit samples kept" in decoded.notes
    np.testing.assert_allclose(same_size(png16(samples)), samples / 257.0, rtol=1e-6)


def test_sixteen_bit_rgba_png_flattens_with_sixteen_bit_alpha() -> None:
    samples = np.zeros((4, 4, 4), dtype=np.uint16)
    samples[..., :3] = 0x1234
    samples[..., 3] = 0x8000
    a = 0x8000 / 65535
    np.testing.assert_allclose(same_size(png16(samples)), 0x1234 / 257 * a + 255 * (1 - a), rtol=1e-6)


def test_sixteen_bit_grey_png_is_read_at_sixteen_bits() -> None:
    samples = (np.arange(240) * 273).astype(np.uint16).reshape(12, 20)
    ref = same_size(encode(Image.fromarray(samples), "PNG"))
    np.testing.assert_allclose(ref[..., 0], samples / 257.0, rtol=1e-6)
    np.testing.assert_array_equal(ref[..., 0], ref[..., 2])


def test_grey_becomes_three_equal_channels() -> None:
    ref = same_size(encode(Image.linear_gradient("L").resize((32, 24)), "PNG"))
    assert ref.shape == (24, 32, 3)
    np.testing.assert_array_equal(ref[..., 0], ref[..., 1])


def test_an_srgb_profile_changes_nothing_to_speak_of() -> None:
    image = Image.radial_gradient("L").convert("RGB").resize((32, 32))
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    decoded = reference.decode(encode(image, "PNG", icc_profile=srgb))
    assert any("→ sRGB (relative colorimetric)" in note for note in decoded.notes)
    np.testing.assert_allclose(reference.render(decoded, "inside", (32, 32)), np.asarray(image), atol=1.0)


def test_a_display_p3_profile_is_converted_to_srgb(corpus: Path) -> None:
    p3 = Image.open(corpus / "derived_phone_pug_p3.jpg").info["icc_profile"]
    image = Image.new("RGB", (16, 16), (128, 128, 128))
    image.paste((200, 60, 40), (0, 0, 8, 16))
    ref = same_size(encode(image, "PNG", icc_profile=p3))
    grey = ref[0, 15]
    # Same white point and transfer curve as sRGB: neutrals stay put.
    np.testing.assert_allclose(grey, [128, 128, 128], atol=1.0)
    # P3's red primary lies outside sRGB's: the same numbers mean a more saturated red, so in sRGB the red rises
    # and the others fall.
    red = ref[0, 0]
    assert red[0] > 205
    assert red[1] < 55
    assert red[2] < 40


def test_an_unreadable_profile_is_noted_and_ignored() -> None:
    image = Image.new("RGB", (12, 12), (10, 20, 30))
    decoded = reference.decode(encode(image, "PNG", icc_profile=b"not a profile at all"))
    assert any("unreadable ICC profile" in note for note in decoded.notes)
    np.testing.assert_array_equal(reference.render(decoded, "inside", (12, 12))[0, 0], [10, 20, 30])


def test_cmyk_without_a_profile_still_gives_rgb() -> None:
    image = Image.new("CMYK", (12, 12), (0, 255, 255, 0))
    decoded = reference.decode(encode(image, "JPEG", quality=95))
    assert any("CMYK" in note for note in decoded.notes)
    red = reference.render(decoded, "inside", (12, 12))[6, 6]
    assert red[0] > 200
    assert red[1] < 60


def test_downscaling_is_float_lanczos_and_clipped_to_the_byte_range() -> None:
    # A hard edge rings under Lanczos; the reference keeps the float values but never leaves 0..255.
    image = Image.new("L", (400, 300), 0)
    image.paste(255, (200, 0, 400, 300))
    ref = reference.render(reference.decode(encode(image, "PNG")), "inside", (133, 100))
    assert ref.dtype == np.float32
    assert ref.min() >= 0.0
    assert ref.max() <= 255.0
    assert not np.all(ref == np.rint(ref))  # not quantised


def test_what_pillow_cannot_read_raises_reference_error() -> None:
    with pytest.raises(reference.ReferenceError, match="cannot identify"):
        reference.decode(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64)


def test_references_are_cached_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode(Image.linear_gradient("L").resize((80, 60)).convert("RGB"), "PNG")
    first = reference.reference(data, "thumbnail", 40, 30, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npy"))) == 1

    def no_decoding(_: bytes) -> reference.Decoded:
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr(reference, "decode", no_decoding)
    np.testing.assert_array_equal(reference.reference(data, "thumbnail", 40, 30, cache_dir=tmp_path), first)
    assert reference.References(tmp_path).notes(data) == ()
    # Another size is another key, which does need a decode.
    with pytest.raises(AssertionError, match="decoded again"):
        reference.reference(data, "thumbnail", 40, 31, cache_dir=tmp_path)
